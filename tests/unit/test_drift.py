"""Drift: PSI per feature, missing features, warn and fail thresholds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from churnpredict.config import Config, DriftConfig
from churnpredict.drift import (
    FeatureCounts,
    check_drift,
    drift_reference,
    psi,
    reference_stats,
    training_stats,
)
from churnpredict.errors import DataError, DriftError


def _frame(n: int, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(0.5, n).astype(float)
    counts[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "client_id": [f"c{i}" for i in range(n)],
            "spend__spend__30d": rng.normal(100 + shift, 20, n),
            "contacts__complaint__30d": counts,
            "profile__tenure_days": rng.integers(0, 700, n).astype(float),
        }
    )


def test_stats_format_and_json():
    st = training_stats(_frame(2000))
    assert "client_id" not in st
    s = st["spend__spend__30d"]
    assert len(s["shares"]) == len(s["edges"]) + 1
    assert sum(s["shares"]) == pytest.approx(1.0)
    assert np.all(np.diff(s["edges"]) > 0)
    assert st["contacts__complaint__30d"]["missing"] == pytest.approx(0.1, abs=0.03)
    assert json.loads(json.dumps(st)) == st


def test_same_distribution_low_psi_shifted_high():
    st = training_stats(_frame(5000, seed=0))
    same = psi(st, _frame(5000, seed=1)).set_index("feature")["psi"]
    assert (same < 0.05).all()
    shifted = psi(st, _frame(5000, shift=30, seed=1)).set_index("feature")["psi"]
    assert shifted["spend__spend__30d"] > 0.5
    assert shifted["profile__tenure_days"] < 0.05


def test_null_share_change_is_drift():
    st = training_stats(_frame(5000))
    today = _frame(5000, seed=2)
    today["profile__tenure_days"] = np.nan
    val = psi(st, today).set_index("feature").loc["profile__tenure_days", "psi"]
    assert val > 1


def test_missing_feature_raises_data_error():
    X = _frame(500)
    st = training_stats(X)
    with pytest.raises(DataError, match="contacts__complaint__30d"):
        check_drift(st, X.drop(columns="contacts__complaint__30d"), list(st), Config())


def test_warn_and_fail_actions():
    st = training_stats(_frame(3000))
    today = _frame(3000, shift=30, seed=3)
    rep = check_drift(st, today, list(st), Config())
    assert rep.warn == ["spend__spend__30d"] and rep.fail == ["spend__spend__30d"]
    assert "spend__spend__30d" in rep.text()
    with pytest.raises(DriftError) as err:
        check_drift(st, today, list(st), DriftConfig(action="fail", fail_min_features=1))
    assert err.value.exit_code == 5
    # by default one shifted feature of a table is a warning, not a broken feed
    one = check_drift(st, today, list(st), DriftConfig(action="fail"))
    assert one.fail == ["spend__spend__30d"] and one.tripped == []
    ok = check_drift(st, _frame(3000, seed=4), list(st), DriftConfig(action="fail"))
    assert ok.ok and ok.fail == []


def test_expected_without_stats_is_listed():
    X = _frame(300)
    st = training_stats(X, features=["spend__spend__30d"])
    rep = check_drift(st, X, ["spend__spend__30d", "profile__tenure_days"], Config())
    assert rep.no_stats == ["profile__tenure_days"]


# ------------------------------------------------- reference = latest training dates
def _catalog():
    from churnpredict.features.catalog import Feature

    out = [Feature("profile__tenure_days", "profile", "days since signup", "state")]
    out += [Feature(f"contacts__n{i}__7d", "contacts", "contacts", "count", 7) for i in range(5)]
    out += [Feature("contacts__events__days_since", "contacts", "days since", "days_since")]
    out += [Feature("spend__spend__30d", "spend", "spend", "sum", 30)]
    return out


def _world_table(dates, seed=0, n=1500, contacts_rate=2.0, start_tenure=200):
    """Weekly snapshots of one client base that only ages: tenure and recency grow."""
    rng = np.random.default_rng(seed)
    tenure0 = rng.integers(0, start_tenure, n).astype(float)
    frames = []
    for d in dates:
        age = (pd.Timestamp(d) - pd.Timestamp(dates[0])).days
        f = {"client_id": [f"c{i}" for i in range(n)], "as_of": pd.Timestamp(d)}
        f["profile__tenure_days"] = tenure0 + age
        for i in range(5):
            f[f"contacts__n{i}__7d"] = rng.poisson(contacts_rate, n).astype(float)
        last = rng.exponential(10, n)
        f["contacts__events__days_since"] = np.where(contacts_rate > 0, last, last + 60)
        f["spend__spend__30d"] = rng.gamma(2, 50, n)
        frames.append(pd.DataFrame(f))
    return pd.concat(frames, ignore_index=True)


def test_reference_is_the_latest_dates_and_aged_growth_features_do_not_fail():
    dates = pd.date_range("2024-01-01", periods=40, freq="7D")
    table = _world_table(dates)
    ref = reference_stats(table, _catalog(), n_dates=4)
    assert ref["as_of"] == [str(d.date()) for d in dates[-4:]]
    assert ref["stats"]["profile__tenure_days"]["scale"] == "recency"
    assert ref["stats"]["contacts__n0__7d"]["scale"] == "quantile"
    assert json.loads(json.dumps(ref)) == ref
    # a normal day, 45 days after the reference: the base only aged
    today = _world_table([dates[0], dates[-1] + pd.Timedelta(days=45)], seed=9)
    today = today[today["as_of"] == today["as_of"].max()]
    feats = [f.name for f in _catalog()]
    rep = check_drift(ref, today, feats, DriftConfig(action="fail"))
    assert rep.tripped == [] and rep.fail == []
    assert "latest training dates" in rep.text()
    # the old reference (all training history, quantile bins) flags tenure on that day
    old = check_drift(training_stats(table, features=feats), today, feats, DriftConfig())
    assert "profile__tenure_days" in old.fail


def test_a_stopped_table_trips_the_gate_and_is_named():
    dates = pd.date_range("2024-01-01", periods=12, freq="7D")
    ref = reference_stats(_world_table(dates), _catalog())
    stopped = _world_table([dates[-1] + pd.Timedelta(days=14)], seed=3, contacts_rate=0)
    feats = [f.name for f in _catalog()]
    with pytest.raises(DriftError) as err:
        check_drift(ref, stopped, feats, DriftConfig(action="fail"))
    msg = str(err.value)
    assert err.value.exit_code == 5
    assert "contacts (6 features)" in msg
    assert "contacts: 6 of 6 features shifted" in msg and "did the export stop?" in msg
    assert "spend" not in msg.split("\n")[0]
    warn = check_drift(ref, stopped, feats, DriftConfig(action="warn"))
    assert warn.tripped == ["contacts"]


def test_old_models_fall_back_to_their_fit_rows():
    from types import SimpleNamespace

    st = training_stats(_frame(500))
    assert drift_reference(SimpleNamespace(metadata_={}, train_stats_=st)) is st
    ref = {"stats": st, "as_of": ["2024-01-01"], "family": {}, "kind": {}}
    model = SimpleNamespace(metadata_={"drift_reference": ref}, train_stats_={})
    assert drift_reference(model) is ref


def test_a_single_feature_past_the_warning_line_is_no_warning_and_lifetime_counts_are_left_out():
    from churnpredict.drift import reference_stats
    from churnpredict.features.catalog import Feature

    cfg = DriftConfig(fail_min_features=3)
    ref = {f: {"edges": [0.5], "shares": [1.0, 0.0], "missing": 0.0} for f in "abcd"}
    names = ["spend__a", "spend__b", "spend__c", "contacts__d"]
    stats = {n: ref[n[-1]] for n in names}
    shifted = pd.DataFrame({n: np.r_[np.zeros(90), np.ones(10)] for n in names})  # PSI ~0.7
    mild = pd.DataFrame({n: np.r_[np.zeros(97), np.ones(3)] for n in names})  # PSI ~0.2

    def report(frame, cols):
        return check_drift(stats, frame[cols], cols, cfg)

    assert report(mild, ["spend__a", "contacts__d"]).ok  # one per table past psi_warn
    r = report(mild, names)
    assert not r.ok and r.noisy == ["spend"]  # three in one table
    assert not report(shifted, ["spend__a"]).ok  # past psi_fail
    rows = pd.DataFrame(
        {
            "as_of": pd.to_datetime(["2024-01-01"] * 3),
            "spend__events__total": [10.0, 20.0, 30.0],
            "spend__events__7d": [1.0, 2.0, 3.0],
        }
    )
    cat = [
        Feature("spend__events__total", "spend", "days with spend since the first", "count"),
        Feature("spend__events__7d", "spend", "days with spend in the last 7 days", "count", 7),
    ]
    ref = reference_stats(rows, cat)
    assert set(ref["stats"]) == {"spend__events__7d"}


@pytest.mark.parametrize("contacts_rate", [2.0, 0.0])
def test_counts_added_over_parts_give_the_report_of_the_whole_table(contacts_rate):
    """``score --engine spark`` counts each partition on an executor (FeatureCounts) and
    adds the parts: the drift report must be the one of the whole table."""
    dates = pd.date_range("2024-01-01", periods=12, freq="7D")
    ref = reference_stats(_world_table(dates), _catalog())
    today = _world_table([dates[-1] + pd.Timedelta(days=7)], seed=4, contacts_rate=contacts_rate)
    today.loc[today.index[:300], "spend__spend__30d"] = np.nan  # nulls in one part only
    feats = [f.name for f in _catalog()]
    whole = check_drift(ref, today, feats, DriftConfig(action="warn"))
    parts = [today.iloc[:300], today.iloc[300:301], today.iloc[301:]]
    counts = FeatureCounts.of(ref["stats"], parts[0])
    for p in parts[1:]:
        counts.add(FeatureCounts.of(ref["stats"], p))
    assert counts.columns == list(today.columns)
    split = check_drift(ref, counts, feats, DriftConfig(action="warn"))
    pd.testing.assert_frame_equal(split.table, whole.table, rtol=1e-12)
    assert split.text() == whole.text()
    assert split.tripped == whole.tripped and split.warn == whole.warn
    assert whole.warn  # the null spend shifts it
    # the means (stopped export) are exercised: asked exactly when contacts stopped
    assert ("did the export stop?" in whole.text()) == (contacts_rate == 0)
    # a feature the model needs and the counts lack is still an error
    with pytest.raises(DataError):
        check_drift(ref, FeatureCounts.of(ref["stats"], today.drop(columns=feats[0])), feats,
                    DriftConfig())  # fmt: skip
