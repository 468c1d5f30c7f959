"""A small seeded world of every contract table for the conformance suite."""

from __future__ import annotations

import numpy as np
import pandas as pd


def T(s: str) -> pd.Timestamp:
    return pd.Timestamp(s)


def seeded_world(seed: int = 5, n_clients: int = 60):
    """A small random world of every contract table (seeded NumPy, independent of
    ``simulate.py`` so that the stored values do not move when the simulator does)."""
    from tests.unit.world import make_ds

    rng = np.random.default_rng(seed)
    d0 = T("2024-01-01")

    def at(day: float) -> pd.Timestamp:
        return d0 + pd.Timedelta(minutes=int(day * 1440))

    ids = [f"c{i:03d}" for i in range(n_clients)]
    segments = ["smb", "key", "low-cost", None]
    clients, camp, inv, con, spend, asg, act = [], [], [], [], [], [], []
    for i, c in enumerate(ids):
        signup = int(rng.integers(0, 90))
        clients.append(
            (
                c,
                (d0 + pd.Timedelta(days=signup)).date(),
                c.upper(),
                segments[i % 4],
                "m1",
                float(rng.integers(1, 50)) * 10 if i % 7 else None,
                None,
                None,
            )
        )
        for k in range(int(rng.integers(0, 4))):
            day = signup + rng.uniform(0, 10)
            budget = float(rng.integers(1, 9)) * 5
            camp.append((c, f"{c}-k{k}", at(day), "created", "client", None, budget))
            camp.append((c, f"{c}-k{k}", at(day), "started", "client", None, None))
            for _ in range(int(rng.integers(0, 8))):
                day += rng.exponential(12)
                event = rng.choice(["paused", "resumed", "budget_changed", "stopped"])
                who = rng.choice(["client", "system", "manager"])
                reason = rng.choice(["results", "low_balance", "season", None])
                b = float(rng.integers(1, 9)) * 5 if event == "budget_changed" else None
                camp.append((c, f"{c}-k{k}", at(day), event, who, reason, b))
        for m in range(signup // 30, 7):
            issued = m * 30 + float(rng.uniform(0, 3))
            due = (d0 + pd.Timedelta(days=int(issued) + 14)).date()
            late = rng.choice([None, rng.uniform(2, 10), rng.uniform(10, 40)])
            paid = None if late is None else at(issued + late)
            inv.append((c, f"{c}-i{m}", at(issued), due, float(rng.integers(5, 90)) * 10, paid))
        for _ in range(int(rng.integers(0, 12))):
            con.append(
                (
                    c,
                    at(rng.uniform(signup, 200)),
                    rng.choice(["call", "email", "ticket"]),
                    rng.choice(["inbound", "outbound"]),
                    rng.choice(["billing", "results", "tech"]),
                    rng.choice(["reached", "no_answer", None]),
                    "s",
                )
            )
        active = rng.uniform(0.2, 0.9)
        for day in range(signup, 200):
            if rng.random() < active:
                s = float(rng.integers(0, 400)) / 4
                spend.append(
                    (
                        c,
                        (d0 + pd.Timedelta(days=day)).date(),
                        s,
                        s * 100,
                        float(rng.integers(0, 30)),
                        float(rng.integers(0, 3)),
                    )
                )
        asg.append((c, "m0", (d0 + pd.Timedelta(days=signup)).date()))
        if rng.random() < 0.5:
            asg.append(
                (c, "m1", (d0 + pd.Timedelta(days=signup + int(rng.integers(5, 90)))).date())
            )
        for _ in range(int(rng.integers(0, 15))):
            act.append((c, at(rng.uniform(signup, 200)), rng.choice(["login", "report"]), None))
    return make_ds(
        {
            "clients": clients,
            "campaign_events": camp,
            "invoices": inv,
            "contacts": con,
            "spend": spend,
            "assignments": asg,
            "activity": act,
        },
        end="2024-07-20",
    )
