"""The Spark backend: the feature declarations evaluated with the PySpark DataFrame API.

It computes exactly what :mod:`churnpredict.features.declarations` defines, for a spine
of ``(client_id, as_of)`` rows, on any Spark cluster (``local[2]`` in the tests).

How
---
Days are whole numbers (epoch days of the UTC date); a row of day ``d`` is known at
cut-off ``c`` iff ``d < c`` (the point-in-time rule, here and nowhere else).

1. The *query points*: every ``(client_id, c = as_of - offset)`` any declaration reads.
2. Every measure becomes a *delta stream* ``(client_id, day, value)`` whose running sum
   (or running maximum) at ``c`` over the days ``< c`` is the measure's value:

   - ``Aggregation``: the source's rows per day (counts, sums, maxima, last day),
     category columns mapped by ``Source.keep``, derived row columns as Columns;
   - ``Level``: per entity, events ordered by time, the ``order`` of their state value
     and the weight (missing first); the state after and before each event (window
     functions), so that ``+1``/``-1`` (or ``+weight``/``-weight``) at the event's day
     is the change of the level; ``last_exit`` is the day of an event leaving the state;
   - ``Interval``: ``+1`` (or ``+weight``) on the day a row opens
     (``max(date(start), date(known))``), ``-1`` on the day it ends.

   The streams of one source are aggregated per ``(client, day)`` and unioned with the
   query points; one window per client ordered by ``(day, query first)`` accumulates
   them: at a query point on day ``c`` the running value holds exactly the days ``< c``.
3. ``age_max`` (the longest current pause, days overdue) is a range join of the open
   spans ``[open day, end day]`` with the query points (``open < c <= end``).
4. The looked-up values are pivoted to one row per spine row; the expressions become
   Columns (``Feat`` inlined; ``Quintile`` a ``cume_dist`` window per as-of date), and
   the features leave as float32.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from churnpredict.features import declarations as D

EPOCH = "1970-01-01"


def _F():
    from pyspark.sql import functions as F

    return F


# Expressions are built as Spark SQL text and handed to the JVM in one ``selectExpr`` per
# projection: building them as Column objects costs one py4j round trip per operator
# (~90,000 for the default features, most of the time of a small build).
def _id(name: str) -> str:
    """Return ``name`` as a Spark SQL identifier."""
    return "`" + str(name).replace("`", "``") + "`"


def _lit(value: str) -> str:
    """Return ``value`` as a Spark SQL string literal."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _num(v: float) -> str:
    v = float(v)
    if math.isnan(v) or math.isinf(v):
        raise ValueError(f"not a finite constant: {v}")
    return f"CAST({v!r} AS DOUBLE)"


def _day(col: str) -> str:
    """SQL: the epoch day of the UTC date of a column."""
    return f"datediff(to_date({_id(col)}), DATE '{EPOCH}')"


# ------------------------------------------------------------------------ row columns
def _row_sql(e) -> str:
    """Return a RowExpr as SQL (double; null when missing)."""
    if isinstance(e, D.Col):
        return f"CAST({_id(e.name)} AS DOUBLE)"
    if isinstance(e, D.Const):
        return _num(e.value)
    if isinstance(e, D.DaysBetween):
        return f"CAST(datediff(to_date({_id(e.end)}), to_date({_id(e.start)})) AS DOUBLE)"
    if isinstance(e, D.Greater):
        left, right = _row_sql(e.left), _row_sql(e.right)
        return f"CAST(({left}) > ({right}) AS DOUBLE)"  # null when either is
    if isinstance(e, D.Greatest):
        return f"greatest({_row_sql(e.left)}, {_row_sql(e.right)})"
    raise TypeError(f"unknown row expression {e!r}")


def _source_rows(tables: dict[str, Any], src: D.Source):
    """Return the source's events: client_id, _day, category (_c_) and number (_n_) columns."""
    df = tables[src.table].where(f"{_id(src.time)} IS NOT NULL")
    if src.after_first:
        df = df.selectExpr(
            "*",
            f"row_number() OVER (PARTITION BY client_id ORDER BY "
            f"CAST({_id(src.time)} AS TIMESTAMP)) AS _rn",
        ).where("_rn > 1")
    keep = src.keep_map()
    cols = ["client_id", f"{_day(src.time)} AS _day"]
    for c in src.categories:
        text = f"CAST({_id(c)} AS STRING)"
        if c in keep:
            vals = ", ".join(_lit(v) for v in keep[c])
            listed = f"WHEN {text} IN ({vals}) THEN {text} " if vals else ""
            cols.append(
                f"CASE WHEN {_id(c)} IS NULL THEN {_lit(D.MISSING)} {listed}"
                f"ELSE {_lit(D.OTHER)} END AS {_id('_c_' + c)}"
            )
        else:
            cols.append(f"{text} AS {_id('_c_' + c)}")
    for c in src.numerics:
        cols.append(f"CAST({_id(c)} AS DOUBLE) AS {_id('_n_' + c)}")
    for name, expr in src.columns:
        cols.append(f"{_row_sql(expr)} AS {_id('_n_' + name)}")
    return df.selectExpr(*cols)


def _where_sql(where) -> str:
    return " AND ".join(f"{_id('_c_' + c)} = {_lit(v)}" for c, v in where) or "TRUE"


# ------------------------------------------------------------------- delta streams
class _Stream:
    """Rows ``(client_id, _day, columns)`` and how each column accumulates over days."""

    def __init__(self, frame, hows: dict[str, tuple[str, int | None]]):
        self.frame = frame
        self.hows = hows  # column -> ("sum" | "max", decimals)


def _aggregation_stream(tables, src: D.Source, aggs: list[tuple[str, D.Aggregation]]):
    """Per source row: its contribution to each aggregation (null = none)."""
    rows = _source_rows(tables, src)
    exprs, hows = [], {}
    for col, a in aggs:
        cond = _where_sql(a.where)
        if a.op == "count":
            exprs.append(f"CASE WHEN {cond} THEN 1.0D END AS {col}")
            hows[col] = ("sum", None)
        elif a.op in ("sum", "max"):
            exprs.append(f"CASE WHEN {cond} THEN {_id('_n_' + a.column)} END AS {col}")
            hows[col] = (a.op, a.decimals if a.op == "sum" else None)
        elif a.op == "last":
            exprs.append(f"CASE WHEN {cond} THEN CAST(_day AS DOUBLE) END AS {col}")
            hows[col] = ("max", None)
        else:
            raise ValueError(f"unknown aggregation op {a.op!r}")
    return _Stream(rows.selectExpr("client_id", "_day", *exprs), hows)


def _machine(lv: D.Level) -> D.Level:
    """The state machine of a Level (what its stats share)."""
    return replace(lv, stat="count", decimals=None)


def _level_events(tables, m: D.Level):
    """Per event: client, day, in the state after/before it, weight after/before it, and
    the day of the entity's next state-changing event."""
    src = m.source
    df = tables[src.table].where(f"{_id(src.time)} IS NOT NULL")
    state = f"CAST({_id(m.state)} AS STRING)"
    order = " ".join(f"WHEN {state} = {_lit(v)} THEN {i}" for i, v in enumerate(m.order))
    order = f"CASE {order} ELSE {len(m.order)} END" if order else "0"
    weight = f"CAST({_id(m.weight)} AS DOUBLE)" if m.weight else "CAST(NULL AS DOUBLE)"
    changes = "TRUE" if m.changes is None else f"_s IN ({', '.join(_lit(v) for v in m.changes)})"
    ev = df.selectExpr(
        "client_id",
        f"CAST({_id(m.entity)} AS STRING) AS _e",
        f"CAST({_id(src.time)} AS TIMESTAMP) AS _t",
        f"{_day(src.time)} AS _day",
        f"{state} AS _s",
        f"{order} AS _o",
        f"{weight} AS _w",
    ).selectExpr("*", f"coalesce({changes}, FALSE) AS _chg")
    by = "PARTITION BY client_id, _e ORDER BY _t, _o, _w ASC NULLS FIRST"
    upto = f"({by} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    after = f"({by} ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)"
    last_state = f"last(CASE WHEN _chg THEN _s END, TRUE) OVER {upto}"
    if m.inactive is not None:
        listed = ", ".join(_lit(v) for v in m.inactive) or "NULL"
        active = (
            f"({last_state}) IS NOT NULL AND NOT coalesce(({last_state}) IN ({listed}), FALSE)"
        )
    else:
        listed = ", ".join(_lit(v) for v in m.active) or "NULL"
        active = f"coalesce(({last_state}) IN ({listed}), FALSE)"
    ev = ev.selectExpr(
        "client_id",
        "_day",
        "_chg",
        f"CAST({active} AS DOUBLE) AS _in",
        f"coalesce(last(_w, TRUE) OVER {upto}, 0.0D) AS _wl",
        f"first(CASE WHEN _chg THEN _day END, TRUE) OVER {after} AS _next_day",
        "_e",
        "_t",
        "_o",
        "_w",
    )
    return ev.selectExpr(
        "client_id",
        "_day",
        "_chg",
        "_in",
        "_wl",
        "_next_day",
        f"coalesce(lag(_in) OVER ({by}), 0.0D) AS _in0",
        f"coalesce(lag(_wl) OVER ({by}), 0.0D) AS _wl0",
    )


def _level_streams(tables, m: D.Level, stats: list[tuple[str, D.Level]]):
    """Return the machine's delta stream and its age_max spans."""
    ev = _level_events(tables, m)
    exprs, hows, spans = [], {}, []
    for col, lv in stats:
        if lv.stat == "count":
            exprs.append(f"_in - _in0 AS {col}")
            hows[col] = ("sum", None)
        elif lv.stat == "weight":
            exprs.append(f"_in * _wl - _in0 * _wl0 AS {col}")
            hows[col] = ("sum", lv.decimals)
        elif lv.stat == "last_exit":
            exprs.append(f"CASE WHEN _in0 > 0 AND _in <= 0 THEN CAST(_day AS DOUBLE) END AS {col}")
            hows[col] = ("max", None)
        elif lv.stat == "age_max":
            sp = ev.where("_chg AND _in > 0").selectExpr(
                "client_id", "_day AS _start", "_day AS _open", "_next_day AS _end"
            )
            spans.append((col, sp))
        else:
            raise ValueError(f"unknown level stat {lv.stat!r}")
    stream = _Stream(ev.selectExpr("client_id", "_day", *exprs), hows) if exprs else None
    return stream, spans


def _interval_streams(tables, m: D.Interval, stats: list[tuple[str, D.Interval]]):
    """Return ``+``/``-`` rows (opening and closing day) and the age_max spans."""
    start = _day(m.start)
    if m.known:
        opened = f"greatest({start}, {_day(m.known)})"
        ok = f"{_id(m.start)} IS NOT NULL AND {_id(m.known)} IS NOT NULL"
    else:
        opened, ok = start, f"{_id(m.start)} IS NOT NULL"
    end = _day(m.end) if m.end else "CAST(NULL AS INT)"
    weights = sorted({iv.weight for _, iv in stats if iv.weight})
    rows = (
        tables[m.table]
        .where(ok)
        .selectExpr(
            "client_id",
            f"{start} AS _start",
            f"{opened} AS _open",
            f"{end} AS _end",
            *[f"CAST({_id(w)} AS DOUBLE) AS {_id('_w_' + w)}" for w in weights],
        )
        .where("_end IS NULL OR _end >= _open")
    )
    plus, minus, hows, spans = [], [], {}, []
    for col, iv in stats:
        if iv.stat in ("count", "sum"):
            w = "1.0D"
            if iv.stat == "sum" and iv.weight is not None:
                w = f"coalesce({_id('_w_' + iv.weight)}, 0.0D)"
            plus.append(f"{w} AS {col}")
            minus.append(f"-({w}) AS {col}")
            hows[col] = ("sum", iv.decimals if iv.stat == "sum" else None)
        elif iv.stat == "age_max":
            spans.append((col, rows.selectExpr("client_id", "_start", "_open", "_end")))
        else:
            raise ValueError(f"unknown interval stat {iv.stat!r}")
    stream = None
    if plus:
        opened_rows = rows.selectExpr("client_id", "_open AS _day", *plus)
        closed_rows = rows.where("_end IS NOT NULL").selectExpr(
            "client_id", "_end AS _day", *minus
        )
        stream = _Stream(opened_rows.unionByName(closed_rows), hows)
    return stream, spans


def _bucket_sql(day: str, bounds: list[int]) -> str:
    """SQL: the number of cut-off days ``<= day`` (a balanced CASE over sorted ``bounds``).

    A row of day ``d`` is known at cut-off ``bounds[j]`` iff ``d < bounds[j]`` iff its
    bucket is ``<= j``.
    """

    def node(lo: int, hi: int) -> str:  # answer in [lo, hi]
        if lo == hi:
            return str(lo)
        mid = (lo + hi + 1) // 2  # bucket >= mid iff day >= bounds[mid - 1]
        return f"CASE WHEN {day} >= {bounds[mid - 1]} THEN {node(mid, hi)} ELSE {node(lo, mid - 1)} END"

    return node(0, len(bounds))


def _asof(streams: list[_Stream], long, bounds: list[int]):
    """Return ``long``'s rows with every stream column accumulated over the days ``< _c``.

    Every stream's rows are first aggregated per client and *bucket* (the rows between
    two consecutive cut-off days, ``bounds``: a handful per client for one as-of date,
    a few hundred for a training table, instead of one per event). One union of the
    buckets (other streams' columns null) with the query rows (``_c`` is a cut-off day,
    bucket index ``j``), and one window per client ordered by ``(bucket, data first)``:
    at a query row the running sums and maxima hold exactly the buckets ``<= j``, i.e.
    the rows of the days before ``_c``.
    """
    hows: dict[str, tuple[str, int | None]] = {}
    for st in streams:
        hows.update(st.hows)
    cols = list(hows)
    parts = [
        long.selectExpr(
            "client_id",
            f"{_bucket_sql('_c', bounds)} - 1 AS _b",
            "1 AS _k",
            "_rid",
            "_o",
            "_c",
            *[f"CAST(NULL AS DOUBLE) AS {c}" for c in cols],
        )
    ]
    for st in streams:
        bucketed = st.frame.selectExpr(
            "client_id", f"{_bucket_sql('_day', bounds)} AS _b", *list(st.hows)
        )
        aggs = [
            F_expr(f"{'sum' if st.hows[c][0] == 'sum' else 'max'}(CAST({c} AS DOUBLE)) AS {c}")
            for c in st.hows
        ]
        per_bucket = bucketed.groupBy("client_id", "_b").agg(*aggs)
        sel = [c if c in st.hows else f"CAST(NULL AS DOUBLE) AS {c}" for c in cols]
        parts.append(
            per_bucket.selectExpr(
                "client_id",
                "_b",
                "0 AS _k",
                "CAST(NULL AS BIGINT) AS _rid",
                "CAST(NULL AS INT) AS _o",
                "CAST(NULL AS INT) AS _c",
                *sel,
            )
        )
    both = _union_all(parts)
    w = "(PARTITION BY client_id ORDER BY _b, _k ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    out = []
    for c in cols:
        how, decimals = hows[c]
        if how == "sum":
            v = f"coalesce(sum({c}) OVER {w}, 0.0D)"
            if decimals is not None:
                v = f"round({v}, {int(decimals)})"
        else:
            v = f"max({c}) OVER {w}"
        out.append(f"{v} AS {c}")
    res = both.selectExpr("client_id", "_c", "_k", "_rid", "_o", *out)
    return res.where("_k = 1").drop("_k")


def F_expr(sql: str):
    """Return ``functions.expr(sql)``."""
    return _F().expr(sql)


_views = itertools.count()


def _union_all(parts: list):
    """Return the UNION ALL of frames with the same columns, analysed once.

    Chaining ``DataFrame.union`` re-analyses the growing plan at every step (quadratic
    in the number of parts); one SQL statement over temporary views is analysed once
    (the views are dropped right after: the plan keeps what they stood for).
    """
    if len(parts) == 1:
        return parts[0]
    spark = parts[0].sparkSession
    names = [f"_cp_union_{next(_views)}" for _ in parts]
    try:
        for name, part in zip(names, parts, strict=True):
            part.createOrReplaceTempView(name)
        return spark.sql(" UNION ALL ".join(f"SELECT * FROM {n}" for n in names))
    finally:
        for name in names:
            spark.catalog.dropTempView(name)


def _span_max(spans, long, col: str):
    """Return ``(_rid, _o, col)``: max ``_c - _start`` over the spans open at ``_c``."""
    F = _F()
    s = spans.alias("s")
    p = long.alias("p")
    cond = (
        (F.col("s.client_id") == F.col("p.client_id"))
        & (F.col("s._open") < F.col("p._c"))
        & (F.col("s._end").isNull() | (F.col("s._end") >= F.col("p._c")))
    )
    j = p.join(s, cond, "inner")
    return j.groupBy(F.col("p._rid").alias("_rid"), F.col("p._o").alias("_o")).agg(
        F.max((F.col("p._c") - F.col("s._start")).cast("double")).alias(col)
    )


# ------------------------------------------------------------------------ expressions
def _expr(e, mcol, feat) -> str:
    """Return an Expr as Spark SQL (double; null = missing)."""

    def go(x):
        return _expr(x, mcol, feat)

    if isinstance(e, D.At):
        return mcol(e.measure, e.offset)
    if isinstance(e, D.Feat):
        return feat(e.name)
    if isinstance(e, D.Num):
        return _num(e.value)
    if isinstance(e, D.Add):
        return f"({go(e.left)} + {go(e.right)})"
    if isinstance(e, D.Sub):
        return f"({go(e.left)} - {go(e.right)})"
    if isinstance(e, D.Mul):
        return f"({go(e.left)} * {go(e.right)})"
    if isinstance(e, D.Div):
        return f"({go(e.left)} / nullif({go(e.right)}, 0.0D))"
    if isinstance(e, D.DaysSince):
        return f"(CAST(_as_of_day AS DOUBLE) - {go(e.day)})"
    if isinstance(e, D.Min):
        args = [go(a) for a in e.args]
        return args[0] if len(args) == 1 else f"least({', '.join(args)})"  # skips nulls
    if isinstance(e, D.Coalesce):
        return f"coalesce({go(e.value)}, {go(e.default)})"
    if isinstance(e, D.Where):
        op = "=" if e.op == "==" else e.op
        return f"(CASE WHEN {go(e.left)} {op} {go(e.right)} THEN {go(e.then)} END)"
    if isinstance(e, D.Quintile):
        v = go(e.value)
        if e.missing is not None:
            v = f"coalesce({v}, {_num(e.missing)})"
        order = f"{v} DESC NULLS LAST" if e.descending else f"{v} ASC NULLS LAST"
        return (
            f"CAST(ceil(5.0D * cume_dist() OVER (PARTITION BY _as_of_day ORDER BY {order})) "
            "AS DOUBLE)"
        )
    raise TypeError(f"unknown expression {e!r}")


# ----------------------------------------------------------------------------- compute
def compute_frame(tables: dict[str, Any], spine, decls: list[D.FeatureDecl]):
    """Return a Spark DataFrame: the spine's columns and one float column per feature.

    Parameters
    ----------
    tables : dict of str to pyspark DataFrame
        The contract tables (``SparkDataset.tables``).
    spine : pyspark DataFrame
        ``client_id`` and ``as_of`` (date or timestamp at 00:00) and any other columns
        (kept, e.g. the label); ``_rid``, a unique row id, is added when absent.
    decls : list of FeatureDecl
        In catalog order (a feature reading others comes after them).
    """
    if "_rid" not in spine.columns:
        spine = spine.selectExpr("*", "monotonically_increasing_id() AS _rid")
    spine = spine.selectExpr("*", f"{_day('as_of')} AS _as_of_day")
    keep = [c for c in spine.columns if c != "_as_of_day"]
    # every (measure, offset) read, measures numbered in first-use order
    ids: dict[Any, int] = {}
    offsets: set[int] = set()
    statics: dict[str, None] = {}
    for d in decls:
        for m, o in D.measures_of(d.value):
            if isinstance(m, D.Static):
                statics[m.column] = None
            else:
                ids.setdefault(m, len(ids))
                offsets.add(o)
    offsets_l = sorted(offsets) or [0]

    def mname(m) -> str:
        return f"_m{ids[m]}"

    # 1. query rows: one per spine row and offset, at cut-off day _c = as_of - offset
    arr = ", ".join(str(o) for o in offsets_l)
    long = spine.selectExpr(
        "_rid", "client_id", f"explode(array({arr})) AS _o", "_as_of_day"
    ).selectExpr("_rid", "client_id", "_o", "_as_of_day - _o AS _c")
    # 2./3. the measures' values at the query rows
    by_source: dict[D.Source, list] = {}
    by_machine: dict[D.Level, list] = {}
    by_interval: dict[D.Interval, list] = {}
    for m in ids:
        if isinstance(m, D.Aggregation):
            by_source.setdefault(m.source, []).append((mname(m), m))
        elif isinstance(m, D.Level):
            by_machine.setdefault(_machine(m), []).append((mname(m), m))
        elif isinstance(m, D.Interval):
            key = replace(m, stat="count", weight=None, decimals=None)
            by_interval.setdefault(key, []).append((mname(m), m))
        else:
            raise TypeError(f"unknown measure {m!r}")
    streams, spans = [], []
    for src, aggs in by_source.items():
        streams.append(_aggregation_stream(tables, src, aggs))
    for mach, stats in by_machine.items():
        stream, sp = _level_streams(tables, mach, stats)
        streams += [stream] if stream is not None else []
        spans += sp
    for iv, stats in by_interval.items():
        stream, sp = _interval_streams(tables, iv, stats)
        streams += [stream] if stream is not None else []
        spans += sp
    query = long
    if streams:
        # the cut-off days of every query row: as-of days (few) minus the offsets
        days = sorted(r[0] for r in spine.select("_as_of_day").distinct().collect())
        bounds = sorted({a - o for a in days for o in offsets_l})
        long = _asof(streams, long, bounds)
    for col, sp in spans:
        long = long.join(_span_max(sp, query, col), ["_rid", "_o"], "left")
    mcols = [mname(m) for m in ids]
    # 4. one row per spine row: measure m at offset o as column _m{id}_o{o}
    base = spine
    if mcols:
        F = _F()
        wide = (
            long.groupBy("_rid")
            .pivot("_o", offsets_l)
            .agg(*[F.expr(f"first({c}, TRUE) AS {c}") for c in mcols])
        )
        wide = wide.selectExpr(
            "_rid", *[f"`{o}_{c}` AS {c}_o{o}" for o in offsets_l for c in mcols]
        )
        base = spine.join(wide, "_rid", "left")
    if statics:
        cl = tables["clients"].selectExpr(
            "client_id", *[f"{_id(c)} AS {_id('_s_' + c)}" for c in statics]
        )
        base = base.join(cl, "client_id", "left")

    def mcol(m, o) -> str:
        if isinstance(m, D.Static):
            c = _id("_s_" + m.column)
            if m.op == "value":
                return f"CAST({c} AS DOUBLE)"
            if m.op == "equals":
                return f"CAST(CAST({c} AS STRING) = {_lit(m.value)} AS DOUBLE)"
            days = f"CAST(_as_of_day - {_day('_s_' + m.column)} AS DOUBLE)"
            if m.op == "days_since":
                return days
            if m.op == "within":
                return f"CAST({days} <= {int(m.days)} AS DOUBLE)"
            raise ValueError(m.op)
        return f"{mname(m)}_o{o}"

    built: dict[str, str] = {}

    def inline(name: str) -> str:
        return built[name] if name in built else _id(name)

    first, later = [], []
    for d in decls:
        if D.has_quintile(d.value):
            later.append(d)
            continue
        sql = _expr(d.value, mcol, inline)
        built[d.name] = sql
        first.append(f"{sql} AS {_id(d.name)}")
    out = base.selectExpr(*keep, "_as_of_day", *first)
    if later:
        out = out.selectExpr(
            "*", *[f"{_expr(d.value, mcol, _id)} AS {_id(d.name)}" for d in later]
        )
    finite = [
        f"CAST(CASE WHEN isnan({_id(d.name)}) THEN NULL ELSE {_id(d.name)} END AS FLOAT) "
        f"AS {_id(d.name)}"
        for d in decls
    ]
    return out.selectExpr(*keep, *finite)


def compute(ds, spine: pd.DataFrame, decls: list[D.FeatureDecl]) -> pd.DataFrame:
    """Return ``client_id``, ``as_of`` and one float32 column per feature, in spine order.

    Parameters
    ----------
    ds : churnpredict.data.SparkDataset
        The data set (its ``tables`` are read).
    spine : DataFrame
        ``client_id`` and ``as_of`` (dates); other columns are ignored.
    decls : list of FeatureDecl
    """
    from churnpredict import spark as sparkmod

    sparkmod._quiet()
    spark = ds.spark
    sp = pd.DataFrame(
        {
            "_rid": np.arange(len(spine), dtype=np.int64),
            "client_id": spine["client_id"].astype(str).to_numpy(),
            "as_of": pd.to_datetime(spine["as_of"]).dt.normalize().dt.date.to_numpy(),
        }
    )
    sdf = spark.createDataFrame(sp, schema="_rid long, client_id string, as_of date")
    out = compute_frame(ds.tables, sdf, decls).orderBy("_rid").toPandas()
    names = [d.name for d in decls]
    res = pd.DataFrame(
        {
            "client_id": spine["client_id"].astype(str).to_numpy(),
            "as_of": pd.to_datetime(spine["as_of"]).to_numpy().astype("datetime64[ns]"),
        }
    )
    feats = out[names].astype(np.float32).reset_index(drop=True)
    return pd.concat([res, feats], axis=1)
