"""Baselines scored on the same rows as the model.

- ``paused_rule``: "a campaign was paused in the last 7 days" — score 1 when
  ``campaigns__paused__7d > 0`` else 0 (a binary score: ties are split fairly by the
  metrics, see :mod:`churnpredict.modeling.evaluate`).
- ``rfm``: the recency/frequency/monetary score ``profile__rfm_score`` (3..15, higher =
  more engaged); risk = ``-profile__rfm_score``.
- ``logistic``: logistic regression on the model's features (median impute, standardize),
  fitted on the same fit rows (a seeded subsample when large).

A baseline whose columns are missing is skipped with a reason.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from churnpredict.modeling.model import to_matrix

PAUSED_COLUMN = "campaigns__paused__7d"
RFM_COLUMN = "profile__rfm_score"
PROBABILISTIC = {"logistic"}


def paused_rule_score(X: pd.DataFrame) -> np.ndarray:
    """Return 1.0 where a campaign was paused in the last 7 days, else 0.0."""
    v = pd.to_numeric(X[PAUSED_COLUMN], errors="coerce").fillna(0).to_numpy(dtype=float)
    return (v > 0).astype(float)


def rfm_score(X: pd.DataFrame) -> np.ndarray:
    """Return the RFM risk: the negated RFM score (missing = least engaged)."""
    v = pd.to_numeric(X[RFM_COLUMN], errors="coerce").to_numpy(dtype=float)
    v = np.where(np.isnan(v), np.nanmin(v) if np.isfinite(v).any() else 0.0, v)
    return -v


def paused_mask(X: pd.DataFrame) -> np.ndarray | None:
    """Return the "paused a campaign in the last 7 days" mask, or None without the column."""
    if PAUSED_COLUMN not in X.columns:
        return None
    return paused_rule_score(X) > 0


class LogisticBaseline:
    """Logistic regression on median-imputed, standardized features.

    Parameters
    ----------
    max_rows : int
        Fit on at most this many rows (seeded subsample).
    random_state : int
    """

    def __init__(self, max_rows: int = 100_000, random_state: int = 0) -> None:
        self.max_rows = max_rows
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> LogisticBaseline:
        """Fit on ``X`` (feature columns) and labels ``y``."""
        y = np.asarray(y, dtype=float)
        self.feature_names_ = [str(c) for c in X.columns]
        idx = np.arange(len(y))
        if len(y) > self.max_rows:
            rng = np.random.default_rng(self.random_state)
            idx = np.sort(rng.choice(len(y), self.max_rows, replace=False))
        A = to_matrix(X.iloc[idx], self.feature_names_).astype(np.float64)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            med = np.nanmedian(A, axis=0)
        self.medians_ = np.where(np.isnan(med), 0.0, med)
        A = self._impute(A)
        self.mean_ = A.mean(axis=0)
        sd = A.std(axis=0)
        self.scale_ = np.where(sd > 0, sd, 1.0)
        self.lr_ = LogisticRegression(C=1.0, max_iter=200, tol=1e-4)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.lr_.fit((A - self.mean_) / self.scale_, y[idx])
        return self

    def _impute(self, A: np.ndarray) -> np.ndarray:
        miss = np.isnan(A)
        if miss.any():
            A = np.where(miss, self.medians_, A)
        return A

    def predict_risk(self, X: pd.DataFrame) -> np.ndarray:
        """Return the predicted probability of a freeze."""
        A = self._impute(to_matrix(X, self.feature_names_).astype(np.float64))
        return self.lr_.predict_proba((A - self.mean_) / self.scale_)[:, 1]


@dataclass
class Baselines:
    """Fitted baselines and the ones skipped.

    Attributes
    ----------
    logistic : LogisticBaseline or None
    names : list of str
        Baselines that can score rows.
    skipped : dict of str to str
        Baseline name -> why it was skipped.
    """

    logistic: LogisticBaseline | None = None
    names: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def score(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """Return ``{baseline name: risk score}`` for the rows of ``X``."""
        out: dict[str, np.ndarray] = {}
        for name in self.names:
            if name == "paused_rule":
                out[name] = paused_rule_score(X)
            elif name == "rfm":
                out[name] = rfm_score(X)
            elif name == "logistic" and self.logistic is not None:
                out[name] = self.logistic.predict_risk(X)
        return out


def fit_baselines(
    X_fit: pd.DataFrame,
    y_fit: np.ndarray,
    *,
    wanted: Sequence[str] = ("paused_rule", "rfm", "logistic"),
    logistic_max_rows: int = 100_000,
    random_state: int = 0,
) -> Baselines:
    """Fit (or check the columns of) the wanted baselines on the fit rows.

    Parameters
    ----------
    X_fit : DataFrame
        Fit-fold feature columns.
    y_fit : array
        Fit-fold labels.
    wanted : sequence of str
        Any of ``paused_rule``, ``rfm``, ``logistic``.
    logistic_max_rows : int
        Row cap for the logistic regression.
    random_state : int

    Returns
    -------
    Baselines
    """
    b = Baselines()
    for name in wanted:
        if name == "paused_rule":
            if PAUSED_COLUMN in X_fit.columns:
                b.names.append(name)
            else:
                b.skipped[name] = f"column {PAUSED_COLUMN} not in the feature table"
        elif name == "rfm":
            if RFM_COLUMN in X_fit.columns:
                b.names.append(name)
            else:
                b.skipped[name] = f"column {RFM_COLUMN} not in the feature table"
        elif name == "logistic":
            if len(np.unique(np.asarray(y_fit))) < 2 or X_fit.shape[1] == 0:
                b.skipped[name] = "fit rows have one class or no features"
                continue
            b.logistic = LogisticBaseline(logistic_max_rows, random_state).fit(X_fit, y_fit)
            b.names.append(name)
        else:
            b.skipped[name] = "unknown baseline"
    return b
