"""Campaign state at T: running, paused, live campaigns, budgets, the longest current pause.

State is accumulated from per-campaign transitions (``+1`` when a campaign starts
running, ``-1`` when it stops running, and so on), so "running now" at ``T`` is the
running sum of transitions with ``day < T``. A campaign runs from ``started`` /
``resumed`` until the next ``paused`` / ``stopped`` (DATA_CONTRACT.md §1). Events of
one campaign at the same timestamp are ordered created, started, resumed,
budget_changed, paused, stopped.
"""

from __future__ import annotations

from churnpredict.features.catalog import Feature
from churnpredict.features.engine import FeatureExpr, Measure, Stream
from churnpredict.features.events import Part

_ORDER = """CASE event WHEN 'created' THEN 0 WHEN 'started' THEN 1 WHEN 'resumed' THEN 2
            WHEN 'budget_changed' THEN 3 WHEN 'paused' THEN 4 ELSE 5 END"""

_STATE_SQL = f"""
WITH e AS (
    SELECT client_id, hash(client_id, campaign_id) AS cp, ts, {_ORDER} AS ord,
           CASE WHEN event IN ('started', 'resumed') THEN 1
                WHEN event IN ('paused', 'stopped') THEN 0 END AS run_ev,
           CASE WHEN event = 'paused' THEN 1
                WHEN event IN ('started', 'resumed', 'stopped') THEN 0 END AS pause_ev,
           CASE WHEN event = 'stopped' THEN 0 ELSE 1 END AS live_ev,
           daily_budget
    FROM campaign_events
), f AS (  -- each event's campaign state after it (_st) and before it (_pr); one sort
    SELECT client_id, ts,
           COALESCE(last_value(run_ev IGNORE NULLS) OVER w, 0) AS run_st,
           COALESCE(last_value(run_ev IGNORE NULLS) OVER wp, 0) AS run_pr,
           COALESCE(last_value(pause_ev IGNORE NULLS) OVER w, 0) AS pause_st,
           COALESCE(last_value(pause_ev IGNORE NULLS) OVER wp, 0) AS pause_pr,
           live_ev AS live_st,
           COALESCE(lag(live_ev) OVER w, 0) AS live_pr,
           COALESCE(last_value(daily_budget IGNORE NULLS) OVER w, 0) AS budget_st,
           COALESCE(last_value(daily_budget IGNORE NULLS) OVER wp, 0) AS budget_pr
    FROM e
    WINDOW w AS (PARTITION BY cp ORDER BY ts, ord ROWS UNBOUNDED PRECEDING),
           wp AS (PARTITION BY cp ORDER BY ts, ord
                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
)
SELECT client_id, CAST(ts AS DATE) AS day,
       run_st - run_pr AS d_running,
       pause_st - pause_pr AS d_paused,
       live_st - live_pr AS d_live,
       budget_st * live_st - budget_pr * live_pr AS d_budget,
       budget_st * run_st - budget_pr * run_pr AS d_run_budget
FROM f
"""

_LONGEST_PAUSE_SQL = f"""
WITH e AS (
    SELECT client_id, campaign_id, ts, event, {_ORDER} AS ord FROM campaign_events
    WHERE event IN ('started', 'resumed', 'paused', 'stopped')
), p AS (
    SELECT client_id, event, ts AS p_start,
           lead(ts) OVER (PARTITION BY hash(client_id, campaign_id) ORDER BY ts, ord) AS p_end
    FROM e
), open_pauses AS (  -- only pauses that are open at some as-of date of the spine
    SELECT client_id, p_start, p_end FROM p
    WHERE event = 'paused' AND p_start < (SELECT max(as_of) FROM _spine)
      AND (p_end IS NULL OR p_end >= (SELECT min(as_of) FROM _spine))
)
SELECT s.rid, max(s.as_of - CAST(p.p_start AS DATE))::DOUBLE AS campaigns__longest_pause__now
FROM _spine s JOIN open_pauses p ON p.client_id = s.client_id
     AND p.p_start < s.as_of AND (p.p_end IS NULL OR p.p_end >= s.as_of)
GROUP BY s.rid
"""


def campaign_state_part(windows: list[int]) -> Part:
    """Declare the campaign state family (``campaigns__*__now`` and budget trend)."""
    cols = ("d_running", "d_paused", "d_live", "d_budget", "d_run_budget")
    stream = Stream(
        name="cstate",
        sql=f"SELECT *, CASE WHEN d_running < 0 THEN 'off' ELSE '' END AS run_off "
        f"FROM ({_STATE_SQL})",
        group_cols=("run_off",),
        sum_cols=cols,
        measures=(
            *(Measure(c[2:], f"sum(s_{c})", base=f"s_{c}") for c in cols),
            Measure(
                "off_last",
                "max(last_day) FILTER (WHERE run_off = 'off')",
                "max",
                base="last_day",
                where=(("run_off", "off"),),
            ),
        ),
    )
    part = Part(streams=[stream])

    def ref(off: int, m: str) -> str:
        return f"o{off}_cstate__{m}"

    def add(name: str, expr: str, desc: str, kind: str, column: str, window=None) -> None:
        part.features.append(
            (FeatureExpr(name, expr), Feature(name, "campaigns", desc, kind, window, (), column))
        )

    add("campaigns__running__now", ref(0, "running"), "campaigns running now", "state", "running")
    add("campaigns__paused__now", ref(0, "paused"), "campaigns paused now", "state", "paused")
    add(
        "campaigns__n_campaigns__now",
        ref(0, "live"),
        "campaigns the client has (not stopped): breadth of service",
        "state",
        "n_campaigns",
    )
    add(
        "campaigns__idle_days__now",
        f"CASE WHEN {ref(0, 'running')} <= 0 THEN as_of - {ref(0, 'off_last')} END",
        "days since the client's last campaign stopped running (nothing runs now)",
        "days_since",
        "idle_days",
    )
    add(
        "campaigns__share_running__now",
        f"{ref(0, 'running')} / NULLIF({ref(0, 'live')}, 0)",
        "share of the client's campaigns running now",
        "ratio",
        "share_running",
    )
    add(
        "campaigns__budget__now",
        ref(0, "budget"),
        "total daily budget of the client's campaigns",
        "amount",
        "budget",
    )
    add(
        "campaigns__running_budget__now",
        ref(0, "run_budget"),
        "daily budget of the campaigns running now",
        "amount",
        "running_budget",
    )
    for w in windows:
        add(
            f"campaigns__running_change__{w}d",
            f"{ref(0, 'running')} - {ref(w, 'running')}",
            f"change in running campaigns over the last {w} days",
            "trend",
            "running",
            w,
        )
        add(
            f"campaigns__budget_change__{w}d",
            f"({ref(0, 'run_budget')} - {ref(w, 'run_budget')}) / NULLIF({ref(w, 'run_budget')}, 0)",
            f"relative change of the running daily budget over the last {w} days",
            "trend",
            "running_budget",
            w,
        )
    part.extra_sql.append(
        (
            _LONGEST_PAUSE_SQL,
            [
                Feature(
                    "campaigns__longest_pause__now",
                    "campaigns",
                    "days the longest-paused campaign has been paused",
                    "state",
                    None,
                    (),
                    "longest_pause",
                )
            ],
        )
    )
    return part
