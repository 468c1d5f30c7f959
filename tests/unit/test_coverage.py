"""Coverage and population (DATA_CONTRACT.md §2): tables that start late, the freeze that
ends on T, ended relationships, static client columns, event ids, stale data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churnpredict.cli import app
from churnpredict.config import build_config, load_config, override
from churnpredict.contract import load_dataset, table_coverage, validate
from churnpredict.errors import ConfigError, DataError
from churnpredict.features.build import build_features, resolve_spec
from churnpredict.labels import build_spine, covered_from, derive_freezes, snapshot_dates
from churnpredict.pipeline import check_fresh
from tests.bad_corpus import make_valid_dir

from .world import make_ds

CFG = load_config()
T = pd.Timestamp
NONE8 = (None, None, None, None, None, None)


def _late_world(**extra):
    """Campaign events from 2023-01-01; contacts (and freezes) only from 2023-06-01."""
    return make_ds(
        {
            "clients": [
                ("old", "2023-01-01", *NONE8),
                ("new", "2023-07-01", *NONE8),
            ],
            "campaign_events": [
                ("old", "k1", T("2023-01-02"), "started", "client", None, None),
                ("new", "k2", T("2023-07-02"), "started", "client", None, None),
                ("old", "k1", T("2023-12-30"), "budget_changed", "client", None, 3.0),
            ],
            "contacts": [
                ("old", T("2023-06-01 10:00"), "call", "inbound", None, None, "s"),
                ("old", T("2023-07-20 10:00"), "call", "inbound", None, None, "s"),
                ("new", T("2023-07-20 10:00"), "email", "inbound", None, None, "s"),
                ("old", T("2023-12-30 10:00"), "email", "inbound", None, None, "s"),
            ],
            **extra,
        },
        start="2023-01-01",
        end="2023-12-31",
    )


def _features(ds, dates, clients=("old", "new"), cfg=CFG):
    spine = pd.DataFrame(
        [(c, T(d)) for d in dates for c in clients], columns=["client_id", "as_of"]
    )
    table, catalog, spec = build_features(ds, spine, cfg)
    return table.set_index(["client_id", "as_of"]), catalog, spec


def test_coverage_per_table_is_first_and_last_row():
    cov = table_coverage(_late_world(), CFG)
    assert cov["contacts"] == (T("2023-06-01 10:00"), T("2023-12-30 10:00"))
    assert cov["campaign_events"][0] == T("2023-01-02")
    starts = covered_from(_late_world(), CFG)
    assert starts["contacts"] == T("2023-06-01")  # 150 days after the first row: late
    assert starts["campaign_events"] == T("2023-01-02")


def test_features_of_a_table_before_its_first_row_are_missing_not_zero():
    t, _, _ = _features(_late_world(), ["2023-05-01", "2023-09-15"])
    before = t.loc[("old", T("2023-05-01"))]
    # contacts start 2023-06-01: nothing of them is known at 05-01 (not "0 contacts")
    assert np.isnan(before["contacts__events__30d"])
    assert np.isnan(before["contacts__inbound__7d"])
    assert np.isnan(before["contacts__events__days_since"])
    # campaign events are covered: real values
    assert before["campaigns__events__30d"] == 0 and before["campaigns__running__now"] == 1
    # 09-15: the 7- and 30-day windows are covered, the 90-day window (from 06-17)
    # is too ... but the 90d trend reaches back 180 days: before 06-01, unknown
    after = t.loc[("old", T("2023-09-15"))]
    assert after["contacts__events__30d"] == 0
    assert after["contacts__events__90d"] == 1
    assert after["contacts__events__30d__trend"] == -1  # 0 in the last 30 vs 1 before
    # a client who signed up after the coverage began has its whole history covered
    new = t.loc[("new", T("2023-09-15"))]
    assert new["contacts__events__90d"] == 1


def test_windows_reaching_before_the_coverage_are_missing_for_older_clients():
    t, _, _ = _features(_late_world(), ["2023-07-15"])
    old = t.loc[("old", T("2023-07-15"))]
    # [07-08, 07-15) is covered; [06-15, 07-15) too; [04-16, 07-15) reaches before 06-01
    assert old["contacts__events__7d"] == 0
    assert old["contacts__events__30d"] == 0
    assert np.isnan(old["contacts__events__90d"])
    assert old["contacts__events__days_since"] == 44  # 06-01 10:00 -> day 06-01


def test_rows_after_t_do_not_change_the_coverage_masks_at_t():
    """A table with no row before T is unknown at T whatever comes later (or never)."""
    base = _late_world()
    later = _late_world(
        activity=[("old", T("2023-11-01"), "login", 1.0), ("new", T("2023-11-02"), "login", 1.0)]
    )
    empty = _late_world(activity=pd.DataFrame(columns=["client_id", "ts", "event", "value"]))
    spec = resolve_spec(later, CFG)
    got = []
    for ds in (later, empty):
        spine = pd.DataFrame({"client_id": ["old", "new"], "as_of": [T("2023-10-01")] * 2})
        got.append(build_features(ds, spine, CFG, spec)[0])
    pd.testing.assert_frame_equal(got[0], got[1])
    assert got[0]["activity__events__30d"].isna().all()
    assert base is not None


def test_snapshots_start_after_the_latest_coverage_plus_warmup():
    ds = _late_world()
    cfg = override(CFG, "label", horizon_days=7)  # the default config's sources read contacts
    dates = snapshot_dates(ds, cfg)
    # contacts cover from 2023-06-01; + 60 warm-up days = 07-31 (a Monday)
    assert dates[0] == T("2023-07-31")
    # waiting only for the campaign log starts 60 days after its first row (next Monday)
    cfg2 = build_config(
        {"label": {"horizon_days": 7}, "snapshots": {"wait_for": ["campaign_events"]}}
    )
    assert snapshot_dates(ds, cfg2)[0] == T("2023-03-06")


def test_a_table_starting_within_the_slack_covers_from_the_data_start():
    ds = _late_world()
    cfg = build_config({"data": {"coverage_slack_days": 200}})
    assert covered_from(ds, cfg)["contacts"] == T("2023-01-02")


def test_a_label_needs_the_label_source_to_cover_the_horizon():
    # the freezes table ends 2023-10-01 (more than max_lag_days before the data end)
    ds = _late_world(
        freezes=[("old", T("2023-01-20"), T("2023-02-01")), ("new", T("2023-10-01"), None)]
    )
    dates = snapshot_dates(ds, build_config({"snapshots": {"wait_for": ["campaign_events"]}}))
    assert dates[-1] + pd.Timedelta(days=30) <= T("2023-10-01")
    assert dates[-1] + pd.Timedelta(days=37) > T("2023-10-01")
    # a label source that runs to the end of the data: label windows up to the data end
    ds2 = _late_world(freezes=[("old", T("2023-01-20"), T("2023-12-29"))])
    dates2 = snapshot_dates(ds2, build_config({"snapshots": {"wait_for": ["campaign_events"]}}))
    assert (
        dates2[-1] + pd.Timedelta(days=30) <= T("2023-12-31") < dates2[-1] + pd.Timedelta(days=37)
    )


def _pop_world(**kw):
    return make_ds(
        {
            "clients": [
                ("a", "2024-01-01", *NONE8),
                ("b", "2024-01-01", *NONE8),
                ("c", "2024-01-01", *NONE8),
            ],
            "campaign_events": [
                (c, "k" + c, T("2024-01-02"), "started", "client", None, None) for c in "abc"
            ]
            + [("a", "ka", T("2024-06-29"), "budget_changed", "client", None, 1.0)],
            "freezes": [
                ("a", T("2024-02-01 10:00"), T("2024-03-01 00:00")),  # ends exactly at 03-01
                ("b", T("2024-02-01 10:00"), T("2024-03-01 15:00")),  # ends during 03-01
                ("c", T("2024-03-20"), None),
            ],
            **kw,
        },
        end="2024-06-30",
    )


def test_a_freeze_that_ends_on_t_is_not_active_at_t():
    ds = _pop_world()
    derive_freezes(ds, CFG)
    spine = build_spine(ds, CFG, [T("2024-03-01"), T("2024-03-02")])
    at = {(r.client_id, r.as_of.strftime("%m-%d")) for r in spine.itertuples()}
    assert ("a", "03-01") not in at and ("b", "03-01") not in at  # the scorer cannot know
    assert ("a", "03-02") in at and ("b", "03-02") in at
    assert ("c", "03-01") in at


def test_ended_clients_are_neither_active_nor_positive():
    cfg = build_config({"label": {"ended": {"column": "ended_at"}}})
    ds = _pop_world()
    ds.con.execute("ALTER TABLE clients ADD COLUMN ended_at TIMESTAMP")
    # c's course ended on 03-10, before its freeze on 03-20: not a positive
    ds.con.execute("UPDATE clients SET ended_at = TIMESTAMP '2024-03-10' WHERE client_id = 'c'")
    derive_freezes(ds, cfg)
    spine = build_spine(ds, cfg, [T("2024-03-04"), T("2024-03-10"), T("2024-03-11")])
    got = {(r.client_id, r.as_of.strftime("%m-%d")): r.label for r in spine.itertuples()}
    assert got[("c", "03-04")] == 0  # freezes 03-20, but the relationship ended 03-10
    assert ("c", "03-10") not in got and ("c", "03-11") not in got  # ended from that date on
    # without the end, c is a positive at 03-04
    plain = build_spine(_pop_world(), CFG, [T("2024-03-04")])
    assert plain.set_index("client_id").loc["c", "label"] == 1


def test_ended_from_a_table_uses_the_first_row():
    cfg = build_config(
        {
            "data": {"event_tables": {"exits": {"categories": [], "numerics": []}}},
            "label": {"ended": {"table": "exits"}},
        }
    )
    ds = _pop_world()
    ds.con.execute(
        "CREATE TABLE exits AS SELECT * FROM (VALUES ('a', TIMESTAMP '2024-04-05 12:00'), "
        "('a', TIMESTAMP '2024-05-01')) t(client_id, ts)"
    )
    ds.present.add("exits")
    derive_freezes(ds, cfg)
    spine = build_spine(ds, cfg, [T("2024-04-05"), T("2024-04-06")])
    at = {(r.client_id, r.as_of.strftime("%m-%d")) for r in spine.itertuples()}
    assert ("a", "04-05") in at and ("a", "04-06") not in at
    missing = build_config({"label": {"ended": {"table": "nope"}}})
    with pytest.raises(DataError, match="nope"):
        build_spine(_pop_world(), missing, [T("2024-04-05")])


def test_static_client_columns_become_features(tmp_path):
    d = make_valid_dir(tmp_path / "v")
    clients = pd.read_csv(d / "clients.csv", dtype=str, keep_default_na=False)
    clients["country"] = ["de", "de", "fr", ""]
    clients["age"] = ["31", "", "45", "50"]
    clients.to_csv(d / "clients.csv", index=False)
    cfg = build_config(
        {"data": {"client_columns": {"numerics": ["age"], "categories": ["country"]}}}
    )
    ds = load_dataset(d, cfg)
    spine = pd.DataFrame({"client_id": ["c1", "c2", "c3", "c4"], "as_of": [T("2024-03-01")] * 4})
    table, catalog, spec = build_features(ds, spine, cfg)
    t = table.set_index("client_id")
    assert spec["static"]["categories"]["country"] == ["de", "fr"]
    assert t.loc["c1", "profile__client_age"] == 31 and np.isnan(
        t.loc["c2", "profile__client_age"]
    )
    assert t.loc["c1", "profile__client_country_de"] == 1
    assert t.loc["c3", "profile__client_country_de"] == 0
    assert t.loc["c3", "profile__client_country_fr"] == 1
    assert np.isnan(t.loc["c4", "profile__client_country_fr"])  # empty: unknown
    assert {"profile__client_age", "profile__client_country_de"} <= {f.name for f in catalog}
    # a declared column that the file lacks is a contract error naming it
    clients.drop(columns=["age"]).to_csv(d / "clients.csv", index=False)
    with pytest.raises(DataError, match="age"):
        load_dataset(d, cfg)


def test_dedup_respects_a_declared_event_id(tmp_path):
    d = make_valid_dir(tmp_path / "v")
    act = pd.DataFrame(
        {
            "client_id": ["c1", "c1", "c1"],
            "ts": ["2024-02-01", "2024-02-01", "2024-02-01"],
            "event": ["lesson", "lesson", "lesson"],
            "value": ["", "", ""],
            "event_id": ["e1", "e2", "e2"],  # two distinct lessons, one exported twice
        }
    )
    act.to_csv(d / "activity.csv", index=False)
    plain = load_dataset(d, build_config({}))
    assert plain.con.execute("SELECT count(*) FROM activity").fetchall()[0][0] == 1
    cfg = build_config({"data": {"event_ids": {"activity": "event_id"}}})
    ds = load_dataset(d, cfg)
    assert ds.con.execute("SELECT count(*) FROM activity").fetchall()[0][0] == 2
    assert ds.report.tables["activity"].rows_duplicate == 1
    assert validate(d, cfg).tables["activity"].rows_duplicate == 1


def test_validate_shows_each_tables_coverage(tmp_path):
    d = make_valid_dir(tmp_path / "v")
    r = CliRunner().invoke(app, ["validate", "--data", str(d)])
    assert "covers 2024-01-02 09:00:00 .. 2024-03-01 12:00:00" in r.output
    r = CliRunner().invoke(app, ["validate", "--data", str(d), "--format", "json"])
    t = json.loads(r.stdout)["tables"]["campaign_events"]  # logs go to stderr
    assert t["first_ts"] == "2024-01-02 09:00:00" and t["last_ts"] == "2024-03-01 12:00:00"


def test_stale_data_is_refused_unless_allowed(tmp_path):
    d = make_valid_dir(tmp_path / "v")
    cfg = build_config({"data": {"required_tables": ["clients", "campaign_events", "contacts"]}})
    ds = load_dataset(d, cfg)
    # contacts end 2024-02-12 09:15: fresh for 2024-02-14, stale for 2024-02-16
    check_fresh(ds, cfg, T("2024-02-14"))
    with pytest.raises(DataError, match=r"contacts ends 2024-02-12 09:15:00 \(4 days"):
        check_fresh(ds, cfg, T("2024-02-16"))
    check_fresh(ds, cfg, T("2024-02-16"), allow_stale=True)
    # invoices (last payment 2024-02-05) are required by default
    with pytest.raises(DataError, match="invoices ends"):
        check_fresh(ds, CFG, T("2024-02-14"))
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'empty.db'}"}
    args = ["score", "--data", str(d), "--as-of", "2024-06-01", "--out", str(tmp_path / "l.csv")]
    r = CliRunner().invoke(app, args, env=env)
    assert r.exit_code == 2 and "stale" in r.output and "contacts" in r.output
    assert not (tmp_path / "l.csv").exists()
    r = CliRunner().invoke(app, [*args, "--allow-stale"], env=env)
    assert r.exit_code == 3  # past the freshness gate: no model in this store


def test_lookbacks_of_windows_trends_states_and_lifetime_counts():
    from churnpredict.features.catalog import Feature
    from churnpredict.features.coverage import LIFETIME, lookback_days

    assert lookback_days(Feature("x__events__30d", "x", "d", "count", 30)) == 30
    assert lookback_days(Feature("x__events__30d__trend", "x", "d", "trend", 30)) == 60
    assert lookback_days(Feature("x__events__days_since", "x", "d", "days_since")) == 0
    assert lookback_days(Feature("x__events__total", "x", "d", "count")) == LIFETIME


def test_config_errors_for_population_columns_name_the_column():
    cfg = build_config({"label": {"ended": {"column": "ended_at"}}})
    with pytest.raises(DataError, match="ended_at"):
        build_spine(_pop_world(), cfg, [T("2024-03-04")])
    cfg = build_config({"data": {"client_columns": {"numerics": ["age"]}}})
    spine = pd.DataFrame({"client_id": ["a"], "as_of": [T("2024-03-04")]})
    with pytest.raises(DataError, match="age"):
        build_features(_pop_world(), spine, cfg)
    with pytest.raises(ConfigError, match="both numeric and category"):
        build_config({"data": {"client_columns": {"numerics": ["x"], "categories": ["x"]}}})


def test_clients_frozen_before_the_freezes_table_begins_stay_frozen():
    """The freezes export starts 2023-06-01; x has run nothing since 2023-03-01."""
    ds = make_ds(
        {
            "clients": [("x", "2023-01-01", *NONE8), ("y", "2023-01-01", *NONE8)],
            "campaign_events": [
                ("x", "k1", T("2023-01-02"), "started", "client", None, None),
                ("x", "k1", T("2023-03-01 10:00"), "paused", "client", None, None),
                ("x", "k1", T("2023-08-10 10:00"), "resumed", "client", None, None),
                ("y", "k2", T("2023-01-02"), "started", "client", None, None),
                ("y", "k2", T("2023-12-30"), "budget_changed", "client", None, 2.0),
            ],
            "freezes": [("y", T("2023-06-01 12:00"), T("2023-06-20"))],
        },
        start="2023-01-01",
        end="2023-12-31",
    )
    f = derive_freezes(ds, CFG)
    x = f[f.client_id == "x"]
    assert list(x.frozen_at) == [T("2023-03-15 10:00")]  # the idle rule, before 06-01
    assert list(x.unfrozen_at) == [T("2023-08-10 10:00")]
    spine = build_spine(ds, CFG, [T("2023-07-31"), T("2023-08-14")])
    at = {(r.client_id, r.as_of.strftime("%m-%d")): r.label for r in spine.itertuples()}
    assert ("x", "07-31") not in at and at[("x", "08-14")] == 0
    assert at[("y", "07-31")] == 0
    # when the freezes table covers as far back as the campaign log, it alone decides
    full = make_ds(
        {
            "clients": [("x", "2023-01-01", *NONE8)],
            "campaign_events": [
                ("x", "k1", T("2023-01-02"), "started", "client", None, None),
                ("x", "k1", T("2023-03-01 10:00"), "paused", "client", None, None),
            ],
            "freezes": [("x", T("2023-01-10"), T("2023-01-11"))],
        },
        start="2023-01-01",
        end="2023-12-31",
    )
    assert len(derive_freezes(full, CFG)) == 1


def test_an_empty_required_table_is_stale_data(tmp_path):
    """An export that came out empty (header only) is refused like one that ended long ago."""
    d = make_valid_dir(tmp_path / "v")
    header = (d / "contacts.csv").read_text(encoding="utf-8").splitlines()[0]
    (d / "contacts.csv").write_text(header + "\n", encoding="utf-8")
    cfg = build_config({"data": {"required_tables": ["clients", "campaign_events", "contacts"]}})
    ds = load_dataset(d, cfg)
    assert "contacts" in ds.present and "contacts" not in table_coverage(ds, cfg)
    with pytest.raises(DataError, match="contacts has no rows") as err:
        check_fresh(ds, cfg, T("2024-02-14"))
    assert err.value.file.endswith("contacts.csv")
    check_fresh(ds, cfg, T("2024-02-14"), allow_stale=True)
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'empty.db'}"}
    out = tmp_path / "lists" / "l.csv"
    args = ["score", "--data", str(d), "--as-of", "2024-02-14", "--out", str(out)]
    r = CliRunner().invoke(app, args, env=env)
    assert r.exit_code == 2 and "contacts has no rows" in r.output, r.output
    assert not out.parent.exists()
