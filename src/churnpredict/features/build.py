"""Assemble the feature plan from the config and the data, and build feature tables.

The *spec* is the resolved, JSON-ready plan (sources, slice values found in the
data, segments): training resolves it once and stores it with the model, so scoring
builds exactly the same columns.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from churnpredict.config import Config, SliceConfig, SourceConfig
from churnpredict.errors import DataError
from churnpredict.features.backends import get_backend
from churnpredict.features.backends.sql import ident
from churnpredict.features.catalog import Feature
from churnpredict.features.declarations import MISSING, OTHER, declare

SPEC_VERSION = 1
log = logging.getLogger("churnpredict.features")


def _columns(con, table: str) -> set[str]:
    return {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}


# a grouped count over all the slice columns of a table with more combinations than this
# is redone as one grouped count per slice (the cross product of unrelated columns)
UNION_COMBOS_MAX = 100_000


def _slice_counts(con, table: str, sets: list[tuple[str, ...]]) -> dict[frozenset, dict]:
    """Count the rows of ``table`` per value combination of each column set.

    Usually one scan: one grouped count over the union of the sets' columns (a few
    hundred combinations for category columns), summed per set here. When that has more
    than :data:`UNION_COMBOS_MAX` combinations, one grouped count per set instead.
    Returns, per set (as a frozenset of its columns), ``{((column, value), ...): rows}``
    with the columns in sorted order and the values as text (None for NULL).
    """
    groups = {frozenset(s): sorted(set(s)) for s in sets}

    def grouped(cols: list[str], limit: int | None = None) -> list[tuple]:
        inner = ", ".join(ident(c) for c in cols)
        text = ", ".join(f"CAST({ident(c)} AS VARCHAR)" for c in cols)
        return con.execute(
            f"SELECT {text}, n FROM (SELECT {inner}, count(*) AS n FROM {table} "
            f"GROUP BY ALL{'' if limit is None else f' LIMIT {int(limit)}'}) AS g"
        ).fetchall()

    out: dict[frozenset, dict] = {g: {} for g in groups}
    union = sorted({c for cols in groups.values() for c in cols})
    rows = grouped(union, UNION_COMBOS_MAX + 1)
    if len(rows) > UNION_COMBOS_MAX:
        per_set = [(g, cols, grouped(cols)) for g, cols in groups.items()]
    else:
        per_set = [(g, union, rows) for g in groups]
    for g, cols, found in per_set:
        idx = [(c, cols.index(c)) for c in groups[g]]
        counts = out[g]
        for r in found:
            key = tuple((c, r[i]) for c, i in idx)
            counts[key] = counts.get(key, 0) + int(r[-1])
    return out


class _SliceCounts:
    """The row counts of one slice's value combinations (``_slice_counts``), with the
    look-ups the resolver needs; values are text, NULL as ``(missing)`` (as labels)."""

    def __init__(self, by: list[str], counts: dict):
        self.by = by
        # (raw values in ``by`` order, rows); raw None is NULL
        self.rows = [(tuple(dict(k)[c] for c in by), n) for k, n in counts.items()]

    @staticmethod
    def _label(v: str | None) -> str:
        return MISSING if v is None else v

    def _matching(self, fixed: dict[str, str]):
        pos = [(self.by.index(c), x) for c, x in fixed.items()]
        for raw, n in self.rows:
            if all(self._label(raw[i]) == x for i, x in pos):
                yield raw, n

    @staticmethod
    def _ranked(counts: dict[tuple[str, ...], int]) -> list[list[str]]:
        """Combinations by rows descending, ties by the values (as SQL orders text)."""
        return [list(c) for c, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]

    def top(self, fixed: dict[str, str], top: int) -> list[list[str]]:
        """The ``top`` most frequent combinations among rows matching ``fixed``."""
        counts: dict[tuple[str, ...], int] = {}
        for raw, n in self._matching(fixed):
            key = tuple(self._label(v) for v in raw)
            counts[key] = counts.get(key, 0) + n
        return self._ranked(counts)[: int(top)]

    def exists(self, values: list[str]) -> bool:
        """Whether a row has these values."""
        return any(True for _ in self._matching(dict(zip(self.by, values, strict=True))))

    def mapped(self, fixed: dict[str, str], kept: dict[str, list[str]]) -> list[list[str]]:
        """Every combination of mapped values (``category_sql``: kept values as they are,
        others ``(other)``, NULL ``(missing)``) among rows matching ``fixed``, most
        frequent first."""
        sets = {c: set(kept[c]) for c in self.by}
        counts: dict[tuple[str, ...], int] = {}
        for raw, n in self._matching(fixed):
            key = tuple(
                MISSING if v is None else v if v in sets[c] else OTHER
                for c, v in zip(self.by, raw, strict=True)
            )
            counts[key] = counts.get(key, 0) + n
        return self._ranked(counts)


def _resolve_slices(
    con, table: str, slices: list[SliceConfig], warnings: list[str], source: str
) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Resolve ``values: auto`` and ``*`` wildcards from the data.

    Returns the slices with concrete value combinations and, per category column, the
    values kept by name (any other value counts as ``(other)``, NULL as ``(missing)``).

    - ``values: auto``: the ``top`` most frequent combinations; for a single column also
      ``(other)`` (every other value) and ``(missing)`` when such rows exist.
    - a combination with ``*`` (e.g. ``[paused, "*"]``): the ``top`` most frequent values
      of the wildcard column among rows matching the fixed values, then ``(other)`` and
      ``(missing)`` when such rows exist, so the slice's counts add up to the fixed part's.
    - fixed combinations are kept as written; values that never occur are reported.

    Ties in frequency are broken by the values (text order). The table is read once
    (``_slice_counts``: row counts per value combination of each slice's columns) and
    every slice is derived from those counts.
    """
    if not slices:
        return [], {}
    counts = _slice_counts(con, table, [tuple(sl.by) for sl in slices])
    if not any(counts.values()):  # no rows
        return _placeholder_slices(slices), {}
    keep: dict[str, set[str]] = {}
    pending: list[tuple[_SliceCounts, list[list[str]], list[list[str]]]] = []
    for sl in slices:
        by = list(sl.by)
        sc = _SliceCounts(by, counts[frozenset(by)])
        if sl.values == "auto":
            combos = sc.top({}, sl.top)
            wild = [["*"] * len(by)] if len(by) == 1 else []
        else:
            combos, wild = [], []
            for v in sl.values:
                if len(v) != len(by):
                    raise ValueError(f"slice values {v} do not match columns {by}")
                if "*" in v:
                    fixed = {c: x for c, x in zip(by, v, strict=True) if x != "*"}
                    combos.extend(sc.top(fixed, sl.top))
                    wild.append(list(v))
                else:
                    combos.append(list(v))
                    if not sc.exists(list(v)):
                        warnings.append(
                            f"{source}: configured value {dict(zip(by, v, strict=True))} "
                            f"never occurs in {table}"
                        )
        for c in combos:
            for col, x in zip(by, c, strict=True):
                if x not in (OTHER, MISSING):
                    keep.setdefault(col, set()).add(x)
        pending.append((sc, combos, wild))
    kept = {c: sorted(v) for c, v in keep.items()}
    for sc, _, _ in pending:
        for c in sc.by:
            kept.setdefault(c, [])
    out = []
    for sc, combos, wild in pending:
        values = [list(c) for c in combos]
        for w in wild:
            # every mapped value of the wildcard columns that occurs with the fixed part
            fixed = {c: x for c, x in zip(sc.by, w, strict=True) if x != "*"}
            for combo in sc.mapped(fixed, kept):
                if combo not in values:
                    values.append(combo)
        out.append({"by": sc.by, "values": values})
    return out, kept


def _placeholder_slices(slices: list[SliceConfig]) -> list[dict[str, Any]]:
    """Slices for a table without rows (the catalog listed from the config alone): a
    value taken from the data is shown as ``<column>``."""
    out = []
    for sl in slices:
        values = [["*"] * len(sl.by)] if sl.values == "auto" else sl.values
        combos = [
            [f"<{c}>" if x == "*" else x for c, x in zip(sl.by, v, strict=True)] for v in values
        ]
        out.append({"by": list(sl.by), "values": combos})
    return out


def resolve_static(con, cfg) -> dict[str, Any] | None:
    """Return the static-column spec ``{"numerics": [...], "categories": {col: [values]}}``.

    Category values are the ``top`` most frequent non-empty values in ``clients``
    (ties by value). Returns None when the config declares no client columns.
    """
    cc = cfg.data.client_columns
    if not cc.numerics and not cc.categories:
        return None
    have = {r[0] for r in con.execute("DESCRIBE clients").fetchall()}
    missing = [c for c in [*cc.numerics, *cc.categories] if c not in have]
    if missing:
        raise DataError(
            f"data.client_columns names columns that clients lacks: {', '.join(missing)}",
            file="clients",
            column=missing[0],
            expected="columns of the clients file (a derived clients table has none)",
        )
    cats: dict[str, list[str]] = {}
    for col in cc.categories:
        rows = con.execute(
            f"SELECT CAST({ident(col)} AS VARCHAR) AS v, count(*) AS n FROM clients "
            f"WHERE {ident(col)} IS NOT NULL GROUP BY 1 ORDER BY n DESC, v LIMIT {int(cc.top)}"
        ).fetchall()
        cats[col] = [str(r[0]) for r in rows]
    return {"numerics": list(cc.numerics), "categories": cats}


def _source_configs(ds, cfg: Config) -> dict[str, SourceConfig]:
    """Return the configured sources plus one per declared event table."""
    sources = dict(cfg.features.sources)
    declared_tables = {s.table for s in sources.values()}
    for name, t in cfg.data.event_tables.items():
        if name in declared_tables:
            continue
        sources[name] = SourceConfig(
            table=name,
            ts="ts",
            noun=f"{name} events",
            slices=[{"by": [c], "values": "auto"} for c in t.categories],
            numerics=list(t.numerics),
        )
    return sources


def resolve_spec(ds, cfg: Config) -> dict[str, Any]:
    """Resolve the feature plan for a data set: which sources exist, which values to count.

    ``values: auto`` slices take the most frequent value combinations in the table.
    """
    con = ds.con
    fc = cfg.features
    warnings: list[str] = []
    spec: dict[str, Any] = {
        "version": SPEC_VERSION,
        "windows": list(fc.windows),
        "trend_windows": [w for w in fc.trend_windows if w in fc.windows] or [],
        "sources": {},
        "campaign_state": bool(fc.campaign_state and "campaign_events" in ds.present),
        "invoice_state": bool(fc.invoice_state and "invoices" in ds.present),
    }
    for name, src in _source_configs(ds, cfg).items():
        if src.table not in ds.present:
            continue
        cols = _columns(con, src.table)
        usable = [sl for sl in src.slices if set(sl.by) <= cols]
        slices, keep = _resolve_slices(con, src.table, usable, warnings, name)
        ts = src.ts if src.ts in cols else "ts"
        spec["sources"][name] = {
            "table": src.table,
            "ts": ts,
            "noun": src.noun,
            "slices": slices,
            "keep": keep,
            "numerics": [c for c in src.numerics if c in cols],
            "recency": src.recency,
            "trend": src.trend,
        }
    if fc.profile:
        segments = []
        if "segment" in _columns(con, "clients"):
            segments = [
                r[0]
                for r in con.execute(
                    "SELECT segment, count(*) n FROM clients WHERE segment IS NOT NULL "
                    "GROUP BY 1 ORDER BY n DESC, 1 LIMIT 10"
                ).fetchall()
            ]
        monetary = None
        if fc.rfm_monetary:
            src_name, _, col = fc.rfm_monetary.partition(".")
            if col in spec["sources"].get(src_name, {}).get("numerics", []):
                monetary = f"{src_name}__{col}"
        spec["profile"] = {
            "segments": segments,
            "assignments": "assignments" in ds.present,
            "rfm_sources": [s for s, v in spec["sources"].items() if v["recency"]],
            "rfm_monetary": monetary,
        }
    static_spec = resolve_static(con, cfg)
    if static_spec:
        spec["static"] = static_spec
    for w in warnings:
        log.warning("%s", w)
    spec["warnings"] = warnings
    return spec


def constant_columns(table: pd.DataFrame, catalog: list[Feature]) -> list[str]:
    """Return the feature columns of ``table`` that hold one value (or none) on every row."""
    out = []
    for f in catalog:
        col = table[f.name]
        if col.nunique(dropna=False) <= 1:
            out.append(f.name)
    return out


def catalog_of(spec: dict[str, Any]) -> list[Feature]:
    """The feature catalog of a resolved spec."""
    return [f.feature() for f in declare(spec)]


def build_features(
    ds,
    spine: pd.DataFrame,
    cfg: Config,
    spec: dict[str, Any] | None = None,
    backend: str = "local",
) -> tuple[pd.DataFrame, list[Feature], dict[str, Any]]:
    """Build every feature for each ``(client_id, as_of)`` of ``spine``.

    Only rows strictly before ``as_of`` 00:00 UTC are used. ``backend`` names the
    backend that evaluates the declarations (``features.backends``).

    Returns
    -------
    table : DataFrame
        ``client_id``, ``as_of``, any other spine columns (e.g. ``label``), then one
        float32 column per feature (catalog order); rows sorted by client_id, as_of
        (the order in which the engine's look-ups are sequential in memory).
    catalog : list of Feature
    spec : dict
        The resolved spec (pass it back in to rebuild the same columns later).
    """
    if spec is None:
        spec = resolve_spec(ds, cfg)
    decls = declare(spec)
    catalog = [f.feature() for f in decls]
    spine = spine.assign(client_id=spine["client_id"].astype(str))
    spine = spine.sort_values(["client_id", "as_of"], kind="stable").reset_index(drop=True)
    feats = get_backend(backend).compute(ds, spine[["client_id", "as_of"]], decls)
    cols = [f.name for f in catalog]
    extra = [c for c in spine.columns if c not in ("client_id", "as_of")]
    head = feats[["client_id", "as_of"]]
    if extra:
        head = pd.concat([head, spine[extra]], axis=1)
    missing = [c for c in cols if c not in feats.columns]
    if missing:
        raise ValueError(f"engine did not produce features: {missing[:5]}")
    out = pd.concat([head, feats[cols]], axis=1)
    out = _mask_uncovered(ds, cfg, out, catalog, spec)
    return out, catalog, spec


def _mask_uncovered(ds, cfg: Config, out, catalog, spec):
    """Post-step: features of a table before its coverage are NaN (features/coverage.py)."""
    from churnpredict.contract import table_coverage
    from churnpredict.features.coverage import mask_uncovered
    from churnpredict.labels import covered_from

    signup = ds.con.execute("SELECT client_id, signup_date FROM clients").df()
    signup = signup.set_index(signup["client_id"].astype(str))["signup_date"]
    firsts = {t: lo for t, (lo, _) in table_coverage(ds, cfg).items()}
    out, masked = mask_uncovered(out, catalog, spec, firsts, covered_from(ds, cfg), signup)
    if masked:
        log.info("coverage: feature values set to missing (table not covered): %s", masked)
    return out
