"""Per-client contributions -> the top reasons, in plain words.

The model's own contributions (LightGBM ``pred_contrib``: SHAP values in raw
log-odds) are grouped by feature family. A family's weight is the sum of its
*positive* contributions (what pushes the client's risk up); the feature phrased
for it is the family's strongest positive feature, rendered with the client's
actual value (and, for some phrases, a companion feature's value, e.g. "2 of 3
campaigns paused by the client in the last 7 days"). The top ``k`` families with a
positive weight become the client's reasons.

Everything up to the final top-k strings is vectorized (NumPy over the client ×
feature matrix); phrases are rendered once per (feature, client) pick.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnpredict.features.catalog import Feature
from churnpredict.phrases import PhraseBook

BIAS_COLUMNS = ("bias", "BiasTerm", "expected_value")


@dataclass(frozen=True)
class Reason:
    """One reason a client is at risk.

    Attributes
    ----------
    family : str
        Feature family (source) the reason comes from, e.g. ``invoices``.
    feature : str
        The feature phrased for it (the family's strongest positive contributor).
    contribution : float
        The family's summed positive contribution, in raw log-odds.
    text : str
        The reason in plain words, with the client's numbers.
    """

    family: str
    feature: str
    contribution: float
    text: str


def _family_of(name: str, catalog: dict[str, Feature]) -> str:
    f = catalog.get(name)
    return f.family if f is not None else name.split("__", 1)[0]


def top_reasons(
    contrib: pd.DataFrame | np.ndarray,
    X: pd.DataFrame,
    catalog: Iterable[Feature],
    *,
    language: str = "en",
    k: int = 3,
    feature_names: list[str] | None = None,
) -> list[list[Reason]]:
    """Return each client's top ``k`` reasons, strongest first.

    Parameters
    ----------
    contrib : DataFrame or ndarray of shape (n_clients, n_features [+ 1])
        Contributions per feature (LightGBM ``pred_contrib``), one column per feature
        plus an optional ``bias`` column (ignored). A bare array needs
        ``feature_names`` (its last column is taken as the bias when it has one
        column more than the names).
    X : DataFrame
        The clients' feature values, row-aligned with ``contrib``; must hold every
        feature column of ``contrib`` (extra columns such as ``client_id`` are fine).
    catalog : iterable of Feature
        The feature catalog (families, kinds, windows, slices, columns).
    language : {"en", "ru"}
        Language of the reason texts.
    k : int
        Number of reasons per client at most; families with no positive
        contribution are never listed, so a client may get fewer.
    feature_names : list of str, optional
        Column names for an ndarray ``contrib``.

    Returns
    -------
    list of list of Reason
        One list per row of ``contrib``, in row order.
    """
    cat = {f.name: f for f in catalog}
    if isinstance(contrib, pd.DataFrame):
        names = [c for c in contrib.columns if c not in BIAS_COLUMNS]
        C = contrib[names].to_numpy(dtype=np.float64, copy=False)
    else:
        if feature_names is None:
            raise ValueError("feature_names is required when contrib is an array")
        arr = np.asarray(contrib, dtype=np.float64)
        names = list(feature_names)
        if arr.shape[1] == len(names) + 1:
            arr = arr[:, :-1]
        if arr.shape[1] != len(names):
            raise ValueError(
                f"contrib has {arr.shape[1]} columns but {len(names)} feature names were given"
            )
        C = arr
    n = C.shape[0]
    if len(X) != n:
        raise ValueError(f"X has {len(X)} rows but contrib has {n}")
    if n == 0 or not names:
        return [[] for _ in range(n)]

    fam_of = [_family_of(c, cat) for c in names]
    families = list(dict.fromkeys(fam_of))
    fam_idx = np.array([families.index(f) for f in fam_of])
    n_fam = len(families)

    pos = np.where(C > 0, C, 0.0)
    # weight per family = sum of positive contributions; strongest feature per family
    W = np.zeros((n, n_fam))
    best = np.zeros((n, n_fam), dtype=np.int64)
    for j in range(n_fam):
        cols = np.flatnonzero(fam_idx == j)
        sub = pos[:, cols]
        W[:, j] = sub.sum(axis=1)
        best[:, j] = cols[np.argmax(sub, axis=1)]

    k_eff = min(k, n_fam)
    # top-k families per row, strongest first (ties broken by family order: stable)
    order = np.argsort(-W, axis=1, kind="stable")[:, :k_eff]
    top_w = np.take_along_axis(W, order, axis=1)
    top_feat = np.take_along_axis(best, order, axis=1)
    keep = top_w > 0

    rows, slots = np.nonzero(keep)
    feats = top_feat[rows, slots]
    texts = np.empty(len(rows), dtype=object)

    book = PhraseBook([cat[c] for c in names if c in cat], language)
    # Render per distinct feature: look values (and companions) up column-wise.
    for fi in np.unique(feats):
        name = names[fi]
        sel = np.flatnonzero(feats == fi)
        r = rows[sel]
        phrase = book.phrase(name)
        vals = _column(X, name)[r]
        comps = [
            _column(X, cname)[r] if cname in X.columns else None for cname in phrase.companions
        ]
        if comps and all(c is not None for c in comps):
            comp_rows = np.column_stack(comps).tolist()
            texts[sel] = [
                phrase.render(float(v), cr) for v, cr in zip(vals, comp_rows, strict=True)
            ]
        else:  # no companion, or one is missing from X: phrase the feature alone
            texts[sel] = [phrase.render(float(v), ()) for v in vals]

    out: list[list[Reason]] = [[] for _ in range(n)]
    fam_names = [families[j] for j in order[rows, slots]]
    contribs = top_w[rows, slots].tolist()
    for i, r_ in enumerate(rows.tolist()):
        out[r_].append(Reason(fam_names[i], names[feats[i]], contribs[i], texts[i]))
    return out


def _column(X: pd.DataFrame, name: str) -> np.ndarray:
    """Return a feature column as float64 (non-numeric values become NaN)."""
    s = X[name]
    if not pd.api.types.is_numeric_dtype(s):
        s = pd.to_numeric(s, errors="coerce")
    return s.to_numpy(dtype=np.float64, na_value=np.nan)


def reasons_text(reasons: list[Reason], sep: str = "; ") -> str:
    """Join a client's reasons into the call list's ``reasons`` cell."""
    return sep.join(r.text for r in reasons)
