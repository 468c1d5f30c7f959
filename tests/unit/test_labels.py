"""Labels: freezes from the table or the idle rule, who is active, the label window."""

from __future__ import annotations

import pandas as pd

from churnpredict.config import build_config, load_config
from churnpredict.labels import build_spine, derive_freezes, snapshot_dates

from .world import make_ds

CFG = load_config()
T = pd.Timestamp


def _world(**extra):
    return make_ds(
        {
            "clients": [
                ("a", "2024-01-01", None, None, None, None, None, None),
                ("b", "2024-01-01", None, None, None, None, None, None),
                ("n", "2024-03-01", None, None, None, None, None, None),  # signs up later
            ],
            "campaign_events": [
                ("a", "c1", T("2024-01-02 10:00"), "started", "client", None, None),
                ("a", "c2", T("2024-01-03 10:00"), "started", "client", None, None),
                ("a", "c1", T("2024-02-01 09:00"), "paused", "client", None, None),
                ("a", "c2", T("2024-02-02 09:00"), "stopped", "client", None, None),  # idle
                ("a", "c1", T("2024-03-01 12:00"), "resumed", "client", None, None),  # back
                ("b", "d1", T("2024-01-02"), "started", "client", None, None),
                ("b", "d1", T("2024-02-10"), "paused", "client", None, None),
                ("b", "d1", T("2024-02-20"), "resumed", "client", None, None),  # 10 days: no
                ("n", "e1", T("2024-03-05"), "started", "client", None, None),
                # the campaign log runs to the end of the data (no effect on running)
                ("b", "d1", T("2024-06-29"), "budget_changed", "client", None, 5.0),
            ],
            **extra,
        },
        end="2024-06-30",
    )


def test_idle_rule_freezes_after_idle_days_and_unfreezes_on_resume():
    f = derive_freezes(_world(), CFG)
    a = f[f.client_id == "a"]
    assert len(a) == 1
    assert a.frozen_at.iloc[0] == T("2024-02-16 09:00")  # 2024-02-02 09:00 + 14 days
    assert a.unfrozen_at.iloc[0] == T("2024-03-01 12:00")
    assert not (f.client_id == "b").any()  # a 10-day pause is not a freeze
    assert not (f.client_id == "n").any()  # started 4 days after signup


def test_active_and_label_windows():
    ds = _world()
    spine = build_spine(
        ds, CFG, [T("2024-01-20"), T("2024-02-16"), T("2024-02-17"), T("2024-03-01")]
    )
    got = {(r.client_id, r.as_of.strftime("%m-%d")): r.label for r in spine.itertuples()}
    # label at T is 1 when the freeze is in (T, T + 30 days]: 02-16 09:00 is within
    assert got[("a", "01-20")] == 1
    # at 2024-02-16 00:00 the freeze (09:00 that day) has not happened: active, label 1
    assert got[("a", "02-16")] == 1
    # at 2024-02-17 a is frozen, so not active
    assert ("a", "02-17") not in got
    # unfreezes 03-01 12:00: still frozen at 03-01 00:00
    assert ("a", "03-01") not in got
    # n signed up on 03-01: not active at 03-01 (signup must be before T)
    assert ("n", "03-01") not in got
    assert got[("b", "01-20")] == 0


def test_freezes_table_wins_when_present():
    ds = _world(freezes=[("b", T("2024-04-01"), None)])
    f = derive_freezes(ds, CFG)
    assert list(f.client_id) == ["b"]
    spine = build_spine(ds, CFG, [T("2024-03-10"), T("2024-04-02")])
    got = {(r.client_id, r.as_of.strftime("%m-%d")): r.label for r in spine.itertuples()}
    assert got[("b", "03-10")] == 1 and ("b", "04-02") not in got
    assert got[("a", "03-10")] == 0  # the idle rule is not used when the table exists


def test_idle_rule_over_an_event_table():
    cfg = build_config({"label": {"idle_source": "activity", "idle_days": 30, "rule": "idle"}})
    ds = make_ds(
        {
            "clients": [("x", "2024-01-01", None, None, None, None, None, None)],
            "activity": [
                ("x", T("2024-01-01"), "buy", 1.0),
                ("x", T("2024-01-20"), "buy", 1.0),
                ("x", T("2024-03-20"), "buy", 1.0),
            ],
        },
        end="2024-06-30",
    )
    f = derive_freezes(ds, cfg)
    assert list(f.frozen_at) == [T("2024-02-19"), T("2024-04-19")]
    assert f.unfrozen_at.iloc[0] == T("2024-03-20") and pd.isna(f.unfrozen_at.iloc[1])


def test_snapshot_dates_keep_label_windows_complete():
    ds = _world()
    dates = snapshot_dates(ds, CFG)
    first = T("2024-01-01") + pd.Timedelta(days=CFG.snapshots.warmup_days)
    assert dates[0] >= first and (dates[0] - first).days < 7 and dates[0].weekday() == 0
    assert dates[-1] + pd.Timedelta(days=CFG.label.horizon_days) <= T("2024-06-30")
    assert all((b - a).days == 7 for a, b in zip(dates, dates[1:], strict=False))


def test_followup_counts_only_covered_days_and_agrees_with_the_label():
    from churnpredict.labels import followup

    ds = _world(
        freezes=[
            ("b", T("2024-06-20 10:00"), None),
            ("a", T("2024-06-29 08:00"), None),  # keeps the freezes export current
        ]
    )
    dates = [T("2024-04-01"), T("2024-05-01"), T("2024-06-01")]
    spine = build_spine(ds, CFG, dates)
    fu = followup(ds, CFG, spine)
    got = {
        (r.client_id, r.as_of.strftime("%m-%d")): (f, d)
        for r, f, d in zip(spine.itertuples(), fu["followup_days"], fu["freeze_day"], strict=True)
    }
    # data end 06-30: 90 days from 04-01 are covered, 60 from 05-01, 29 from 06-01
    assert got[("b", "04-01")] == (90, 81)  # 06-20 10:00 is in day 81: (T + 80, T + 81]
    assert got[("b", "05-01")] == (60, 51)
    assert got[("b", "06-01")] == (29, 20)
    assert got[("a", "06-01")] == (29, 29)  # 06-29 08:00: day 29, the last covered one
    assert got[("a", "05-01")] == (60, 60)
    assert got[("n", "06-01")] == (29, 0)  # no freeze in the 29 covered days: censored
    # the 30-day label is freeze_day in 1..30 wherever 30 days are covered
    full = fu["followup_days"].to_numpy() >= 30
    lab = ((fu["freeze_day"] >= 1) & (fu["freeze_day"] <= 30)).astype(int).to_numpy()
    assert (lab[full] == spine["label"].to_numpy()[full]).all()
    # a cut-off (train --as-of) censors too: a freeze after it is not seen
    cut = followup(ds, CFG, spine, until=T("2024-06-15"))
    i = spine.index[(spine.client_id == "b") & (spine.as_of == T("2024-06-01"))][0]
    assert (cut["followup_days"][i], cut["freeze_day"][i]) == (14, 0)
    # max_horizon_days caps the follow-up
    short = build_config({"label": {"max_horizon_days": 45}})
    j = spine.index[(spine.client_id == "b") & (spine.as_of == T("2024-04-01"))][0]
    assert followup(ds, short, spine).loc[j].tolist() == [45, 0]


def test_max_horizon_below_the_label_horizon_is_refused():
    import pytest

    from churnpredict.errors import ConfigError

    with pytest.raises((ConfigError, ValueError), match="max_horizon_days"):
        build_config({"label": {"max_horizon_days": 20}})


def test_followup_ends_with_the_relationship(monkeypatch):
    from churnpredict import labels
    from churnpredict.labels import followup

    ds = _world(freezes=[("b", T("2024-06-20 10:00"), None), ("a", T("2024-06-29 08:00"), None)])
    spine = build_spine(ds, CFG, [T("2024-04-01"), T("2024-06-01")])
    # the end of relationship label.ended gives (here: b ends 06-10 12:00)
    monkeypatch.setattr(
        labels,
        "_ended_sql",
        lambda ds, cfg: "SELECT 'b' AS client_id, TIMESTAMP '2024-06-10 12:00' AS ended_at",
    )
    fu = followup(ds, CFG, spine)
    got = {
        (r.client_id, r.as_of.strftime("%m-%d")): (f, d)
        for r, f, d in zip(spine.itertuples(), fu["followup_days"], fu["freeze_day"], strict=True)
    }
    # whole days before the end count; b's freeze after its end is not a freeze
    assert got[("b", "04-01")] == (70, 0)
    assert got[("b", "06-01")] == (9, 0)
    assert got[("a", "04-01")] == (90, 90)
