"""Coverage: features of a table at dates it does not cover are missing, never zero.

DATA_CONTRACT.md §2: each table covers the span from its first to its last row, and
exports often start at different dates. Before a table's coverage starts, the engine
would count "no rows" as zero; this post-step turns such values into NaN (unknown).

For a feature of table ``X`` at as-of ``T`` (only rows strictly before ``T`` decide):

- every feature of ``X`` is NaN when no row of ``X`` is strictly before ``T`` (or ``X``
  has no rows at all): nothing of ``X`` is known at ``T``;
- otherwise ``X`` covers from day ``C`` (see :func:`churnpredict.labels.covered_from`),
  and for a client who signed up before ``C`` (one who signed up later has its whole
  history covered) a window feature over ``[T - w, T)`` is NaN when ``T - w < C``: the
  window reaches before the coverage, so the count would be short. Trends
  (``__trend``) compare two windows, so they need ``T - 2w >= C``; a count without a
  window (the client's whole history) is NaN for such a client at every date.

RFM frequency, monetary and recency read several sources: NaN when any of them is not
covered. The RFM score (a rank within each as-of date) is left as computed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from churnpredict.features.catalog import Feature

_STATE_TABLES = {"campaigns": "campaign_events", "invoices": "invoices"}
_RFM = ("rfm_frequency", "rfm_monetary", "rfm_recency")


def feature_tables(f: Feature, spec: dict[str, Any]) -> list[str]:
    """Return the tables feature ``f`` is computed from (empty: clients only)."""
    sources = spec.get("sources", {})
    if f.family in sources:
        return [sources[f.family]["table"]]
    if f.family in _STATE_TABLES:
        return [_STATE_TABLES[f.family]]
    if f.family == "profile" and f.column in _RFM and "profile" in spec:
        p = spec["profile"]
        names = list(p.get("rfm_sources", []))
        if f.column == "rfm_monetary" and p.get("rfm_monetary"):
            names.append(p["rfm_monetary"].split("__", 1)[0])
        return sorted({sources[n]["table"] for n in names if n in sources})
    return []


LIFETIME = 1_000_000  # days: a count over the client's whole history


def lookback_days(f: Feature) -> int:
    """Return how many days before ``T`` the feature reads.

    0 for state and recency features (known once any row is known), the window (twice
    it for ``__trend``) for window features, :data:`LIFETIME` for counts without a
    window (the client's whole history: short for every client who signed up before
    the coverage).
    """
    if f.window is None:
        return LIFETIME if f.kind == "count" else 0
    return 2 * int(f.window) if f.name.endswith("__trend") else int(f.window)


def mask_uncovered(
    table: pd.DataFrame,
    catalog: list[Feature],
    spec: dict[str, Any],
    firsts: dict[str, pd.Timestamp],
    starts: dict[str, pd.Timestamp],
    signup: pd.Series,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Set features of uncovered tables to NaN, in place; return the table and counts.

    Only rows strictly before each ``as_of`` decide: a table with no row before ``T``
    (or no row at all) is not covered at ``T``; one with rows before ``T`` covers from
    ``starts[table]`` (its first row's day, or the data's first day within the slack,
    which is then also before ``T``). So rows at or after ``T`` never change a value
    at ``T``, masks included.

    Parameters
    ----------
    table : DataFrame
        ``client_id``, ``as_of`` and the feature columns.
    catalog : list of Feature
    spec : dict
        The resolved feature spec (which table each source reads).
    firsts : dict
        Table -> its first row's time (tables with rows).
    starts : dict
        Table -> the day its coverage starts (:func:`churnpredict.labels.covered_from`).
    signup : Series
        ``signup_date`` indexed by ``client_id``.

    Returns
    -------
    table : DataFrame
    masked : dict
        Table -> number of feature values set to NaN because of it.
    """
    masked: dict[str, int] = {}
    if table.empty:
        return table, masked
    # per distinct as-of date and per distinct client, then spread to the rows
    # (hashing, not sorting, the rows: few distinct dates)
    date_of, dates = pd.factorize(pd.to_datetime(table["as_of"]).to_numpy("datetime64[s]"))
    dates = np.asarray(dates, dtype="datetime64[s]")
    ids = table["client_id"]
    if not isinstance(ids.dtype, pd.StringDtype):
        ids = ids.astype(str)
    client_of, uniques = pd.factorize(ids)
    uniques = pd.Index(np.asarray(uniques, dtype=object))
    sign = pd.to_datetime(signup.reindex(uniques)).to_numpy("datetime64[s]")
    cache: dict[tuple[str, int], np.ndarray] = {}
    cell_of: dict[str, np.ndarray] = {}  # table -> per row: 2 * date + (signed up before C)
    never = np.datetime64("9999-12-31T00:00:00", "s")

    def uncovered(t: str, lookback: int) -> np.ndarray:
        """Rows (indices, ascending) where table ``t`` does not cover ``lookback`` days.

        Decided once per (as-of date, signed up before the coverage) cell, then spread
        to the rows with one gather."""
        key = (t, lookback)
        if key not in cache:
            first = np.datetime64(pd.Timestamp(firsts[t]), "s") if t in firsts else never
            per_cell = dates <= first  # per as-of date: no row of the table before T
            cell = date_of
            if lookback and t in starts:
                c = np.datetime64(pd.Timestamp(starts[t]).normalize(), "s")
                if t not in cell_of:
                    # NaT signup (unknown client) compares False: treated as covered
                    cell_of[t] = 2 * date_of + (sign < c)[client_of]
                short = np.ones(len(dates), dtype=bool)  # whole history: always short
                if lookback < LIFETIME:
                    short = dates - np.timedelta64(lookback, "D") < c
                # cell 2 * date + 1: the client signed up before C
                per_cell = np.stack([per_cell, per_cell | short], axis=1).ravel()
                cell = cell_of[t]
            cache[key] = np.flatnonzero(per_cell[cell]) if per_cell.any() else np.zeros(0, int)
        return cache[key]

    for f in catalog:
        if f.name not in table.columns:
            continue
        tabs = feature_tables(f, spec)
        if not tabs:
            continue
        hit = []
        for t in tabs:
            rows = uncovered(t, lookback_days(f))
            if len(rows):
                masked[t] = masked.get(t, 0) + len(rows)
                hit.append(rows)
        if hit:
            col = table[f.name].to_numpy(dtype=np.float32, copy=True)
            for rows in hit:
                col[rows] = np.nan
            table[f.name] = col
    return table, masked
