"""Baselines scored on the same rows as the model.

- ``paused_rule``: "a campaign was paused in the last 7 days" — score 1 when
  ``campaigns__paused__7d > 0`` else 0 (a binary score: ties are split fairly by the
  metrics, see :mod:`churnpredict.modeling.evaluate`).
- ``rfm``: the recency/frequency/monetary score ``profile__rfm_score`` (3..15, higher =
  more engaged); risk = ``-profile__rfm_score``.
- ``logistic``: logistic regression on the model's features (median impute, standardize),
  fitted on the same fit rows (a seeded subsample when large).
- ``recency``: plain recency of the label's source — days since the client's last event
  of the table the idle rule watches (campaign events by default); longer = riskier.
- ``bgnbd``: for purchase-like logs (label = "no event of table X for ``idle_days``"),
  the BG/NBD model (Fader, Hardie & Lee 2005, fitted with the ``lifetimes`` library on
  the fit rows' history: repeat events, age at the last event, age) that knows the
  rule: a client whose last event is ``s`` days old freezes within the horizon when it
  makes no event in the next ``idle_days - s`` days (<= horizon), which BG/NBD gives as
  ``1 - P(alive) + P(alive) * ((alpha + age) / (alpha + age + tau)) ** (r + x)``.

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
TENURE_COLUMN = "profile__tenure_days"
PROBABILISTIC = {"logistic", "bgnbd"}


@dataclass(frozen=True)
class LabelSource:
    """What the label watches, for the recency and BG/NBD references.

    Attributes
    ----------
    source : str
        Feature prefix of the table whose silence defines a freeze (``campaigns``).
    idle_days, horizon_days : int
    purchase_like : bool
        True when the label is "no event of this table for ``idle_days``" over a declared
        event table (BG/NBD applies).
    """

    source: str
    idle_days: int
    horizon_days: int
    purchase_like: bool = False

    @property
    def recency_column(self) -> str:
        return f"{self.source}__events__days_since"

    @property
    def total_column(self) -> str:
        return f"{self.source}__events__total"


def label_source(cfg) -> LabelSource:
    """Return what the label of ``cfg`` watches (see :class:`LabelSource`)."""
    lab = cfg.label
    table = "campaign_events" if lab.idle_source == "campaigns" else lab.idle_source
    source = next(
        (n for n, s in cfg.features.sources.items() if s.table == table),
        "campaigns" if lab.idle_source == "campaigns" else lab.idle_source,
    )
    return LabelSource(
        source=source,
        idle_days=int(lab.idle_days),
        horizon_days=int(lab.horizon_days),
        purchase_like=lab.idle_source != "campaigns" and lab.rule != "freezes",
    )


def recency_score(X: pd.DataFrame, column: str) -> np.ndarray:
    """Return days since the last event (never = longest)."""
    v = pd.to_numeric(X[column], errors="coerce").to_numpy(dtype=float)
    return np.where(np.isnan(v), np.inf, v)


class BGNBDBaseline:
    """BG/NBD probability of a freeze within the horizon under the idle rule.

    Parameters
    ----------
    label : LabelSource
    max_rows : int
        Fit on at most this many rows (seeded subsample).
    random_state : int
    """

    def __init__(self, label: LabelSource, max_rows: int = 100_000, random_state: int = 0):
        self.label = label
        self.max_rows = max_rows
        self.random_state = random_state

    def _summary(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (repeat events x, age at the last event t_x, age T) in days."""
        total = pd.to_numeric(X[self.label.total_column], errors="coerce").fillna(0).to_numpy()
        since = pd.to_numeric(X[self.label.recency_column], errors="coerce").to_numpy(float)
        age = pd.to_numeric(X[TENURE_COLUMN], errors="coerce").to_numpy(float)
        age = np.maximum(np.nan_to_num(age, nan=0.0), 1e-3)
        since = np.clip(np.nan_to_num(since, nan=age), 0, age)
        x = np.maximum(total - 1, 0).astype(float)
        t_x = np.where(x > 0, age - since, 0.0)
        return x, t_x, age

    def fit(self, X: pd.DataFrame) -> BGNBDBaseline:
        """Fit BG/NBD's four parameters on the fit rows' histories."""
        from lifetimes import BetaGeoFitter

        x, t_x, age = self._summary(X)
        idx = np.arange(len(x))
        if len(x) > self.max_rows:
            rng = np.random.default_rng(self.random_state)
            idx = np.sort(rng.choice(len(x), self.max_rows, replace=False))
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            bgf = BetaGeoFitter(penalizer_coef=0.001).fit(x[idx], t_x[idx], age[idx])
        self.params_ = {k: float(v) for k, v in bgf.params_.items()}
        self.fitter_ = bgf
        return self

    def predict_risk(self, X: pd.DataFrame) -> np.ndarray:
        """Return P(no event in the ``idle_days - days since`` days left, if <= horizon)."""
        x, t_x, age = self._summary(X)
        since = recency_score(X, self.label.recency_column)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            alive = np.asarray(self.fitter_.conditional_probability_alive(x, t_x, age), float)
        tau = self.label.idle_days - since
        r, alpha = self.params_["r"], self.params_["alpha"]
        quiet = (1 - alive) + alive * ((alpha + age) / (alpha + age + np.maximum(tau, 0))) ** (
            r + x
        )
        out = np.where(tau <= self.label.horizon_days, quiet, 0.0)
        return np.where(np.isfinite(since), np.clip(out, 0.0, 1.0), 0.0)


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

    def fit(
        self, X: pd.DataFrame, y: np.ndarray, weights: np.ndarray | None = None
    ) -> LogisticBaseline:
        """Fit on ``X`` (feature columns) and labels ``y``.

        ``weights`` (a pre-sampled table): each row stands for that many original rows;
        the regression weighs its loss by them, scaled to the rows an unweighted fit of
        the original rows would use, so the intercept and the penalty are those of the
        table before pre-sampling.
        """
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
            if weights is None:
                self.lr_.fit((A - self.mean_) / self.scale_, y[idx])
            else:
                sw = np.asarray(weights, dtype=float)[idx]
                n0 = min(self.max_rows, float(np.sum(weights)))
                self.lr_.fit(
                    (A - self.mean_) / self.scale_, y[idx], sample_weight=sw * n0 / sw.sum()
                )
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
    bgnbd: BGNBDBaseline | None = None
    label: LabelSource | None = None
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
            elif name == "recency" and self.label is not None:
                out[name] = recency_score(X, self.label.recency_column)
            elif name == "bgnbd" and self.bgnbd is not None:
                out[name] = self.bgnbd.predict_risk(X)
        return out


def fit_baselines(
    X_fit: pd.DataFrame,
    y_fit: np.ndarray,
    *,
    wanted: Sequence[str] = ("paused_rule", "rfm", "logistic"),
    logistic_max_rows: int = 100_000,
    random_state: int = 0,
    label: LabelSource | None = None,
    weights: np.ndarray | None = None,
) -> Baselines:
    """Fit (or check the columns of) the wanted baselines on the fit rows.

    Parameters
    ----------
    X_fit : DataFrame
        Fit-fold feature columns.
    y_fit : array
        Fit-fold labels.
    wanted : sequence of str
        Any of ``paused_rule``, ``rfm``, ``logistic``, ``recency``, ``bgnbd``.
    logistic_max_rows : int
        Row cap for the logistic regression (and BG/NBD).
    random_state : int
    label : LabelSource, optional
        What the label watches (needed by ``recency`` and ``bgnbd``).
    weights : array, optional
        Pre-sampling weights of the fit rows (:mod:`churnpredict.modeling.presample`),
        used by the logistic regression.

    Returns
    -------
    Baselines
    """
    b = Baselines(label=label)
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
            b.logistic = LogisticBaseline(logistic_max_rows, random_state).fit(
                X_fit, y_fit, weights=weights
            )
            b.names.append(name)
        elif name == "recency":
            if label is None or label.recency_column not in X_fit.columns:
                col = label.recency_column if label else "the label source's days_since"
                b.skipped[name] = f"column {col} not in the feature table"
            else:
                b.names.append(name)
        elif name == "bgnbd":
            need = [label.recency_column, label.total_column, TENURE_COLUMN] if label else []
            if label is None or not label.purchase_like:
                b.skipped[name] = (
                    "the label is not 'no event of a declared table for idle_days' "
                    "(BG/NBD models purchase-like logs)"
                )
            elif missing := [c for c in need if c not in X_fit.columns]:
                b.skipped[name] = f"columns {', '.join(missing)} not in the feature table"
            else:
                try:
                    b.bgnbd = BGNBDBaseline(label, logistic_max_rows, random_state).fit(X_fit)
                    b.names.append(name)
                except Exception as err:  # the optimiser may fail on odd data
                    b.skipped[name] = f"BG/NBD fit failed: {str(err).splitlines()[0]}"
        else:
            b.skipped[name] = "unknown baseline"
    return b
