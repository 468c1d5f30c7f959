"""Tests for the synthetic world (:mod:`churnpredict.simulate`) on small worlds."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from churnpredict.config import LabelConfig, SimulateConfig
from churnpredict.simulate import TABLES, freezes_from_events, simulate

LABEL = LabelConfig()
SMALL = SimulateConfig(clients=500, days=200, seed=7)
MODERATE = SimulateConfig(clients=2000, days=300, seed=11)

S, TS, D, F = pa.string(), pa.timestamp("us", tz="UTC"), pa.date32(), pa.float64()
SCHEMAS = {
    "clients": {
        "client_id": S,
        "signup_date": D,
        "name": S,
        "segment": S,
        "account_manager": S,
        "monthly_revenue": F,
        "phone": S,
        "email": S,
    },
    "campaign_events": {
        "client_id": S,
        "campaign_id": S,
        "ts": TS,
        "event": S,
        "initiator": S,
        "reason": S,
        "daily_budget": F,
    },
    "invoices": {
        "client_id": S,
        "invoice_id": S,
        "issued_at": TS,
        "due_at": D,
        "amount": F,
        "paid_at": TS,
    },
    "contacts": {
        "client_id": S,
        "ts": TS,
        "channel": S,
        "direction": S,
        "topic": S,
        "outcome": S,
        "staff": S,
    },
    "spend": {
        "client_id": S,
        "date": D,
        "spend": F,
        "impressions": F,
        "clicks": F,
        "conversions": F,
    },
    "assignments": {"client_id": S, "account_manager": S, "from_date": D},
    "activity": {"client_id": S, "ts": TS, "event": S, "value": F},
    "freezes": {"client_id": S, "frozen_at": TS, "unfrozen_at": TS},
    "truth": {
        "client_id": S,
        "as_of": D,
        "p_true": F,
        "label": pa.int64(),
        "p_true_7d": F,
        "p_true_90d": F,
        "days_to_freeze": F,
    },
}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("small")
    return out, simulate(SMALL, out, label_cfg=LABEL)


@pytest.fixture(scope="module")
def moderate(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("moderate")
    return out, simulate(MODERATE, out, label_cfg=LABEL)


def read(out: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(out / f"{name}.parquet")


def test_writes_every_table_with_contract_columns_and_types(small):
    out, summary = small
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{t}.parquet" for t in TABLES)
    for name, cols in SCHEMAS.items():
        schema = pq.read_schema(out / f"{name}.parquet")
        assert dict(zip(schema.names, schema.types, strict=True)) == cols, name
        assert summary["rows"][name] == pq.read_metadata(out / f"{name}.parquet").num_rows
    assert summary["rows"]["campaign_events"] > 0 and summary["rows"]["spend"] > 0


def test_same_seed_gives_identical_files_and_other_seed_differs(small, tmp_path):
    out, _ = small
    again = tmp_path / "again"
    simulate(SMALL, again, label_cfg=LABEL)
    for name in TABLES:
        assert (out / f"{name}.parquet").read_bytes() == (again / f"{name}.parquet").read_bytes()
    other = tmp_path / "other"
    simulate(SMALL.model_copy(update={"seed": 8}), other, label_cfg=LABEL)
    assert not read(out, "campaign_events").equals(read(other, "campaign_events"))


def test_values_are_in_the_contract_vocabulary(small):
    out, _ = small
    clients = read(out, "clients")
    assert clients["client_id"].is_unique
    assert set(clients["segment"]) == {"low-cost", "smb", "key"}
    assert clients["name"].str.contains("«").any()  # Cyrillic names survive the round trip
    assert clients["name"].str.contains("[А-Яа-я]", regex=True).any()
    ev = read(out, "campaign_events")
    assert set(ev["event"]) == {
        "created",
        "started",
        "paused",
        "resumed",
        "stopped",
        "budget_changed",
    }
    assert set(ev["initiator"]) == {"client", "manager", "system"}
    assert set(ev["client_id"]) <= set(clients["client_id"])
    con = read(out, "contacts")
    assert set(con["channel"]) <= {"call", "email", "chat", "ticket", "meeting", "other"}
    assert set(con["direction"]) == {"inbound", "outbound"}
    assert set(con["topic"]) == {"billing", "complaint", "technical", "results", "sales"}
    out_calls = (con["channel"] == "call") & (con["direction"] == "outbound")
    assert set(con.loc[out_calls, "outcome"]) == {"reached", "no_answer"}
    inv = read(out, "invoices")
    assert inv["invoice_id"].is_unique and (inv["amount"] > 0).all()
    assert inv["paid_at"].isna().any() and inv["paid_at"].notna().any()
    asg = read(out, "assignments")
    assert set(asg["client_id"]) == set(clients["client_id"])
    assert read(out, "activity")["event"].nunique() == 3


def test_campaign_event_sequences_are_consistent(small):
    out, _ = small
    ev = read(out, "campaign_events")
    signup = read(out, "clients").set_index("client_id")["signup_date"]
    assert (ev["ts"].dt.date.to_numpy() >= signup.loc[ev["client_id"]].to_numpy()).all()
    for _, g in ev.groupby("campaign_id", sort=False):
        assert g["ts"].is_monotonic_increasing
        state = None  # None = not created, "created", "running", "paused", "stopped"
        for e in g["event"]:
            if e == "created":
                assert state is None
                state = "created"
            elif e == "started":
                assert state == "created"
                state = "running"
            elif e == "paused":
                assert state == "running"
                state = "paused"
            elif e == "resumed":
                assert state == "paused"
                state = "running"
            elif e == "stopped":
                assert state == "running"
                state = "stopped"
            else:
                assert state in ("created", "running", "paused")


def _idle_rule_by_hand(ev: pd.DataFrame, clients: pd.DataFrame, idle_days: int, end):
    """Recompute freezes walking each client's events one timestamp at a time."""
    idle = pd.Timedelta(days=idle_days)
    rows = []
    by_client = {c: g for c, g in ev.sort_values("ts", kind="stable").groupby("client_id")}
    for cid, signup in zip(clients["client_id"], clients["signup_date"], strict=True):
        start = pd.Timestamp(signup, tz="UTC")
        running: set[str] = set()
        g = by_client.get(cid)
        if g is not None:
            for ts, batch in g.groupby("ts", sort=True):
                before = len(running)
                for camp, e in zip(batch["campaign_id"], batch["event"], strict=True):
                    if e in ("started", "resumed"):
                        running.add(camp)
                    elif e in ("paused", "stopped"):
                        running.discard(camp)
                if before == 0 and running:
                    if ts - start > idle:
                        rows.append((cid, start + idle, ts))
                    start = None
                elif before and not running:
                    start = ts
        if start is not None and start + idle < end:
            rows.append((cid, start + idle, pd.NaT))
    out = pd.DataFrame(rows, columns=["client_id", "frozen_at", "unfrozen_at"])
    return out.sort_values(["client_id", "frozen_at"]).reset_index(drop=True)


def test_freezes_equal_the_idle_rule_recomputed_by_hand(small):
    out, _ = small
    end = pd.Timestamp(SMALL.start_date, tz="UTC") + pd.Timedelta(days=SMALL.days)
    expected = _idle_rule_by_hand(
        read(out, "campaign_events"), read(out, "clients"), LABEL.idle_days, end
    )
    got = read(out, "freezes").sort_values(["client_id", "frozen_at"]).reset_index(drop=True)
    assert len(got) > 20 and got["unfrozen_at"].notna().any()
    pd.testing.assert_frame_equal(
        got.astype({"client_id": object}),
        expected.astype({"client_id": object}),
        check_dtype=False,
    )


def test_freezes_from_events_bounds():
    t0 = pd.Timestamp("2024-01-01 10:00")
    ev = pd.DataFrame(
        {
            "client_id": ["a"] * 4 + ["b"] * 3,
            "campaign_id": ["a1", "a1", "a1", "a1", "b1", "b1", "b1"],
            "ts": [
                t0,
                t0 + pd.Timedelta(hours=1),
                t0 + pd.Timedelta(days=15, hours=1),
                t0 + pd.Timedelta(days=30),
                t0,
                t0 + pd.Timedelta(hours=1),
                t0 + pd.Timedelta(days=14, hours=1) - pd.Timedelta(seconds=1),
            ],
            "event": [
                "started",
                "paused",
                "resumed",
                "budget_changed",
                "started",
                "paused",
                "resumed",
            ],
        }
    )
    clients = pd.DataFrame({"client_id": ["a", "b", "c"], "signup_date": [date(2024, 1, 1)] * 3})
    out = freezes_from_events(ev, clients, 14, pd.Timestamp("2024-03-01"))
    # a: paused 11:00, idle 15 days -> frozen 14 days later, unfrozen at the resume
    # b: idle 14 days minus a second -> no freeze; c: never started -> frozen from signup
    assert out["client_id"].tolist() == ["a", "c"]
    assert out["frozen_at"].tolist() == [
        t0 + pd.Timedelta(days=14, hours=1),
        pd.Timestamp("2024-01-15"),
    ]
    assert out["unfrozen_at"].iloc[0] == t0 + pd.Timedelta(days=15, hours=1)
    assert pd.isna(out["unfrozen_at"].iloc[1])
    # an open span freezes only when frozen_at is before the end of the data
    late = freezes_from_events(ev, clients, 14, pd.Timestamp("2024-01-15"))
    assert late["client_id"].tolist() == ["a"]


def test_truth_rows_are_active_clients_with_labels_from_freezes(small):
    out, _ = small
    truth = read(out, "truth")
    clients = read(out, "clients").set_index("client_id")
    fz = read(out, "freezes")
    start, H = SMALL.start_date, LABEL.horizon_days
    as_of = sorted(set(truth["as_of"]))
    expected_dates = [start + timedelta(days=d) for d in range(28, SMALL.days - H + 1, 7)]
    assert as_of == expected_dates
    assert truth["p_true"].between(0, 1).all() and set(truth["label"]) <= {0, 1}
    fz_by = defaultdict(list)
    for cid, f, u in zip(fz["client_id"], fz["frozen_at"], fz["unfrozen_at"], strict=True):
        fz_by[cid].append((f, u))
    seen = set(zip(truth["client_id"], truth["as_of"], strict=True))
    for T in as_of[::4]:
        t = pd.Timestamp(T, tz="UTC")
        for cid, signup in clients["signup_date"].items():
            spans = fz_by.get(cid, [])
            frozen = any(f <= t and (pd.isna(u) or t < u) for f, u in spans)
            active = signup < T and not frozen
            assert ((cid, T) in seen) == active, (cid, T)
    rows = truth.sample(min(len(truth), 400), random_state=0)
    for cid, T, label in zip(rows["client_id"], rows["as_of"], rows["label"], strict=True):
        t = pd.Timestamp(T, tz="UTC")
        hit = any(t < f <= t + pd.Timedelta(days=H) for f, _ in fz_by.get(cid, []))
        assert label == int(hit)


def test_truth_at_7_and_90_days_is_consistent_and_days_to_freeze_is_the_next_freeze(small):
    out, _ = small
    truth = read(out, "truth")
    fz = read(out, "freezes")
    assert (truth["p_true_7d"] <= truth["p_true"]).all()
    assert (truth["p_true"] <= truth["p_true_90d"]).all()
    assert truth["p_true_7d"].between(0, 1).all() and truth["p_true_90d"].between(0, 1).all()
    d = truth["days_to_freeze"]
    assert ((d >= 1) & (d <= 30)).astype(int).tolist() == truth["label"].tolist()
    starts = defaultdict(list)
    for cid, f in zip(fz["client_id"], fz["frozen_at"], strict=True):
        starts[cid].append(f)
    rows = truth.sample(min(len(truth), 400), random_state=1)
    for cid, T, got in zip(rows["client_id"], rows["as_of"], rows["days_to_freeze"], strict=True):
        t = pd.Timestamp(T, tz="UTC")
        later = [f for f in starts.get(cid, []) if f > t]
        if not later:
            assert pd.isna(got)
        else:
            assert got == math.ceil((min(later) - t) / pd.Timedelta(days=1))
    # the 7- and 90-day truth rank and are roughly calibrated on the rows they cover
    last = truth["as_of"].max()
    for col, h in (("p_true_7d", 7), ("p_true_90d", 90)):
        ok = truth["as_of"] <= last - timedelta(days=max(h - LABEL.horizon_days, 0))
        y = ((d >= 1) & (d <= h))[ok].astype(int)
        assert roc_auc_score(y, truth.loc[ok, col]) > 0.75
        assert abs(truth.loc[ok, col].mean() - y.mean()) < 0.3 * y.mean()


def test_fast_leave_sum_equals_the_day_by_day_one(monkeypatch, tmp_path):
    from churnpredict import simulate as sm

    seen = []
    orig = sm._World._truth

    def check(self, T):
        idx = np.nonzero(self.signup_day < T)[0]
        if len(idx):
            slow = self._p_leave(T, idx)
            fast = self._p_leave_days(T, idx, (7, self.horizon, 90))
            seen.append(np.abs(slow - fast[self.horizon]).max())
            assert not fast[7].any()  # 7 days < idle_days: no new decision can freeze
        orig(self, T)

    monkeypatch.setattr(sm._World, "_truth", check)
    simulate(SimulateConfig(clients=200, days=120, seed=3), tmp_path, label_cfg=LABEL)
    assert seen and max(seen) < 1e-12


def test_truth_ranks_and_is_calibrated(small):
    out, _ = small
    truth = read(out, "truth")
    rate = truth["label"].mean()
    assert 0.01 < rate < 0.08  # a few percent per 30-day window
    assert roc_auc_score(truth["label"], truth["p_true"]) > 0.8
    assert abs(truth["p_true"].mean() - rate) < 0.25 * rate


def test_one_pause_episode_in_five_ends_in_a_freeze(moderate):
    _, summary = moderate
    assert summary["pause_episodes"] > 300
    assert 0.12 < summary["pause_episode_freeze_share"] < 0.3


def test_naive_pause_rule_is_far_less_precise_than_truth(moderate):
    out, _ = moderate
    truth = read(out, "truth")
    ev = read(out, "campaign_events")
    paused = ev.loc[ev["event"] == "paused", ["client_id", "ts"]]
    t = truth.assign(t=pd.to_datetime(truth["as_of"]).dt.tz_localize("UTC"))
    m = t.merge(paused, on="client_id", how="left")
    m["hit"] = (m["ts"] < m["t"]) & (m["ts"] >= m["t"] - pd.Timedelta(days=7))
    flagged = m.groupby(["client_id", "as_of"])["hit"].any()
    r = truth.set_index(["client_id", "as_of"]).join(flagged.rename("hit"))
    k = int(r["hit"].sum())
    naive_precision = r.loc[r["hit"], "label"].mean()
    truth_precision = r.nlargest(k, "p_true")["label"].mean()
    assert truth_precision > 1.5 * naive_precision
    assert naive_precision > 2 * r["label"].mean()  # but pauses do carry signal


def _flagged(truth: pd.DataFrame, rows: pd.DataFrame, ts: str, days: int) -> np.ndarray:
    """Mark truth rows whose client has a row in ``[T - days, T)``."""
    t = truth[["client_id", "as_of"]].assign(
        T=pd.to_datetime(truth["as_of"]).dt.tz_localize("UTC")
    )
    m = t.merge(rows[["client_id", ts]], on="client_id")
    m = m[(m[ts] < m["T"]) & (m[ts] >= m["T"] - pd.Timedelta(days=days))]
    keys = set(zip(m["client_id"], m["as_of"], strict=True))
    return np.array([k in keys for k in zip(truth["client_id"], truth["as_of"], strict=True)])


def test_signals_point_the_right_way(moderate):
    out, _ = moderate
    truth = read(out, "truth")
    y = truth["label"].to_numpy()
    con = read(out, "contacts")
    ev = read(out, "campaign_events")
    asg = read(out, "assignments").sort_values(["client_id", "from_date"], kind="stable")
    changes = asg[asg.groupby("client_id").cumcount() > 0]
    changes = changes.assign(ts=pd.to_datetime(changes["from_date"]).dt.tz_localize("UTC"))
    clients = read(out, "clients")
    signups = clients.assign(ts=pd.to_datetime(clients["signup_date"]).dt.tz_localize("UTC"))
    risky = {
        "complaint": _flagged(truth, con[con["topic"] == "complaint"], "ts", 30),
        "system pause": _flagged(
            truth, ev[(ev["event"] == "paused") & (ev["initiator"] == "system")], "ts", 14
        ),
        "client pause": _flagged(
            truth, ev[(ev["event"] == "paused") & (ev["initiator"] == "client")], "ts", 7
        ),
        "manager change": _flagged(truth, changes, "ts", 60),
        "newcomer": _flagged(truth, signups, "ts", 30),
    }
    for name, f in risky.items():
        assert y[f].mean() > 1.3 * y[~f].mean(), name
    reached = (con["channel"] == "call") & (con["outcome"] == "reached")
    f = _flagged(truth, con[reached], "ts", 30)
    assert y[f].mean() < 0.9 * y[~f].mean()  # a reached call in the last month protects


def test_default_yaml_mirrors_the_simulate_defaults():
    from churnpredict.config import load_config

    cfg = load_config(Path(__file__).parents[2] / "configs" / "default.yaml", environ={})
    assert cfg.simulate == SimulateConfig()


def test_no_temporary_files_left_and_summary(small):
    out, summary = small
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert set(summary) >= {"rows", "freeze_rate", "pause_episode_freeze_share", "seconds"}
    assert summary["freezes"] == summary["rows"]["freezes"]
    np.testing.assert_allclose(summary["freeze_rate"], read(out, "truth")["label"].mean())


def test_departing_managers_hand_clients_over(moderate):
    out, _ = moderate
    asg = read(out, "assignments").sort_values(["client_id", "from_date"], kind="stable")
    moved = asg.groupby("client_id").size()
    assert (moved > 1).any()  # some managers left and their clients were reassigned
    last = asg.groupby("client_id")["account_manager"].last()
    current = read(out, "clients").set_index("client_id")["account_manager"]
    assert (last.loc[current.index] == current).all()


def test_manager_names_do_not_mix_genders():
    from churnpredict.simulate import _manager_names

    names = _manager_names(np.random.default_rng(0), 400)
    female_first = {"Анна", "Мария", "Елена", "Ольга"}
    male_first = {"Иван", "Олег", "Дмитрий", "Сергей"}
    latin = set("abcdefghijklmnopqrstuvwxyz")
    checked = 0
    for name in names:
        first, last = name.split(" ")[:2]
        assert bool(set(first.lower()) & latin) == bool(set(last.lower()) & latin), name
        if first in female_first:
            assert last.endswith("а"), name
            checked += 1
        elif first in male_first:
            assert not last.endswith("а"), name
            checked += 1
    assert checked > 100
