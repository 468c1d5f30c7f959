"""A plain pandas implementation of the generic feature families, for one as-of date.

This is the version an analyst would write without the engine: read the needed
columns of each event table (category columns as pandas categoricals, straight from
the Parquet dictionaries), keep the rows known at ``T`` (``date(ts) < T``), and for
every window filter the rows and ``groupby`` the client (and the slice columns),
then ``unstack`` the slice values. It computes the same families as
:mod:`churnpredict.features.events` for the sources in ``cfg.features.sources``:

- ``<src>__<slice>__<w>d`` counts, ``<src>__<slice>__<w>d__trend`` (count minus the
  count in the window before), ``<src>__<slice>__days_since``;
- ``<src>__<num>__<w>d`` sums, ``<src>__<num>_mean__<w>d`` (sum per row in the
  window), ``<src>__<num>__<w>d__trend`` (relative change vs the window before).

Column names equal the engine's, so the harness can compare values column by column.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq


def slug(*values: str) -> str:
    """Return the engine's identifier for a slice value combination."""
    s = "_".join(str(v) for v in values).lower()
    s = re.sub(r"[^a-z0-9]+", "_", s).strip("_")
    return s or "blank"


def read_tables(world: Path, cfg) -> dict[str, pd.DataFrame]:
    """Read the columns each configured source needs into pandas (categories as categoricals).

    Returns
    -------
    dict
        Source name -> DataFrame with ``client_id``, the timestamp, slice and numeric
        columns. Dates come back as ``datetime64``.
    """
    out = {}
    for name, src in cfg.features.sources.items():
        path = Path(world) / f"{src.table}.parquet"
        if not path.exists():
            continue
        cats = sorted({c for sl in src.slices for c in sl.by})
        cols = ["client_id", src.ts, *cats, *src.numerics]
        tbl = pq.read_table(path, columns=cols, read_dictionary=["client_id", *cats])
        out[name] = tbl.to_pandas(date_as_object=False)
    return out


def _slice_values(df: pd.DataFrame, by: list[str], values, top: int) -> list[tuple[str, ...]]:
    """Return the configured value combinations, or the ``top`` most frequent ones."""
    if values != "auto":
        return [tuple(v) for v in values]
    counts = df.groupby(by, observed=True).size().reset_index(name="n")
    counts = counts.sort_values(["n", *by], ascending=[False] + [True] * len(by))
    return [tuple(str(v) for v in row) for row in counts[by].head(top).itertuples(index=False)]


def source_features(
    df: pd.DataFrame,
    src,
    windows: list[int],
    trend_windows: list[int],
    as_of: pd.Timestamp,
    clients: pd.Index,
) -> pd.DataFrame:
    """Return the generic features of one source at ``as_of``, one row per client."""
    as_of = pd.Timestamp(as_of).normalize()
    day = df[src.ts].dt.floor("D")
    age = (as_of - day).dt.days  # 1 = the day before T
    known = df[age >= 1].assign(_age=age[age >= 1], _day=day[age >= 1])
    trends = trend_windows if src.trend else []
    spans = sorted(set(windows) | {2 * w for w in trends})
    slices = [("events", [], ())]
    seen = {"events"}
    for sl in src.slices:
        for vals in _slice_values(df, list(sl.by), sl.values, sl.top):
            s = slug(*vals)
            if s not in seen:
                seen.add(s)
                slices.append((s, list(sl.by), vals))
    nums = {c: slug(c) for c in src.numerics}

    cols: dict[str, pd.Series] = {}
    counts: dict[tuple[str, int], pd.Series] = {}
    sums: dict[tuple[str, int], pd.Series] = {}
    for w in spans:
        recent = known[known["_age"] <= w]
        by_client = recent.groupby("client_id", observed=True)
        counts[("events", w)] = by_client.size()
        if nums:
            s = by_client[list(nums)].sum()
            for c in nums:
                sums[(c, w)] = s[c]
        for by in {tuple(b) for _, b, _ in slices if b}:
            tab = recent.groupby(["client_id", *by], observed=True).size().unstack(list(by))
            for s, b, vals in slices:
                if tuple(b) == by:
                    key = vals if len(vals) > 1 else vals[0]
                    counts[(s, w)] = tab[key] if key in tab.columns else pd.Series(dtype=float)

    def full(x: pd.Series, fill=0.0) -> pd.Series:
        x = x.copy()
        x.index = x.index.astype(str)
        return x.reindex(clients, fill_value=fill).astype("float64")

    for s, by, vals in slices:
        for w in windows:
            cols[f"{s}__{w}d"] = full(counts[(s, w)].fillna(0))
        for w in trends:
            cur = full(counts[(s, w)].fillna(0))
            cols[f"{s}__{w}d__trend"] = cur - (full(counts[(s, 2 * w)].fillna(0)) - cur)
        if src.recency:
            if by:
                sub = known
                for c, v in zip(by, vals, strict=True):
                    sub = sub[sub[c] == v]
            else:
                sub = known
            last = sub.groupby("client_id", observed=True)["_day"].max()
            cols[f"{s}__days_since"] = full((as_of - last).dt.days, np.nan)
    for c, sc in nums.items():
        for w in windows:
            total = full(sums[(c, w)])
            n = full(counts[("events", w)])
            cols[f"{sc}__{w}d"] = total
            cols[f"{sc}_mean__{w}d"] = total / n.where(n != 0)
        for w in trends:
            cur = full(sums[(c, w)])
            prev = full(sums[(c, 2 * w)]) - cur
            cols[f"{sc}__{w}d__trend"] = (cur - prev) / prev.where(prev != 0)
    return pd.DataFrame(cols, index=clients)


def generic_features(
    tables: dict[str, pd.DataFrame], cfg, clients, as_of: pd.Timestamp
) -> pd.DataFrame:
    """Return ``client_id`` and every generic feature of every source at ``as_of``."""
    fc = cfg.features
    idx = pd.Index(pd.Series(clients, dtype=str).to_numpy(), name="client_id")
    trend_windows = [w for w in fc.trend_windows if w in fc.windows]
    parts = []
    for name, df in tables.items():
        src = fc.sources[name]
        f = source_features(df, src, list(fc.windows), trend_windows, as_of, idx)
        parts.append(f.add_prefix(f"{name}__"))
    out = pd.concat(parts, axis=1)
    return out.reset_index()
