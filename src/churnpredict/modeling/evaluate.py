"""Metrics for a ranked call list: ranking quality, capacity metrics, calibration.

Conventions
-----------
- **Capacity** is applied per as-of date (``groups``): each day the team calls the top
  ``k`` clients of that day's list. ``k = capacity`` (``calls_per_day × capacity_days``)
  or ``ceil(top_pct × rows that day)``; never more than the rows that day.
- **Ties** at the capacity boundary are broken at random *in expectation*: when the
  ``k``-th place falls inside a block of equal scores, each tied row counts as selected
  with probability (places left) / (tied rows). A binary rule such as "paused a campaign
  in the last 7 days" is thus scored fairly and deterministically.
- ``precision_at_k`` = expected freezes among all selected rows / selected rows (pooled
  over dates; equal to the mean daily precision when every day has ``k`` rows);
  ``recall_at_k`` = expected freezes selected / all freezes (pooled).
- ``lift_at_10`` = precision in the top ``lift_pct`` (default 10%) of each day / base rate.
- ``ece``: expected calibration error over ``n_bins`` (default 10) **equal-mass** bins of
  the score: sum over bins of (bin share of rows) × |mean label − mean score|.
- ``paused_recall_at_k``: among freezes of clients that paused a campaign in the last
  7 days (``paused_mask``), the share the same top-``k`` selection catches.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from churnpredict.config import Config

METRIC_NAMES = (
    "rows",
    "positives",
    "base_rate",
    "roc_auc",
    "pr_auc",
    "precision_at_k",
    "recall_at_k",
    "lift_at_10",
    "brier",
    "ece",
    "paused_recall_at_k",
    "capacity",
)


def capacity_from_config(cfg: Config) -> tuple[int | None, float | None]:
    """Return ``(capacity, top_pct)`` from ``cfg.evaluation`` (``top_pct`` wins when set)."""
    ev = cfg.evaluation
    if ev.top_pct is not None:
        return None, float(ev.top_pct)
    return int(ev.calls_per_day * ev.capacity_days), None


def _k_for(n: int, capacity: int | None, top_pct: float | None) -> int:
    if top_pct is not None:
        return min(n, int(math.ceil(top_pct * n)))
    if capacity is None:
        raise ValueError("give capacity or top_pct")
    return min(n, int(capacity))


def selection_weights(
    score: np.ndarray,
    *,
    capacity: int | None = None,
    top_pct: float | None = None,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Return each row's probability of being among the top ``k`` of its group.

    Rows strictly above the ``k``-th score get 1, rows strictly below get 0, and rows tied
    with the ``k``-th score share the remaining places equally.

    Parameters
    ----------
    score : numpy.ndarray
        Higher = call first. NaN scores rank last.
    capacity : int, optional
        Places per group.
    top_pct : float, optional
        Share of each group's rows (rounded up); overrides ``capacity``.
    groups : numpy.ndarray, optional
        Group key per row (e.g. the as-of date); one group when omitted.

    Returns
    -------
    numpy.ndarray of float
    """
    s = np.asarray(score, dtype=float)
    s = np.where(np.isnan(s), -np.inf, s)
    n = len(s)
    if groups is None:
        codes = np.zeros(n, dtype=np.int64)
    else:
        codes = pd.factorize(pd.Series(np.asarray(groups)), sort=True)[0]
    w = np.zeros(n, dtype=float)
    order = np.lexsort((-s, codes))  # by group, then score descending
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    for idx in np.split(order, bounds):
        if len(idx) == 0:
            continue
        k = _k_for(len(idx), capacity, top_pct)
        if k <= 0:
            continue
        gs = s[idx]
        kth = gs[k - 1]
        above = gs > kth
        tied = gs == kth
        left = k - int(above.sum())
        w[idx[above]] = 1.0
        w[idx[tied]] = left / int(tied.sum())
    return w


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """Return the ECE over ``n_bins`` equal-mass bins of ``p`` (rows sorted by ``p``)."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    if len(y) == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    total = 0.0
    for idx in np.array_split(order, min(n_bins, len(y))):
        if len(idx):
            total += len(idx) * abs(y[idx].mean() - p[idx].mean())
    return float(total / len(y))


def calibration_table(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Return mean score, observed rate and rows per equal-mass bin (for the plot)."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    rows = [
        {"mean_score": p[idx].mean(), "observed": y[idx].mean(), "rows": len(idx)}
        for idx in np.array_split(order, min(n_bins, max(len(y), 1)))
        if len(idx)
    ]
    return pd.DataFrame(rows, columns=["mean_score", "observed", "rows"])


def finite_ranks(score) -> np.ndarray:
    """Return ``score`` with the same order but finite, as scikit-learn's metrics need.

    NaN and -inf go just below the lowest finite score, +inf (e.g. a rate over an
    empty gap in a baseline) just above the highest.
    """
    s = np.asarray(score, dtype=float)
    finite = s[np.isfinite(s)]
    lo, hi = (finite.min() - 1, finite.max() + 1) if finite.size else (0.0, 1.0)
    return np.where(np.isnan(s) | np.isneginf(s), lo, np.where(np.isposinf(s), hi, s))


def metrics(
    y: np.ndarray,
    score: np.ndarray,
    *,
    capacity: int | None = None,
    top_pct: float | None = None,
    groups: np.ndarray | None = None,
    paused_mask: np.ndarray | None = None,
    is_probability: bool = True,
    lift_pct: float = 0.1,
    n_bins: int = 10,
) -> dict[str, float]:
    """Compute ranking, capacity and calibration metrics of ``score`` against ``y``.

    Parameters
    ----------
    y : numpy.ndarray
        Labels 0/1.
    score : numpy.ndarray
        Risk score, higher = more likely to freeze.
    capacity : int, optional
        Calls per group (as-of date); see the module docstring.
    top_pct : float, optional
        Share of each group called instead of a fixed capacity.
    groups : numpy.ndarray, optional
        As-of date per row; capacity and lift are applied per group.
    paused_mask : numpy.ndarray of bool, optional
        Rows whose client paused a campaign in the last 7 days.
    is_probability : bool
        When False (rule or rank scores), Brier and ECE are NaN.
    lift_pct : float
        Top share for the lift.
    n_bins : int
        Equal-mass bins for the ECE.

    Returns
    -------
    dict of str to float
        Keys in :data:`METRIC_NAMES`.
    """
    y = np.asarray(y, dtype=float)
    s = np.asarray(score, dtype=float)
    if y.shape != s.shape:
        raise ValueError(f"y and score differ in length: {y.shape} vs {s.shape}")
    n = len(y)
    pos = float(y.sum())
    base = pos / n if n else float("nan")
    both = 0 < pos < n
    s_rank = np.where(np.isnan(s), -np.inf, s)
    s_fin = finite_ranks(s)
    out: dict[str, float] = {
        "rows": float(n),
        "positives": pos,
        "base_rate": base,
        "roc_auc": float(roc_auc_score(y, s_fin)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, s_fin)) if both else float("nan"),
    }
    w = selection_weights(s_rank, capacity=capacity, top_pct=top_pct, groups=groups)
    selected = w.sum()
    caught = float((w * y).sum())
    out["precision_at_k"] = caught / selected if selected else float("nan")
    out["recall_at_k"] = caught / pos if pos else float("nan")
    wl = selection_weights(s_rank, top_pct=lift_pct, groups=groups)
    prec_lift = float((wl * y).sum() / wl.sum()) if wl.sum() else float("nan")
    out["lift_at_10"] = prec_lift / base if base else float("nan")
    if is_probability:
        out["brier"] = float(np.mean((s_fin - y) ** 2)) if n else float("nan")
        out["ece"] = expected_calibration_error(y, s_fin, n_bins)
    else:
        out["brier"] = float("nan")
        out["ece"] = float("nan")
    if paused_mask is not None:
        pm = np.asarray(paused_mask, dtype=bool)
        pp = float((y * pm).sum())
        out["paused_recall_at_k"] = float((w * y * pm).sum() / pp) if pp else float("nan")
    else:
        out["paused_recall_at_k"] = float("nan")
    n_groups = 1 if groups is None else max(1, pd.Series(np.asarray(groups)).nunique())
    out["capacity"] = float(selected / n_groups) if n else 0.0
    return out


def precision_at_k_curve(
    y: np.ndarray, score: np.ndarray, ks: list[int], groups: np.ndarray | None = None
) -> pd.DataFrame:
    """Return precision and recall at each capacity in ``ks`` (per group, pooled)."""
    y = np.asarray(y, dtype=float)
    rows = []
    pos = y.sum()
    for k in ks:
        w = selection_weights(score, capacity=int(k), groups=groups)
        caught = float((w * y).sum())
        rows.append(
            {
                "k": int(k),
                "precision": caught / w.sum() if w.sum() else float("nan"),
                "recall": caught / pos if pos else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def gains_curve(y: np.ndarray, score: np.ndarray, points: int = 101) -> pd.DataFrame:
    """Return the cumulative-gains curve: share of rows called vs share of freezes caught."""
    y = np.asarray(y, dtype=float)
    s = np.asarray(score, dtype=float)
    shares = np.linspace(0, 1, points)
    caught = []
    pos = y.sum()
    for q in shares:
        if q == 0 or pos == 0:
            caught.append(0.0)
            continue
        w = selection_weights(s, top_pct=float(q))
        caught.append(float((w * y).sum() / pos))
    return pd.DataFrame({"share_called": shares, "share_caught": caught})


def beaten_by(metrics: pd.DataFrame) -> list[str]:
    """Return the references (not the truth) whose PR AUC is at least the model's."""
    if "model" not in metrics.index:
        return []
    best = metrics.loc["model", "pr_auc"]
    return [
        s
        for s in metrics.index
        if s not in ("model", "p_true") and metrics.loc[s, "pr_auc"] >= best
    ]
