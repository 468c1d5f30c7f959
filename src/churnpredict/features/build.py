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
from churnpredict.features import campaigns, invoices, profile, spend, static
from churnpredict.features.catalog import Feature
from churnpredict.features.engine import Plan, compute
from churnpredict.features.events import (
    MISSING,
    OTHER,
    Part,
    category_sql,
    event_source_part,
    ident,
    quote,
)

SPEC_VERSION = 1
log = logging.getLogger("churnpredict.features")


def _columns(con, table: str) -> set[str]:
    return {r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()}


def _label(col: str) -> str:
    """SQL giving a category column as text, NULL as ``(missing)``."""
    return f"COALESCE(CAST({ident(col)} AS VARCHAR), {quote(MISSING)})"


def _top_combos(
    con, table: str, by: list[str], fixed: dict[str, str], top: int
) -> list[list[str]]:
    """Return the ``top`` most frequent value combinations of ``by`` among matching rows."""
    cols = ", ".join(_label(c) for c in by)
    where = " AND ".join(f"{_label(c)} = {quote(v)}" for c, v in fixed.items()) or "TRUE"
    rows = con.execute(
        f"SELECT {cols}, count(*) AS n FROM {table} WHERE {where} "
        f"GROUP BY ALL ORDER BY n DESC, {cols} LIMIT {int(top)}"
    ).fetchall()
    return [[str(v) for v in r[:-1]] for r in rows]


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
    """
    keep: dict[str, set[str]] = {}
    pending: list[tuple[list[str], list[list[str]], list[list[str]]]] = []
    for sl in slices:
        by = list(sl.by)
        if sl.values == "auto":
            combos = _top_combos(con, table, by, {}, sl.top)
            wild = [["*"] * len(by)] if len(by) == 1 else []
        else:
            combos, wild = [], []
            for v in sl.values:
                if len(v) != len(by):
                    raise ValueError(f"slice values {v} do not match columns {by}")
                if "*" in v:
                    fixed = {c: x for c, x in zip(by, v, strict=True) if x != "*"}
                    found = _top_combos(con, table, by, fixed, sl.top)
                    combos.extend(found)
                    wild.append(list(v))
                else:
                    combos.append(list(v))
                    if not _exists(con, table, by, v):
                        warnings.append(
                            f"{source}: configured value {dict(zip(by, v, strict=True))} "
                            f"never occurs in {table}"
                        )
        for c in combos:
            for col, x in zip(by, c, strict=True):
                if x not in (OTHER, MISSING):
                    keep.setdefault(col, set()).add(x)
        pending.append((by, combos, wild))
    kept = {c: sorted(v) for c, v in keep.items()}
    for by, _, _ in pending:
        for c in by:
            kept.setdefault(c, [])
    out = []
    for by, combos, wild in pending:
        values = [list(c) for c in combos]
        for w in wild:
            # every mapped value of the wildcard columns that occurs with the fixed part
            fixed = {c: x for c, x in zip(by, w, strict=True) if x != "*"}
            cols = ", ".join(category_sql(c, kept[c]) for c in by)
            where = " AND ".join(f"{_label(c)} = {quote(x)}" for c, x in fixed.items()) or "TRUE"
            rows = con.execute(
                f"SELECT {cols}, count(*) AS n FROM {table} WHERE {where} "
                f"GROUP BY ALL ORDER BY n DESC, {cols}"
            ).fetchall()
            for r in rows:
                combo = [str(x) for x in r[:-1]]
                if combo not in values:
                    values.append(combo)
        out.append({"by": by, "values": values})
    return out, kept


def _exists(con, table: str, by: list[str], values) -> bool:
    where = " AND ".join(f"{_label(c)} = {quote(v)}" for c, v in zip(by, values, strict=True))
    return bool(
        con.execute(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE {where})").fetchall()[0][0]
    )


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
    static_spec = static.resolve_static(con, cfg)
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


def make_plan(spec: dict[str, Any]) -> tuple[Plan, list[Feature]]:
    """Turn a resolved spec into the engine's plan and the feature catalog."""
    windows = spec["windows"]
    parts: list[Part] = []
    for name, s in spec["sources"].items():
        parts.append(
            event_source_part(
                name,
                s["table"],
                s["ts"],
                s["noun"],
                [(tuple(sl["by"]), [tuple(v) for v in sl["values"]]) for sl in s["slices"]],
                s["numerics"],
                windows,
                spec["trend_windows"] if s["trend"] else [],
                s["recency"],
                s.get("keep"),
            )
        )
        if name == "spend":
            parts.append(spend.spend_ratio_part(name, s["numerics"], windows))
    if spec["campaign_state"]:
        parts.append(campaigns.campaign_state_part(windows))
    if spec["invoice_state"]:
        parts.append(invoices.invoice_part(windows))
    if "profile" in spec:
        p = spec["profile"]
        parts.append(
            profile.profile_part(
                p["segments"], p["assignments"], windows, p["rfm_sources"], p["rfm_monetary"]
            )
        )
    if spec.get("static"):
        parts.append(static.static_part(spec["static"]))
    plan = Plan()
    catalog: list[Feature] = []
    post_stages: list[list] = []
    for part in parts:
        plan.streams.extend(part.streams)
        plan.prepare.extend(part.prepare)
        for fx, f in part.features:
            plan.features.append(fx)
            catalog.append(f)
        for sql, feats in part.extra_sql:
            plan.extra_sql.append(sql)
            catalog.extend(feats)
        for i, stage in enumerate(part.post):
            while len(post_stages) <= i:
                post_stages.append([])
            post_stages[i].extend(stage)
    for stage in post_stages:
        plan.post.append([fx for fx, _ in stage])
        catalog.extend(f for _, f in stage)
    names = [f.name for f in catalog]
    if len(names) != len(set(names)):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"duplicate feature names: {dup[:5]}")
    return plan, catalog


def build_features(
    ds, spine: pd.DataFrame, cfg: Config, spec: dict[str, Any] | None = None
) -> tuple[pd.DataFrame, list[Feature], dict[str, Any]]:
    """Build every feature for each ``(client_id, as_of)`` of ``spine``.

    Only rows strictly before ``as_of`` 00:00 UTC are used.

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
    plan, catalog = make_plan(spec)
    spine = spine.assign(client_id=spine["client_id"].astype(str))
    spine = spine.sort_values(["client_id", "as_of"], kind="stable").reset_index(drop=True)
    feats = compute(ds.con, spine[["client_id", "as_of"]], plan)
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
