"""The client's facts at the as-of date: what the call list names and routes by.

The model decides *which* reasons a client gets (its contributions); these facts
decide *what the reason says* ("3 of 4 campaigns paused by the client 9 days ago —
over poor results") and *who calls* (receivables only with money evidence, technical
only with a recent technical request). Every fact at date T uses rows strictly before
T 00:00 UTC, exactly like the features (DATA_CONTRACT.md §2).

One row per client, columns (NaN / None when unknown or not applicable):

campaigns (``campaign_events``)
    ``n_campaigns`` (campaigns not stopped), ``running`` (running now),
    ``idle_days`` (days since the last campaign stopped running, when none runs),
    ``halt_days``, ``halt_event``, ``halt_initiator``, ``halt_reason``, ``halt_k`` — the
    latest pause or
    stop within ``lookback_days``: how long ago, by whom, why, and how many campaigns
    the same initiator paused or stopped within a week up to it; ``halt_resumed``
    (1 when one of those campaigns runs again); ``money_halt_days`` (days since the
    system paused a campaign that is still paused for a money reason).
invoices
    ``overdue_n``, ``overdue_amount``, ``overdue_days`` (oldest overdue invoice, days
    past due; an invoice paid on or after T is unpaid at T), ``paid_n`` (invoices paid
    within ``lookback_days``), ``paid_late_n`` (of them, paid after the due date).
contacts
    ``technical_days`` / ``technical_n`` (last technical request, count within
    ``lookback_days``), ``complaint_days`` / ``complaint_n`` (same for complaints); the
    topics are the ``contacts.topic`` values of ``calls.technical_topics`` and
    ``calls.complaint_topics``.
spend
    ``conv_now`` / ``conv_prev`` (conversions in the last 30 days and the 30 before),
    ``spend_now`` / ``spend_prev``, ``clicks_now`` / ``clicks_prev``.
declared event tables (``data.event_tables``)
    ``<table>__days`` (days since the last event), ``<table>__now`` / ``<table>__prev``
    (events in the last 30 days and the 30 before).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnpredict.config import Config
from churnpredict.features.backends.sql import quote

FACT_WINDOW = 30  # "now" vs "previous" windows for results and declared tables


def _frame(con, sql: str, params: list | None = None) -> pd.DataFrame:
    df = con.execute(sql, params or []).df()
    if "client_id" in df.columns:
        df["client_id"] = df["client_id"].astype(str)
    return df


def client_facts(ds, T: pd.Timestamp, client_ids, cfg: Config) -> pd.DataFrame:
    """Return the facts of ``client_ids`` at ``T`` (one row per client, in that order).

    Parameters
    ----------
    ds : Dataset
        The loaded tables (:func:`churnpredict.contract.load`).
    T : Timestamp
        The as-of date; only rows strictly before ``T`` 00:00 UTC are read.
    client_ids : sequence of str
        The scored clients.
    cfg : Config
        ``calls.lookback_days`` (oldest event a reason may cite), ``calls.money_reasons``,
        ``calls.technical_topics``, ``calls.complaint_topics`` and ``data.event_tables``.

    Returns
    -------
    DataFrame
        ``client_id`` and the columns listed in the module docstring.
    """
    T = pd.Timestamp(T).normalize()
    ids = pd.DataFrame({"client_id": pd.Series(client_ids, dtype=str).to_numpy()})
    out = ids.copy()
    con = ds.con
    look = lookback_days(cfg)
    t_sql = f"TIMESTAMP '{T}'"
    con.register("_fact_ids", ids)
    try:
        parts: list[pd.DataFrame] = []
        if "campaign_events" in ds.present:
            parts.append(_campaign_facts(con, t_sql, look, cfg.calls.money_reasons))
        if "invoices" in ds.present:
            parts.append(_invoice_facts(con, t_sql, look))
        if "contacts" in ds.present:
            parts.append(_contact_facts(con, t_sql, look, contact_topics(cfg)))
        if "spend" in ds.present:
            parts.append(_spend_facts(con, T))
        for name in cfg.data.event_tables:
            if name in ds.present:
                parts.append(_declared_facts(con, name, t_sql))
    finally:
        con.unregister("_fact_ids")
    for p in parts:
        out = out.merge(p, on="client_id", how="left")
    return out


def _campaign_facts(con, t_sql: str, look: int, money_reasons: list[str]) -> pd.DataFrame:
    money = ", ".join(quote(r) for r in money_reasons) or "''"
    sql = f"""
    WITH ev AS (
        SELECT e.client_id, e.campaign_id, e.ts, e.event, e.initiator, e.reason
        FROM campaign_events e JOIN _fact_ids USING (client_id)
        WHERE e.ts < {t_sql}
          AND e.event IN ('created', 'started', 'resumed', 'paused', 'stopped')
    ),
    last AS (  -- each campaign's state now
        SELECT * FROM (
            SELECT *, row_number() OVER (
                PARTITION BY client_id, campaign_id ORDER BY ts DESC, event) AS rn
            FROM ev) WHERE rn = 1
    ),
    state AS (
        SELECT client_id,
            count(*) FILTER (WHERE event <> 'stopped') AS n_campaigns,
            count(*) FILTER (WHERE event IN ('started', 'resumed')) AS running,
            max(ts) FILTER (WHERE event IN ('paused', 'stopped')) AS off_last,
            max(ts) FILTER (WHERE event = 'paused' AND initiator = 'system'
                            AND reason IN ({money})) AS money_halt_ts
        FROM last GROUP BY client_id
    ),
    halts AS (
        SELECT * FROM ev WHERE event IN ('paused', 'stopped')
          AND ts >= {t_sql} - INTERVAL {look} DAY
    ),
    latest AS (
        SELECT client_id, ts, event, initiator, reason FROM (
            SELECT *, row_number() OVER (PARTITION BY client_id ORDER BY ts DESC, campaign_id)
                AS rn FROM halts) WHERE rn = 1
    ),
    k AS (
        SELECT l.client_id, count(DISTINCT h.campaign_id) AS halt_k,
            max(CASE WHEN s.event IN ('started', 'resumed') THEN 1 ELSE 0 END) AS halt_resumed
        FROM latest l JOIN halts h ON h.client_id = l.client_id
            AND h.initiator IS NOT DISTINCT FROM l.initiator
            AND h.ts > l.ts - INTERVAL 7 DAY AND h.ts <= l.ts
        JOIN last s ON s.client_id = h.client_id AND s.campaign_id = h.campaign_id
        GROUP BY l.client_id
    )
    SELECT s.client_id, s.n_campaigns, s.running,
        CASE WHEN s.running = 0 AND s.off_last IS NOT NULL
             THEN date_diff('day', CAST(s.off_last AS DATE), CAST({t_sql} AS DATE)) END
             AS idle_days,
        date_diff('day', CAST(l.ts AS DATE), CAST({t_sql} AS DATE)) AS halt_days,
        l.event AS halt_event, l.initiator AS halt_initiator, l.reason AS halt_reason, k.halt_k, k.halt_resumed,
        date_diff('day', CAST(s.money_halt_ts AS DATE), CAST({t_sql} AS DATE))
            AS money_halt_days
    FROM state s LEFT JOIN latest l USING (client_id) LEFT JOIN k USING (client_id)
    """
    return _frame(con, sql)


def _invoice_facts(con, t_sql: str, look: int) -> pd.DataFrame:
    sql = f"""
    SELECT i.client_id,
        count(*) FILTER (WHERE i.due_at < CAST({t_sql} AS DATE)
                         AND (i.paid_at IS NULL OR i.paid_at >= {t_sql})) AS overdue_n,
        sum(i.amount) FILTER (WHERE i.due_at < CAST({t_sql} AS DATE)
                         AND (i.paid_at IS NULL OR i.paid_at >= {t_sql})) AS overdue_amount,
        max(date_diff('day', i.due_at, CAST({t_sql} AS DATE)))
            FILTER (WHERE i.due_at < CAST({t_sql} AS DATE)
                    AND (i.paid_at IS NULL OR i.paid_at >= {t_sql})) AS overdue_days,
        count(*) FILTER (WHERE i.paid_at < {t_sql}
                         AND i.paid_at >= {t_sql} - INTERVAL {look} DAY) AS paid_n,
        count(*) FILTER (WHERE i.paid_at < {t_sql}
                         AND i.paid_at >= {t_sql} - INTERVAL {look} DAY
                         AND CAST(i.paid_at AS DATE) > i.due_at) AS paid_late_n
    FROM invoices i JOIN _fact_ids USING (client_id)
    WHERE i.issued_at < {t_sql}
    GROUP BY i.client_id
    """
    df = _frame(con, sql)
    df["overdue_n"] = df["overdue_n"].fillna(0)
    return df


def _contact_facts(con, t_sql: str, look: int, topics: dict[str, list[str]]) -> pd.DataFrame:
    parts = []
    for topic, values in topics.items():  # technical / complaint -> contacts.topic values
        vals = ", ".join(quote(v) for v in values) or "NULL"
        parts.append(
            f"""
        date_diff('day', CAST(max(k.ts) FILTER (WHERE k.topic IN ({vals})) AS DATE),
                  CAST({t_sql} AS DATE)) AS {topic}_days,
        count(*) FILTER (WHERE k.topic IN ({vals})
                         AND k.ts >= {t_sql} - INTERVAL {look} DAY) AS {topic}_n"""
        )
    sql = f"""
    SELECT k.client_id, {",".join(parts)}
    FROM contacts k JOIN _fact_ids USING (client_id)
    WHERE k.ts < {t_sql}
    GROUP BY k.client_id
    """
    return _frame(con, sql)


def _spend_facts(con, T: pd.Timestamp) -> pd.DataFrame:
    cols = {r[0] for r in con.execute("DESCRIBE spend").fetchall()}
    d = f"DATE '{T.date()}'"
    w = FACT_WINDOW
    sel = []
    for col, short in (("conversions", "conv"), ("spend", "spend"), ("clicks", "clicks")):
        if col not in cols:
            continue
        sel.append(
            f"sum(s.{col}) FILTER (WHERE s.date >= {d} - INTERVAL {w} DAY) AS {short}_now, "
            f"sum(s.{col}) FILTER (WHERE s.date < {d} - INTERVAL {w} DAY) AS {short}_prev"
        )
    if not sel:
        return pd.DataFrame({"client_id": pd.Series([], dtype=str)})
    sql = f"""
    SELECT s.client_id, {", ".join(sel)}
    FROM spend s JOIN _fact_ids USING (client_id)
    WHERE s.date < {d} AND s.date >= {d} - INTERVAL {2 * w} DAY
    GROUP BY s.client_id
    """
    return _frame(con, sql)


def _declared_facts(con, name: str, t_sql: str) -> pd.DataFrame:
    w = FACT_WINDOW
    q = '"' + name.replace('"', '""') + '"'
    sql = f"""
    SELECT e.client_id,
        date_diff('day', CAST(max(e.ts) AS DATE), CAST({t_sql} AS DATE)) AS "{name}__days",
        count(*) FILTER (WHERE e.ts >= {t_sql} - INTERVAL {w} DAY) AS "{name}__now",
        count(*) FILTER (WHERE e.ts < {t_sql} - INTERVAL {w} DAY
                         AND e.ts >= {t_sql} - INTERVAL {2 * w} DAY) AS "{name}__prev"
    FROM {q} e JOIN _fact_ids USING (client_id)
    WHERE e.ts < {t_sql}
    GROUP BY e.client_id
    """
    return _frame(con, sql)


def lookback_days(cfg: Config) -> int:
    """Return the oldest age (days) of an event a reason may cite.

    ``calls.lookback_days``, else the longest feature window (what the model can see).
    """
    if cfg.calls.lookback_days is not None:
        return int(cfg.calls.lookback_days)
    return int(max(cfg.features.windows))


def contact_topics(cfg: Config) -> dict[str, list[str]]:
    """Return the ``contacts.topic`` values of a technical request and of a complaint.

    ``{"technical": calls.technical_topics, "complaint": calls.complaint_topics}``.
    """
    return {
        "technical": list(cfg.calls.technical_topics),
        "complaint": list(cfg.calls.complaint_topics),
    }


def money_evidence(facts: pd.DataFrame) -> np.ndarray:
    """Return True per client with money evidence at the as-of date.

    Money evidence is an overdue invoice (``overdue_n`` > 0) or a campaign the system
    paused for a money reason that is still paused (``money_halt_days`` known).
    """
    n = len(facts)
    ev = np.zeros(n, dtype=bool)
    if "overdue_n" in facts.columns:
        ev |= pd.to_numeric(facts["overdue_n"], errors="coerce").fillna(0).to_numpy() > 0
    if "money_halt_days" in facts.columns:
        ev |= pd.to_numeric(facts["money_halt_days"], errors="coerce").notna().to_numpy()
    return ev
