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

from churnpredict.features.declarations import (
    MISSING,
    OTHER,
    Aggregation,
    At,
    DaysSince,
    Div,
    FeatureDecl,
    Source,
    Sub,
    window,
)

__all__ = ["MISSING", "OTHER", "declare_source", "slug", "window_label"]


def slug(*values: str) -> str:
    """Return a lower-case identifier made of ``values`` (``[a-z0-9_]``)."""
    s = "_".join(str(v) for v in values).lower()
    s = re.sub(r"[^a-z0-9]+", "_", s).strip("_")
    return s or "blank"


def window_label(w: int) -> str:
    """Return a human phrase for a window: 'the last 7 days'."""
    return f"the last {w} days"


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
    """Declare the generic families for one event table.

    Parameters
    ----------
    name : str
        Source name, the feature-name prefix (``campaigns``).
    table, ts : str
        The table and its timestamp (or date) column.
    noun : str
        Plural noun for descriptions ("campaign events").
    slices : list of (columns, values)
        Each slice: the category columns and the value combinations to count.
    numerics : list of str
        Numeric columns to sum per window.
    windows, trend_windows : list of int
        Window lengths; trends are declared for ``trend_windows``.
    recency : bool
        Whether to add days-since-last features.
    keep : dict of str to list of str, optional
        Per category column, the values counted by name: any other value is ``(other)``
        and an empty one ``(missing)`` (see ``features.build``). Columns not listed are
        compared as they are.
    """
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
