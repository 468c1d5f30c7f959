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
- Active at ``T``, judged from rows strictly before ``T``: ``signup_date < T``, not
  frozen at ``T`` (no freeze with ``frozen_at <= T`` and ``unfrozen_at`` NULL or
  ``>= T``: a freeze that ends on day ``T`` itself, even at 00:00, is not known to have
  ended at ``T``), and the relationship has not ended (``label.ended``: no end with
  ``ended_at <= T``).
- Label at ``T``: 1 when a freeze has ``T < frozen_at <= T + horizon_days`` and
  ``frozen_at`` is before the client's end of relationship (if any).
- Coverage (DATA_CONTRACT.md §2): a table covers its first to its last row. Training
  snapshots start ``warmup_days`` after the latest coverage start of the tables the
  features and the label read (``snapshots.wait_for``), and end where the label
  source still covers the whole horizon.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import numpy as np
import pandas as pd

from churnpredict import data
from churnpredict.config import Config
from churnpredict.errors import DataError

log = logging.getLogger("churnpredict.labels")

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


def _idle_freezes_sql(ds, cfg: Config) -> str:
    """Return SQL giving the idle rule's freezes ``(client_id, frozen_at, unfrozen_at)``."""
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
    return f"""
        SELECT client_id, start + INTERVAL {idle} DAY AS frozen_at, "end" AS unfrozen_at
        FROM ({spans})
        WHERE ("end" IS NULL OR "end" > start + INTERVAL {idle} DAY)
          AND start + INTERVAL {idle} DAY <= TIMESTAMP '{end}'
        """


def _before_coverage_sql(ds, cfg: Config) -> str | None:
    """Return SQL for the idle rule's freezes still open when the ``freezes`` table begins.

    A client already frozen when the ``freezes`` export begins has no row there, so it
    would look active until it comes back. When the idle rule's source
    (``label.idle_source``) covers earlier than ``freezes`` (beyond
    ``data.coverage_slack_days``), the state at the start of the ``freezes`` coverage
    comes from the idle rule — the contract's freeze where no ``freezes`` row can be —
    and such a freeze lasts until the idle rule ends it. None when nothing is earlier.
    """
    starts = covered_from(ds, cfg)
    src = "campaign_events" if cfg.label.idle_source == "campaigns" else cfg.label.idle_source
    if "freezes" not in starts or src not in starts or starts[src] >= starts["freezes"]:
        return None
    begin = starts["freezes"]
    return f"""
        SELECT client_id, frozen_at, unfrozen_at FROM ({_idle_freezes_sql(ds, cfg)})
        WHERE frozen_at < TIMESTAMP '{begin}'
          AND (unfrozen_at IS NULL OR unfrozen_at >= TIMESTAMP '{begin}')
        """


def freezes_frame(ds, cfg: Config):
    """Return the freezes used for labels as an engine frame (see :func:`derive_freezes`).

    A ``pyarrow.Table`` on the local engine, a lazy Spark DataFrame on Spark; pass it
    to :func:`build_spine` (``freezes=``) so the spine does not derive them again.
    """
    rule = cfg.label.rule
    if rule == "freezes" or (rule == "auto" and "freezes" in ds.present):
        if "freezes" not in ds.present:
            raise DataError(
                "label.rule is 'freezes' but the data has no freezes table",
                file=str(ds.data_dir),
                expected="freezes.parquet/.csv, or label.rule: idle",
            )
        sql = "SELECT client_id, frozen_at, unfrozen_at FROM freezes"
        before = _before_coverage_sql(ds, cfg)
        if before is not None:
            sql += f" UNION ALL ({before})"
    else:
        sql = _idle_freezes_sql(ds, cfg)
    return data.frame(ds, sql)


def derive_freezes(ds, cfg: Config) -> pd.DataFrame:
    """Return the freezes ``(client_id, frozen_at, unfrozen_at)`` used for labels.

    Uses the ``freezes`` table when the rule says so (``auto`` and present, or
    ``freezes``), otherwise the idle rule over ``label.idle_source``. With the table,
    clients already frozen (by the idle rule) when it begins stay frozen until they
    run again (see :func:`_before_coverage_sql`); these freezes start before the
    table's coverage, so they never make a label, only keep such clients out of the
    active population. Rows are ordered by client and ``frozen_at``; the frame can be
    passed to :func:`build_spine` as ``freezes``.
    """
    return data.query(
        ds,
        "SELECT * FROM _freezes ORDER BY client_id, frozen_at",
        {"_freezes": freezes_frame(ds, cfg)},
    )


def label_source(ds, cfg: Config) -> str:
    """Return the table the labels come from: ``freezes`` or the idle rule's source."""
    rule = cfg.label.rule
    if rule == "freezes" or (rule == "auto" and "freezes" in ds.present):
        return "freezes"
    src = cfg.label.idle_source
    return "campaign_events" if src == "campaigns" else src


def feature_tables(ds, cfg: Config) -> set[str]:
    """Return the present tables the features read (configured and declared sources)."""
    fc = cfg.features
    tables = {s.table for s in fc.sources.values()} | set(cfg.data.event_tables)
    if fc.campaign_state:
        tables.add("campaign_events")
    if fc.invoice_state:
        tables.add("invoices")
    return tables & set(ds.present)


def covered_from(ds, cfg: Config) -> dict[str, pd.Timestamp]:
    """Return, per table with rows, the day from which it covers the clients' history.

    A table covers from its first row's day; when that day is within
    ``data.coverage_slack_days`` of the earliest first row of any table it covers
    from that earliest day (a sparse table's first row comes a little after the export
    begins: e.g. nobody can freeze in the first ``idle_days``).
    """
    from churnpredict.contract import table_coverage

    cov = table_coverage(ds, cfg)
    if not cov:
        return {}
    first = {t: pd.Timestamp(lo).normalize() for t, (lo, _) in cov.items()}
    origin = min(first.values())
    slack = timedelta(days=cfg.data.coverage_slack_days)
    return {t: (origin if d <= origin + slack else d) for t, d in first.items()}


def label_end(ds, cfg: Config) -> pd.Timestamp:
    """Return the day up to which the label source is observed (DATA_CONTRACT.md §2).

    The data's end, unless the label source's last row is more than
    ``data.max_lag_days`` before it: then that last row's day (a freeze after it
    could not be seen, so no label window may reach past it).
    """
    from churnpredict.contract import table_coverage

    end = pd.Timestamp(ds.data_end).normalize()
    cov = table_coverage(ds, cfg).get(label_source(ds, cfg))
    if cov is None:
        return end
    last = pd.Timestamp(cov[1]).normalize()
    return end if last >= end - timedelta(days=cfg.data.max_lag_days) else last


def snapshot_dates(ds, cfg: Config, *, until: pd.Timestamp | None = None) -> list[pd.Timestamp]:
    """Return training as-of dates: every ``snapshots.every_days`` with complete labels.

    The first date is ``warmup_days`` after the latest coverage start (see
    :func:`covered_from`) of the tables in ``snapshots.wait_for`` (``auto``: every
    table the features and the label read) — moved on to the next Monday when
    snapshots are weekly (so lists, reports and the simulator's truth share one weekly
    grid); the last is the latest with ``T + horizon_days <= min(label_end, until)``
    so every label window is observed by the label source.
    """
    starts = covered_from(ds, cfg)
    wait = cfg.snapshots.wait_for
    if wait != "auto" and set(wait) - set(starts):
        log.warning(
            "snapshots.wait_for: %s has no rows in this data (not waited for)",
            ", ".join(sorted(set(wait) - set(starts))),
        )
    need = (
        feature_tables(ds, cfg) | {label_source(ds, cfg)} if wait == "auto" else set(wait)
    ) & set(starts)
    if need:
        gate = max(need, key=lambda t: (starts[t], t))
        origin = starts[gate]
    else:
        gate, origin = None, pd.Timestamp(ds.data_start).normalize()
    start = origin + timedelta(days=cfg.snapshots.warmup_days)
    if cfg.snapshots.every_days % 7 == 0:
        start += timedelta(days=(7 - start.weekday()) % 7)
    end = label_end(ds, cfg)
    if until is not None:
        end = min(end, pd.Timestamp(until).normalize())
    last = end - timedelta(days=cfg.label.horizon_days)
    dates = []
    t = start
    while t <= last:
        dates.append(t)
        t += timedelta(days=cfg.snapshots.every_days)
    if gate is not None:
        from churnpredict.contract import table_coverage

        cov = table_coverage(ds, cfg)
        log.info(
            "coverage: %s; snapshots from %s (%s covered from %s + %d warm-up days) to %s "
            "(label source %s observed to %s)",
            "; ".join(
                f"{t} {cov[t][0]} .. {cov[t][1]}"
                + (
                    f" (covers from {d.date()})"
                    if d != pd.Timestamp(cov[t][0]).normalize()
                    else ""
                )
                for t, d in sorted(starts.items())
            ),
            start.date(),
            gate,
            origin.date(),
            cfg.snapshots.warmup_days,
            dates[-1].date() if dates else "(none: too little covered history)",
            label_source(ds, cfg),
            end.date(),
        )
    return dates


def _ended_sql(ds, cfg: Config) -> str | None:
    """Return SQL giving ``(client_id, ended_at)`` for ``label.ended``, or None."""
    ended = cfg.label.ended
    if ended.column:
        have = set(data.columns(ds, "clients"))
        if ended.column not in have:
            raise DataError(
                f"label.ended.column '{ended.column}' is not a column of clients",
                file=str(ds.data_dir),
                column=ended.column,
                expected="a date or timestamp column of the clients table",
            )
        col = '"' + ended.column.replace('"', '""') + '"'
        return (
            f"SELECT client_id, CAST({col} AS TIMESTAMP) AS ended_at FROM clients "
            f"WHERE {col} IS NOT NULL"
        )
    if ended.table:
        if ended.table not in ds.present:
            raise DataError(
                f"label.ended.table '{ended.table}' is not a table of this data set",
                file=str(ds.data_dir),
                expected=f"a declared event table, one of: {', '.join(sorted(ds.present))}",
            )
        t = '"' + ended.table.replace('"', '""') + '"'
        return f"SELECT client_id, min(ts) AS ended_at FROM {t} GROUP BY client_id"
    return None


def spine_frame(ds, cfg: Config, as_of_dates, *, with_label: bool = True, freezes=None):
    """Return the spine of :func:`build_spine` as an engine frame (unordered).

    ``freezes`` is the output of :func:`freezes_frame` or :func:`derive_freezes`
    (derived here when not given). On Spark the result stays on the cluster.
    """
    if freezes is None:
        freezes = freezes_frame(ds, cfg)
    dates = pd.DataFrame({"as_of": pd.to_datetime(list(as_of_dates)).normalize()})
    ended = _ended_sql(ds, cfg)
    ended_sql = (
        f"SELECT client_id, min(ended_at) AS ended_at FROM ({ended}) GROUP BY client_id"
        if ended
        else "SELECT CAST(NULL AS VARCHAR) AS client_id, CAST(NULL AS TIMESTAMP) AS ended_at "
        "WHERE false"
    )
    h = int(cfg.label.horizon_days)
    label_sql = (
        f""", EXISTS (SELECT 1 FROM _freezes f WHERE f.client_id = c.client_id
                    AND f.frozen_at > d.as_of
                    AND f.frozen_at <= d.as_of + INTERVAL {h} DAY
                    AND (e.ended_at IS NULL OR f.frozen_at < e.ended_at))::INT AS label"""
        if with_label
        else ""
    )
    # not frozen at T: a freeze that ends on day T itself (unfrozen_at >= T) still holds,
    # as the rows of day T are not known at T; ended: from ended_at on
    return data.frame(
        ds,
        f"""
        SELECT c.client_id, d.as_of {label_sql}
        FROM clients c LEFT JOIN ({ended_sql}) e USING (client_id)
        CROSS JOIN (SELECT CAST(as_of AS TIMESTAMP) AS as_of FROM _dates_df) d
        WHERE CAST(c.signup_date AS TIMESTAMP) < d.as_of
          AND (e.ended_at IS NULL OR e.ended_at > d.as_of)
          AND NOT EXISTS (SELECT 1 FROM _freezes f WHERE f.client_id = c.client_id
                          AND f.frozen_at <= d.as_of
                          AND (f.unfrozen_at IS NULL OR f.unfrozen_at >= d.as_of))
        """,
        {"_freezes": freezes, "_dates_df": dates},
    )


def build_spine(
    ds, cfg: Config, as_of_dates, *, with_label: bool = True, freezes=None
) -> pd.DataFrame:
    """Return ``(client_id, as_of[, label])`` for every client active at each date.

    Rows are ordered by ``as_of`` then ``client_id``. ``freezes`` (from
    :func:`derive_freezes` or :func:`freezes_frame`) is derived here when not given.
    """
    as_of_dates = list(as_of_dates)
    if not as_of_dates:
        cols = ["client_id", "as_of"] + (["label"] if with_label else [])
        return pd.DataFrame(columns=cols)
    spine = spine_frame(ds, cfg, as_of_dates, with_label=with_label, freezes=freezes)
    df = data.query(ds, "SELECT * FROM _spine ORDER BY as_of, client_id", {"_spine": spine})
    df["as_of"] = pd.to_datetime(df["as_of"])
    df["client_id"] = df["client_id"].astype(str)
    if with_label:
        df["label"] = df["label"].astype("int8")
    return df.reset_index(drop=True)


def followup(
    ds,
    cfg: Config,
    spine: pd.DataFrame,
    *,
    until: pd.Timestamp | None = None,
    freezes=None,
) -> pd.DataFrame:
    """Return each snapshot's time to freeze, or the days its follow-up covers.

    For every ``(client_id, as_of)`` of ``spine`` (in its order):

    - ``followup_days``: the days after ``T`` the label source observes, at most
      ``label.max_horizon_days``: up to :func:`label_end` (and ``until`` when given, e.g.
      a training cut-off), and up to the client's end of relationship (``label.ended``:
      only whole days before ``ended_at`` count). Day ``d`` is ``(T + d - 1, T + d]``.
    - ``freeze_day``: ``d`` in ``1..followup_days`` when the first freeze after ``T``
      (before the end of relationship) falls in day ``d``, else 0 — also when the freeze
      comes after the covered days (it is not seen yet): such a snapshot counts as
      "no freeze" only for its covered days, i.e. it is censored at ``followup_days``.

    ``freeze_day`` in ``1..label.horizon_days`` is exactly the 30-day label of
    :func:`build_spine` wherever the follow-up covers the horizon. ``freezes`` (from
    :func:`freezes_frame`) is derived here when not given; only the freezes and the ends
    of relationship are fetched from the engine, one row per freeze or end.
    """
    H = int(cfg.label.max_horizon_days)
    end = label_end(ds, cfg)
    if until is not None:
        end = min(end, pd.Timestamp(until).normalize())
    keys = pd.DataFrame(
        {
            "client_id": spine["client_id"].astype(str).to_numpy(),
            "as_of": pd.to_datetime(spine["as_of"]).dt.normalize().astype("datetime64[us]"),
            "_row": np.arange(len(spine)),
        }
    )
    if keys.empty:
        return pd.DataFrame({"followup_days": [], "freeze_day": []}, dtype="int16")
    if freezes is None:
        freezes = freezes_frame(ds, cfg)
    fz = data.query(
        ds,
        "SELECT CAST(client_id AS VARCHAR) AS client_id, CAST(frozen_at AS TIMESTAMP) "
        "AS frozen_at FROM _freezes WHERE frozen_at IS NOT NULL",
        {"_freezes": freezes},
    )
    ended_sql = _ended_sql(ds, cfg)
    if ended_sql:
        ended = data.query(
            ds,
            f"SELECT CAST(client_id AS VARCHAR) AS client_id, min(ended_at) AS ended_at "
            f"FROM ({ended_sql}) GROUP BY client_id",
        )
        ended_at = keys["client_id"].map(
            pd.Series(
                pd.to_datetime(ended["ended_at"]).astype("datetime64[us]").to_numpy(),
                index=ended["client_id"].astype(str),
            )
        )
    else:
        ended_at = pd.Series(pd.NaT, index=keys.index, dtype="datetime64[us]")
    day = pd.Timedelta(days=1)
    cover = np.minimum(H, (pd.Timestamp(end) - keys["as_of"]) // day)
    to_end = ((ended_at - keys["as_of"]) // day).fillna(H)  # whole days before the end
    fu = np.maximum(np.minimum(cover, to_end).to_numpy(dtype="int64"), 0)
    # the first freeze strictly after T (one as-of join per client)
    fz = pd.DataFrame(
        {
            "client_id": fz["client_id"].astype(str),
            "frozen_at": pd.to_datetime(fz["frozen_at"]).astype("datetime64[us]"),
        }
    ).sort_values("frozen_at", kind="stable")
    first = (
        pd.merge_asof(
            keys.sort_values("as_of", kind="stable"),
            fz,
            left_on="as_of",
            right_on="frozen_at",
            by="client_id",
            direction="forward",
            allow_exact_matches=False,
        )
        .set_index("_row")["frozen_at"]
        .reindex(keys["_row"])
    )
    first = pd.Series(first.to_numpy(), index=keys.index)
    first = first.where(ended_at.isna() | (first < ended_at))  # a freeze after the end: none
    d = np.ceil((first - keys["as_of"]) / day).fillna(0).to_numpy(dtype="int64")
    seen = (d >= 1) & (d <= fu)
    return pd.DataFrame(
        {
            "followup_days": fu.astype("int16"),
            "freeze_day": (d * seen).astype("int16"),
        }
    )
