"""Freezes, who is active at an as-of date, the spine of snapshots and their labels.

Definitions (DATA_CONTRACT.md §2), with the side of every bound:

- A client is frozen during ``[frozen_at, unfrozen_at)``; ``unfrozen_at`` NULL = still frozen.
- Idle rule (no ``freezes`` table): an *idle span* starts when the client's count of
  running campaigns drops to 0 (or at ``signup_date`` 00:00 when nothing runs yet)
  and ends at the next event that makes a campaign run. A span of ``idle_days`` or
  more gives a freeze with ``frozen_at = start + idle_days`` and
  ``unfrozen_at = end`` — only when the span ends strictly after ``frozen_at`` (or has
  not ended) and ``frozen_at`` is not after the end of the data. Events at the same
  timestamp are applied together. With ``label.idle_source`` set to an event table,
  the spans are the gaps between consecutive events of that table instead.
- Active at ``T``: ``signup_date < T`` and not frozen at ``T``
  (i.e. no freeze with ``frozen_at <= T < unfrozen_at``).
- Label at ``T``: 1 when a freeze has ``T < frozen_at <= T + horizon_days``.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from churnpredict.config import Config
from churnpredict.errors import DataError

RUN_ON = ("started", "resumed")
RUN_OFF = ("paused", "stopped")


def _idle_spans_campaigns_sql() -> str:
    """SQL giving (client_id, start, end) idle spans from campaign events."""
    return """
    WITH ev AS (
        SELECT client_id, campaign_id, ts,
               CASE WHEN event IN ('started', 'resumed') THEN 1 ELSE 0 END AS run
        FROM campaign_events
        WHERE event IN ('started', 'resumed', 'paused', 'stopped')
    ), dl AS (
        SELECT client_id, ts,
               run - COALESCE(lag(run) OVER (PARTITION BY client_id, campaign_id
                                             ORDER BY ts, run), 0) AS d
        FROM ev
    ), per_ts AS (
        SELECT client_id, ts, sum(d) AS d FROM dl GROUP BY client_id, ts
    ), cnt AS (
        SELECT client_id, ts,
               sum(d) OVER (PARTITION BY client_id ORDER BY ts
                            ROWS UNBOUNDED PRECEDING) AS running
        FROM per_ts
    ), states AS (
        -- every client starts idle at signup; then each timestamp's running count
        SELECT client_id, CAST(signup_date AS TIMESTAMP) AS ts, 0 AS running, 0 AS o
        FROM clients
        UNION ALL
        SELECT client_id, ts, running, 1 AS o FROM cnt
    ), marked AS (
        SELECT client_id, ts, running,
               (running > 0)::INT AS on_,
               lag((running > 0)::INT) OVER (PARTITION BY client_id ORDER BY ts, o) AS prev_on
        FROM states
    ), changes AS (
        SELECT client_id, ts, on_ FROM marked WHERE prev_on IS NULL OR on_ <> prev_on
    ), spans AS (
        SELECT client_id, ts AS start, on_,
               lead(ts) OVER (PARTITION BY client_id ORDER BY ts) AS "end"
        FROM changes
    )
    SELECT client_id, start, "end" FROM spans WHERE on_ = 0
    """


def _idle_spans_events_sql(table: str) -> str:
    """SQL giving idle spans = gaps between consecutive events of ``table``."""
    return f"""
    WITH ev AS (
        SELECT client_id, ts FROM {table}
        UNION ALL
        SELECT client_id, CAST(signup_date AS TIMESTAMP) FROM clients
    ), d AS (SELECT DISTINCT client_id, ts FROM ev)
    SELECT client_id, ts AS start,
           lead(ts) OVER (PARTITION BY client_id ORDER BY ts) AS "end"
    FROM d
    """


def derive_freezes(ds, cfg: Config) -> pd.DataFrame:
    """Return the freezes ``(client_id, frozen_at, unfrozen_at)`` used for labels.

    Uses the ``freezes`` table when the rule says so (``auto`` and present, or
    ``freezes``), otherwise the idle rule over ``label.idle_source``.
    """
    con = ds.con
    rule = cfg.label.rule
    if rule == "freezes" or (rule == "auto" and "freezes" in ds.present):
        if "freezes" not in ds.present:
            raise DataError(
                "label.rule is 'freezes' but the data has no freezes table",
                file=str(ds.data_dir),
                expected="freezes.parquet/.csv, or label.rule: idle",
            )
        sql = "SELECT client_id, frozen_at, unfrozen_at FROM freezes"
    else:
        source = cfg.label.idle_source
        if source == "campaigns":
            spans = _idle_spans_campaigns_sql()
        elif source in ds.present:
            spans = _idle_spans_events_sql(source)
        else:
            raise DataError(
                f"label.idle_source '{source}' is not a table of this data set",
                file=str(ds.data_dir),
                expected=f"'campaigns' or one of: {', '.join(sorted(ds.present))}",
            )
        idle = int(cfg.label.idle_days)
        end = pd.Timestamp(ds.data_end)
        sql = f"""
        SELECT client_id, start + INTERVAL {idle} DAY AS frozen_at, "end" AS unfrozen_at
        FROM ({spans})
        WHERE ("end" IS NULL OR "end" > start + INTERVAL {idle} DAY)
          AND start + INTERVAL {idle} DAY <= TIMESTAMP '{end}'
        """
    con.execute(f"CREATE OR REPLACE TEMP TABLE _freezes AS {sql}")
    return con.execute("SELECT * FROM _freezes ORDER BY client_id, frozen_at").df()


def snapshot_dates(ds, cfg: Config, *, until: pd.Timestamp | None = None) -> list[pd.Timestamp]:
    """Return training as-of dates: every ``snapshots.every_days`` with complete labels.

    The first date is ``warmup_days`` after the start of the data — moved on to the
    next Monday when snapshots are weekly (so lists, reports and the simulator's
    truth share one weekly grid); the last is the latest with
    ``T + horizon_days <= min(data_end, until)`` so every label window is observed.
    """
    start = pd.Timestamp(ds.data_start).normalize() + timedelta(days=cfg.snapshots.warmup_days)
    if cfg.snapshots.every_days % 7 == 0:
        start += timedelta(days=(7 - start.weekday()) % 7)
    end = pd.Timestamp(ds.data_end).normalize()
    if until is not None:
        end = min(end, pd.Timestamp(until).normalize())
    last = end - timedelta(days=cfg.label.horizon_days)
    dates = []
    t = start
    while t <= last:
        dates.append(t)
        t += timedelta(days=cfg.snapshots.every_days)
    return dates


def build_spine(ds, cfg: Config, as_of_dates, *, with_label: bool = True) -> pd.DataFrame:
    """Return ``(client_id, as_of[, label])`` for every client active at each date.

    ``derive_freezes`` must have run on ``ds`` first (it leaves ``_freezes`` in the
    connection); this is done automatically when missing.
    """
    con = ds.con
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE table_name = '_freezes'"
    ).fetchall()[0][0]
    if not exists:
        derive_freezes(ds, cfg)
    dates = pd.DataFrame({"as_of": pd.to_datetime(list(as_of_dates)).normalize()})
    if dates.empty:
        cols = ["client_id", "as_of"] + (["label"] if with_label else [])
        return pd.DataFrame(columns=cols)
    con.register("_dates_df", dates)
    h = int(cfg.label.horizon_days)
    label_sql = (
        f""", EXISTS (SELECT 1 FROM _freezes f WHERE f.client_id = c.client_id
                    AND f.frozen_at > d.as_of
                    AND f.frozen_at <= d.as_of + INTERVAL {h} DAY)::INT AS label"""
        if with_label
        else ""
    )
    df = con.execute(
        f"""
        SELECT c.client_id, d.as_of {label_sql}
        FROM clients c CROSS JOIN (SELECT CAST(as_of AS TIMESTAMP) AS as_of FROM _dates_df) d
        WHERE CAST(c.signup_date AS TIMESTAMP) < d.as_of
          AND NOT EXISTS (SELECT 1 FROM _freezes f WHERE f.client_id = c.client_id
                          AND f.frozen_at <= d.as_of
                          AND (f.unfrozen_at IS NULL OR f.unfrozen_at > d.as_of))
        ORDER BY d.as_of, c.client_id
        """
    ).df()
    con.unregister("_dates_df")
    df["as_of"] = pd.to_datetime(df["as_of"])
    df["client_id"] = df["client_id"].astype(str)
    if with_label:
        df["label"] = df["label"].astype("int8")
    return df.reset_index(drop=True)
