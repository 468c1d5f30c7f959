"""Time-based splits: folds by as-of date, never shuffled, with horizon gaps.

A training row at as-of date ``T`` carries a label that looks at ``(T, T + horizon]``.
A row may only be used to fit something that is evaluated (or used) at a later date ``D``
when its label window ends strictly before ``D``: ``T + horizon < D``. Every fold boundary
below applies that rule, so no label window of an earlier fold contains a later fold's
as-of date.

Layout of :func:`train_valid_calib_test` (time runs left to right)::

    | fit | gap | valid | calib | gap | test |

- ``fit`` trains the booster; ``valid`` picks the number of trees (early stopping);
  ``calib`` fits the probability calibrator; ``test`` gives the reported metrics.
- The first gap keeps fit labels out of the valid/calib/test dates; the second keeps every
  label used for fitting (fit, valid, calib) out of the test dates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnpredict.config import Config
from churnpredict.errors import DataError

FOLDS = ("fit", "valid", "calib", "test")


@dataclass(frozen=True)
class Cut:
    """One rolling-origin backtest cut.

    Attributes
    ----------
    cut : pandas.Timestamp
        The cut date: train rows have ``as_of + horizon < cut``, test rows have
        ``cut <= as_of < cut + test_days``.
    train : numpy.ndarray of bool
        Rows usable for training (fit, valid and calib folds are carved out of them).
    test : numpy.ndarray of bool
        Rows scored and evaluated for this cut.
    """

    cut: pd.Timestamp
    train: np.ndarray
    test: np.ndarray


def _dates(as_of: pd.Series) -> pd.Series:
    out = pd.to_datetime(pd.Series(as_of).reset_index(drop=True))
    if out.isna().any():
        raise DataError("as_of has missing values", column="as_of")
    return out.dt.normalize()


def _horizon(cfg: Config, horizon: int | None) -> int:
    return int(cfg.label.horizon_days if horizon is None else horizon)


def _gap(cfg: Config, horizon: int) -> int:
    gap = cfg.model.gap_days
    return horizon if gap is None else max(int(gap), horizon)


def gap_days(cfg: Config, horizon: int | None = None) -> int:
    """Return the days between a fold's last as-of date and the next fold's first."""
    return _gap(cfg, _horizon(cfg, horizon))


def fit_valid_calib(
    as_of: pd.Series, end: pd.Timestamp, cfg: Config, horizon: int | None = None
) -> dict[str, np.ndarray]:
    """Split the rows with ``as_of < end`` into fit / valid / calib masks.

    Parameters
    ----------
    as_of : pandas.Series
        The as-of date of every row.
    end : pandas.Timestamp
        Exclusive upper bound on the as-of dates of the calib fold.
    cfg : Config
        Uses ``model.validation_days``, ``model.calibration_days`` and ``model.gap_days``.
    horizon : int, optional
        Label horizon in days (default ``cfg.label.horizon_days``).

    Returns
    -------
    dict of str to numpy.ndarray
        Boolean masks ``fit``, ``valid``, ``calib`` aligned with ``as_of``.

    Raises
    ------
    DataError
        When a fold would be empty (too little history for the configured days).
    """
    h = _horizon(cfg, horizon)
    d = _dates(as_of)
    end = pd.Timestamp(end).normalize()
    calib_lo = end - pd.Timedelta(days=cfg.model.calibration_days)
    valid_lo = calib_lo - pd.Timedelta(days=cfg.model.validation_days)
    calib = ((d >= calib_lo) & (d < end)).to_numpy()
    valid = ((d >= valid_lo) & (d < calib_lo)).to_numpy()
    if valid.any():
        first_later = d[valid].min()
    elif calib.any():
        first_later = d[calib].min()
    else:
        first_later = valid_lo
    # Strictly before: the label window (T, T + gap] must not contain a later as-of date.
    fit = (d + pd.Timedelta(days=_gap(cfg, h)) < first_later).to_numpy()
    masks = {"fit": fit, "valid": valid, "calib": calib}
    empty = [k for k, m in masks.items() if not m.any()]
    if empty:
        raise DataError(
            f"not enough history for a time split: the {', '.join(empty)} fold(s) would be empty",
            column="as_of",
            expected=(
                f"as-of dates spanning more than gap ({_gap(cfg, h)} d) + validation "
                f"({cfg.model.validation_days} d) + calibration ({cfg.model.calibration_days} d)"
                f" days before {end.date()}; got {d.min().date()}..{d.max().date()}"
            ),
        )
    return masks


def train_valid_calib_test(
    as_of: pd.Series, cfg: Config, horizon: int | None = None
) -> dict[str, np.ndarray]:
    """Split rows into fit / valid / calib / test masks by as-of date, latest last.

    ``test`` holds the last ``model.test_days`` days of as-of dates; ``calib`` and ``valid``
    come before it (after a gap of at least the horizon), and ``fit`` before those (after
    another gap). See the module docstring for the layout.

    Parameters
    ----------
    as_of : pandas.Series
        The as-of date of every row (any order).
    cfg : Config
        The resolved config (``model.*_days``, ``model.gap_days``, ``label.horizon_days``).
    horizon : int, optional
        Label horizon in days (default ``cfg.label.horizon_days``).

    Returns
    -------
    dict of str to numpy.ndarray
        Boolean masks ``fit``, ``valid``, ``calib``, ``test``, aligned with ``as_of``;
        rows in gaps are in no fold.
    """
    h = _horizon(cfg, horizon)
    d = _dates(as_of)
    last = d.max()
    test_lo = last - pd.Timedelta(days=cfg.model.test_days - 1)
    test = (d >= test_lo).to_numpy()
    # Every label used for fitting must end strictly before the first test as-of date.
    calib_end = test_lo - pd.Timedelta(days=_gap(cfg, h))
    masks = fit_valid_calib(d, calib_end, cfg, h)
    masks["test"] = test
    return {k: masks[k] for k in FOLDS}


def backtest_cuts(as_of: pd.Series, cfg: Config, horizon: int | None = None) -> list[Cut]:
    """Return rolling-origin cuts, oldest first.

    The newest cut is placed so its test window ends on the last as-of date; earlier cuts
    walk back by ``backtest.cut_every_days``. For a cut date ``c``: train rows have
    ``as_of + gap < c`` (gap = max(horizon, model.gap_days)), test rows have
    ``c <= as_of < c + backtest.test_days``. Cuts without train or test rows are dropped.

    Parameters
    ----------
    as_of : pandas.Series
        The as-of date of every row.
    cfg : Config
        Uses ``backtest.cuts``, ``backtest.cut_every_days``, ``backtest.test_days``.
    horizon : int, optional
        Label horizon in days (default ``cfg.label.horizon_days``).

    Returns
    -------
    list of Cut
    """
    h = _horizon(cfg, horizon)
    gap = pd.Timedelta(days=_gap(cfg, h))
    d = _dates(as_of)
    test_len = pd.Timedelta(days=cfg.backtest.test_days)
    newest = d.max() - test_len + pd.Timedelta(days=1)
    cuts: list[Cut] = []
    for i in range(cfg.backtest.cuts - 1, -1, -1):
        c = newest - pd.Timedelta(days=i * cfg.backtest.cut_every_days)
        train = (d + gap < c).to_numpy()
        test = ((d >= c) & (d < c + test_len)).to_numpy()
        if train.any() and test.any():
            cuts.append(Cut(cut=c, train=train, test=test))
    if not cuts:
        raise DataError(
            "not enough history for a backtest: no cut has both train and test rows",
            column="as_of",
            expected=f"as-of dates spanning more than {h + cfg.backtest.test_days} days",
        )
    return cuts


def describe_folds(as_of: pd.Series, masks: dict[str, np.ndarray]) -> pd.DataFrame:
    """Summarize each fold: rows, as-of dates, first and last date."""
    d = _dates(as_of)
    rows = []
    for name, m in masks.items():
        dm = d[m]
        rows.append(
            {
                "fold": name,
                "rows": int(m.sum()),
                "dates": int(dm.nunique()),
                "first": dm.min() if len(dm) else pd.NaT,
                "last": dm.max() if len(dm) else pd.NaT,
            }
        )
    return pd.DataFrame(rows)
