"""Feature engine: hand-computed values per family and point-in-time properties."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnpredict.config import load_config
from churnpredict.features.build import build_features, resolve_spec

from .world import make_ds

CFG = load_config()
D0 = pd.Timestamp("2024-01-01")


def ts(day: int, hour: int = 0) -> pd.Timestamp:
    return D0 + pd.Timedelta(days=day, hours=hour)


def tiny():
    return make_ds(
        {
            "clients": [
                ("a", "2024-01-01", "A", "smb", "m1", 100.0, None, None),
                ("b", "2024-01-01", "B", "key", "m1", None, None, None),
            ],
            "campaign_events": [
                ("a", "c1", ts(1, 10), "created", "client", None, 10.0),
                ("a", "c1", ts(1, 11), "started", "client", None, None),
                ("a", "c1", ts(19, 9), "paused", "client", "results", None),
                ("a", "c2", ts(2, 9), "started", "client", None, 5.0),
                ("a", "c2", ts(24, 9), "paused", "system", "low_balance", None),
                ("b", "d1", ts(4), "started", "manager", None, 20.0),
            ],
            "invoices": [
                ("a", "i1", ts(0), "2024-01-10", 100.0, ts(14, 12)),
                ("a", "i2", ts(31), "2024-02-10", 80.0, None),
                ("b", "j1", ts(31), "2024-02-10", 50.0, ts(50)),
            ],
            "contacts": [
                ("a", ts(20, 10), "call", "outbound", "results", "reached", "s"),
                ("b", ts(21, 10), "ticket", "inbound", "technical", None, "s"),
                ("b", ts(22, 10), "email", "inbound", "complaint", None, "s"),
            ],
            "spend": [
                ("a", "2024-01-05", 10.0, 1000, 10, 1),
                ("a", "2024-01-06", 30.0, 1000, 20, 0),
                ("b", "2024-01-06", 5.0, 100, 1, 1),
            ],
            "assignments": [
                ("a", "m0", "2024-01-01"),
                ("a", "m1", "2024-01-15"),
                ("b", "m1", "2024-01-01"),
            ],
            "activity": [("a", ts(3), "login", None), ("a", ts(5), "login", None)],
        },
        end="2024-04-01",
    )


def features_at(ds, dates, clients=("a", "b"), spec=None):
    spine = pd.DataFrame(
        [(c, pd.Timestamp(d)) for d in dates for c in clients], columns=["client_id", "as_of"]
    )
    table, catalog, spec = build_features(ds, spine, CFG, spec)
    return table.set_index(["client_id", "as_of"]), catalog, spec


def test_default_config_yields_at_least_200_features():
    _, catalog, _ = features_at(tiny(), ["2024-01-20"])
    assert len(catalog) >= 200
    names = [f.name for f in catalog]
    assert len(names) == len(set(names))
    assert all(f.name.count("__") >= 1 and f.description for f in catalog)


def test_campaign_families_hand_computed():
    t, _, _ = features_at(tiny(), ["2024-01-20", "2024-01-21"])
    a20, a21 = t.loc[("a", pd.Timestamp("2024-01-20"))], t.loc[("a", pd.Timestamp("2024-01-21"))]
    # the pause at 2024-01-20 09:00 is not known at 2024-01-20 00:00, known a day later
    assert a20["campaigns__paused__7d"] == 0 and a21["campaigns__paused__7d"] == 1
    assert a21["campaigns__paused_client__7d"] == 1
    assert a20["campaigns__events__30d"] == 3  # created, started c1, started c2
    assert a20["campaigns__events__days_since"] == 17  # last event 2024-01-03
    assert a20["campaigns__running__now"] == 2 and a21["campaigns__running__now"] == 1
    assert a21["campaigns__paused__now"] == 1
    assert a21["campaigns__share_running__now"] == pytest.approx(0.5)
    assert a21["campaigns__longest_pause__now"] == 1
    assert np.isnan(a21["campaigns__idle_days__now"])  # c2 still runs
    a30 = features_at(tiny(), ["2024-01-30"])[0].loc[("a", pd.Timestamp("2024-01-30"))]
    assert a30["campaigns__running__now"] == 0 and a30["campaigns__idle_days__now"] == 5
    assert a20["campaigns__budget__now"] == 15 and a21["campaigns__running_budget__now"] == 5
    assert np.isnan(a20["campaigns__longest_pause__now"])
    # a slice with no rows yet has no "days since" (NaN), even when other slices have rows
    b20 = t.loc[("b", pd.Timestamp("2024-01-20"))]
    assert np.isnan(b20["campaigns__paused__days_since"])
    assert b20["campaigns__started__days_since"] == 15


def test_money_levels_from_deltas_are_exact_zero_not_float_residue():
    # budgets 0.1 + 0.2 + 0.7 go to 0 when every campaign pauses; summed as float
    # deltas that can leave a residue, and "relative budget change" over it used to be ~1e16
    ds = make_ds(
        {
            "clients": [
                ("0", "2024-01-01", "Z", "key", "m1", 1e6, None, None),
                ("a", "2024-01-01", "A", "smb", "m1", 100.0, None, None),
            ],
            "campaign_events": [
                # a big client sorted first: its totals must not leak residue into "a"
                ("0", "z1", ts(1), "started", "client", None, 123456.789),
                ("0", "z2", ts(2), "started", "client", None, 98765.4321),
                ("a", "c1", ts(1), "started", "client", None, 0.1),
                ("a", "c2", ts(3), "started", "client", None, 0.2),
                ("a", "c3", ts(3), "started", "client", None, 0.7),
                ("a", "c1", ts(5), "paused", "client", "budget", None),
                ("a", "c2", ts(5), "paused", "client", "budget", None),
                ("a", "c3", ts(5), "paused", "client", "budget", None),
            ],
            "invoices": [
                ("0", "z1", ts(0), "2024-01-10", 987654.321, ts(1)),
                ("a", "i1", ts(0), "2024-01-10", 0.1, ts(2)),
                ("a", "i2", ts(0), "2024-01-10", 0.2, ts(3)),
            ],
        },
        end="2024-03-01",
    )
    t, _, _ = features_at(ds, ["2024-01-10", "2024-01-20"], clients=("0", "a"))
    a10, a20 = t.loc[("a", pd.Timestamp("2024-01-10"))], t.loc[("a", pd.Timestamp("2024-01-20"))]
    assert a10["campaigns__running_budget__now"] == 0
    assert a10["campaigns__budget_change__7d"] == -1  # 1.0 a week before, 0 now
    assert np.isnan(a20["campaigns__budget_change__7d"])  # no running budget a week before
    assert a20["invoices__unpaid_amount__now"] == 0


def test_money_levels_stay_sane_on_a_simulated_world(tmp_path):
    # the residue shows up with many clients: a running total of thousands of
    # budgets minus the ones paused is rarely an exact 0.0 in floating point
    from churnpredict.config import SimulateConfig
    from churnpredict.contract import load_dataset
    from churnpredict.simulate import simulate

    simulate(SimulateConfig(clients=1500, days=200, seed=3), tmp_path, label_cfg=CFG.label)
    ds = load_dataset(tmp_path, CFG)
    clients = ds.con.execute("SELECT client_id FROM clients").df()["client_id"]
    dates = pd.date_range("2024-03-04", periods=8, freq="7D")
    spine = pd.DataFrame([(c, d) for d in dates for c in clients], columns=["client_id", "as_of"])
    t = build_features(ds, spine, CFG)[0]
    for w in (7, 30, 90):
        change = t[f"campaigns__budget_change__{w}d"]
        assert change.notna().any()
        assert (change.dropna().abs() < 1e3).all(), change.abs().max()
    assert (t["campaigns__running_budget__now"] >= 0).all()
    assert ((t["invoices__unpaid_amount__now"] == 0) == (t["invoices__unpaid__now"] == 0)).all()


def test_pause_lasts_until_the_next_state_event_not_a_budget_change():
    ds = make_ds(
        {
            "clients": [("a", "2024-01-01", "A", "smb", "m1", 100.0, None, None)],
            "campaign_events": [
                ("a", "c1", ts(1), "started", "client", None, 10.0),
                ("a", "c1", ts(3, 12), "paused", "client", "budget", None),
                ("a", "c1", ts(5), "budget_changed", "client", None, 4.0),  # still paused
                ("a", "c1", ts(9), "resumed", "client", None, None),
                # same timestamp: created < started < resumed < budget_changed < paused
                ("a", "c2", ts(2), "paused", "manager", "season", None),
                ("a", "c2", ts(2), "started", "manager", None, 7.0),
            ],
        },
        end="2024-03-01",
    )
    t, _, _ = features_at(ds, ["2024-01-08", "2024-01-11"], clients=("a",))
    a8, a11 = t.loc[("a", pd.Timestamp("2024-01-08"))], t.loc[("a", pd.Timestamp("2024-01-11"))]
    assert a8["campaigns__longest_pause__now"] == 5  # c2 paused since 2024-01-03, c1 since 01-04
    assert a8["campaigns__paused__now"] == 2 and a8["campaigns__running__now"] == 0
    assert a8["campaigns__budget__now"] == 11  # c1's new budget 4 + c2's 7, both paused
    assert a8["campaigns__running_budget__now"] == 0
    assert a11["campaigns__running__now"] == 1 and a11["campaigns__running_budget__now"] == 4
    assert a11["campaigns__longest_pause__now"] == 8  # c2, paused since 2024-01-03


def test_budget_changes_at_the_same_timestamp_are_ordered_by_budget_whatever_the_input_order():
    """Ties (same campaign, timestamp and kind) are ordered by daily budget, missing
    first: the larger budget counts as the later one, in any input order."""
    rows = [
        ("a", "c1", ts(1), "started", "client", None, 10.0),
        ("a", "c1", ts(3), "budget_changed", "client", None, 9.0),
        ("a", "c1", ts(3), "budget_changed", "client", None, 4.0),
        ("a", "c1", ts(3), "budget_changed", "client", None, None),
        ("a", "c2", ts(2), "started", "client", None, 6.0),  # not tied: other campaign
        ("a", "c2", ts(3), "budget_changed", "client", None, 2.0),
    ]
    budgets = []
    for order in (rows, rows[::-1], [rows[i] for i in (2, 4, 0, 3, 5, 1)]):
        ds = make_ds(
            {
                "clients": [("a", "2024-01-01", "A", "smb", "m1", 100.0, None, None)],
                "campaign_events": order,
            },
            end="2024-03-01",
        )
        t, _, _ = features_at(ds, ["2024-01-08"], clients=("a",))
        budgets.append(t.loc[("a", pd.Timestamp("2024-01-08")), "campaigns__budget__now"])
    assert budgets == [11.0, 11.0, 11.0]  # c1's 9 (the largest tie) + c2's 2


def test_campaign_state_read_in_table_order_equals_the_sorted_read(monkeypatch):
    """The campaign state reads the events in the table's order when each campaign's
    events come in (time, tie order) order there (a client's campaigns interleaved:
    grouped by one stable sort in NumPy), else lets DuckDB sort them; every order of
    the same events gives the same features, ties at one timestamp included."""
    from churnpredict.features.backends import local

    rng = np.random.default_rng(11)
    kinds = ["paused", "resumed", "budget_changed", "stopped"]
    rows = []
    for c in ("a", "b", "c"):
        for k in range(4):
            hours = np.sort(rng.choice(60 * 24, size=12, replace=False))
            for i, h in enumerate(hours):
                budget = None if rng.random() < 0.3 else float(rng.integers(1, 400)) / 4
                kind = "started" if i == 0 else kinds[rng.integers(0, len(kinds))]
                rows.append((c, f"{c}{k}", ts(0, int(h)), kind, "client", None, budget))
        # one campaign, one timestamp (none of the above: odd minutes): tie order is
        # resumed < budget_changed < paused, then budget (missing first)
        t = ts(30, 5) + pd.Timedelta(minutes=1)
        rows.append((c, f"{c}0", t, "resumed", "client", None, None))
        rows.append((c, f"{c}0", t, "budget_changed", "client", None, 3.5))
        rows.append((c, f"{c}0", t, "paused", "client", "season", None))
    clients = [(c, "2024-01-01", c.upper(), "smb", "m1", 100.0, None, None) for c in "abc"]
    checked: list[bool] = []
    real = local._in_time_order

    def spy(*args):
        checked.append(real(*args))
        return checked[-1]

    monkeypatch.setattr(local, "_in_time_order", spy)
    dates = ["2024-01-10", "2024-01-31", "2024-02-01", "2024-02-20", "2024-03-02"]

    def build(events: pd.DataFrame):
        checked.clear()
        ds = make_ds(
            {"clients": clients, "campaign_events": list(events.itertuples(index=False))},
            end="2024-04-01",
        )
        t, _, _ = features_at(ds, dates, clients=("a", "b", "c"))
        return t[[c for c in t.columns if c.startswith("campaigns__")]], list(checked)

    by_time = pd.DataFrame(rows).sort_values([0, 2], kind="stable")  # campaigns interleaved
    expected, how = build(by_time)
    assert how == [True]  # grouped in NumPy, no sort in DuckDB
    shuffled, how = build(by_time.sample(frac=1.0, random_state=3))
    assert how == [False]  # read in the table's order, which is not a time order: sorted
    pd.testing.assert_frame_equal(expected, shuffled)
    # the ties as resumed, paused, budget_changed
    swapped, how = build(by_time.sort_values([0, 2, 3], ascending=[True, True, False]))
    assert how == [False]  # a campaign's ties out of tie order: sorted by DuckDB
    pd.testing.assert_frame_equal(expected, swapped)
    assert len(expected) == 15 and (expected.abs().sum() > 0).sum() > 10

    # the join's threads return the rows in blocks out of the table's order (as on a
    # large table, varying from run to run): the row ids restore the table's order, so
    # no DuckDB sort is needed and the features are the same
    from churnpredict.features.backends import engine

    real_arrow, reads = engine._arrow, []

    def blocks_reversed(con, sql):
        tab = real_arrow(con, sql)
        if "AS _row" in sql:
            reads.append(sql)
            idx = np.arange(tab.num_rows)
            tab = tab.take(np.concatenate(np.array_split(idx, 7)[::-1]))
        return tab

    monkeypatch.setattr(engine, "_arrow", blocks_reversed)
    out_of_order, how = build(by_time)
    assert len(reads) == 1 and how == [True]  # put back in order first, never sorted
    pd.testing.assert_frame_equal(expected, out_of_order)


def test_invoice_family_and_paid_after_as_of_is_unpaid():
    t, _, _ = features_at(tiny(), ["2024-01-20", "2024-02-15"])
    a20, a_feb = t.loc[("a", pd.Timestamp("2024-01-20"))], t.loc[("a", pd.Timestamp("2024-02-15"))]
    assert a20["invoices__paid_late__30d"] == 1  # due 01-10, paid 01-15
    assert a20["invoices__delay_mean__30d"] == 5
    assert a20["invoices__unpaid_amount__now"] == 0
    assert a_feb["invoices__unpaid_amount__now"] == 80
    assert a_feb["invoices__overdue_amount__now"] == 80
    assert a_feb["invoices__days_overdue__now"] == 5  # due 02-10, as of 02-15
    b_feb = t.loc[("b", pd.Timestamp("2024-02-15"))]
    # b's invoice is paid on 2024-02-20, after the as-of date: unpaid and overdue at 02-15
    assert b_feb["invoices__unpaid_amount__now"] == 50
    assert b_feb["invoices__overdue__now"] == 1
    assert b_feb["invoices__days_overdue__now"] == 5


def test_contact_spend_profile_families():
    t, _, _ = features_at(tiny(), ["2024-01-24"])
    a, b = t.loc[("a", pd.Timestamp("2024-01-24"))], t.loc[("b", pd.Timestamp("2024-01-24"))]
    assert a["contacts__call_outbound_reached__days_since"] == 3
    assert b["contacts__technical__30d"] == 1 and b["contacts__complaint__7d"] == 1
    assert b["contacts__inbound__30d"] == 2 and a["contacts__outbound__30d"] == 1
    assert a["spend__spend__30d"] == 40 and a["spend__conversions__30d"] == 1
    assert a["spend__cost_per_conversion__30d"] == 40
    assert a["spend__spend_mean__30d"] == 20
    assert a["profile__tenure_days"] == 23 and a["profile__first_month"] == 1
    assert a["profile__segment_smb"] == 1 and b["profile__segment_key"] == 1
    assert a["profile__days_since_manager_change"] == 9  # changed 2024-01-15
    assert np.isnan(b["profile__days_since_manager_change"])
    assert a["activity__login__30d"] == 2
    assert a["profile__rfm_recency"] == 3  # the reached call on 01-21


# ----------------------------------------------------------------- point in time
CLIENTS = ["a", "b", "c"]
EVENTS = ["created", "started", "paused", "resumed", "stopped", "budget_changed"]


@st.composite
def worlds(draw):
    n = draw(st.integers(5, 40))
    camp = [
        (
            draw(st.sampled_from(CLIENTS)),
            draw(st.sampled_from(["c1", "c2"])),
            ts(draw(st.integers(0, 120)), draw(st.integers(0, 23))),
            draw(st.sampled_from(EVENTS)),
            draw(st.sampled_from(["client", "system", "manager"])),
            draw(st.sampled_from(["low_balance", "season", None])),
            draw(st.sampled_from([None, 10.0, 25.0])),
        )
        for _ in range(n)
    ]
    inv = []
    for i in range(draw(st.integers(0, 8))):
        issued = draw(st.integers(0, 110))
        due = issued + draw(st.integers(0, 15))
        paid = draw(st.one_of(st.none(), st.integers(issued, 125)))
        inv.append(
            (
                draw(st.sampled_from(CLIENTS)),
                f"i{i}",
                ts(issued, 3),
                (D0 + pd.Timedelta(days=due)).date(),
                10.0 * (i + 1),
                None if paid is None else ts(paid, 5),
            )
        )
    con = [
        (
            draw(st.sampled_from(CLIENTS)),
            ts(draw(st.integers(0, 120)), draw(st.integers(0, 23))),
            draw(st.sampled_from(["call", "email", "ticket"])),
            draw(st.sampled_from(["inbound", "outbound"])),
            draw(st.sampled_from(["complaint", "technical", "billing"])),
            draw(st.sampled_from(["reached", "no_answer", None])),
            "s",
        )
        for _ in range(draw(st.integers(0, 15)))
    ]
    spend = [
        (
            draw(st.sampled_from(CLIENTS)),
            (D0 + pd.Timedelta(days=draw(st.integers(0, 120)))).date(),
            float(draw(st.integers(0, 50))),
            100.0,
            5.0,
            float(draw(st.integers(0, 3))),
        )
        for _ in range(draw(st.integers(0, 15)))
    ]
    T = draw(st.integers(20, 110))
    return {"campaign_events": camp, "invoices": inv, "contacts": con, "spend": spend}, T


def _clients():
    return [(c, "2024-01-01", c.upper(), "smb", "m", 10.0, None, None) for c in CLIENTS]


def _mutate_future(tables, T, draw_data):
    """Drop, alter or add rows at or after T; move paid_at of invoices to >= T."""
    cut = ts(T)
    out = {}
    for name, rows in tables.items():
        new = []
        for r in rows:
            when = (
                pd.Timestamp(r[2] if name != "contacts" else r[1])
                if name != "spend"
                else pd.Timestamp(r[1])
            )
            if name == "invoices":
                when = pd.Timestamp(r[2])
            if when >= cut:
                action = draw_data.draw(st.sampled_from(["keep", "drop", "alter"]))
                if action == "drop":
                    continue
                if action == "alter":
                    r = list(r)
                    if name == "campaign_events":
                        r[3] = draw_data.draw(st.sampled_from(EVENTS))
                    elif name == "contacts":
                        r[4] = "complaint"
                    elif name == "spend":
                        r[2] = 999.0
                    elif name == "invoices":
                        r[4] = 12345.0
                    r = tuple(r)
            elif name == "invoices" and (r[5] is None or pd.Timestamp(r[5]) >= cut):
                # an invoice issued before T but not paid before T: its payment may change
                later = draw_data.draw(st.one_of(st.none(), st.integers(0, 10)))
                r = (*r[:5], None if later is None else cut + pd.Timedelta(days=later, hours=1))
            new.append(r)
        out[name] = new
    # brand-new future rows
    out["campaign_events"].append(("a", "c9", cut, "paused", "client", "results", None))
    out["contacts"].append(
        ("b", cut + pd.Timedelta(hours=2), "email", "inbound", "complaint", None, "s")
    )
    out["spend"].append(("c", cut.date(), 77.0, 1.0, 1.0, 1.0))
    out["invoices"].append(("c", "new", cut, cut.date(), 5.0, None))
    return out


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(worlds(), st.data())
def test_rows_at_or_after_as_of_never_change_features(world, data):
    tables, T = world
    base = make_ds({"clients": _clients(), **tables}, end="2024-06-01")
    spec = resolve_spec(base, CFG)
    before, _, _ = features_at(base, [ts(T)], CLIENTS, spec)
    mutated = make_ds({"clients": _clients(), **_mutate_future(tables, T, data)}, end="2024-06-01")
    after, _, _ = features_at(mutated, [ts(T)], CLIENTS, spec)
    pd.testing.assert_frame_equal(before, after)


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(worlds())
def test_many_snapshots_equal_snapshots_built_one_by_one(world):
    tables, _ = world
    ds = make_ds({"clients": _clients(), **tables}, end="2024-06-01")
    spec = resolve_spec(ds, CFG)
    dates = [ts(d) for d in (15, 36, 60, 61, 100)]
    together, _, _ = features_at(ds, dates, CLIENTS, spec)
    one_by_one = pd.concat([features_at(ds, [d], CLIENTS, spec)[0] for d in dates])
    pd.testing.assert_frame_equal(together.sort_index(), one_by_one.sort_index())


def _engine_plan(stream):
    from churnpredict.features.backends.engine import FeatureExpr, Plan

    feats = [
        FeatureExpr("n_7d", "o0_s__n - o7_s__n"),
        FeatureExpr("amt_30d", "o0_s__amt - o30_s__amt"),
        FeatureExpr("paid_n", "o0_s__paid_n"),
        FeatureExpr("last_paid", "as_of - o0_s__paid_last"),
    ]
    return Plan(streams=[stream], features=feats)


def _engine_measures():
    from churnpredict.features.backends.engine import Measure

    return (
        Measure("n", "sum(n)", base="n"),
        Measure("amt", "sum(s_amt)", base="s_amt"),
        Measure(
            "paid_n", "sum(n) FILTER (WHERE kind = 'paid')", base="n", where=(("kind", "paid"),)
        ),
        Measure(
            "paid_last",
            "max(last_day) FILTER (WHERE kind = 'paid')",
            "max",
            base="last_day",
            where=(("kind", "paid"),),
        ),
    )


def test_a_stream_given_as_arrays_equals_the_same_stream_in_sql():
    """The NumPy path for prepared streams gives the SQL path's values, nothing-yet
    included (a client without rows, rows on/after as-of, a kind that never occurs)."""
    import duckdb

    from churnpredict.features.backends.engine import Stream, compute

    rng = np.random.default_rng(7)
    n = 3000
    ev = pd.DataFrame(
        {
            "client_id": rng.choice([f"c{i}" for i in range(40)], n),
            "day": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 200, n), "D"),
            "kind": rng.choice(["paid", "late", "other"], n),
            "amt": rng.normal(100, 50, n).round(2),
        }
    )
    con = duckdb.connect()
    con.register("ev_df", ev)
    con.execute("CREATE TABLE ev AS SELECT client_id, day::DATE AS day, kind, amt FROM ev_df")
    spine = pd.DataFrame(
        {
            "client_id": [f"c{i}" for i in range(42)] * 3,  # c40, c41 have no rows
            "as_of": np.repeat(pd.to_datetime(["2024-02-10", "2024-05-01", "2024-07-19"]), 42),
        }
    )
    sql = Stream(
        "s",
        "SELECT client_id, day, kind, amt FROM ev",
        ("kind",),
        ("amt",),
        (),
        _engine_measures(),
    )
    by_sql = compute(con, spine, _engine_plan(sql))

    def arrays():
        cidx = {c: i for i, c in enumerate(sorted(spine.client_id.unique()))}
        return {
            "cidx": ev.client_id.map(cidx).to_numpy(),
            "day": ev.day.to_numpy().astype("datetime64[D]").astype(np.int64),
            "kind": ev.kind.to_numpy().astype("S5"),
            "amt": ev.amt.to_numpy(),
        }

    by_arrays = compute(
        con, spine, _engine_plan(Stream("s", arrays=arrays, measures=_engine_measures()))
    )
    pd.testing.assert_frame_equal(by_sql, by_arrays)
    # and the values are the hand-checkable ones for one row
    row = by_sql[(by_sql.client_id == "c3") & (by_sql.as_of == "2024-05-01")].iloc[0]
    mine = ev[(ev.client_id == "c3") & (ev.day < "2024-05-01")]
    assert row.n_7d == (mine.day >= "2024-04-24").sum()
    assert row.amt_30d == pytest.approx(mine.loc[mine.day >= "2024-04-01", "amt"].sum(), abs=1e-2)
    assert row.paid_n == (mine.kind == "paid").sum()
    assert (
        row.last_paid
        == (pd.Timestamp("2024-05-01") - mine.loc[mine.kind == "paid", "day"].max()).days
    )
    empty = by_sql[by_sql.client_id == "c40"]
    assert (empty.n_7d == 0).all() and empty.last_paid.isna().all()


@pytest.mark.parametrize("broken", ["source", "level"])
def test_local_backend_leaves_no_scratch_tables_even_when_a_stream_fails(broken):
    """A declaration naming a column the table lacks fails with DuckDB's error, in a SQL
    stream or in a level's sorted pass, and the backend's scratch tables are gone."""
    import duckdb

    from churnpredict.features.backends import local
    from churnpredict.features.declarations import Aggregation, At, FeatureDecl, Level, Source

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE ev AS SELECT 'c1' AS client_id, TIMESTAMP '2024-01-01' AS ts, "
        "'x' AS kind, 'e1' AS entity"
    )
    before = set(con.execute("SELECT table_name FROM duckdb_tables()").fetchall())
    spine = pd.DataFrame({"client_id": ["c1"], "as_of": pd.to_datetime(["2024-02-01"])})
    good = Source("ev", "ev", "ts", categories=("kind",))
    bad = Source("ev", "ev", "ts", numerics=("no_such_column",))
    decls = [FeatureDecl("n", "t", "n", "count", At(Aggregation(good, "count")))]
    if broken == "source":
        decls.append(
            FeatureDecl("s", "t", "s", "sum", At(Aggregation(bad, "sum", "no_such_column")))
        )
    else:
        level = Level(good, "no_such_entity", "kind", None, active=("x",))
        decls.append(FeatureDecl("lv", "t", "lv", "state", At(level)))
    with pytest.raises(duckdb.Error, match="no_such"):
        local.compute(con, spine, decls)
    assert set(con.execute("SELECT table_name FROM duckdb_tables()").fetchall()) == before
    assert local.compute(con, spine, decls[:1])["n"].tolist() == [1.0]


def _spy_on(monkeypatch, name: str) -> list[tuple[str, bool]]:
    """Wrap the engine's fetch function ``name``; the returned list gets ``(stream
    name, whether it returned rows)`` for every call."""
    from churnpredict.features.backends import engine

    calls: list[tuple[str, bool]] = []
    real = getattr(engine, name)

    def spy(con, stream, *args):
        out = real(con, stream, *args)
        calls.append((stream.name, out is not None))
        return out

    monkeypatch.setattr(engine, name, spy)
    return calls


def test_raw_rows_pivoted_in_numpy_equal_the_grouping_in_sql(monkeypatch):
    """Streams sliced by categories are fetched as raw rows and pivoted in NumPy; past
    RAW_ROWS rows they are grouped in SQL instead; both give the same features."""
    from churnpredict.features.backends import engine

    fetched = _spy_on(monkeypatch, "_fetch_raw")
    ds = tiny()
    dates = ["2024-01-03", "2024-01-20", "2024-02-01", "2024-02-25", "2024-03-30"]
    raw, _, _ = features_at(ds, dates)
    raw_streams = {name.partition("_")[2] for name, ok in fetched if ok}
    assert {"campaign_events", "contacts", "activity", "invoices"} <= raw_streams
    fetched.clear()
    monkeypatch.setattr(engine, "RAW_ROWS", 0)
    grouped, _, _ = features_at(ds, dates)
    assert fetched and not any(ok for _, ok in fetched)  # every stream fell back to SQL
    pd.testing.assert_frame_equal(raw, grouped)
    assert raw.notna().any().mean() > 0.8  # the comparison covers real values


def test_unsliced_rows_reduced_by_runs_equal_the_grouping_in_sql(monkeypatch):
    """Streams without slices (daily spend) are reduced in NumPy from runs of equal
    (client, bucket) keys, batch by batch, while rows come grouped by client; rows in
    another order are sorted first (or, by default, grouped in SQL). All give the same
    features, also with keys split across batches and with missing numbers."""
    from churnpredict.features.backends import engine

    rng = np.random.default_rng(7)
    days = pd.date_range("2023-12-01", "2024-03-31", freq="D")
    rows = [
        (
            c,
            d.date(),
            *(None if rng.random() < 0.1 else float(rng.integers(0, 400)) / 4 for _ in range(4)),
        )
        for c in ("a", "b", "x")  # x: not in the spine
        for d in days
        if rng.random() < 0.7
    ]
    spend = pd.DataFrame(
        rows, columns=["client_id", "date", "spend", "impressions", "clicks", "conversions"]
    )
    used = _spy_on(monkeypatch, "_fetch_runs")
    dates = ["2024-01-03", "2024-01-20", "2024-02-01", "2024-02-25", "2024-03-30"]

    def build(frame):
        ds = tiny()
        ds.con.register("_spend", frame)
        ds.con.execute("CREATE OR REPLACE TABLE spend AS SELECT * FROM _spend")
        ds.con.unregister("_spend")
        used.clear()
        table = features_at(ds, dates)[0]
        return table, {name.partition("_")[2]: ok for name, ok in used}  # "s3_spend"

    monkeypatch.setattr(engine, "RUN_MIN_LENGTH", 10**9)  # never grouped enough: SQL
    grouped, how = build(spend)
    assert how["spend"] is False
    monkeypatch.setattr(engine, "RUN_MIN_LENGTH", 2)
    monkeypatch.setattr(engine, "RUN_BATCH", 7)  # runs split across batches
    by_runs, how = build(spend)
    assert how["spend"] is True
    pd.testing.assert_frame_equal(by_runs, grouped)  # quarters add up exactly in any order
    shuffled = spend.sample(frac=1.0, random_state=1)
    assert build(shuffled)[1]["spend"] is False  # mostly runs of one row: SQL
    monkeypatch.setattr(engine, "RUN_MIN_LENGTH", 0)  # reduced anyway, then sorted
    by_sorting, how = build(shuffled)
    assert how["spend"] is True
    pd.testing.assert_frame_equal(by_sorting, grouped)
    spent = [c for c in grouped.columns if c.startswith("spend__") and grouped[c].notna().any()]
    assert len(spent) > 20 and grouped[spent].abs().sum().gt(0).sum() > 20


def test_lookups_by_binary_search_equal_the_dense_index(monkeypatch):
    """Past a size the engine looks groups up by binary search instead of a dense
    (client, boundary) table; both give the same features."""
    from churnpredict.features.backends import engine

    ds = tiny()
    dates = ["2024-01-03", "2024-01-20", "2024-02-01", "2024-02-25", "2024-03-30"]
    dense, _, _ = features_at(ds, dates)
    monkeypatch.setattr(engine, "DENSE_INDEX_CELLS_PER_ROW", -(10**9))
    searched, _, _ = features_at(ds, dates)
    pd.testing.assert_frame_equal(dense, searched)
    assert dense.notna().any().mean() > 0.8  # the comparison covers real values


@settings(max_examples=200, deadline=None)
@given(
    cells=st.lists(
        st.tuples(
            st.integers(0, 3),
            st.one_of(st.none(), st.floats(-1e9, 1e9, allow_nan=False), st.integers(0, 400)),
        ),
        max_size=40,
    )
)
def test_running_sums_and_maxima_restart_per_client(cells):
    """The lookups' compiled passes: running sums and running maxima within each
    client's groups (sorted by client), NaN being no value, equal pandas' cumsum and
    cummax; the trailing "nothing yet" cell is left as it was."""
    from churnpredict.features.backends import kernels

    cells = sorted(cells, key=lambda c: c[0])
    client = np.array([c for c, _ in cells], dtype=np.int64)
    v = np.array([np.nan if x is None else float(x) for _, x in cells])
    first = (
        np.flatnonzero(np.r_[True, client[1:] != client[:-1]]) if len(v) else np.zeros(0, np.int64)
    )
    s = pd.Series(v)
    row = np.r_[np.nan_to_num(v), -1.0]
    peak = kernels.running_sum(row, first)
    expected = s.fillna(0.0).groupby(client).cumsum().to_numpy()
    assert np.allclose(row[:-1], expected, rtol=1e-12, atol=1e-3) and row[-1] == -1.0
    assert peak == (np.abs(row[:-1]).max() if len(v) else 0.0)
    out = np.full(len(v) + 1, -1.0)
    kernels.running_max(v, first, out)
    expected = s.groupby(client).cummax().groupby(client).ffill().to_numpy()
    assert np.array_equal(out[:-1], expected, equal_nan=True) and out[-1] == -1.0


@settings(max_examples=200, deadline=None)
@given(
    entity=st.lists(st.integers(0, 5), max_size=40),
    shuffle=st.randoms(use_true_random=False),
    by_row=st.booleans(),
)
def test_group_order_groups_entities_keeping_the_row_order(entity, shuffle, by_row):
    """The campaign state's counting sort: each entity's rows together, in ascending
    row id (or in the given order without row ids), the same order as a stable sort
    by (entity, row id)."""
    from churnpredict.features.backends import kernels

    n = len(entity)
    row = np.arange(100, 100 + 3 * n, 3, dtype=np.int64)  # distinct ids with gaps
    shuffle.shuffle(row)
    ent = np.array(entity, dtype=np.int64)
    perm, identity = kernels.group_order(ent, 6, row if by_row else np.zeros(0, np.int64))
    expected = np.lexsort((row, ent)) if by_row else np.argsort(ent, kind="stable")
    assert np.array_equal(perm, expected)
    assert identity == bool((perm == np.arange(n)).all())


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(0, 4), st.integers(-1, 6)), max_size=50),
    sliced=st.booleans(),
)
def test_combo_order_orders_rows_by_combination_and_drops_skipped_rows(rows, sliced):
    """The slice pivot's counting sort: rows with a group (-1: skipped) by combination,
    in their own order within one, each with its group and each combination's start;
    adding a slice's runs with ``scatter`` equals a masked per-group sum."""
    from churnpredict.features.backends import kernels

    combo = np.array([c for c, _ in rows], dtype=np.int64)
    g = np.array([x for _, x in rows], dtype=np.int64)
    if not sliced:
        combo = np.zeros(0, np.int64)
    order, group, starts = kernels.combo_order(combo, 5 if sliced else 1, g)
    kept = np.flatnonzero(g >= 0)
    key = combo[kept] if sliced else np.zeros(len(kept), np.int64)
    assert np.array_equal(order, kept[np.argsort(key, kind="stable")])
    assert np.array_equal(group, g[order])
    assert np.array_equal(np.diff(starts), np.bincount(key, minlength=len(starts) - 1))
    value = np.linspace(-3.0, 5.0, len(rows))
    value[::4] = np.nan  # NaN adds nothing
    out = np.zeros(7)
    kernels.scatter(out, group, value, order, 0, False, starts[1], starts[-1])  # combos 1..
    pick = kept[key >= 1]
    expected = np.bincount(g[pick], weights=np.nan_to_num(value[pick]), minlength=7)
    assert np.allclose(out, expected)


@settings(max_examples=200, deadline=None)
@given(
    events=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 30), st.integers(-1, 3)), max_size=40
    ),
    window=st.tuples(st.integers(0, 35), st.integers(0, 35)),
)
def test_open_states_are_the_states_open_in_the_window(events, window):
    """An entity's state set by an event lasts until its next state-setting event; the
    kernel keeps the open ones that start before ``hi`` and end at or after ``lo``,
    as a plain loop over each entity's setting events does."""
    from churnpredict.features.backends import kernels

    events = sorted(events, key=lambda e: (e[0], e[1]))  # grouped by entity, in time order
    cp = np.array([e for e, _, _ in events], dtype=np.int64)
    t = np.array([x for _, x, _ in events], dtype=np.int64)
    vals = np.array([v for _, _, v in events], dtype=np.int8)
    sets = np.array([True, True, False, True, False])  # codes 0..3, last cell: not listed
    opens = np.array([False, True, False, True, True])
    lo, hi = min(window), max(window)
    rows, ends = kernels.open_states(cp, vals, t, sets, opens, lo, hi)
    expected = []
    setting = [i for i in range(len(vals)) if sets[vals[i]]]
    for k, i in enumerate(setting):
        nxt = setting[k + 1] if k + 1 < len(setting) else None
        end = t[nxt] if nxt is not None and cp[nxt] == cp[i] else np.iinfo(np.int64).max
        if opens[vals[i]] and t[i] < hi and end >= lo:
            expected.append((i, end))
    assert [(int(r), int(e)) for r, e in zip(rows, ends, strict=True)] == expected


@settings(max_examples=200, deadline=None)
@given(
    bounds=st.lists(st.integers(-400, 400), min_size=1, max_size=40, unique=True),
    days=st.lists(st.integers(-600, 600), max_size=60),
    far=st.booleans(),
)
def test_buckets_by_table_equal_the_binary_search(bounds, days, far):
    """A day's bucket (boundaries <= day) from the day table equals np.searchsorted,
    for days before, between and after the boundaries; boundaries far apart fall
    back to the search."""
    from churnpredict.features.backends.engine import _buckets

    b = np.array(sorted(bounds + ([2_000_000] if far else [])), dtype=np.int64)
    d = np.array(days, dtype=np.int32)
    assert np.array_equal(_buckets(d, b), np.searchsorted(b, d, side="right"))


def test_arithmetic_features_in_numpy_equal_duckdb_bit_for_bit(monkeypatch):
    """Arithmetic feature expressions are evaluated in NumPy, with DuckDB's types and
    IEEE results: every default feature gives the same float32 bits both ways, over
    values with NaN, zeros, negatives and fractions, in float32 and float64."""
    import duckdb

    from churnpredict.features.backends import engine
    from churnpredict.features.backends.local import compile_plan
    from churnpredict.features.declarations import declare

    plan = compile_plan(declare(resolve_spec(tiny(), CFG)))
    features = plan.features + [
        engine.FeatureExpr("x_prec", "o0_s__a / 3 - o0_s__b * 0.1 + -o7_s__a"),
        engine.FeatureExpr("x_div", "o0_s__a / o0_s__b - as_of"),
        engine.FeatureExpr("x_nullif", "(o0_s__a - 1) / NULLIF(o7_s__a - o0_s__b, 0)"),
        engine.FeatureExpr("x_days", "as_of - o9_t__f"),  # BIGINT with FLOAT is FLOAT
        engine.FeatureExpr("x_case", "CASE WHEN o0_s__a > 0 THEN 1 END"),  # stays in SQL
    ]
    rng = np.random.default_rng(0)
    n = 4000
    pool = np.array([np.nan, 0.0, -0.0, 1.0, -3.0, 0.1, 2.5e6, 7.0, 1 / 3])
    lookups = {}
    for f in features:
        for off, ref in engine._REF.findall(f.expr):
            values = np.where(rng.random(n) < 0.5, rng.choice(pool, n), rng.normal(0, 50, n))
            dtype = np.float32 if len(lookups) % 2 else np.float64
            lookups.setdefault(f"o{off}_{ref}", values.astype(dtype))
    lookups["as_of"] = rng.integers(19000, 21000, n)
    lookups["o9_t__f"] = rng.normal(0, 50, n).astype(np.float32)
    compiled = [f.name for f in features if engine._arith(f.expr, lookups) is not None]
    assert len(compiled) == len(features) - 2  # all but the CASE expressions

    # post stages read finished features (float32) by quoted name; as_of is a DATE
    post = [p for stage in plan.post for p in stage]
    assert post
    columns = {
        name: rng.choice(pool, n).astype(np.float32)
        for p in post
        for name in re.findall(r'"?\b([a-z][a-z0-9_]*__[a-z0-9_]+)\b"?', p.expr)
    }
    columns["as_of"] = rng.integers(19000, 19003, n).astype("datetime64[D]")
    columns["__rid"] = np.arange(n)
    assert sum(engine._arith(p.expr, columns) is not None for p in post) >= 5

    in_numpy = engine._evaluate(duckdb.connect(), lookups, features)
    post_numpy = engine._evaluate(duckdb.connect(), columns, post)
    monkeypatch.setattr(engine, "_arith", lambda expr, names: None)
    in_sql = engine._evaluate(duckdb.connect(), lookups, features)
    post_sql = engine._evaluate(duckdb.connect(), columns, post)
    assert in_numpy.column_names == in_sql.column_names == [f.name for f in features]
    for x, y in ((in_numpy, in_sql), (post_numpy, post_sql)):
        for name in y.column_names:
            a, b = x.column(name).to_numpy(), y.column(name).to_numpy()
            assert a.dtype == b.dtype == np.float32
            same = (a.view(np.int32) == b.view(np.int32)) | (np.isnan(a) & np.isnan(b))
            assert same.all(), (name, a[~same][:3], b[~same][:3])


def test_slice_values_come_from_the_data_with_other_and_missing_buckets():
    """``*`` and ``values: auto`` take the values the data uses (top N), put the rest in
    "(other)" and empty values in "(missing)" so a slice's counts add up; configured
    values that never occur are reported; scoring with the stored spec builds the same
    columns even when new values appear later."""
    from churnpredict.config import build_config

    raw = CFG.model_dump(mode="json")
    raw["features"]["sources"] = {
        "campaigns": {
            "table": "campaign_events",
            "noun": "campaign events",
            "slices": [
                {"by": ["event", "reason"], "values": [["paused", "*"]], "top": 1},
                {"by": ["event"], "values": [["paused"], ["teleported"]]},
            ],
        }
    }
    cfg = build_config(raw)
    events = [
        ("a", "c1", ts(1), "started", "client", None, 10.0),
        ("a", "c1", ts(42), "paused", "client", "not_effective", None),
        ("a", "c1", ts(43), "resumed", "client", None, None),
        ("a", "c1", ts(44), "paused", "client", "not_effective", None),
        ("a", "c1", ts(45), "resumed", "client", None, None),
        ("a", "c1", ts(46), "paused", "client", "stock", None),
        ("a", "c1", ts(47), "resumed", "client", None, None),
        ("a", "c1", ts(48), "paused", "client", None, None),
    ]
    ds = make_ds(
        {
            "clients": [("a", "2024-01-01", "A", "smb", "m1", 100.0, None, None)],
            "campaign_events": events,
            "invoices": [],
            "contacts": [],
        },
        end="2024-04-01",
    )
    spec = resolve_spec(ds, cfg)
    src = spec["sources"]["campaigns"]
    assert src["slices"][0]["values"] == [
        ["paused", "not_effective"],
        ["paused", "(missing)"],
        ["paused", "(other)"],
    ]
    assert src["keep"]["reason"] == ["not_effective"]
    assert any("teleported" in w for w in spec["warnings"])
    spine = pd.DataFrame({"client_id": ["a"], "as_of": [ts(60)]})  # 30d window covered
    table, catalog, _ = build_features(ds, spine, cfg, spec)
    row = table.iloc[0]
    assert row["campaigns__paused_not_effective__30d"] == 2
    assert row["campaigns__paused_other__30d"] == 1
    assert row["campaigns__paused_missing__30d"] == 1
    assert row["campaigns__paused__30d"] == 4  # the buckets add up to the fixed part
    assert "campaigns__teleported__30d" in table  # configured: kept, constant 0
    # scoring with the stored spec: the same columns, a new reason counts as "(other)"
    later = make_ds(
        {
            "clients": [("a", "2024-01-01", "A", "smb", "m1", 100.0, None, None)],
            "campaign_events": [*events, ("a", "c1", ts(50), "paused", "client", "new", None)],
            "invoices": [],
            "contacts": [],
        },
        end="2024-04-01",
    )
    again, catalog2, _ = build_features(later, spine, cfg, spec)
    assert [f.name for f in catalog2] == [f.name for f in catalog]
    assert again.iloc[0]["campaigns__paused_other__30d"] == 2


@pytest.mark.parametrize("kept", [(), ("a",), ("a", "b", "(other)"), ("b", "c", "(missing)")])
@pytest.mark.parametrize(
    "values", [["a", "(other)", "(missing)"], ["b"], ["(missing)", "c", "a"], ["(other)"]]
)
def test_raw_codes_equal_the_codes_of_the_mapped_text(kept, values):
    """The raw-row path codes a category straight from the raw text; the code equals
    the position (in the slice values) of the text ``category_sql`` maps it to: kept
    values as they are, others "(other)", NULL "(missing)" (also for raw values that
    read "(other)" or "(missing)")."""
    import duckdb

    from churnpredict.features.backends.engine import _code_sql
    from churnpredict.features.backends.sql import category_sql

    raw = ["a", "b", "c", "z", "(other)", "(missing)", None]
    con = duckdb.connect()
    con.execute("CREATE TABLE t (x VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[v] for v in raw])
    direct = con.execute(f"SELECT {_code_sql('x', values, 'INTEGER', kept)} FROM t").fetchall()
    mapped = con.execute(
        f"SELECT {_code_sql('m', values, 'INTEGER')} FROM (SELECT {category_sql('x', kept)} AS m FROM t)"
    ).fetchall()
    assert direct == mapped
