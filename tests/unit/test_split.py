"""Time splits: folds ordered in time, no label window reaching a later fold's as-of date."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnpredict.config import build_config
from churnpredict.errors import DataError
from churnpredict.modeling.split import backtest_cuts, train_valid_calib_test

from .synthetic_table import small_config


def _weekly(n_dates: int, per_date: int = 3) -> pd.Series:
    dates = pd.date_range("2024-01-01", periods=n_dates, freq="7D")
    return pd.Series(np.repeat(dates.values, per_date))


def _no_overlap(train_dates: pd.Series, later_dates: pd.Series, horizon: int) -> bool:
    """True when no (T, T + horizon] window of a train date contains a later date."""
    t = np.sort(pd.unique(train_dates))
    later = np.sort(pd.unique(later_dates))
    h = np.timedelta64(horizon, "D")
    return not any(((later > x) & (later <= x + h)).any() for x in t)


def test_folds_are_ordered_disjoint_and_gapped():
    cfg = small_config()
    as_of = _weekly(20)
    m = train_valid_calib_test(as_of, cfg)
    assert list(m) == ["fit", "valid", "calib", "test"]
    total = sum(v.astype(int) for v in m.values())
    assert total.max() == 1  # disjoint
    d = as_of.to_numpy()
    assert d[m["fit"]].max() < d[m["valid"]].min()
    assert d[m["valid"]].max() < d[m["calib"]].min()
    assert d[m["calib"]].max() < d[m["test"]].min()
    assert d[m["test"]].max() == d.max()
    # the last test_days (21) days of weekly dates = 3 dates
    assert pd.Series(d[m["test"]]).nunique() == 3
    later = pd.Series(d[m["valid"] | m["calib"] | m["test"]])
    assert _no_overlap(pd.Series(d[m["fit"]]), later, 7)
    fitted = pd.Series(d[m["fit"] | m["valid"] | m["calib"]])
    assert _no_overlap(fitted, pd.Series(d[m["test"]]), 7)


def test_exact_boundaries_with_daily_dates():
    # Daily dates, horizon 7: the fit fold must end more than 7 days before valid starts.
    cfg = small_config()
    as_of = pd.Series(pd.date_range("2024-01-01", periods=120, freq="D"))
    m = train_valid_calib_test(as_of, cfg)
    d = as_of
    assert (d[m["valid"]].min() - d[m["fit"]].max()).days == 8
    assert (d[m["test"]].min() - d[m["calib"]].max()).days == 8
    assert m["test"].sum() == 21 and m["calib"].sum() == 21 and m["valid"].sum() == 14


def test_too_short_history_raises_data_error():
    with pytest.raises(DataError, match="not enough history"):
        train_valid_calib_test(_weekly(6), small_config())


def test_gap_days_widens_the_gap():
    cfg = small_config(gap_days=21)
    as_of = pd.Series(pd.date_range("2024-01-01", periods=150, freq="D"))
    m = train_valid_calib_test(as_of, cfg)
    assert (as_of[m["valid"]].min() - as_of[m["fit"]].max()).days == 22


@settings(max_examples=40, deadline=None)
@given(
    horizon=st.integers(1, 40),
    n_dates=st.integers(30, 60),
    step=st.sampled_from([1, 3, 7]),
    days=st.tuples(st.integers(7, 30), st.integers(7, 30), st.integers(7, 30)),
)
def test_property_no_label_window_overlaps_later_folds(horizon, n_dates, step, days):
    cfg = build_config(
        {
            "label": {"horizon_days": horizon},
            "model": {
                "validation_days": days[0],
                "calibration_days": days[1],
                "test_days": days[2],
            },
        }
    )
    as_of = pd.Series(pd.date_range("2024-01-01", periods=n_dates, freq=f"{step}D"))
    try:
        m = train_valid_calib_test(as_of, cfg, horizon)
    except DataError:
        return
    d = as_of
    assert _no_overlap(d[m["fit"]], d[m["valid"] | m["calib"] | m["test"]], horizon)
    assert _no_overlap(d[m["fit"] | m["valid"] | m["calib"]], d[m["test"]], horizon)


@settings(max_examples=40, deadline=None)
@given(
    horizon=st.integers(1, 40),
    cuts=st.integers(1, 4),
    every=st.integers(7, 30),
    test_days=st.integers(7, 30),
)
def test_property_backtest_cuts_never_leak(horizon, cuts, every, test_days):
    cfg = build_config(
        {
            "label": {"horizon_days": horizon},
            "backtest": {"cuts": cuts, "cut_every_days": every, "test_days": test_days},
        }
    )
    as_of = _weekly(40, per_date=1)
    out = backtest_cuts(as_of, cfg)
    assert 1 <= len(out) <= cuts
    for c in out:
        test_dates = as_of[c.test]
        assert (test_dates >= c.cut).all()
        assert (test_dates < c.cut + pd.Timedelta(days=test_days)).all()
        assert (as_of[c.train] + pd.Timedelta(days=horizon) <= c.cut).all()
        assert _no_overlap(as_of[c.train], test_dates, horizon)
    assert [c.cut for c in out] == sorted(c.cut for c in out)
    assert as_of.max() in set(as_of[out[-1].test])


def test_backtest_cut_dates_walk_back_from_the_end():
    cfg = small_config()
    as_of = _weekly(20)
    out = backtest_cuts(as_of, cfg)
    last = as_of.max()
    assert [c.cut for c in out] == [
        last - pd.Timedelta(days=20 + 21),
        last - pd.Timedelta(days=20),
    ]
