"""Generic event families: any timestamped table gets counts, sums, recency and trend.

For a source ``src`` with slices (category value combinations) and numeric columns:

- ``src__<slice>__<w>d``            rows of that slice in ``[T - w, T)``
- ``src__<slice>__<w>d__trend``     that count minus the count in ``[T - 2w, T - w)``
- ``src__<slice>__days_since``      days from the slice's last row (day) to ``T``
- ``src__events__total``            rows before ``T`` (the client's whole history)
- ``src__<col>__<w>d``              sum of a numeric column in ``[T - w, T)``
- ``src__<col>_mean__<w>d``         its mean per row in the window
- ``src__<col>__<w>d__trend``       relative change of the sum vs the window before
``<slice>`` is ``events`` for all rows, else the slice's values joined by ``_``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from churnpredict.features.catalog import Feature
from churnpredict.features.declarations import (
    Aggregation,
    At,
    DaysSince,
    Div,
    FeatureDecl,
    Source,
    Sub,
    window,
)
from churnpredict.features.engine import FeatureExpr, Measure, Stream

OTHER = "(other)"  # a category value no slice names
MISSING = "(missing)"  # an empty category value


@dataclass
class Part:
    """What one source contributes to the plan."""

    streams: list[Stream] = field(default_factory=list)
    features: list[tuple[FeatureExpr, Feature]] = field(default_factory=list)
    extra_sql: list[tuple[str, list[Feature]]] = field(default_factory=list)
    post: list[list[tuple[FeatureExpr, Feature]]] = field(default_factory=list)
    # functions run once per build before the streams (see Plan.prepare)
    prepare: list[Callable] = field(default_factory=list)


def slug(*values: str) -> str:
    """Return a lower-case identifier made of ``values`` (``[a-z0-9_]``)."""
    s = "_".join(str(v) for v in values).lower()
    s = re.sub(r"[^a-z0-9]+", "_", s).strip("_")
    return s or "blank"


def quote(value: str) -> str:
    """Return ``value`` as a SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def ident(name: str) -> str:
    """Return ``name`` as a quoted SQL identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def category_sql(col: str, kept: list[str] | None) -> str:
    """SQL giving a category column as text: values outside ``kept`` as ``(other)``.

    With ``kept`` None the column is used as it is (NULL stays NULL and matches no slice).
    """
    text = f"CAST({ident(col)} AS VARCHAR)"
    if kept is None:
        return text
    listed = ", ".join(quote(v) for v in kept) or "NULL"
    return (
        f"CASE WHEN {ident(col)} IS NULL THEN {quote(MISSING)} "
        f"WHEN {text} IN ({listed}) THEN {text} ELSE {quote(OTHER)} END"
    )


def window_label(w: int) -> str:
    """Return a human phrase for a window: 'the last 7 days'."""
    return f"the last {w} days"


def event_source_part(
    name: str,
    table: str,
    ts: str,
    noun: str,
    slices: list[tuple[tuple[str, ...], list[tuple[str, ...]]]],
    numerics: list[str],
    windows: list[int],
    trend_windows: list[int],
    recency: bool = True,
    keep: dict[str, list[str]] | None = None,
) -> Part:
    """Declare the generic families for one event table.

    Parameters
    ----------
    name : str
        Source name, the feature-name prefix (``campaigns``).
    table, ts : str
        The table in the connection and its timestamp (or date) column.
    noun : str
        Plural noun for descriptions ("campaign events").
    slices : list of (columns, values)
        Each slice: the category columns and the value combinations to count.
    numerics : list of str
        Numeric columns to sum per window.
    windows, trend_windows : list of int
        Window lengths; trends are computed for ``trend_windows``.
    recency : bool
        Whether to add days-since-last features.
    keep : dict of str to list of str, optional
        Per category column, the values counted by name: any other value is ``(other)``
        and an empty one ``(missing)`` (see ``features.build``). Columns not listed are
        used as they are.
    """
    group_cols = sorted({c for cols, _ in slices for c in cols})
    keep = keep or {}
    sel = ", ".join(
        [f"CAST({ident(ts)} AS DATE) AS day"]
        + [f"{category_sql(c, keep.get(c))} AS {ident(c)}" for c in group_cols]
        + [f"CAST({ident(c)} AS DOUBLE) AS {ident('num_' + slug(c))}" for c in numerics]
    )
    sql = f"SELECT client_id, {sel} FROM {table} WHERE {ident(ts)} IS NOT NULL"
    measures = [
        Measure("all_n", "sum(n)", base="n"),
        Measure("all_last", "max(last_day)", "max", base="last_day"),
    ]
    # (slug, description, slice values, count measure, last measure)
    groups: list[tuple[str, str, tuple[str, ...], str, str]] = [
        ("events", f"{noun}", (), "all_n", "all_last")
    ]
    seen = {"events"}
    for cols, values in slices:
        for vals in values:
            s = slug(*vals)
            if s in seen:
                continue
            seen.add(s)
            cond = " AND ".join(
                f"{ident(c)} = {quote(v)}" for c, v in zip(cols, vals, strict=True)
            )
            mid = f"v_{len(groups)}"
            where = tuple(zip(cols, vals, strict=True))
            measures.append(
                Measure(f"{mid}_n", f"sum(n) FILTER (WHERE {cond})", base="n", where=where)
            )
            measures.append(
                Measure(
                    f"{mid}_last",
                    f"max(last_day) FILTER (WHERE {cond})",
                    "max",
                    base="last_day",
                    where=where,
                )
            )
            desc = f"{noun} with " + ", ".join(f"{c} {v}" for c, v in zip(cols, vals, strict=True))
            groups.append((s, desc, tuple(vals), f"{mid}_n", f"{mid}_last"))
    num_cols = [slug(c) for c in numerics]
    for c in num_cols:
        measures.append(Measure(f"sum_{c}", f"sum(s_num_{c})", base=f"s_num_{c}"))

    part = Part(
        streams=[
            Stream(
                name=name,
                sql=sql,
                group_cols=tuple(ident(c) for c in group_cols),
                sum_cols=tuple(f"num_{c}" for c in num_cols),
                measures=tuple(measures),
            )
        ]
    )

    def ref(off: int, m: str) -> str:
        return f"o{off}_{name}__{m}"

    part.features.append(
        (
            FeatureExpr(f"{name}__events__total", ref(0, "all_n")),
            Feature(f"{name}__events__total", name, f"{noun} since the client's first", "count"),
        )
    )
    for s, desc, vals, m_n, m_last in groups:
        for w in windows:
            part.features.append(
                (
                    FeatureExpr(f"{name}__{s}__{w}d", f"{ref(0, m_n)} - {ref(w, m_n)}"),
                    Feature(
                        f"{name}__{s}__{w}d",
                        name,
                        f"{desc} in {window_label(w)}",
                        "count",
                        w,
                        vals,
                    ),
                )
            )
        for w in trend_windows:
            cur = f"({ref(0, m_n)} - {ref(w, m_n)})"
            prev = f"({ref(w, m_n)} - {ref(2 * w, m_n)})"
            part.features.append(
                (
                    FeatureExpr(f"{name}__{s}__{w}d__trend", f"{cur} - {prev}"),
                    Feature(
                        f"{name}__{s}__{w}d__trend",
                        name,
                        f"change in {desc} in {window_label(w)} vs the {w} days before",
                        "trend",
                        w,
                        vals,
                    ),
                )
            )
        if recency:
            part.features.append(
                (
                    FeatureExpr(f"{name}__{s}__days_since", f"as_of - {ref(0, m_last)}"),
                    Feature(
                        f"{name}__{s}__days_since",
                        name,
                        f"days since the last of {desc}",
                        "days_since",
                        None,
                        vals,
                    ),
                )
            )
    for raw, c in zip(numerics, num_cols, strict=True):
        for w in windows:
            cur = f"({ref(0, 'sum_' + c)} - {ref(w, 'sum_' + c)})"
            cnt = f"({ref(0, 'all_n')} - {ref(w, 'all_n')})"
            part.features.append(
                (
                    FeatureExpr(f"{name}__{c}__{w}d", cur),
                    Feature(
                        f"{name}__{c}__{w}d",
                        name,
                        f"total {raw} in {window_label(w)}",
                        "sum",
                        w,
                        (),
                        raw,
                    ),
                )
            )
            part.features.append(
                (
                    FeatureExpr(f"{name}__{c}_mean__{w}d", f"{cur} / NULLIF({cnt}, 0)"),
                    Feature(
                        f"{name}__{c}_mean__{w}d",
                        name,
                        f"average {raw} per {noun[:-1] if noun.endswith('s') else noun} "
                        f"in {window_label(w)}",
                        "mean",
                        w,
                        (),
                        raw,
                    ),
                )
            )
        for w in trend_windows:
            cur = f"({ref(0, 'sum_' + c)} - {ref(w, 'sum_' + c)})"
            prev = f"({ref(w, 'sum_' + c)} - {ref(2 * w, 'sum_' + c)})"
            part.features.append(
                (
                    FeatureExpr(
                        f"{name}__{c}__{w}d__trend", f"({cur} - {prev}) / NULLIF({prev}, 0)"
                    ),
                    Feature(
                        f"{name}__{c}__{w}d__trend",
                        name,
                        f"relative change of {raw} in {window_label(w)} vs the {w} days before",
                        "trend",
                        w,
                        (),
                        raw,
                    ),
                )
            )
    return part


def declare_source(
    name: str,
    table: str,
    ts: str,
    noun: str,
    slices: list[tuple[tuple[str, ...], list[tuple[str, ...]]]],
    numerics: list[str],
    windows: list[int],
    trend_windows: list[int],
    recency: bool = True,
    keep: dict[str, list[str]] | None = None,
) -> list[FeatureDecl]:
    """Declare the generic families for one event table (parameters as
    :func:`event_source_part`)."""
    group_cols = sorted({c for cols, _ in slices for c in cols})
    keep = keep or {}
    src = Source(
        name=name,
        table=table,
        time=ts,
        categories=tuple(group_cols),
        keep=tuple((c, tuple(keep[c])) for c in group_cols if c in keep),
        numerics=tuple(numerics),
    )
    # (slug, description, slice values, count measure, last measure)
    groups: list[tuple[str, str, tuple[str, ...], Aggregation, Aggregation]] = [
        ("events", noun, (), Aggregation(src, "count"), Aggregation(src, "last"))
    ]
    seen = {"events"}
    for cols, values in slices:
        for vals in values:
            s = slug(*vals)
            if s in seen:
                continue
            seen.add(s)
            where = tuple(zip(cols, vals, strict=True))
            desc = f"{noun} with " + ", ".join(f"{c} {v}" for c, v in where)
            groups.append(
                (
                    s,
                    desc,
                    tuple(vals),
                    Aggregation(src, "count", where=where),
                    Aggregation(src, "last", where=where),
                )
            )
    out = [
        FeatureDecl(
            f"{name}__events__total",
            name,
            f"{noun} since the client's first",
            "count",
            At(groups[0][3]),
            tags=(name,),
        )
    ]
    for s, desc, vals, n, last in groups:
        tags = (name, *vals)
        for w in windows:
            out.append(
                FeatureDecl(
                    f"{name}__{s}__{w}d",
                    name,
                    f"{desc} in {window_label(w)}",
                    "count",
                    window(n, w),
                    w,
                    vals,
                    tags=tags,
                )
            )
        for w in trend_windows:
            out.append(
                FeatureDecl(
                    f"{name}__{s}__{w}d__trend",
                    name,
                    f"change in {desc} in {window_label(w)} vs the {w} days before",
                    "trend",
                    Sub(window(n, w), Sub(At(n, w), At(n, 2 * w))),
                    w,
                    vals,
                    tags=(*tags, "trend"),
                )
            )
        if recency:
            out.append(
                FeatureDecl(
                    f"{name}__{s}__days_since",
                    name,
                    f"days since the last of {desc}",
                    "days_since",
                    DaysSince(At(last)),
                    None,
                    vals,
                    tags=(*tags, "days_since"),
                )
            )
    count = groups[0][3]
    for raw in numerics:
        c = slug(raw)
        total = Aggregation(src, "sum", raw)
        for w in windows:
            out.append(
                FeatureDecl(
                    f"{name}__{c}__{w}d",
                    name,
                    f"total {raw} in {window_label(w)}",
                    "sum",
                    window(total, w),
                    w,
                    (),
                    raw,
                    tags=(name, raw),
                )
            )
            out.append(
                FeatureDecl(
                    f"{name}__{c}_mean__{w}d",
                    name,
                    f"average {raw} per {noun[:-1] if noun.endswith('s') else noun} "
                    f"in {window_label(w)}",
                    "mean",
                    Div(window(total, w), window(count, w)),
                    w,
                    (),
                    raw,
                    tags=(name, raw),
                )
            )
        for w in trend_windows:
            prev = Sub(At(total, w), At(total, 2 * w))
            out.append(
                FeatureDecl(
                    f"{name}__{c}__{w}d__trend",
                    name,
                    f"relative change of {raw} in {window_label(w)} vs the {w} days before",
                    "trend",
                    Div(Sub(window(total, w), prev), prev),
                    w,
                    (),
                    raw,
                    tags=(name, raw, "trend"),
                )
            )
    return out
