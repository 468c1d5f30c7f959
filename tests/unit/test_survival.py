"""Time to freeze: person-period rows, censoring, the curve, anchoring, a known hazard."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnpredict.config import build_config, load_config
from churnpredict.modeling import survival as sv
from churnpredict.modeling.survival_eval import KaplanMeierBaseline, tenure_band

CFG = load_config()
EDGES = sv.bin_edges(CFG)


def test_bin_edges_hold_7_days_the_horizon_and_the_max_horizon():
    assert EDGES.tolist() == [0, 7, 14, 30, 60, 90]
    cfg = build_config({"label": {"horizon_days": 45, "max_horizon_days": 120}})
    assert sv.bin_edges(cfg).tolist() == [0, 7, 14, 30, 45, 60, 120]


def test_a_censored_snapshot_counts_only_the_bins_it_covers():
    # freeze_day, followup: a freeze on day 10; no freeze in 40 covered days; a freeze on
    # day 35 seen, but the follow-up (40 days) ends inside its bin (31-60)
    idx, bins, y = sv.expand(np.array([10, 0, 35]), np.array([90, 40, 40]), EDGES)
    got = sorted(zip(idx.tolist(), bins.tolist(), y.tolist(), strict=True))
    assert got == [
        (0, 0, 0.0),
        (0, 1, 1.0),  # days 8-14: the freeze; nothing after it
        (1, 0, 0.0),
        (1, 1, 0.0),
        (1, 2, 0.0),  # covered to day 40: bins up to day 30 only, never "no freeze" after
        (2, 0, 0.0),
        (2, 1, 0.0),
        (2, 2, 0.0),  # the bin of the freeze is not covered to its end: left out too
    ]


def test_targets_cut_the_follow_up_at_a_cutoff():
    table = pd.DataFrame(
        {
            "as_of": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-02-01"]),
            "followup_days": [90, 90, 90],
            "freeze_day": [20, 70, 5],
        }
    )
    fd, fu = sv.targets(table, pd.Timestamp("2024-03-01"))
    assert fu.tolist() == [60, 60, 29]
    assert fd.tolist() == [20, 0, 5]  # day 70 is after the cutoff: not seen yet


def test_anchor_keeps_the_shape_and_meets_the_risk_at_the_horizon():
    rng = np.random.default_rng(0)
    h = rng.uniform(0, 0.2, size=(500, len(EDGES) - 1))
    h[:5] = 0.0  # no hazard at all: a constant daily hazard through the anchor
    Hb = np.cumsum(-np.log1p(-h), axis=1)
    risk = rng.uniform(0, 0.99, size=500)
    out = sv.anchor(Hb, EDGES, 30, risk)
    o = sv.outputs(out, EDGES, 30)
    np.testing.assert_allclose(o["risk_h"], risk, rtol=1e-9, atol=1e-12)
    assert (o["risk_7d"] <= risk + 1e-12).all() and (risk <= o["risk_90d"] + 1e-12).all()
    S = sv.survival_curve(out, EDGES, np.arange(0, 91))
    assert (np.diff(S, axis=1) <= 1e-12).all() and np.allclose(S[:, 0], 1.0)
    # the shape: the share of the 30-day cumulative hazard reached by day 7 is kept
    keep = Hb[:, 2] > 0
    np.testing.assert_allclose(out[keep, 0] / out[keep, 2], Hb[keep, 0] / Hb[keep, 2])
    np.testing.assert_allclose(out[:5, 0] / out[:5, 2], 7 / 30)
    # after the horizon the hazard model's own increments are kept
    np.testing.assert_allclose(out[:, 3:] - out[:, [2]], Hb[:, 3:] - Hb[:, [2]], atol=1e-12)


def test_expected_days_is_the_restricted_mean_of_the_curve():
    lam = 0.01
    Hb = (lam * EDGES[1:]).astype(float)[None, :]
    assert sv.expected_days(Hb, EDGES)[0] == pytest.approx((1 - np.exp(-lam * 90)) / lam)
    assert sv.expected_days(np.zeros((1, 5)), EDGES)[0] == pytest.approx(90.0)
    # numerically: the integral of S over [0, 90]
    t = np.linspace(0, 90, 90_001)
    S = sv.survival_curve(np.array([[0.01, 0.5, 0.6, 1.0, 1.1]]), EDGES, t)[0]
    assert sv.expected_days(np.array([[0.01, 0.5, 0.6, 1.0, 1.1]]), EDGES)[0] == pytest.approx(
        np.trapezoid(S, t), rel=1e-6
    )


def _known_world(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, dict]:
    """Snapshots with a known daily hazard per group, half of them censored early."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, n).astype(float)
    lam = {0.0: 0.001, 1.0: 0.004, 2.0: 0.02}
    daily = np.vectorize(lam.get)(x)
    day = rng.geometric(daily)  # first freeze day: P(day = d) = (1 - p)^(d - 1) p
    followup = np.where(rng.random(n) < 0.5, 90, rng.integers(1, 91, n))
    freeze_day = np.where(day <= followup, day, 0)
    X = pd.DataFrame({"x": x, "noise": rng.normal(size=n)})
    return X, freeze_day, followup, lam


def test_the_hazard_model_recovers_a_known_hazard_under_heavy_censoring():
    X, fd, fu, lam = _known_world(60_000, 1)
    params = CFG.model.model_copy(
        update={"survival_negative_rate": 0.3, "num_leaves": 4, "learning_rate": 0.2}
    )
    hz = sv.HazardModel(params, EDGES, ["x", "noise"]).fit(X, fd, fu, n_trees=60)
    grid = pd.DataFrame({"x": [0.0, 1.0, 2.0], "noise": [0.0, 0.0, 0.0]})
    S = sv.survival_curve(hz.cumhaz(grid), EDGES, [7, 14, 30, 60, 90])
    for i, g in enumerate([0.0, 1.0, 2.0]):
        want = (1 - lam[g]) ** np.array([7, 14, 30, 60, 90])
        # boosting's shrinkage leaves a few points (Kaplan-Meier per group: < 0.005)
        np.testing.assert_allclose(S[i], want, atol=0.04, err_msg=f"group {g}")
    assert S[0, -1] > S[1, -1] > S[2, -1]
    # counting the freezes of a bin the follow-up ends inside, but not its survivors,
    # would put the 90-day risk of the middle group far above the truth (~0.30)
    assert 1 - S[1, -1] < 1.15 * (1 - (1 - lam[1.0]) ** 90)


def test_the_hazard_model_round_trips_through_json():
    X, fd, fu, _ = _known_world(5_000, 2)
    hz = sv.HazardModel(CFG.model, EDGES, ["x", "noise"]).fit(X, fd, fu, n_trees=10)
    back = sv.HazardModel.from_dict(hz.to_dict())
    np.testing.assert_allclose(back.cumhaz(X.head(50)), hz.cumhaz(X.head(50)))
    out, Hb = sv.predict_outputs(back, X.head(50), np.full(50, 0.2), 30)
    assert list(out.columns) == ["risk_7d", "risk_14d", "risk_90d", "expected_active_days"]
    assert (out["risk_7d"] <= 0.2 + 1e-12).all() and (out["risk_90d"] >= 0.2 - 1e-12).all()


def test_kaplan_meier_baseline_per_group_and_tenure_bands():
    X, fd, fu, lam = _known_world(40_000, 3)
    groups = X["x"].astype(int).astype(str).to_numpy()
    km = KaplanMeierBaseline(min_rows=100).fit(groups, fd, fu, [30, 90])
    S = km.predict(np.array(["0", "2", "unknown"]))
    np.testing.assert_allclose(S[0], (1 - lam[0.0]) ** np.array([30, 90]), atol=0.02)
    np.testing.assert_allclose(S[1], (1 - lam[2.0]) ** np.array([30, 90]), atol=0.02)
    np.testing.assert_allclose(S[2], km.overall_)  # an unseen group: the overall curve
    assert tenure_band(np.array([5, 30, 31, 200, 400, np.nan])).tolist() == [
        "<=30",
        "<=30",
        "<=90",
        "<=365",
        ">365",
        "-",
    ]


def test_a_saved_model_keeps_its_curve_and_scores_consistent_horizons(tmp_path):
    from churnpredict.modeling.model import ChurnModel

    X, fd, fu, _ = _known_world(8_000, 4)
    y = ((fd >= 1) & (fd <= 30)).astype(float)
    model = ChurnModel(CFG.model).fit(X, y, None, None, X, y, n_trees=10)
    model.metadata_["horizon_days"] = 30
    assert model.predict_horizons(X.head(3)).shape == (3, 0)  # no curve: no columns
    model.survival_ = sv.HazardModel(CFG.model, EDGES, ["x", "noise"]).fit(X, fd, fu, n_trees=10)
    back = ChurnModel.load(model.save(tmp_path / "m"))
    risk = back.predict_risk(X)
    out = back.predict_horizons(X, risk)
    pd.testing.assert_frame_equal(out, model.predict_horizons(X))
    assert (out["risk_7d"] <= risk + 1e-12).all() and (risk <= out["risk_90d"] + 1e-12).all()
    assert out["expected_active_days"].between(0, 90).all()


def _two_phase_world(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Daily hazard 0.004 up to day 30, then 0.001 (z = 0) or 0.012 (z = 1); censored."""
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 2, n).astype(float)
    early = rng.geometric(0.004, n)
    late = 30 + rng.geometric(np.where(z == 1, 0.012, 0.001))
    day = np.where(early <= 30, early, late)
    followup = np.where(rng.random(n) < 0.6, 90, rng.integers(1, 91, n))
    freeze_day = np.where(day <= followup, day, 0)
    X = pd.DataFrame({"z": z, "noise": rng.normal(size=n)})
    return X, freeze_day, followup


def test_the_long_booster_learns_only_the_bins_after_the_horizon():
    X, fd, fu = _two_phase_world(60_000, 5)
    params = CFG.model.model_copy(
        update={"survival_negative_rate": 1.0, "num_leaves": 4, "learning_rate": 0.2}
    )
    first = sv.long_first_bin(EDGES, 30)
    assert first == 3 and sv.long_first_bin(EDGES, 90) is None
    hz = sv.HazardModel(params, EDGES, ["z", "noise"]).fit(X, fd, fu, n_trees=40)
    hz.long_ = sv.HazardModel(params, EDGES, ["z", "noise"], first_bin=first).fit(
        X, fd, fu, n_trees=40
    )
    _, bins, _ = sv.expand(fd, fu, EDGES)
    assert hz.long_.metadata_["n_rows"] == int((bins >= first).sum())  # its bins' rows only
    grid = pd.DataFrame({"z": [0.0, 1.0], "noise": [0.0, 0.0]})
    h = hz.bin_hazards(grid)
    own = sv.HazardModel.bin_hazards(hz.long_, grid)
    assert np.isnan(own[:, :first]).all()
    np.testing.assert_array_equal(h[:, first:], own[:, first:])  # the long booster's bins
    S = sv.survival_curve(hz.cumhaz(grid), EDGES, [30, 60, 90])
    for i, lam in enumerate([0.001, 0.012]):
        np.testing.assert_allclose(S[i, 2] / S[i, 0], (1 - lam) ** 60, atol=0.04)
    back = sv.HazardModel.from_dict(hz.to_dict())
    assert back.long_ is not None and back.long_.first_bin == first
    np.testing.assert_allclose(back.cumhaz(X.head(50)), hz.cumhaz(X.head(50)))
    out, _ = sv.predict_outputs(back, X.head(50), np.full(50, 0.1), 30)
    assert (out["risk_7d"] <= 0.1 + 1e-12).all() and (out["risk_90d"] >= 0.1 - 1e-12).all()


def test_a_model_saved_before_the_long_booster_still_loads():
    X, fd, fu, _ = _known_world(5_000, 6)
    hz = sv.HazardModel(CFG.model, EDGES, ["x", "noise"]).fit(X, fd, fu, n_trees=5)
    doc = hz.to_dict()
    del doc["first_bin"], doc["long"]
    back = sv.HazardModel.from_dict(doc)
    assert back.first_bin == 0 and back.long_ is None
    np.testing.assert_allclose(back.cumhaz(X.head(20)), hz.cumhaz(X.head(20)))


def test_train_prints_the_two_ratios_of_the_time_to_freeze_targets():
    from types import SimpleNamespace

    from churnpredict.pipeline import _survival_lines

    metrics = pd.DataFrame(
        {"pr_auc_7d": [0.9, 0.01, 0.98], "pr_auc_30d": [0.5, 0.06, 0.6]},
        index=["model", "paused_rule", "p_true"],
    ).assign(pr_auc_90d=[0.33, 0.1, 0.4], uno_c=[0.73, np.nan, 0.75], ibs=[0.04, np.nan, np.nan])
    group = pd.concat({"all": metrics}, names=["group", "scorer"]).assign(rows=10)
    sv_ = SimpleNamespace(
        metrics=metrics,
        by_group=group,
        fold=(pd.Timestamp("2025-01-06"), pd.Timestamp("2025-02-24")),
        horizons=(7, 30, 90),
        rows=10,
    )
    text = "\n".join(_survival_lines(SimpleNamespace(survival=sv_)))
    assert "90-day PR AUC 0.3300 = 0.825x the truth's (0.4000)" in text
    assert "7-day PR AUC 0.9000 = 90.0x the paused rule's (0.0100)" in text


def test_the_long_booster_refuses_a_validation_fold_without_its_bins():
    from churnpredict.errors import DataError

    X, fd, fu = _two_phase_world(5_000, 7)
    short = np.minimum(fu, 25)  # no validation row covers a bin after day 30
    with pytest.raises(DataError, match="nothing to stop early on"):
        sv.HazardModel(CFG.model, EDGES, ["z", "noise"], first_bin=3).fit(
            X, fd, fu, X, np.where(fd <= 25, fd, 0), short
        )
    # the shared booster still stops early on such a fold, as before
    hz = sv.HazardModel(CFG.model, EDGES, ["z", "noise"]).fit(
        X, fd, fu, X, np.where(fd <= 25, fd, 0), short
    )
    assert hz.best_iteration_ >= 1


def test_swap_parts_takes_one_part_of_the_90_day_risk_from_the_truth():
    from churnpredict.modeling.survival_eval import MODEL_FIRST, TRUTH_FIRST, swap_parts

    rng = np.random.default_rng(3)
    h = rng.uniform(0, 0.2, size=(200, len(EDGES) - 1))
    Hb = np.cumsum(-np.log1p(-h), axis=1)
    risk = rng.uniform(0, 0.9, size=200)
    p30 = rng.uniform(0, 0.9, size=200)
    p90 = p30 + (1 - p30) * rng.uniform(0, 0.5, size=200)
    out = swap_parts(risk, Hb, EDGES, 30, p30, p90)
    # the model's own risk at day 90 is the anchor's with its increments after day 30
    model90 = sv.outputs(sv.anchor(Hb, EDGES, 30, risk), EDGES, 30)["risk_90d"].to_numpy()
    truth_after = (p90 - p30) / (1 - p30)
    # the truth's first 30 days, the model's days 31-90 (the same increments as the anchor)
    np.testing.assert_allclose(
        out[TRUTH_FIRST], sv.outputs(sv.anchor(Hb, EDGES, 30, p30), EDGES, 30)["risk_90d"]
    )
    np.testing.assert_allclose(out[MODEL_FIRST], 1 - (1 - risk) * (1 - truth_after))
    assert (out[TRUTH_FIRST] >= p30 - 1e-12).all() and (out[MODEL_FIRST] >= risk - 1e-12).all()
    # when the model equals the truth in a part, swapping that part changes nothing
    same = swap_parts(risk, Hb, EDGES, 30, risk, model90)
    np.testing.assert_allclose(same[TRUTH_FIRST], model90)
    np.testing.assert_allclose(same[MODEL_FIRST], model90)
    # a truth sure of a freeze by day 30 says nothing about the days after it: the model's
    # own part is kept there, and its first 30 days are not handed the truth's certainty
    sure = swap_parts(risk[:3], Hb[:3], EDGES, 30, np.ones(3), np.ones(3))
    np.testing.assert_allclose(sure[TRUTH_FIRST], 1.0)
    np.testing.assert_allclose(sure[MODEL_FIRST], model90[:3])
