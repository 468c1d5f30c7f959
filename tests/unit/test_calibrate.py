"""Calibrators: monotone, calibrated on held-out data, JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.special import expit

from churnpredict.modeling.calibrate import Calibrator
from churnpredict.modeling.evaluate import expected_calibration_error


def _shifted(n: int = 20000, seed: int = 0):
    """Raw scores that are the true log-odds shifted by +1.5 (like negative subsampling)."""
    rng = np.random.default_rng(seed)
    logit = rng.normal(-2.5, 1.2, n)
    y = (rng.random(n) < expit(logit)).astype(float)
    return logit + 1.5, y, expit(logit)


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_calibrator_removes_a_shift(method):
    raw, y, _ = _shifted()
    raw_te, y_te, _ = _shifted(seed=1)
    assert expected_calibration_error(y_te, expit(raw_te)) > 0.05  # miscalibrated before
    cal = Calibrator(method).fit(raw, y)
    assert expected_calibration_error(y_te, cal.predict(raw_te)) < 0.01


def test_sigmoid_recovers_the_offset():
    raw, y, _ = _shifted(n=100_000)
    cal = Calibrator("sigmoid").fit(raw, y)
    assert cal.a_ == pytest.approx(1.0, abs=0.05)
    assert cal.b_ == pytest.approx(-1.5, abs=0.1)


def test_isotonic_is_strictly_increasing_so_ranking_is_kept():
    raw, y, _ = _shifted(n=5000)
    cal = Calibrator("isotonic").fit(raw, y)
    grid = np.linspace(raw.min() - 1, raw.max() + 1, 2000)
    p = cal.predict(grid)
    assert np.all(np.diff(p) > 0)
    assert p.min() >= 0 and p.max() <= 1


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_json_round_trip(method):
    raw, y, _ = _shifted(n=3000)
    cal = Calibrator(method).fit(raw, y)
    back = Calibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    np.testing.assert_array_equal(back.predict(raw), cal.predict(raw))


def test_bad_input():
    with pytest.raises(ValueError):
        Calibrator("isotonic").fit(np.array([]), np.array([]))
    with pytest.raises(ValueError):
        Calibrator("nope").fit(np.array([0.0, 1.0]), np.array([0, 1]))


def test_isotonic_keeps_the_order_with_real_gaps_inside_a_block():
    """Clients whose raw scores fall in one isotonic block get distinct risks that a
    list written with 6 significant digits still tells apart (no ties at the top)."""
    raw, y, _ = _shifted(n=5000)
    cal = Calibrator("isotonic").fit(raw, y)
    top = np.sort(raw)[-50:]  # the clients a list shows first
    p = cal.predict(top)
    assert len(np.unique(np.round(p, 6))) == len(top)
    assert p.max() < 1.0
    # knots at block centers: observed rate per block is still matched on the fit rows
    assert np.all(np.diff(cal.x_) > 0) and np.all(np.diff(cal.y_) > 0)
