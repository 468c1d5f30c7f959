"""Feature drift between training and today: population stability index (PSI).

Training statistics format (shared with the model's ``train_stats_``)::

    {feature: {"edges": [e1, ..., ek],      # inner quantile edges, strictly increasing
               "shares": [s0, ..., sk],     # share of non-null rows per bin (sums to 1)
               "missing": float}}           # share of null rows

Bins are right-closed: bin 0 is ``(-inf, e1]``, bin i is ``(e_i, e_{i+1}]``, the last
is ``(e_k, inf)``. Nulls form their own bin. PSI over the ``k + 2`` bins, with every
share floored at ``1e-4``::

    PSI = sum((today - train) * ln(today / train))

Rule of thumb: < 0.1 stable, 0.1-0.25 some shift, > 0.25 a real shift.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from churnpredict.config import Config, DriftConfig
from churnpredict.errors import DataError, DriftError

EPS = 1e-4
ID_COLUMNS = ("client_id", "as_of", "label")


def _values(s: pd.Series) -> np.ndarray:
    if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        s = pd.to_numeric(s, errors="coerce")
    return s.to_numpy(dtype=np.float64, na_value=np.nan)


def bin_shares(values: np.ndarray, edges) -> tuple[np.ndarray, float]:
    """Return the share of non-null ``values`` per bin and the null share.

    Bin ``i`` holds values ``x`` with ``edges[i-1] < x <= edges[i]`` (first bin: up to
    ``edges[0]``, last: above ``edges[-1]``), i.e. ``len(edges) + 1`` bins.
    """
    x = np.asarray(values, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    n = len(x)
    if n == 0:
        return np.full(len(edges) + 1, np.nan), float("nan")
    null = np.isnan(x)
    vals = x[~null]
    counts = np.bincount(np.searchsorted(edges, vals, side="left"), minlength=len(edges) + 1)
    nn = len(vals)
    shares = counts / nn if nn else np.zeros(len(edges) + 1)
    return shares, float(null.mean())


def training_stats(
    X: pd.DataFrame, *, n_bins: int = 10, features: Iterable[str] | None = None
) -> dict[str, dict]:
    """Compute per-feature quantile bin edges and shares on the training table.

    Parameters
    ----------
    X : DataFrame
        Training features (``client_id``, ``as_of`` and ``label`` are skipped).
    n_bins : int
        Number of quantile bins at most (ties merge bins, e.g. mostly-zero counts).
    features : iterable of str, optional
        The columns to describe (default: every column except the id columns).

    Returns
    -------
    dict
        ``{feature: {"edges": [...], "shares": [...], "missing": float}}``,
        JSON-serializable — the same format as ``ChurnModel.train_stats_``.
    """
    cols = (
        list(features) if features is not None else [c for c in X.columns if c not in ID_COLUMNS]
    )
    qs = np.linspace(0, 1, n_bins + 1)[1:-1]
    out: dict[str, dict] = {}
    for c in cols:
        x = _values(X[c])
        vals = x[~np.isnan(x)]
        edges = np.unique(np.quantile(vals, qs)) if len(vals) else np.array([])
        # drop an edge equal to the max: its upper bin would always be empty
        if len(vals) and len(edges) and edges[-1] >= vals.max():
            edges = edges[:-1]
        shares, null_share = bin_shares(x, edges)
        out[c] = {
            "edges": [float(e) for e in edges],
            "shares": [float(s) for s in np.nan_to_num(shares)],
            "missing": float(np.nan_to_num(null_share)),
        }
    return out


def psi_value(expected, actual, floor: float = EPS) -> float:
    """Return the population stability index between two share vectors."""
    e = np.clip(np.asarray(expected, dtype=np.float64), floor, None)
    a = np.clip(np.asarray(actual, dtype=np.float64), floor, None)
    return float(np.sum((a - e) * np.log(a / e)))


def psi(train_stats: dict[str, dict], X_today: pd.DataFrame) -> pd.DataFrame:
    """Return the PSI of every feature present in both ``train_stats`` and ``X_today``.

    Returns
    -------
    DataFrame
        Columns ``feature``, ``psi``, ``null_share_train``, ``null_share_today``,
        sorted by PSI, largest first.
    """
    rows = []
    for feat, st in train_stats.items():
        if feat not in X_today.columns:
            continue
        edges = np.asarray(st["edges"], dtype=np.float64)
        tr_null = float(st.get("missing", 0.0))
        tr = np.append(np.asarray(st["shares"], dtype=np.float64) * (1 - tr_null), tr_null)
        x = _values(X_today[feat])
        shares, null = bin_shares(x, edges)
        today = np.append(shares * (1 - null), null)
        value = float("nan") if np.isnan(null) else psi_value(tr, today)
        rows.append((feat, value, tr_null, null))
    df = pd.DataFrame(rows, columns=["feature", "psi", "null_share_train", "null_share_today"])
    return df.sort_values("psi", ascending=False, kind="stable").reset_index(drop=True)


@dataclass
class DriftReport:
    """The outcome of :func:`check_drift`.

    Attributes
    ----------
    table : DataFrame
        PSI per feature (see :func:`psi`).
    warn : list of str
        Features with PSI above ``psi_warn``.
    fail : list of str
        Features with PSI above ``psi_fail``.
    no_stats : list of str
        Expected features without training statistics (not checked).
    """

    table: pd.DataFrame
    warn: list[str] = field(default_factory=list)
    fail: list[str] = field(default_factory=list)
    no_stats: list[str] = field(default_factory=list)
    psi_warn: float = 0.1
    psi_fail: float = 0.5

    @property
    def ok(self) -> bool:
        """Return True when no feature passed the warning threshold."""
        return not self.warn

    def text(self, limit: int = 10) -> str:
        """Render a short report for people."""
        n = len(self.table)
        if not self.warn:
            return f"Drift: {n} features checked, none with PSI above {self.psi_warn}."
        lines = [
            f"Drift: {len(self.warn)} of {n} features with PSI above {self.psi_warn}"
            + (f" ({len(self.fail)} above {self.psi_fail})" if self.fail else "")
            + ":"
        ]
        t = self.table.set_index("feature")
        for feat in self.warn[:limit]:
            lines.append(f"  {feat}: PSI {t.loc[feat, 'psi']:.3f}")
        if len(self.warn) > limit:
            lines.append(f"  ... and {len(self.warn) - limit} more")
        return "\n".join(lines)

    __str__ = text


def check_drift(
    train_stats: dict[str, dict],
    X_today: pd.DataFrame,
    expected_features: Iterable[str],
    cfg: Config | DriftConfig,
) -> DriftReport:
    """Check today's features against the training statistics.

    Parameters
    ----------
    train_stats : dict
        Output of :func:`training_stats` (or the model's ``train_stats_``).
    X_today : DataFrame
        Today's features.
    expected_features : iterable of str
        The features the model needs.
    cfg : Config or DriftConfig
        Thresholds and action (``calls.drift``).

    Raises
    ------
    DataError
        When an expected feature is missing from ``X_today`` (never filled with zeros).
    DriftError
        When ``action`` is ``fail`` and a feature's PSI is above ``psi_fail``.
    """
    dcfg = cfg.calls.drift if isinstance(cfg, Config) else cfg
    expected = list(expected_features)
    missing = [f for f in expected if f not in X_today.columns]
    if missing:
        raise DataError(
            f"{len(missing)} feature(s) the model needs are missing from today's features",
            file="features",
            column=missing[0],
            examples=missing[:5],
            expected="every feature the model was trained on (rebuild features with the "
            "training config)",
        )
    stats = {f: train_stats[f] for f in expected if f in train_stats}
    no_stats = [f for f in expected if f not in train_stats]
    table = psi(stats, X_today)
    vals = table.set_index("feature")["psi"]
    warn = [f for f, v in vals.items() if v > dcfg.psi_warn]
    fail = [f for f, v in vals.items() if v > dcfg.psi_fail]
    report = DriftReport(table, warn, fail, no_stats, dcfg.psi_warn, dcfg.psi_fail)
    if fail and dcfg.action == "fail":
        raise DriftError(
            f"Feature drift above psi_fail={dcfg.psi_fail} for {len(fail)} feature(s); "
            "no call list written.\n" + report.text()
        )
    return report
