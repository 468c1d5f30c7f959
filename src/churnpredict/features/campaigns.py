"""Campaign state at T: running, paused, live campaigns, budgets, the longest current pause.

A campaign runs from ``started`` / ``resumed`` until the next ``paused`` / ``stopped``
(DATA_CONTRACT.md §1); it is live (counts towards the breadth of service) until its last
event is ``stopped``; its budget is its last daily budget so far. Events of one
campaign at the same timestamp are ordered created, started, resumed, budget_changed,
paused, stopped (then by daily budget, so that the order is total). Each of these is a
:class:`~churnpredict.features.declarations.Level` over the campaign events.
"""

from __future__ import annotations

from dataclasses import replace

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
