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

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from churnpredict.features import declarations as D

EPOCH = "1970-01-01"


def _F():
    from pyspark.sql import functions as F

    return F


def _W():
    from pyspark.sql import Window

    return Window


def _epoch_day(col):
    F = _F()
    return F.datediff(F.to_date(col), F.lit(EPOCH).cast("date"))


# ------------------------------------------------------------------------ row columns
def _row_expr(e, F):
    """Return a RowExpr as a Spark Column (double; null when missing)."""
    if isinstance(e, D.Col):
        return F.col(f"`{e.name}`").cast("double")
    if isinstance(e, D.Const):
        return F.lit(float(e.value))
    if isinstance(e, D.DaysBetween):
        return F.datediff(F.to_date(F.col(e.end)), F.to_date(F.col(e.start))).cast("double")
    if isinstance(e, D.Greater):
        left, right = _row_expr(e.left, F), _row_expr(e.right, F)
        return F.when(left.isNull() | right.isNull(), None).otherwise(
            (left > right).cast("double")
        )
    if isinstance(e, D.Greatest):
        return F.greatest(_row_expr(e.left, F), _row_expr(e.right, F))
    raise TypeError(f"unknown row expression {e!r}")


def _source_rows(tables: dict[str, Any], src: D.Source):
    """Return the source's events: client_id, day, _t (time), category and number columns."""
    F, W = _F(), _W()
    df = tables[src.table]
    df = df.where(F.col(src.time).isNotNull())
    if src.after_first:
        w = W.partitionBy("client_id").orderBy(F.col(src.time).cast("timestamp"))
        df = df.withColumn("_rn", F.row_number().over(w)).where(F.col("_rn") > 1).drop("_rn")
    keep = src.keep_map()
    cols = [
        F.col("client_id"),
        _epoch_day(F.col(src.time)).alias("_day"),
        F.col(src.time).cast("timestamp").alias("_t"),
    ]
    for c in src.categories:
        text = F.col(c).cast("string")
        if c in keep:
            vals = list(keep[c])
            mapped = F.when(F.col(c).isNull(), F.lit(D.MISSING))
            mapped = (
                mapped.when(text.isin(vals), text).otherwise(F.lit(D.OTHER))
                if vals
                else mapped.otherwise(F.lit(D.OTHER))
            )
            cols.append(mapped.alias(f"_c_{c}"))
        else:
            cols.append(text.alias(f"_c_{c}"))
    for c in src.numerics:
        cols.append(F.col(c).cast("double").alias(f"_n_{c}"))
    for name, expr in src.columns:
        cols.append(_row_expr(expr, F).alias(f"_n_{name}"))
    return df.select(*cols)


def _where(where, F):
    cond = F.lit(True)
    for col, value in where:
        cond = cond & (F.col(f"_c_{col}") == F.lit(value))
    return cond


# ------------------------------------------------------------------- delta streams
class _Stream:
    """A per-(client, day) frame plus how each of its columns accumulates."""

    def __init__(self, frame, hows: dict[str, tuple[str, int | None]]):
        self.frame = frame  # client_id, _day, columns
        self.hows = hows  # column -> ("sum" | "max", decimals)


def _aggregation_stream(tables, src: D.Source, aggs: list[tuple[str, D.Aggregation]]):
    F = _F()
    rows = _source_rows(tables, src)
    exprs, hows = [], {}
    for col, a in aggs:
        cond = _where(a.where, F)
        if a.op == "count":
            exprs.append(F.sum(F.when(cond, F.lit(1.0)).otherwise(F.lit(0.0))).alias(col))
            hows[col] = ("sum", None)
        elif a.op == "sum":
            exprs.append(F.sum(F.when(cond, F.col(f"_n_{a.column}"))).alias(col))
            hows[col] = ("sum", a.decimals)
        elif a.op == "max":
            exprs.append(F.max(F.when(cond, F.col(f"_n_{a.column}"))).alias(col))
            hows[col] = ("max", None)
        elif a.op == "last":
            exprs.append(F.max(F.when(cond, F.col("_day"))).cast("double").alias(col))
            hows[col] = ("max", None)
        else:
            raise ValueError(f"unknown aggregation op {a.op!r}")
    return _Stream(rows.groupBy("client_id", "_day").agg(*exprs), hows)


def _machine(lv: D.Level) -> D.Level:
    """The state machine of a Level (what its stats share)."""
    return replace(lv, stat="count", decimals=None)


def _level_events(tables, m: D.Level):
    """Per event of the machine: client, day, in-state before/after, weight before/after."""
    F, W = _F(), _W()
    src = m.source
    df = tables[src.table].where(F.col(src.time).isNotNull())
    state = F.col(m.state).cast("string")
    order = F.lit(len(m.order))
    for i, v in reversed(list(enumerate(m.order))):
        order = F.when(state == F.lit(v), F.lit(i)).otherwise(order)
    weight = F.col(m.weight).cast("double") if m.weight else F.lit(None).cast("double")
    ev = df.select(
        F.col("client_id"),
        F.col(m.entity).cast("string").alias("_e"),
        F.col(src.time).cast("timestamp").alias("_t"),
        _epoch_day(F.col(src.time)).alias("_day"),
        state.alias("_s"),
        order.alias("_o"),
        weight.alias("_w"),
    )
    is_change = F.lit(True) if m.changes is None else F.col("_s").isin(list(m.changes))
    ev = ev.withColumn("_chg", is_change)
    w = (
        W.partitionBy("client_id", "_e")
        .orderBy(F.col("_t"), F.col("_o"), F.col("_w").asc_nulls_first())
        .rowsBetween(W.unboundedPreceding, W.currentRow)
    )
    last_state = F.last(F.when(F.col("_chg"), F.col("_s")), ignorenulls=True).over(w)
    if m.inactive is not None:
        active = last_state.isNotNull() & ~last_state.isin(list(m.inactive))
    else:
        active = last_state.isNotNull() & last_state.isin(list(m.active))
    ev = ev.withColumn("_in", active.cast("double"))
    ev = ev.withColumn("_wl", F.coalesce(F.last("_w", ignorenulls=True).over(w), F.lit(0.0)))
    w1 = W.partitionBy("client_id", "_e").orderBy(
        F.col("_t"), F.col("_o"), F.col("_w").asc_nulls_first()
    )
    ev = ev.withColumn("_in0", F.coalesce(F.lag("_in").over(w1), F.lit(0.0)))
    ev = ev.withColumn("_wl0", F.coalesce(F.lag("_wl").over(w1), F.lit(0.0)))
    # the next state-changing event of the entity (ends a span that this event opens)
    nxt = W.partitionBy("client_id", "_e").orderBy(
        F.col("_t"), F.col("_o"), F.col("_w").asc_nulls_first()
    )
    ev = ev.withColumn(
        "_next_day",
        F.first(F.when(F.col("_chg"), F.col("_day")), ignorenulls=True).over(
            nxt.rowsBetween(1, W.unboundedFollowing)
        ),
    )
    return ev


def _level_streams(tables, m: D.Level, stats: list[tuple[str, D.Level]]):
    """Return the machine's delta stream and its age_max spans."""
    F = _F()
    ev = _level_events(tables, m)
    exprs, hows, spans = [], {}, []
    for col, lv in stats:
        if lv.stat == "count":
            exprs.append(F.sum(F.col("_in") - F.col("_in0")).alias(col))
            hows[col] = ("sum", None)
        elif lv.stat == "weight":
            d = F.col("_in") * F.col("_wl") - F.col("_in0") * F.col("_wl0")
            exprs.append(F.sum(d).alias(col))
            hows[col] = ("sum", lv.decimals)
        elif lv.stat == "last_exit":
            leave = (F.col("_in0") > 0) & (F.col("_in") <= 0)
            exprs.append(F.max(F.when(leave, F.col("_day"))).cast("double").alias(col))
            hows[col] = ("max", None)
        elif lv.stat == "age_max":
            sp = ev.where(F.col("_chg") & (F.col("_in") > 0)).select(
                "client_id",
                F.col("_day").alias("_start"),
                F.col("_day").alias("_open"),
                F.col("_next_day").alias("_end"),
            )
            spans.append((col, sp))
        else:
            raise ValueError(f"unknown level stat {lv.stat!r}")
    stream = None
    if exprs:
        stream = _Stream(ev.groupBy("client_id", "_day").agg(*exprs), hows)
    return stream, spans


def _interval_streams(tables, m: D.Interval, stats: list[tuple[str, D.Interval]]):
    F = _F()
    df = tables[m.table]
    start = _epoch_day(F.col(m.start))
    opened = start
    if m.known:
        opened = F.greatest(start, _epoch_day(F.col(m.known)))
        ok = F.col(m.start).isNotNull() & F.col(m.known).isNotNull()
    else:
        ok = F.col(m.start).isNotNull()
    end = _epoch_day(F.col(m.end)) if m.end else F.lit(None).cast("int")
    weights = sorted({iv.weight for _, iv in stats if iv.weight})
    rows = df.where(ok).select(
        "client_id",
        start.alias("_start"),
        opened.alias("_open"),
        end.alias("_end"),
        *[F.col(w).cast("double").alias(f"_w_{w}") for w in weights],
    )
    rows = rows.where(F.col("_end").isNull() | (F.col("_end") >= F.col("_open")))
    exprs_open, exprs_end, hows, spans = [], [], {}, []
    for col, iv in stats:
        if iv.stat == "count":
            exprs_open.append(F.lit(1.0).alias(col))
            exprs_end.append(F.lit(-1.0).alias(col))
            hows[col] = ("sum", None)
        elif iv.stat == "sum":
            w = (
                F.lit(1.0)
                if iv.weight is None
                else F.coalesce(F.col(f"_w_{iv.weight}"), F.lit(0.0))
            )
            exprs_open.append(w.alias(col))
            exprs_end.append((-w).alias(col))
            hows[col] = ("sum", iv.decimals)
        elif iv.stat == "age_max":
            spans.append((col, rows.select("client_id", "_start", "_open", "_end")))
        else:
            raise ValueError(f"unknown interval stat {iv.stat!r}")
    stream = None
    if exprs_open:
        plus = rows.select("client_id", F.col("_open").alias("_day"), *exprs_open)
        minus = rows.where(F.col("_end").isNotNull()).select(
            "client_id", F.col("_end").alias("_day"), *exprs_end
        )
        both = plus.unionByName(minus)
        daily = both.groupBy("client_id", "_day").agg(*[F.sum(c).alias(c) for c in hows])
        stream = _Stream(daily, hows)
    return stream, spans


def _asof(stream: _Stream, points):
    """Return ``(client_id, _c, cols)``: each column accumulated over the days ``< _c``."""
    F, W = _F(), _W()
    cols = list(stream.hows)
    data = stream.frame.select("client_id", F.col("_day").alias("_c"), F.lit(1).alias("_k"), *cols)
    q = points.select(
        "client_id",
        "_c",
        F.lit(0).alias("_k"),
        *[F.lit(None).cast("double").alias(c) for c in cols],
    )
    w = (
        W.partitionBy("client_id")
        .orderBy("_c", "_k")
        .rowsBetween(W.unboundedPreceding, W.currentRow)
    )
    out = []
    for c in cols:
        how, decimals = stream.hows[c]
        if how == "sum":
            v = F.coalesce(F.sum(c).over(w), F.lit(0.0))
            if decimals is not None:
                v = F.round(v, decimals)
        else:
            v = F.max(c).over(w)
        out.append(v.alias(c))
    both = data.unionByName(q)
    return both.select("client_id", "_c", "_k", *out).where(F.col("_k") == 0).drop("_k")


def _span_max(spans, points, col: str):
    """Return ``(client_id, _c, col)``: max ``_c - _start`` over spans open at ``_c``."""
    F = _F()
    s = spans.alias("s")
    p = points.alias("p")
    cond = (
        (F.col("s.client_id") == F.col("p.client_id"))
        & (F.col("s._open") < F.col("p._c"))
        & (F.col("s._end").isNull() | (F.col("s._end") >= F.col("p._c")))
    )
    j = p.join(s, cond, "inner")
    return j.groupBy(F.col("p.client_id").alias("client_id"), F.col("p._c").alias("_c")).agg(
        F.max((F.col("p._c") - F.col("s._start")).cast("double")).alias(col)
    )


# ------------------------------------------------------------------------ expressions
def _expr(e, F, mcol, feat, as_of_day):
    """Return an Expr as a Column (double; null = missing)."""

    def go(x):
        return _expr(x, F, mcol, feat, as_of_day)

    if isinstance(e, D.At):
        return mcol(e.measure, e.offset)
    if isinstance(e, D.Feat):
        return feat(e.name)
    if isinstance(e, D.Num):
        return F.lit(float(e.value))
    if isinstance(e, D.Add):
        return go(e.left) + go(e.right)
    if isinstance(e, D.Sub):
        return go(e.left) - go(e.right)
    if isinstance(e, D.Mul):
        return go(e.left) * go(e.right)
    if isinstance(e, D.Div):
        right = go(e.right)
        return go(e.left) / F.when(right != 0, right)
    if isinstance(e, D.DaysSince):
        return as_of_day.cast("double") - go(e.day)
    if isinstance(e, D.Min):
        args = [go(a) for a in e.args]
        return args[0] if len(args) == 1 else F.least(*args)
    if isinstance(e, D.Coalesce):
        return F.coalesce(go(e.value), go(e.default))
    if isinstance(e, D.Where):
        left, right = go(e.left), go(e.right)
        cond = {
            "<": left < right,
            "<=": left <= right,
            ">": left > right,
            ">=": left >= right,
            "==": left == right,
        }[e.op]
        return F.when(cond, go(e.then))
    if isinstance(e, D.Quintile):
        W = _W()
        v = go(e.value)
        if e.missing is not None:
            v = F.coalesce(v, F.lit(float(e.missing)))
        order = v.desc_nulls_last() if e.descending else v.asc_nulls_last()
        w = W.partitionBy("_as_of_day").orderBy(order)
        return F.ceil(F.lit(5.0) * F.cume_dist().over(w)).cast("double")
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
    F = _F()
    if "_rid" not in spine.columns:
        spine = spine.withColumn("_rid", F.monotonically_increasing_id())
    spine = spine.withColumn("_as_of_day", _epoch_day(F.col("as_of")))
    # every (measure, offset) read, measures numbered in first-use order
    ids: dict[Any, int] = {}
    offsets: set[int] = set()
    for d in decls:
        for m, o in D.measures_of(d.value):
            if not isinstance(m, D.Static):
                ids.setdefault(m, len(ids))
                offsets.add(o)
    offsets_l = sorted(offsets) or [0]

    def mname(m) -> str:
        return f"_m{ids[m]}"

    # 1. query points
    long = spine.select(
        "_rid",
        "client_id",
        F.explode(F.array(*[F.lit(o) for o in offsets_l])).alias("_o"),
        "_as_of_day",
    ).withColumn("_c", F.col("_as_of_day") - F.col("_o"))
    points = long.select("client_id", "_c").distinct()
    # 2./3. the measures' values at the query points
    by_source: dict[D.Source, list] = {}
    by_machine: dict[D.Level, list] = {}
    by_interval: dict[D.Interval, list] = {}
    for m in ids:
        if isinstance(m, D.Aggregation):
            by_source.setdefault(m.source, []).append((mname(m), m))
        elif isinstance(m, D.Level):
            by_machine.setdefault(_machine(m), []).append((mname(m), m))
        elif isinstance(m, D.Interval):
            by_interval.setdefault(
                replace(m, stat="count", weight=None, decimals=None), []
            ).append((mname(m), m))
        else:
            raise TypeError(f"unknown measure {m!r}")
    values = []
    for src, aggs in by_source.items():
        values.append(_asof(_aggregation_stream(tables, src, aggs), points))
    for mach, stats in by_machine.items():
        stream, spans = _level_streams(tables, mach, stats)
        if stream is not None:
            values.append(_asof(stream, points))
        values += [_span_max(sp, points, col) for col, sp in spans]
    for iv, stats in by_interval.items():
        stream, spans = _interval_streams(tables, iv, stats)
        if stream is not None:
            values.append(_asof(stream, points))
        values += [_span_max(sp, points, col) for col, sp in spans]
    for v in values:
        long = long.join(v, ["client_id", "_c"], "left")
    mcols = [mname(m) for m in ids]
    # 4. one row per spine row: measure m at offset o as column _m{id}_o{o}
    wide = None
    if mcols:
        wide = (
            long.groupBy("_rid")
            .pivot("_o", offsets_l)
            .agg(*[F.first(c, ignorenulls=True).alias(c) for c in mcols])
        )
        rename = [F.col(f"`{o}_{c}`").alias(f"{c}_o{o}") for o in offsets_l for c in mcols]
        wide = wide.select("_rid", *rename)
    base = spine if wide is None else spine.join(wide, "_rid", "left")
    statics = sorted(
        {m.column for d in decls for m, _ in D.measures_of(d.value) if isinstance(m, D.Static)}
    )
    if statics:
        cl = tables["clients"].select("client_id", *[F.col(c).alias(f"_s_{c}") for c in statics])
        base = base.join(cl, "client_id", "left")
    as_of_day = F.col("_as_of_day")

    def mcol(m, o):
        if isinstance(m, D.Static):
            c = F.col(f"_s_{m.column}")
            if m.op == "value":
                return c.cast("double")
            if m.op == "equals":
                return F.when(c.isNull(), None).otherwise(
                    (c.cast("string") == F.lit(m.value)).cast("double")
                )
            days = (as_of_day - _epoch_day(c)).cast("double")
            if m.op == "days_since":
                return days
            if m.op == "within":
                return F.when(c.isNull(), None).otherwise((days <= m.days).cast("double"))
            raise ValueError(m.op)
        return F.col(f"{mname(m)}_o{o}")

    built: dict[str, Any] = {}

    def feat(name):
        if name in built:
            return built[name]
        return F.col(f"`{name}`")

    keep = [c for c in spine.columns]
    first, later = [], []
    for d in decls:
        if D.has_quintile(d.value):
            later.append(d)
            continue
        col = _expr(d.value, F, mcol, feat, as_of_day)
        built[d.name] = col
        first.append(col.alias(d.name))
    out = base.select(*keep, *first)
    if later:
        built.clear()  # later stages read the columns
        out = out.select(
            "*", *[_expr(d.value, F, mcol, feat, as_of_day).alias(d.name) for d in later]
        )
    names = [d.name for d in decls]
    out = out.select(
        *[c for c in keep if c != "_as_of_day"],
        *[
            F.when(F.isnan(F.col(f"`{n}`")), None)
            .otherwise(F.col(f"`{n}`"))
            .cast("float")
            .alias(n)
            for n in names
        ],
    )
    return out


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
            "as_of": pd.to_datetime(spine["as_of"]).to_numpy(),
        }
    )
    feats = out[names].astype(np.float32).reset_index(drop=True)
    return pd.concat([res, feats], axis=1)
