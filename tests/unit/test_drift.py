"""Drift: PSI per feature, missing features, warn and fail thresholds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from churnpredict.config import Config, DriftConfig
from churnpredict.drift import check_drift, psi, training_stats
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
        check_drift(st, today, list(st), DriftConfig(action="fail"))
    assert err.value.exit_code == 5
    ok = check_drift(st, _frame(3000, seed=4), list(st), DriftConfig(action="fail"))
    assert ok.ok and ok.fail == []


def test_expected_without_stats_is_listed():
    X = _frame(300)
    st = training_stats(X, features=["spend__spend__30d"])
    rep = check_drift(st, X, ["spend__spend__30d", "profile__tenure_days"], Config())
    assert rep.no_stats == ["profile__tenure_days"]
