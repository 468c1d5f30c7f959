"""Metrics against values computed by hand on tiny arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from churnpredict.modeling.evaluate import (
    calibration_table,
    expected_calibration_error,
    gains_curve,
    metrics,
    precision_at_k_curve,
    selection_weights,
)

Y = np.array([1, 0, 1, 0, 0])
S = np.array([0.9, 0.8, 0.7, 0.2, 0.1])


def test_hand_computed_ranking_and_capacity_metrics():
    m = metrics(Y, S, capacity=2, n_bins=5)
    assert m["rows"] == 5 and m["positives"] == 2
    assert m["base_rate"] == pytest.approx(0.4)
    # positive/negative pairs ranked right: 0.9 beats 3 negatives, 0.7 beats 2 -> 5 of 6
    assert m["roc_auc"] == pytest.approx(5 / 6)
    # average precision: precision 1 at rank 1, 2/3 at rank 3
    assert m["pr_auc"] == pytest.approx((1 + 2 / 3) / 2)
    assert m["precision_at_k"] == pytest.approx(0.5)
    assert m["recall_at_k"] == pytest.approx(0.5)
    assert m["brier"] == pytest.approx((0.01 + 0.64 + 0.09 + 0.04 + 0.01) / 5)
    # one row per bin: mean |y - p|
    assert m["ece"] == pytest.approx((0.1 + 0.8 + 0.3 + 0.2 + 0.1) / 5)
    assert m["capacity"] == 2
    assert math.isnan(m["paused_recall_at_k"])


def test_ece_uses_equal_mass_bins():
    # sorted by p: [0.1, 0.2, 0.7] (y 0,0,1) | [0.8, 0.9] (y 0,1)
    # bin 1: |1/3 - 1/3| = 0; bin 2: |0.5 - 0.85| = 0.35, weight 2/5
    assert expected_calibration_error(Y, S, n_bins=2) == pytest.approx(0.14)
    tab = calibration_table(Y, S, n_bins=2)
    assert tab["rows"].tolist() == [3, 2]
    assert tab["observed"].tolist() == pytest.approx([1 / 3, 0.5])


def test_ties_at_the_boundary_are_split_in_expectation():
    y = np.array([1, 0, 0, 1, 0, 0])
    s = np.array([1, 1, 1, 0, 0, 0], dtype=float)
    w = selection_weights(s, capacity=2)
    assert w.tolist() == pytest.approx([2 / 3, 2 / 3, 2 / 3, 0, 0, 0])
    m = metrics(y, s, capacity=2, is_probability=False)
    assert m["precision_at_k"] == pytest.approx(1 / 3)
    assert m["recall_at_k"] == pytest.approx(1 / 3)
    assert math.isnan(m["brier"]) and math.isnan(m["ece"])


def test_capacity_applies_per_as_of_date():
    y = np.array([1, 0, 0, 0, 1, 1])
    s = np.array([0.9, 0.8, 0.1, 0.95, 0.5, 0.4])
    g = np.array(["d1", "d1", "d1", "d2", "d2", "d2"])
    m = metrics(y, s, capacity=1, groups=g)
    # d1 top-1 is a freeze, d2 top-1 (0.95) is not: 1 of 2 calls, 1 of 3 freezes
    assert m["precision_at_k"] == pytest.approx(0.5)
    assert m["recall_at_k"] == pytest.approx(1 / 3)
    assert m["capacity"] == 1
    # without groups the top-1 overall is 0.95 -> precision 0
    assert metrics(y, s, capacity=1)["precision_at_k"] == 0


def test_top_pct_and_lift():
    y = np.zeros(20)
    y[[0, 10, 11]] = 1
    s = np.where(np.arange(20) % 10 == 0, 100.0, np.arange(20) / 100)
    g = np.repeat(["a", "b"], 10)
    m = metrics(y, s, top_pct=0.1, groups=g, lift_pct=0.1)
    # top 10% of each group = 1 row each: rows 0 and 10, both freezes
    assert m["precision_at_k"] == 1.0
    assert m["lift_at_10"] == pytest.approx(1.0 / (3 / 20))


def test_paused_subgroup_recall_at_the_same_threshold():
    y = np.array([1, 1, 1, 0, 1])
    s = np.array([0.9, 0.1, 0.8, 0.7, 0.2])
    paused = np.array([True, True, False, False, True])
    m = metrics(y, s, capacity=2, paused_mask=paused)
    # selected: rows 0 and 2; paused freezes: rows 0, 1, 4 -> 1 caught of 3
    assert m["paused_recall_at_k"] == pytest.approx(1 / 3)


def test_single_class_gives_nan_aucs_and_nan_scores_rank_last():
    m = metrics(np.zeros(4), np.array([0.1, 0.2, 0.3, 0.4]), capacity=1)
    assert math.isnan(m["roc_auc"]) and math.isnan(m["pr_auc"])
    w = selection_weights(np.array([np.nan, 0.1, 0.2]), capacity=2)
    assert w.tolist() == [0, 1, 1]


def test_curves():
    pk = precision_at_k_curve(Y, S, [1, 2, 5])
    assert pk["precision"].tolist() == pytest.approx([1.0, 0.5, 0.4])
    assert pk["recall"].tolist() == pytest.approx([0.5, 0.5, 1.0])
    g = gains_curve(Y, S, points=6)
    assert g["share_caught"].iloc[0] == 0 and g["share_caught"].iloc[-1] == pytest.approx(1)
    assert g["share_caught"].is_monotonic_increasing


def test_infinite_scores_keep_their_rank_instead_of_crashing():
    """A baseline score of +inf (train on the RavenStack tables crashed with scikit-learn's
    'Input contains infinity') ranks above every finite one, -inf and NaN below."""
    import pandas as pd

    from churnpredict.modeling.backtest import group_metrics
    from churnpredict.modeling.evaluate import finite_ranks, metrics

    s = np.array([np.inf, 0.2, np.nan, -np.inf, 0.9, 0.1])
    r = finite_ranks(s)
    assert np.isfinite(r).all()
    assert list(np.argsort(-r, kind="stable")[:3]) == [0, 4, 1]
    assert r[2] < r[5] and r[3] < r[5]
    y = np.array([1, 0, 0, 0, 1, 0], dtype=float)
    assert metrics(y, s, capacity=2, is_probability=False)["pr_auc"] == pytest.approx(1.0)
    preds = pd.DataFrame({"label": y, "rule": s})
    assert group_metrics(preds, ["rule"]).loc["all", "rule"] == pytest.approx(1.0)
