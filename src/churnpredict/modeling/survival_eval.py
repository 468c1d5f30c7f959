"""Evaluate the time-to-freeze curve: a fold whose 90-day follow-up is observed.

The classifier's test fold (the latest as-of dates) has at most ``max_horizon_days -
horizon_days`` days of follow-up beyond its labels, so no 90-day outcome is known there.
The curve is judged on the **survival fold**: the latest ``model.test_days`` of as-of
dates whose whole ``label.max_horizon_days`` follow-up is observed, starting after the
validation fold's labels end. Everything scored there is fitted on what was known at the
fold's first date:

- the 30-day anchor: the early-stopping booster of the evaluated model (fitted on the fit
  fold, trees chosen on the validation fold) calibrated on the validation fold — every
  label it saw ends before the survival fold;
- the hazard model: early stopping on the fit / validation folds, then refit on every row
  before the fold with each follow-up cut at the fold's first date;
- baselines: Kaplan-Meier per segment x tenure band and a Cox model on a few of the
  classifier's strongest features (scikit-survival), fitted on the same censored rows.

Metrics (scikit-survival where it has them): PR AUC at 7, ``horizon_days`` and
``max_horizon_days`` days, Uno's time-dependent concordance (``concordance_index_ipcw``,
``tau`` = the last day, scored by the risk at that day), the integrated Brier score over
days 1..``max_horizon_days - 1`` (``integrated_brier_score``; needs a whole curve, so not
for the truth or the rule), and calibration by risk decile against Kaplan-Meier at each
horizon. Every metric also for clients in their first 30 and 90 days.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from churnpredict.config import Config
from churnpredict.modeling import survival as sv
from churnpredict.modeling.calibrate import Calibrator
from churnpredict.modeling.presample import weighted_count, weights_of

log = logging.getLogger(__name__)

MODEL = "model"
RAW = "hazard_raw"
CLASSIFIER = "classifier"
KM = "km_segment_tenure"
COX = "cox"
RULE = "paused_rule"
TRUTH = "p_true"
TRUTH_FIRST = "p_true_30d+model_after"  # the diagnosis of ``decompose=True``
MODEL_FIRST = "model_30d+p_true_after"
TENURE_BANDS = (30, 90, 365)
COX_FEATURES = 8
COX_MAX_ROWS = 100_000
CLIP = 5.0
TARGET_COLS = ("as_of", "followup_days", "freeze_day")
KEY_COLS = ("client_id", "as_of", "label")
C_MAX_ROWS = 20_000  # Uno's C compares every event with every later row: a seeded sample
NEW_CLIENT_DAYS = (30, 90)
EPS_TRUTH = 1e-12


@dataclass
class SurvivalEval:
    """The survival fold's metrics and what the report draws.

    Attributes
    ----------
    metrics : DataFrame
        Index = scorer, columns ``pr_auc_<h>d`` per horizon, ``uno_c``, ``ibs``.
    by_group : DataFrame
        The same metrics per group (``all``, ``first 30 days``, ``first 90 days``):
        index (group, scorer).
    calibration : DataFrame
        ``horizon``, ``decile``, ``rows``, ``predicted`` (mean), ``observed``
        (1 - Kaplan-Meier at the horizon) for the model.
    curves : DataFrame
        Example clients: ``client_id``, ``as_of``, ``band``, ``day``, ``survival``.
    fold : tuple of Timestamp
        First and last as-of date of the survival fold.
    rows : int
    horizons : tuple of int
    features : list of str
        The hazard model's features.
    cox_features : list of str
    n_trees : int
        The hazard model's trees (early stopping).
    seconds : dict
    """

    metrics: pd.DataFrame
    by_group: pd.DataFrame
    calibration: pd.DataFrame
    curves: pd.DataFrame
    fold: tuple[pd.Timestamp, pd.Timestamp]
    rows: int
    horizons: tuple[int, ...]
    features: list[str]
    cox_features: list[str]
    n_trees: int
    seconds: dict[str, float] = field(default_factory=dict)


def _dates(table: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(table["as_of"]).dt.normalize()


def survival_fold(
    table: pd.DataFrame,
    masks: dict[str, np.ndarray],
    cfg: Config,
    until: pd.Timestamp | None = None,
) -> np.ndarray | None:
    """Return the survival fold's mask, or None when the data has no such dates.

    The latest ``model.test_days`` of as-of dates (before ``until`` when given) whose
    rows have the whole ``label.max_horizon_days`` follow-up (the median row: a few end
    their relationship earlier), after the validation fold's labels end (``valid`` last
    date + gap).
    """
    from churnpredict.modeling.split import gap_days

    H = int(cfg.label.max_horizon_days)
    d = _dates(table)
    lo = d[masks["valid"]].max() + pd.Timedelta(days=gap_days(cfg) + 1)
    per_date = table.groupby(d.to_numpy())["followup_days"].quantile(0.5)
    complete = per_date.index[per_date.to_numpy() >= H]
    complete = complete[complete >= lo]
    if until is not None:
        complete = complete[complete < pd.Timestamp(until)]
    if len(complete) == 0:
        return None
    hi = complete.max()
    first = max(lo, hi - pd.Timedelta(days=cfg.model.test_days - 1))
    return ((d >= first) & (d <= hi)).to_numpy()


def hazard_features(es_model, k: int) -> list[str]:
    """Return the ``k`` strongest features of the classifier by gain (ties by name)."""
    return es_model.feature_importance()["feature"].head(k).tolist()


def fit_hazard_protocol(
    table: pd.DataFrame,
    masks: dict[str, np.ndarray],
    cutoff: pd.Timestamp,
    features: Sequence[str],
    cfg: Config,
) -> sv.HazardModel:
    """Fit the hazard model as served, with everything it learns known at ``cutoff``.

    Early stopping: fit rows (follow-up cut at the validation fold's first date) against
    validation rows (cut at ``cutoff``); then the same trees, scaled to the rows, on every
    row before ``cutoff`` with its follow-up cut there. With ``model.survival_long_booster``
    the bins after ``label.horizon_days`` get their own, smaller booster
    (``model.survival_long_num_leaves``, ``survival_long_min_child_samples``),
    early-stopped and refitted the same way (left out, with a log line, when the validation rows hold no freeze or
    no survivor in those bins).
    """
    from churnpredict.errors import DataError

    d = _dates(table)
    edges = sv.bin_edges(cfg)
    fit, valid = masks["fit"], masks["valid"]
    fd_f, fu_f = sv.targets(table.loc[fit, list(TARGET_COLS)], d[valid].min())
    fd_v, fu_v = sv.targets(table.loc[valid, list(TARGET_COLS)], cutoff)
    w_fit = weights_of(table, fit)  # None unless the table is pre-sampled (presample.py)
    args = (
        table.loc[fit, list(features)],
        fd_f,
        fu_f,
        table.loc[valid, list(features)],
        fd_v,
        fu_v,
    )
    es = sv.HazardModel(cfg.model, edges, features).fit(*args, weights=w_fit)
    first = sv.long_first_bin(edges, int(cfg.label.horizon_days))
    if cfg.model.survival_long_booster and first is not None:
        params = cfg.model.model_copy(
            update={
                "num_leaves": cfg.model.survival_long_num_leaves,
                "min_child_samples": cfg.model.survival_long_min_child_samples,
            }
        )
        try:
            es.long_ = sv.HazardModel(params, edges, features, first_bin=first).fit(
                *args, weights=w_fit
            )
        except DataError as err:
            log.info("no separate booster after day %d: %s", cfg.label.horizon_days, err)
    return refit_hazard(table, (d < cutoff).to_numpy(), cutoff, es, cfg)


def refit_hazard(
    table: pd.DataFrame,
    rows: np.ndarray,
    cutoff: pd.Timestamp | None,
    es: sv.HazardModel,
    cfg: Config,
) -> sv.HazardModel:
    """Fit the early-stopping trees, scaled to the rows, on ``rows`` cut at ``cutoff``.

    The scale is capped at ``model.refit_max_scale``, as for the classifier. A long
    booster (``es.long_``) is refitted the same way with its own trees.
    """
    fd, fu = sv.targets(table.loc[rows, list(TARGET_COLS)], cutoff)
    w = weights_of(table, rows)  # None unless the table is pre-sampled (presample.py)
    n_rows = weighted_count(rows.sum(), w)

    def one(m: sv.HazardModel) -> sv.HazardModel:
        trees = m.metadata_.get("early_stopping_trees", m.best_iteration_)
        n0 = m.metadata_.get("early_stopping_snapshots", m.metadata_["n_snapshots"])
        ratio = min(max(n_rows / max(n0, 1), 1.0), cfg.model.refit_max_scale)
        n = max(1, round(trees * ratio))
        out = sv.HazardModel(m.params, m.edges, m.features, first_bin=m.first_bin).fit(
            table.loc[rows, m.features], fd, fu, n_trees=n, weights=w
        )
        out.metadata_["early_stopping_trees"] = trees
        out.metadata_["early_stopping_snapshots"] = n0
        out.metadata_["horizon_days"] = int(cfg.label.horizon_days)
        out.metadata_["trained_until"] = str(_dates(table)[rows].max().date())
        return out

    out = one(es)
    if es.long_ is not None:
        out.long_ = one(es.long_)
    return out


# ----------------------------------------------------------------------- baselines
def tenure_band(tenure: np.ndarray) -> np.ndarray:
    """Return the tenure band of each row: ``<=30``, ``<=90``, ``<=365``, ``>365``, ``-``."""
    t = np.asarray(tenure, dtype=float)
    out = np.full(len(t), "-", dtype=object)
    prev = -np.inf
    for b in TENURE_BANDS:
        out[(t > prev) & (t <= b)] = f"<={b}"
        prev = b
    out[t > TENURE_BANDS[-1]] = f">{TENURE_BANDS[-1]}"
    return out


class KaplanMeierBaseline:
    """Kaplan-Meier curve per group (segment x tenure band); small groups use the overall.

    Parameters
    ----------
    min_rows : int
        A group with fewer training rows uses the overall curve.
    """

    def __init__(self, min_rows: int = 200) -> None:
        self.min_rows = min_rows

    def fit(
        self,
        groups: np.ndarray,
        freeze_day: np.ndarray,
        followup: np.ndarray,
        days,
        weights: np.ndarray | None = None,
    ):
        """Fit one curve per group on censored follow-ups; keep S at ``days``.

        ``weights``: pre-sampling weights (:mod:`churnpredict.modeling.presample`); the
        curves then count each row that many times (a weighted Kaplan-Meier estimate).
        """
        from sksurv.nonparametric import kaplan_meier_estimator

        days = np.asarray(days, dtype=float)
        event = np.asarray(freeze_day) >= 1
        t = np.where(event, freeze_day, followup).astype(float)
        ok = t > 0

        def curve(m):
            if weights is None:
                x, s = kaplan_meier_estimator(event[m], t[m])
            else:
                x, s = weighted_kaplan_meier(event[m], t[m], np.asarray(weights)[m])
            i = np.searchsorted(x, days, side="right") - 1
            return np.where(i >= 0, s[np.maximum(i, 0)], 1.0)

        self.overall_ = curve(ok)
        self.curves_ = {}
        g = np.asarray(groups, dtype=object)
        for key in pd.unique(g):
            m = ok & (g == key)
            n = m.sum() if weights is None else np.asarray(weights)[m].sum()
            if n >= self.min_rows and event[m].any():
                self.curves_[key] = curve(m)
        return self

    def predict(self, groups: np.ndarray) -> np.ndarray:
        """Return S at the fitted days for each row (rows x days)."""
        return np.vstack([self.curves_.get(k, self.overall_) for k in np.asarray(groups)])


def weighted_kaplan_meier(
    event: np.ndarray, time: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(times, survival)`` like sksurv's ``kaplan_meier_estimator``, rows weighted.

    ``times`` are the distinct times; at each, the weight of the events over the weight
    still at risk (time >= it) is the share that fails.
    """
    t = np.asarray(time, dtype=float)
    e = np.asarray(event, dtype=bool)
    w = np.asarray(weights, dtype=float)
    x, inv = np.unique(t, return_inverse=True)
    died = np.bincount(inv, weights=w * e, minlength=len(x))
    total = np.bincount(inv, weights=w, minlength=len(x))
    at_risk = total[::-1].cumsum()[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(at_risk > 0, died / at_risk, 0.0)
    return x, np.cumprod(1.0 - q)


def _cox_matrix(X: pd.DataFrame, cols: Sequence[str], med: np.ndarray | None = None):
    A = X[list(cols)].to_numpy(dtype=float, na_value=np.nan)
    A = np.sign(A) * np.log1p(np.abs(A))
    if med is None:
        med = np.nanmedian(A, axis=0)
        med = np.where(np.isnan(med), 0.0, med)
    A = np.where(np.isnan(A), med, A)
    return A, med


class CoxBaseline:
    """Cox proportional hazards (scikit-survival) on a few features, log-scaled.

    Features are ``sign(x) * log1p(|x|)``, missing values replaced by the fit rows'
    median, then standardized and clipped to +-5; a small ridge penalty keeps the fit
    stable.
    """

    def __init__(self, features: Sequence[str], max_rows: int = COX_MAX_ROWS, seed: int = 0):
        self.features = list(features)
        self.max_rows = max_rows
        self.seed = seed

    def fit(
        self,
        X: pd.DataFrame,
        freeze_day: np.ndarray,
        followup: np.ndarray,
        weights: np.ndarray | None = None,
    ):
        """Fit on a seeded subsample of the censored follow-ups.

        ``weights``: pre-sampling weights (:mod:`churnpredict.modeling.presample`); each
        row is first kept with probability ``weight / max weight``, which leaves a uniform
        sample of the rows before pre-sampling (at most ``max_rows`` of it are used).
        """
        from sksurv.linear_model import CoxPHSurvivalAnalysis
        from sksurv.util import Surv

        event = np.asarray(freeze_day) >= 1
        t = np.where(event, freeze_day, followup).astype(float)
        idx = np.flatnonzero(t > 0)
        if weights is not None and len(idx):
            w = np.asarray(weights, dtype=float)[idx]
            rng = np.random.default_rng(self.seed)
            idx = idx[rng.random(len(idx)) < w / w.max()]
        if len(idx) > self.max_rows:
            rng = np.random.default_rng(self.seed)
            idx = np.sort(rng.choice(idx, self.max_rows, replace=False))
        A, self.median_ = _cox_matrix(X.iloc[idx], self.features)
        self.mean_, self.scale_ = A.mean(axis=0), A.std(axis=0) + 1e-9
        A = np.clip((A - self.mean_) / self.scale_, -CLIP, CLIP)
        self.model_ = CoxPHSurvivalAnalysis(alpha=5.0, ties="breslow")
        self.model_.fit(A, Surv.from_arrays(event=event[idx], time=t[idx]))
        return self

    def _z(self, X: pd.DataFrame) -> np.ndarray:
        A, _ = _cox_matrix(X, self.features, self.median_)
        return np.clip((A - self.mean_) / self.scale_, -CLIP, CLIP)

    def survival(self, X: pd.DataFrame, days) -> np.ndarray:
        """Return S at ``days`` per row (rows x days)."""
        lp = self.model_.predict(self._z(X))
        fn = self.model_.baseline_survival_
        base = fn(np.clip(np.asarray(days, dtype=float), fn.x.min(), fn.x.max()))
        return base[None, :] ** np.exp(lp)[:, None]


# ------------------------------------------------------------------------- metrics
def _pr_auc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    ok = ~np.isnan(s)
    y, s = y[ok], s[ok]
    if len(y) == 0 or y.sum() in (0, len(y)):
        return float("nan")
    return float(average_precision_score(y, s))


def _surv_y(freeze_day: np.ndarray, followup: np.ndarray):
    from sksurv.util import Surv

    event = np.asarray(freeze_day) >= 1
    t = np.where(event, freeze_day, followup).astype(float)
    return Surv.from_arrays(event=event, time=np.maximum(t, 0.5))


def metrics_for(
    scores: dict[str, dict],
    freeze_day: np.ndarray,
    followup: np.ndarray,
    y_train,
    horizons: Sequence[int],
    days: np.ndarray,
) -> pd.DataFrame:
    """Return PR AUC per horizon, Uno's C and the IBS per scorer.

    ``scores[name]`` holds ``risk`` (dict horizon -> array, NaN where absent), ``c`` (the
    risk score for Uno's C, or None) and ``surv`` (rows x ``days`` matrix, or None).
    """
    from sksurv.metrics import concordance_index_ipcw, integrated_brier_score

    H = int(max(horizons))
    y_test = _surv_y(freeze_day, followup)
    n = len(freeze_day)
    pick = np.arange(n)
    if n > C_MAX_ROWS:
        pick = np.sort(np.random.default_rng(0).choice(n, C_MAX_ROWS, replace=False))
    rows = {}
    for name, sc in scores.items():
        row: dict[str, float] = {}
        for h in horizons:
            known = (freeze_day >= 1) | (followup >= h)
            y = ((freeze_day >= 1) & (freeze_day <= h)).astype(int)
            r = sc["risk"].get(h)
            row[f"pr_auc_{h}d"] = _pr_auc(y[known], r[known]) if r is not None else np.nan
        row["uno_c"] = np.nan
        if sc.get("c") is not None and (freeze_day >= 1).any():
            try:
                row["uno_c"] = float(
                    concordance_index_ipcw(
                        y_train, y_test[pick], np.asarray(sc["c"])[pick], tau=float(H)
                    )[0]
                )
            except ValueError as err:
                log.info("Uno's C not computed for %s: %s", name, err)
        row["ibs"] = np.nan
        if sc.get("surv") is not None:
            t_max = y_test["time"].max()
            keep = days < min(t_max, y_train["time"].max())
            try:
                row["ibs"] = float(
                    integrated_brier_score(y_train, y_test, sc["surv"][:, keep], days[keep])
                )
            except ValueError as err:
                log.info("IBS not computed for %s: %s", name, err)
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def calibration_table(
    risk: dict[int, np.ndarray], freeze_day: np.ndarray, followup: np.ndarray, bins: int = 10
) -> pd.DataFrame:
    """Return predicted vs Kaplan-Meier observed risk by risk decile at each horizon."""
    from sksurv.nonparametric import kaplan_meier_estimator

    event = freeze_day >= 1
    t = np.where(event, freeze_day, followup).astype(float)
    out = []
    for h, r in risk.items():
        order = np.argsort(r, kind="stable")
        for k, part in enumerate(np.array_split(order, bins)):
            ok = part[t[part] > 0]
            if len(ok) == 0:
                continue
            x, s = kaplan_meier_estimator(event[ok], t[ok])
            i = np.searchsorted(x, h, side="right") - 1
            obs = 1 - (s[i] if i >= 0 else 1.0)
            out.append(
                {
                    "horizon": h,
                    "decile": k + 1,
                    "rows": len(ok),
                    "predicted": float(r[ok].mean()),
                    "observed": float(obs),
                }
            )
    return pd.DataFrame(out)


def example_curves(
    client_ids: np.ndarray,
    as_of: np.ndarray,
    risk: np.ndarray,
    Hb: np.ndarray,
    edges: np.ndarray,
    cfg: Config,
    per_band: int = 3,
) -> pd.DataFrame:
    """Return the curves of a few clients per risk band (highest, median, lowest)."""
    from churnpredict.calls import risk_band

    band = risk_band(risk, cfg)
    days = np.arange(0, int(edges[-1]) + 1)
    rows = []
    for b in ("high", "medium", "low"):
        idx = np.flatnonzero(band == b)
        if len(idx) == 0:
            continue
        idx = idx[np.argsort(-risk[idx], kind="stable")]
        pick = sorted({idx[int(q * (len(idx) - 1))] for q in np.linspace(0, 1, per_band)})
        S = sv.survival_curve(Hb[pick], edges, days)
        for j, i in enumerate(pick):
            rows.append(
                pd.DataFrame(
                    {
                        "client_id": client_ids[i],
                        "as_of": as_of[i],
                        "band": b,
                        "day": days,
                        "survival": S[j],
                    }
                )
            )
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def swap_parts(
    risk_h: np.ndarray,
    Hraw: np.ndarray,
    edges: np.ndarray,
    horizon: int,
    p_h: np.ndarray,
    p_max: np.ndarray,
) -> dict[str, np.ndarray]:
    """Return the risk at the last day with one of its two parts taken from the truth.

    The model's risk at the last day is ``1 - (1 - risk_h) * (1 - L)``: the anchor ``risk_h``
    (the calibrated classifier's risk by ``horizon``) and ``L``, the hazard model's risk
    after the horizon given no freeze by it (its increments, as :func:`sv.anchor` keeps
    them). With the truth's risks by the horizon ``p_h`` and by the last day ``p_max``
    (whose part after the horizon is ``(p_max - p_h) / (1 - p_h)``), this returns

    - ``TRUTH_FIRST``: the truth's part up to the horizon with the model's after it;
    - ``MODEL_FIRST``: the model's part up to the horizon with the truth's after it (the
      model's own where the truth is sure of a freeze by the horizon).

    Ranked against the outcome, the two say which part the model's ranking at the last
    day loses on (a diagnosis for simulated worlds; nothing served uses it).
    """
    h_at = sv.cumhaz_at(Hraw, edges, float(horizon))[:, 0]
    after = np.maximum(Hraw[:, -1] - h_at, 0.0)  # the model's increments after the horizon
    p_h = np.clip(np.asarray(p_h, dtype=np.float64), 0.0, 1.0)
    p_max = np.clip(np.asarray(p_max, dtype=np.float64), 0.0, 1.0)
    # the truth's survival after the horizon given none by it; where the truth is sure of
    # a freeze by the horizon that is undefined, and the model's own part is kept (taking
    # 0 or 1 there would hand the model the truth's first part on those rows)
    sure = p_h >= 1.0 - EPS_TRUTH
    rest = np.where(sure, np.exp(-after), (1.0 - p_max) / np.where(sure, 1.0, 1.0 - p_h))
    return {
        TRUTH_FIRST: 1.0 - (1.0 - p_h) * np.exp(-after),
        MODEL_FIRST: 1.0 - (1.0 - np.asarray(risk_h, dtype=np.float64)) * np.clip(rest, 0, 1),
    }


# ---------------------------------------------------------------------------- main
def evaluate_survival(
    table: pd.DataFrame,
    feats: Sequence[str],
    masks: dict[str, np.ndarray],
    es_model,
    cfg: Config,
    truth: pd.DataFrame | None = None,
    segment: np.ndarray | None = None,
    until: pd.Timestamp | None = None,
    decompose: bool = False,
) -> tuple[SurvivalEval | None, sv.HazardModel | None]:
    """Fit the curve as of the survival fold and evaluate it against the baselines.

    Parameters
    ----------
    table : DataFrame
        The training table with ``followup_days`` and ``freeze_day``.
    feats : sequence of str
        The classifier's feature columns.
    masks : dict
        The evaluated model's folds (``fit``, ``valid``, ...).
    es_model : ChurnModel
        The evaluated model's early-stopping booster (fitted on ``fit``).
    cfg : Config
    truth : DataFrame, optional
        ``client_id``, ``as_of``, ``p_true_7d``, ``p_true``, ``p_true_90d``.
    segment : array, optional
        Each row's segment (for the Kaplan-Meier groups).
    until : Timestamp, optional
        Only as-of dates before it may form the survival fold (a backtest cut's end).
    decompose : bool
        With the truth at every horizon, also score the risk at the last day with one of
        its parts (up to the horizon, after it) taken from the truth (:func:`swap_parts`;
        ``python -m benchmarks.quality --survival`` shows them).

    Returns
    -------
    SurvivalEval or None, HazardModel or None
        None when the data has no survival fold (too short); the hazard model's early
        stopping is reused by the served fit.
    """
    from churnpredict.modeling.backtest import TENURE, _truth_for
    from churnpredict.modeling.baselines import paused_rule_score

    t0 = time.perf_counter()
    seconds: dict[str, float] = {}
    fold = survival_fold(table, masks, cfg, until)
    features = hazard_features(es_model, cfg.model.survival_features)
    d = _dates(table)
    if fold is None or not fold.any():
        log.warning(
            "no survival fold: no as-of date after the validation fold has %d days of "
            "follow-up; the curve is fitted but not evaluated",
            cfg.label.max_horizon_days,
        )
        cutoff = d.max() + pd.Timedelta(days=1)  # served only: every follow-up seen
        return None, fit_hazard_protocol(table, masks, cutoff, features, cfg)
    cutoff = d[fold].min()
    H = int(cfg.label.max_horizon_days)
    h30 = int(cfg.label.horizon_days)
    horizons = tuple(sorted({7, h30, H}))
    edges = sv.bin_edges(cfg)

    hazard = fit_hazard_protocol(table, masks, cutoff, features, cfg)
    seconds["hazard_fit"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    valid = masks["valid"]
    yv = table.loc[valid, "label"].to_numpy(dtype=float)
    cal = Calibrator(cfg.model.calibration).fit(es_model.predict_raw(table.loc[valid, feats]), yv)
    Xt = table.loc[fold, list(dict.fromkeys([*KEY_COLS, *TARGET_COLS, *feats]))]
    risk30 = cal.predict(es_model.predict_raw(Xt[list(feats)]))
    Hraw = hazard.cumhaz(Xt)
    Han = sv.anchor(Hraw, edges, h30, risk30)
    fd_t = Xt["freeze_day"].to_numpy(dtype=np.int64)
    fu_t = Xt["followup_days"].to_numpy(dtype=np.int64)
    before = (d < cutoff).to_numpy()
    fd_b, fu_b = sv.targets(table.loc[before, list(TARGET_COLS)], cutoff)
    y_train = _surv_y(fd_b, fu_b)
    days = np.arange(1, H, dtype=float)

    def curve_scores(Hb):
        risk = {h: -np.expm1(-sv.cumhaz_at(Hb, edges, float(h))[:, 0]) for h in horizons}
        return {"risk": risk, "c": risk[H], "surv": sv.survival_curve(Hb, edges, days)}

    scores = {MODEL: curve_scores(Han), RAW: curve_scores(Hraw)}
    scores[CLASSIFIER] = {"risk": dict.fromkeys(horizons, risk30), "c": risk30, "surv": None}

    # baselines, fitted on the rows before the fold, follow-ups cut at its first date
    tenure = table[TENURE].to_numpy(dtype=float) if TENURE in table else np.full(len(table), 0)
    seg = segment if segment is not None else np.full(len(table), "-", dtype=object)
    groups = np.array([f"{s}/{b}" for s, b in zip(seg, tenure_band(tenure), strict=True)])
    all_days = np.arange(1, H + 1, dtype=float)
    w_b = weights_of(table, before)  # None unless the table is pre-sampled (presample.py)
    km = KaplanMeierBaseline().fit(groups[before], fd_b, fu_b, all_days, weights=w_b)
    S_km = km.predict(groups[fold])
    scores[KM] = {
        "risk": {h: 1 - S_km[:, h - 1] for h in horizons},
        "c": 1 - S_km[:, H - 1],
        "surv": S_km[:, : H - 1],
    }
    cox_cols = [f for f in features if f in table.columns][:COX_FEATURES]
    try:
        cox = CoxBaseline(cox_cols, seed=cfg.model.seed).fit(
            table.loc[before, cox_cols], fd_b, fu_b, weights=w_b
        )
        S_cox = cox.survival(Xt, all_days)
        scores[COX] = {
            "risk": {h: 1 - S_cox[:, h - 1] for h in horizons},
            "c": 1 - S_cox[:, H - 1],
            "surv": S_cox[:, : H - 1],
        }
    except (ValueError, np.linalg.LinAlgError, ArithmeticError) as err:
        log.warning("Cox baseline not fitted: %s", err)
    try:
        rule = paused_rule_score(Xt)
        scores[RULE] = {"risk": dict.fromkeys(horizons, rule), "c": None, "surv": None}
    except KeyError:
        pass
    if truth is not None and {"p_true_7d", "p_true_90d"} <= set(truth.columns):
        rows = Xt[["client_id", "as_of"]]
        pt = {
            7: _truth_for(rows, truth.rename(columns={"p_true": "_p", "p_true_7d": "p_true"})),
            h30: _truth_for(rows, truth),
            H: _truth_for(rows, truth.rename(columns={"p_true": "_p", "p_true_90d": "p_true"})),
        }
        if h30 == 30 and H == 90 and not np.isnan(pt[H]).all():
            scores[TRUTH] = {"risk": pt, "c": pt[H], "surv": None}
            if decompose:
                for name, r in swap_parts(risk30, Hraw, edges, h30, pt[h30], pt[H]).items():
                    scores[name] = {"risk": {H: r}, "c": r, "surv": None}
    seconds["baselines"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    ten_t = tenure[fold]
    parts = {"all": np.ones(len(Xt), bool)}
    for n in NEW_CLIENT_DAYS:
        parts[f"first {n} days"] = ten_t <= n
    by = []
    for gname, m in parts.items():
        if m.sum() == 0:
            continue
        sub = {
            k: {
                "risk": {h: v[m] for h, v in sc["risk"].items()},
                "c": None if sc.get("c") is None else sc["c"][m],
                "surv": None if sc.get("surv") is None else sc["surv"][m],
            }
            for k, sc in scores.items()
        }
        mt = metrics_for(sub, fd_t[m], fu_t[m], y_train, horizons, days)
        mt.insert(0, "positives_90d", int(((fd_t[m] >= 1) & (fd_t[m] <= H)).sum()))
        mt.insert(0, "rows", int(m.sum()))
        mt.index = pd.MultiIndex.from_product([[gname], mt.index], names=["group", "scorer"])
        by.append(mt)
    by_group = pd.concat(by)
    metrics = by_group.loc["all"].drop(columns=["rows", "positives_90d"])
    calib = calibration_table(scores[MODEL]["risk"], fd_t, fu_t)
    curves = example_curves(
        Xt["client_id"].astype(str).to_numpy(),
        d[fold].to_numpy(),
        risk30,
        Han,
        edges,
        cfg,
    )
    seconds["metrics"] = time.perf_counter() - t2
    seconds["total"] = time.perf_counter() - t0
    return (
        SurvivalEval(
            metrics=metrics,
            by_group=by_group,
            calibration=calib,
            curves=curves,
            fold=(d[fold].min(), d[fold].max()),
            rows=int(fold.sum()),
            horizons=horizons,
            features=list(features),
            cox_features=cox_cols,
            n_trees=int(hazard.metadata_.get("early_stopping_trees", hazard.best_iteration_)),
            seconds=seconds,
        ),
        hazard,
    )
