"""Campaign state at T: running, paused, live campaigns, budgets, the longest current pause.

State is accumulated from per-campaign transitions (``+1`` when a campaign starts
running, ``-1`` when it stops running, and so on), so "running now" at ``T`` is the
running sum of transitions with ``day < T``. A campaign runs from ``started`` /
``resumed`` until the next ``paused`` / ``stopped`` (DATA_CONTRACT.md §1). Events of
one campaign at the same timestamp are ordered created, started, resumed,
budget_changed, paused, stopped (then by daily budget, so that the order is total).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa

from churnpredict.features.catalog import Feature
from churnpredict.features.declarations import (
    At,
    DaysSince,
    Div,
    FeatureDecl,
    Level,
    Num,
    Source,
    Sub,
    Where,
)
from churnpredict.features.engine import FeatureExpr, Measure, Stream
from churnpredict.features.events import Part

_ORDER = """CASE event WHEN 'created' THEN 0 WHEN 'started' THEN 1 WHEN 'resumed' THEN 2
            WHEN 'budget_changed' THEN 3 WHEN 'paused' THEN 4 ELSE 5 END"""

# One sort of the campaign events (of the spine's clients) by (campaign, ts, order);
# ties are then ordered by daily budget in NumPy (``_order_ties``): a fourth sort key
# made DuckDB's sort 0.50 s instead of 0.31 s. Everything per campaign (state
# before/after each event, the end of each pause) is then a NumPy pass over the sorted
# arrays, and the state changes go to the engine as arrays, instead of several SQL
# window functions over the same sort.
_SORTED_SQL = f"""
SELECT c.cidx::INTEGER AS cidx,
       date_diff('day', DATE '1970-01-01', CAST(e.ts AS DATE))::INTEGER AS day,
       hash(c.cidx, e.campaign_id) AS cp, epoch_us(e.ts) AS t, ({_ORDER})::TINYINT AS ord,
       e.daily_budget
FROM campaign_events e JOIN _cidx c ON e.client_id = c.client_id
ORDER BY cp, t, ord
"""

_LONGEST_PAUSE_SQL = """
SELECT s.rid, max(date_diff('day', DATE '1970-01-01', s.as_of) - p.p_start_day)::DOUBLE
           AS campaigns__longest_pause__now
FROM _spine s JOIN _cidx c ON c.client_id = s.client_id JOIN _cstate_pauses p
     ON p.cidx = c.cidx
     AND p.p_start < epoch_us(s.as_of::TIMESTAMP)
     AND (p.p_end IS NULL OR p.p_end >= epoch_us(s.as_of::TIMESTAMP))
GROUP BY s.rid
"""


def _last_valid(valid: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Index of the last valid row so far within each campaign (or the campaign's first
    row when none is valid yet: check ``valid[idx]``)."""
    pos = np.arange(len(valid), dtype=np.int32 if len(valid) < 2**31 else np.int64)
    return np.maximum.accumulate(np.where(valid | new, pos, 0))


def _before(after: np.ndarray, new: np.ndarray) -> np.ndarray:
    """The state before each event: the state after the previous event of the campaign."""
    out = np.empty_like(after)
    out[1:] = after[:-1]
    out[new] = 0
    return out


def _order_ties(cp: np.ndarray, t: np.ndarray, ord_: np.ndarray, budget: np.ndarray) -> np.ndarray:
    """Order events of one campaign with the same timestamp and kind by daily budget
    (missing first), so that the order is total. Such events differ only in their
    budget, so sorting the budgets within each run of ties is enough."""
    tie = (cp[1:] == cp[:-1]) & (t[1:] == t[:-1]) & (ord_[1:] == ord_[:-1])
    if not tie.any():
        return budget
    in_run = np.r_[False, tie] | np.r_[tie, False]  # rows in a run of two or more
    run = np.cumsum(np.r_[True, ~tie])[in_run]  # each such row's run number
    rows = np.flatnonzero(in_run)
    b = budget[rows]
    out = budget.copy()
    out[rows] = b[np.lexsort((np.where(np.isnan(b), -np.inf, b), run))]
    return out


def campaign_state(con) -> tuple[dict[str, np.ndarray], pa.Table]:
    """Return each event's change of its client's campaign state, and the open pauses.

    The first is one array per attribute (``cidx``, ``day`` in epoch days, ``d_running``,
    ``d_paused``, ``d_live``, ``d_budget``, ``d_run_budget``, ``off_day`` = ``day``
    when a campaign stops running, NaN otherwise). The second holds every pause that is
    open at some as-of date of the engine's ``_spine``: client index, start (epoch
    microseconds and day) and end (the campaign's next started/resumed/paused/stopped
    event; null while still paused).
    """
    tab = con.sql(_SORTED_SQL).to_arrow_table()
    cp = tab.column("cp").to_numpy()
    t = tab.column("t").to_numpy()
    ord_ = tab.column("ord").to_numpy()
    budget = tab.column("daily_budget").to_numpy(zero_copy_only=False)  # null -> NaN
    budget = _order_ties(cp, t, ord_, budget)
    day = tab.column("day").to_numpy()
    n = len(cp)
    new = np.ones(n, dtype=bool)
    if n:
        new[1:] = cp[1:] != cp[:-1]
    # created 0, started 1, resumed 2, budget_changed 3, paused 4, stopped 5
    state_ev = (ord_ >= 1) & (ord_ != 3)  # started, resumed, paused, stopped
    last = _last_valid(state_ev, new)
    has_state, last_ord = state_ev[last], ord_[last]
    run_st = (has_state & (last_ord <= 2)).view(np.int8)
    pause_st = (has_state & (last_ord == 4)).view(np.int8)
    live_st = (ord_ != 5).view(np.int8)
    has_budget = ~np.isnan(budget)
    last = _last_valid(has_budget, new)
    budget_st = np.where(has_budget[last], budget[last], 0.0)
    del last, has_budget
    run_pr, pause_pr = _before(run_st, new), _before(pause_st, new)
    live_pr, budget_pr = _before(live_st, new), _before(budget_st, new)
    # changes of counts and days are whole numbers: float32 is exact and takes half the
    # fresh memory (a first build faults in every new page); budgets stay float64
    d_running = (run_st - run_pr).astype(np.float32)
    d_budget = budget_st * live_st
    d_budget -= budget_pr * live_pr
    d_run_budget = budget_st * run_st
    d_run_budget -= budget_pr * run_pr
    del budget_st, budget_pr
    delta = {
        "cidx": tab.column("cidx").to_numpy(),
        "day": day,
        "d_running": d_running,
        "d_paused": (pause_st - pause_pr).astype(np.float32),
        "d_live": (live_st - live_pr).astype(np.float32),
        "d_budget": d_budget,
        "d_run_budget": d_run_budget,
        "off_day": np.where(d_running < 0, day, np.nan).astype(np.float32),
    }

    # pauses: end = the next state event of the same campaign
    si = np.flatnonzero(state_ev)
    nxt = np.full(len(si), -1, dtype=np.int64)
    if len(si) > 1:
        same = cp[si[1:]] == cp[si[:-1]]
        nxt[:-1] = np.where(same, si[1:], -1)
    is_pause = ord_[si] == 4
    p_rows, p_next = si[is_pause], nxt[is_pause]
    p_start = t[p_rows]
    p_end = np.where(p_next >= 0, t[np.maximum(p_next, 0)], np.iinfo(np.int64).max)
    lo, hi = con.execute(
        "SELECT epoch_us(min(as_of)::TIMESTAMP), epoch_us(max(as_of)::TIMESTAMP) FROM _spine"
    ).fetchall()[0]
    keep = (p_start < (hi if hi is not None else 0)) & (p_end >= (lo if lo is not None else 0))
    pauses = pa.table(
        {
            "cidx": delta["cidx"][p_rows[keep]],
            "p_start": p_start[keep],
            "p_start_day": np.floor_divide(p_start[keep], 86_400_000_000),
            "p_end": pa.array(p_end[keep], mask=(p_next[keep] < 0)),
        }
    )
    return delta, pauses


def campaign_state_part(windows: list[int]) -> Part:
    """Declare the campaign state family (``campaigns__*__now`` and budget trend)."""
    cols = ("d_running", "d_paused", "d_live", "d_budget", "d_run_budget")
    events: dict[str, np.ndarray] = {}  # this build's state changes, prepare -> stream

    def prepare(con) -> list[str]:
        delta, pauses = campaign_state(con)
        events.clear()
        events.update(delta)
        # a real table: the engine's other connections read it too
        con.register("_cstate_pauses_arrow", pauses)
        try:
            con.execute("CREATE OR REPLACE TABLE _cstate_pauses AS FROM _cstate_pauses_arrow")
        finally:
            con.unregister("_cstate_pauses_arrow")
        return ["_cstate_pauses"]

    def arrays() -> dict[str, np.ndarray]:
        out = dict(events)
        events.clear()  # free them once the engine has them
        return out

    stream = Stream(
        name="cstate",
        arrays=arrays,
        measures=(
            *(
                Measure(c[2:], f"sum(s_{c})", base=f"s_{c}", decimals=4 if "budget" in c else None)
                for c in cols
            ),
            Measure("off_last", "max(x_off_day)", "max", base="x_off_day"),
        ),
    )
    part = Part(streams=[stream], prepare=[prepare])

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


# Tie order of one campaign's events at the same timestamp (DATA_CONTRACT.md §1).
ORDER = ("created", "started", "resumed", "budget_changed", "paused", "stopped")
_CHANGES = ("started", "resumed", "paused", "stopped")  # events that change run state
EVENTS = Source(
    "campaign_state",
    "campaign_events",
    "ts",
    categories=("event",),
    numerics=("daily_budget",),
)
RUNNING = Level(
    EVENTS, "campaign_id", "event", _CHANGES, active=("started", "resumed"), order=ORDER
)
PAUSED = Level(EVENTS, "campaign_id", "event", _CHANGES, active=("paused",), order=ORDER)
LIVE = Level(EVENTS, "campaign_id", "event", None, inactive=("stopped",), order=ORDER)


def declare_state(windows: list[int]) -> list[FeatureDecl]:
    """Declare the campaign state family (``campaigns__*__now`` and changes per window).

    A campaign runs from ``started`` / ``resumed`` until the next ``paused`` / ``stopped``;
    it is live (counts towards breadth) until its last event is ``stopped``; its budget
    is its last daily budget so far.
    """
    running, paused = RUNNING, PAUSED
    budget = replace(LIVE, weight="daily_budget", stat="weight", decimals=4)
    run_budget = replace(RUNNING, weight="daily_budget", stat="weight", decimals=4)
    off_last = replace(RUNNING, stat="last_exit")
    longest = replace(PAUSED, stat="age_max")

    def decl(name, value, desc, kind, column, window=None, tags=()):
        return FeatureDecl(name, "campaigns", desc, kind, value, window, (), column, tags)

    out = [
        decl(
            "campaigns__running__now",
            At(running),
            "campaigns running now",
            "state",
            "running",
            tags=("running",),
        ),
        decl(
            "campaigns__paused__now",
            At(paused),
            "campaigns paused now",
            "state",
            "paused",
            tags=("pause", "paused_now"),
        ),
        decl(
            "campaigns__n_campaigns__now",
            At(LIVE),
            "campaigns the client has (not stopped): breadth of service",
            "state",
            "n_campaigns",
            tags=("breadth",),
        ),
        decl(
            "campaigns__idle_days__now",
            Where(At(running), "<=", Num(0), DaysSince(At(off_last))),
            "days since the client's last campaign stopped running (nothing runs now)",
            "days_since",
            "idle_days",
            tags=("idle",),
        ),
        decl(
            "campaigns__share_running__now",
            Div(At(running), At(LIVE)),
            "share of the client's campaigns running now",
            "ratio",
            "share_running",
            tags=("running",),
        ),
        decl(
            "campaigns__budget__now",
            At(budget),
            "total daily budget of the client's campaigns",
            "amount",
            "budget",
            tags=("budget",),
        ),
        decl(
            "campaigns__running_budget__now",
            At(run_budget),
            "daily budget of the campaigns running now",
            "amount",
            "running_budget",
            tags=("budget", "running"),
        ),
    ]
    for w in windows:
        out.append(
            decl(
                f"campaigns__running_change__{w}d",
                Sub(At(running, 0), At(running, w)),
                f"change in running campaigns over the last {w} days",
                "trend",
                "running",
                w,
                ("running", "trend"),
            )
        )
        out.append(
            decl(
                f"campaigns__budget_change__{w}d",
                Div(Sub(At(run_budget, 0), At(run_budget, w)), At(run_budget, w)),
                f"relative change of the running daily budget over the last {w} days",
                "trend",
                "running_budget",
                w,
                ("budget", "trend"),
            )
        )
    out.append(
        decl(
            "campaigns__longest_pause__now",
            At(longest),
            "days the longest-paused campaign has been paused",
            "state",
            "longest_pause",
            tags=("pause", "longest_pause"),
        )
    )
    return out
