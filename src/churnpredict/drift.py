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

The reference (:func:`reference_stats`, computed by ``train`` and stored in the model's
``metadata_["drift_reference"]``) is the served model's most recent training as-of
dates (the last ``REFERENCE_DATES`` snapshot dates), not its whole history: a normal
scoring day looks like the last weeks of training, not like two years ago. Features
that grow with time by construction (``days_since`` kinds, tenure) are judged on fixed
recency buckets (within 7, 30, 90 days, older, never) instead of quantiles, so a
client base that merely aged does not count as drift while "nobody had a contact this
month" still does. The report sums the shifted features per source table and, when a
table's window counts fell far below the reference, asks whether its export stopped.
Models saved before the reference existed fall back to ``train_stats_`` (their fit rows).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from churnpredict.config import Config, DriftConfig
from churnpredict.errors import DataError, DriftError

EPS = 1e-4
ID_COLUMNS = ("client_id", "as_of", "label")
REFERENCE_DATES = 4
RECENCY_EDGES = (7.0, 30.0, 90.0)  # fixed buckets for features that grow with time
COUNT_KINDS = ("count", "sum", "amount")
STOPPED_SHARE = 0.2  # a table's window counts below 20% of the reference: export stopped?
RECENT_WINDOW = 30  # ... over windows of at most this many days


def grows_with_time(name: str, kind: str | None) -> bool:
    """Return True for features that grow with time by construction (days since, tenure)."""
    return kind == "days_since" or "tenure" in name or "days_since" in name


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


def reference_stats(
    table: pd.DataFrame,
    catalog: Iterable,
    *,
    n_dates: int = REFERENCE_DATES,
    n_bins: int = 10,
    max_rows: int = 200_000,
    seed: int = 0,
) -> dict:
    """Describe the most recent training as-of dates: the drift check's reference.

    Parameters
    ----------
    table : DataFrame
        The labelled training table (``as_of`` plus feature columns).
    catalog : iterable of Feature
        The features (their ``kind`` tells which grow with time).
    n_dates : int
        How many of the latest as-of dates to describe.
    n_bins : int
        Quantile bins for ordinary features.
    max_rows : int
        Describe a seeded sample of at most this many rows.
    seed : int
        Seed of that sample.

    Returns
    -------
    dict
        ``{"as_of": [dates], "rows": n, "stats": {feature: {"edges", "shares",
        "missing", "mean", "scale"}}, "family": {feature: family}, "kind": {...}}``,
        JSON-serializable. ``scale`` is ``"recency"`` for features judged on the fixed
        buckets :data:`RECENCY_EDGES`, else ``"quantile"``.
    """
    features = list(catalog)
    dates = sorted(pd.to_datetime(table["as_of"]).unique())[-n_dates:]
    rows = table[pd.to_datetime(table["as_of"]).isin(dates)]
    if len(rows) > max_rows:
        rows = rows.sample(max_rows, random_state=seed)
    # counts over the whole history (window None: e.g. events since the first one) grow
    # with every day by construction and have no fixed scale: left out of the check
    lifetime = {f.name for f in features if f.kind in COUNT_KINDS and f.window is None}
    names = [f.name for f in features if f.name in rows.columns and f.name not in lifetime]
    kinds = {f.name: f.kind for f in features}
    stats = training_stats(rows, n_bins=n_bins, features=names)
    for name in names:
        x = _values(rows[name])
        st = stats[name]
        st["mean"] = float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")
        st["scale"] = "quantile"
        if grows_with_time(name, kinds.get(name)):
            shares, null = bin_shares(x, RECENCY_EDGES)
            st["edges"] = list(RECENCY_EDGES)
            st["shares"] = [float(v) for v in np.nan_to_num(shares)]
            st["missing"] = float(np.nan_to_num(null))
            st["scale"] = "recency"
    return {
        "as_of": [str(pd.Timestamp(d).date()) for d in dates],
        "rows": len(rows),
        "stats": stats,
        "family": {f.name: f.family for f in features},
        "kind": kinds,
    }


def psi_value(expected, actual, floor: float = EPS) -> float:
    """Return the population stability index between two share vectors."""
    e = np.clip(np.asarray(expected, dtype=np.float64), floor, None)
    a = np.clip(np.asarray(actual, dtype=np.float64), floor, None)
    return float(np.sum((a - e) * np.log(a / e)))


def psi(train_stats: dict[str, dict], X_today: pd.DataFrame | FeatureCounts) -> pd.DataFrame:
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
        if isinstance(X_today, FeatureCounts):
            shares, null = X_today.shares(feat)
        else:
            shares, null = bin_shares(_values(X_today[feat]), edges)
        today = np.append(shares * (1 - null), null)
        value = float("nan") if np.isnan(null) else psi_value(tr, today)
        rows.append((feat, value, tr_null, null))
    df = pd.DataFrame(rows, columns=["feature", "psi", "null_share_train", "null_share_today"])
    return df.sort_values("psi", ascending=False, kind="stable").reset_index(drop=True)


@dataclass
class FeatureCounts:
    """What the drift check needs of today's features, counted in parts and added up.

    For data that is never in one process (``score --engine spark`` counts each
    partition on its executor): per feature, the rows per reference bin, the rows, the
    null (NaN) rows, the sum of the non-null values and the finite rows. It stands in
    for ``X_today`` in :func:`check_drift` and gives the same shares; only the mean of
    a feature may differ in the last bits (it is summed in another order).
    """

    edges: dict[str, np.ndarray]
    bins: dict[str, np.ndarray] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    nulls: dict[str, int] = field(default_factory=dict)
    total: dict[str, float] = field(default_factory=dict)
    finite: dict[str, int] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)  # every column of the counted rows

    @classmethod
    def of(cls, stats: dict[str, dict], X: pd.DataFrame) -> FeatureCounts:
        """Count the columns of ``X`` that ``stats`` (drift statistics) describe."""
        out = cls({f: np.asarray(st["edges"], dtype=np.float64) for f, st in stats.items()})
        out.names = [str(c) for c in X.columns]
        for f, edges in out.edges.items():
            if f not in X.columns:
                continue
            x = _values(X[f])
            null = np.isnan(x)
            vals = x[~null]
            out.bins[f] = np.bincount(
                np.searchsorted(edges, vals, side="left"), minlength=len(edges) + 1
            )
            out.rows[f], out.nulls[f] = len(x), int(null.sum())
            out.total[f], out.finite[f] = float(vals.sum()), int(np.isfinite(x).sum())
        return out

    def add(self, other: FeatureCounts) -> FeatureCounts:
        """Add the counts of ``other`` (another part of the same rows) to these."""
        self.names += [c for c in other.names if c not in set(self.names)]
        for f, b in other.bins.items():
            if f in self.bins:
                self.bins[f] = self.bins[f] + b
                self.rows[f] += other.rows[f]
                self.nulls[f] += other.nulls[f]
                self.total[f] += other.total[f]
                self.finite[f] += other.finite[f]
            else:
                self.bins[f], self.rows[f] = b, other.rows[f]
                self.nulls[f], self.total[f] = other.nulls[f], other.total[f]
                self.finite[f] = other.finite[f]
        return self

    @property
    def columns(self) -> list[str]:
        """The columns of the counted rows (as ``DataFrame.columns``)."""
        return list(self.names)

    def shares(self, f: str) -> tuple[np.ndarray, float]:
        """Return what :func:`bin_shares` returns for the feature's values."""
        n, nulls = self.rows[f], self.nulls[f]
        if n == 0:
            return np.full(len(self.edges[f]) + 1, np.nan), float("nan")
        nn = n - nulls
        shares = self.bins[f] / nn if nn else np.zeros(len(self.edges[f]) + 1)
        return shares, nulls / n

    def mean(self, f: str) -> float:
        """The mean of the feature's non-null values."""
        known = self.rows[f] - self.nulls[f]
        return self.total[f] / known if known else float("nan")


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
    by_table : list of str
        One line per source table with shifted features ("contacts: 57 of 85 features
        shifted; ... did the export stop?").
    reference : str
        What today was compared with.
    tripped : list of str
        Source tables with at least ``fail_min_features`` features above ``psi_fail``
        (the gate's reason to fail).
    noisy : list of str
        Source tables with at least ``fail_min_features`` features above ``psi_warn``
        (worth a warning).
    no_stats : list of str
        Expected features without training statistics (not checked).
    """

    table: pd.DataFrame
    warn: list[str] = field(default_factory=list)
    fail: list[str] = field(default_factory=list)
    no_stats: list[str] = field(default_factory=list)
    psi_warn: float = 0.1
    psi_fail: float = 0.5
    by_table: list[str] = field(default_factory=list)
    reference: str = "the model's fit rows"
    tripped: list[str] = field(default_factory=list)
    noisy: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Return True unless a feature passed ``psi_fail`` or a source table has at least
        ``fail_min_features`` features past ``psi_warn`` (``noisy``): one feature a little
        past the warning line is the noise of a normal day, not news."""
        return not self.fail and not self.noisy

    def text(self, limit: int = 10) -> str:
        """Render a short report for people: per source table first, then features."""
        n = len(self.table)
        if not self.warn:
            return (
                f"Drift: {n} features checked against {self.reference}, none with PSI "
                f"above {self.psi_warn}."
            )
        lines = [
            f"Drift against {self.reference}: {len(self.warn)} of {n} features with PSI "
            f"above {self.psi_warn}"
            + (f" ({len(self.fail)} above {self.psi_fail})" if self.fail else "")
            + ":"
        ]
        lines += [f"  {line}" for line in self.by_table]
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
        Output of :func:`reference_stats` (see :func:`drift_reference`), or of
        :func:`training_stats` (the model's ``train_stats_``).
    X_today : DataFrame or FeatureCounts
        Today's features (or their counts, for data that is not in this process).
    expected_features : iterable of str
        The features the model needs.
    cfg : Config or DriftConfig
        Thresholds and action (``calls.drift``).

    Raises
    ------
    DataError
        When an expected feature is missing from ``X_today`` (never filled with zeros).
    DriftError
        When ``action`` is ``fail`` and a source table has at least
        ``fail_min_features`` features with PSI above ``psi_fail``.
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
    reference = "the model's fit rows"
    family: dict[str, str] = {}
    kind: dict[str, str] = {}
    if "stats" in train_stats and isinstance(train_stats.get("stats"), dict):
        ref = train_stats
        train_stats = ref["stats"]
        family = dict(ref.get("family", {}))
        kind = dict(ref.get("kind", {}))
        dates = ref.get("as_of") or []
        if dates:
            reference = f"the latest training dates ({dates[0]} .. {dates[-1]})"
    stats = {f: train_stats[f] for f in expected if f in train_stats}
    no_stats = [f for f in expected if f not in train_stats]
    table = psi(stats, X_today)
    vals = table.set_index("feature")["psi"]
    warn = [f for f, v in vals.items() if v > dcfg.psi_warn]
    fail = [f for f, v in vals.items() if v > dcfg.psi_fail]

    # the gate trips on a source table with several features past psi_fail (a broken or
    # stopped feed moves many at once); one feature alone is a warning (e.g. a wave of
    # account-manager changes moves "days since manager change" on a normal day)
    def tables_with_many(feats: list[str]) -> dict[str, list[str]]:
        per_table: dict[str, list[str]] = {}
        for f in feats:
            per_table.setdefault(_family(f, family), []).append(f)
        return {t: fs for t, fs in per_table.items() if len(fs) >= dcfg.fail_min_features}

    tripped = tables_with_many(fail)
    by_table = _by_table(warn, stats, X_today, family, kind)
    report = DriftReport(
        table, warn, fail, no_stats, dcfg.psi_warn, dcfg.psi_fail, by_table, reference
    )
    report.tripped = sorted(tripped)
    report.noisy = sorted(tables_with_many(warn))
    if tripped and dcfg.action == "fail":
        tables = ", ".join(
            f"{fam} ({len(feats)} features)" for fam, feats in sorted(tripped.items())
        )
        raise DriftError(
            f"Feature drift above psi_fail={dcfg.psi_fail} in {tables} "
            f"(calls.drift.fail_min_features={dcfg.fail_min_features} per source table); "
            "no call list written.\n" + report.text()
        )
    return report


def _window(name: str) -> int | None:
    """Return the window in days of ``<source>__<what>__<N>d`` features (else None)."""
    m = re.fullmatch(r"(\d+)d", name.rsplit("__", 1)[-1])
    return int(m.group(1)) if m else None


def _family(name: str, family: dict[str, str]) -> str:
    return family.get(name) or name.split("__", 1)[0]


def _by_table(
    shifted: list[str],
    stats: dict[str, dict],
    X_today: pd.DataFrame,
    family: dict[str, str],
    kind: dict[str, str],
) -> list[str]:
    """Return one line per source table with shifted features, most shifted first.

    A table whose recent window counts (count / sum / amount features over windows of
    at most :data:`RECENT_WINDOW` days, with a ``mean`` in the reference) fell below
    :data:`STOPPED_SHARE` of the reference gets "did the export stop?".
    """
    if not shifted:
        return []
    n_by: dict[str, int] = {}
    total_by: dict[str, int] = {}
    for f in stats:
        total_by[_family(f, family)] = total_by.get(_family(f, family), 0) + 1
    for f in shifted:
        n_by[_family(f, family)] = n_by.get(_family(f, family), 0) + 1
    lines = []
    for fam, n in sorted(n_by.items(), key=lambda kv: (-kv[1], kv[0])):
        ref_sum = today_sum = 0.0
        for f, st in stats.items():
            mean = st.get("mean")
            if (
                _family(f, family) != fam
                or st.get("scale") == "recency"
                or mean is None
                or not np.isfinite(mean)
                or mean <= 0
                or kind.get(f) not in COUNT_KINDS
                or _window(f) is None
                or _window(f) > RECENT_WINDOW
            ):
                continue
            if isinstance(X_today, FeatureCounts):
                if not X_today.finite[f]:
                    continue
                today_mean = X_today.mean(f)
            else:
                x = _values(X_today[f])
                if not np.isfinite(x).any():
                    continue
                today_mean = float(np.nanmean(x))
            ref_sum += mean
            today_sum += today_mean
        line = f"{fam}: {n} of {total_by.get(fam, n)} features shifted"
        if ref_sum > 0 and today_sum < STOPPED_SHARE * ref_sum:
            line += (
                f"; its windowed counts are at {today_sum / ref_sum:.0%} of the reference "
                "- did the export stop?"
            )
        lines.append(line)
    return lines


def drift_reference(model) -> dict:
    """Return the drift reference of a model: the latest training dates, else fit rows."""
    meta = getattr(model, "metadata_", None) or {}
    ref = meta.get("drift_reference")
    if isinstance(ref, dict) and isinstance(ref.get("stats"), dict):
        return ref
    return model.train_stats_
