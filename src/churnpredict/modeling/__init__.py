"""Modeling: time splits, the LightGBM churn model, calibration, metrics, baselines."""

from churnpredict.modeling.backtest import (
    BacktestResult,
    TrainResult,
    feature_columns,
    run_backtest,
    train_and_evaluate,
)
from churnpredict.modeling.calibrate import Calibrator
from churnpredict.modeling.evaluate import capacity_from_config, metrics
from churnpredict.modeling.model import ChurnModel, bin_shares, psi
from churnpredict.modeling.split import Cut, backtest_cuts, train_valid_calib_test

__all__ = [
    "BacktestResult",
    "Calibrator",
    "ChurnModel",
    "Cut",
    "TrainResult",
    "backtest_cuts",
    "bin_shares",
    "capacity_from_config",
    "feature_columns",
    "metrics",
    "psi",
    "run_backtest",
    "train_and_evaluate",
    "train_valid_calib_test",
]
