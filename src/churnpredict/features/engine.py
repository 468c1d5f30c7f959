"""The point-in-time engine: every feature for every (client_id, as_of) in one pass.

This is the only module that knows how features are computed in DuckDB. Source
modules declare *streams* (a SQL query giving ``client_id, day`` plus columns) and
*measures* over them; feature expressions combine measure values looked up at
``as_of - offset``.

How it stays point-in-time and cheap
------------------------------------
Every feature at as-of ``T`` is built from values of the form "aggregate of the
stream's rows with ``day < T - o``" for a few offsets ``o`` (0, the windows, twice
the windows for trends). A row with timestamp ``ts`` is known at ``T`` iff
``ts < T 00:00 UTC`` iff ``date(ts) < T``, so working with ``day = date(ts)`` is exact.

1. The set of cut-off dates ``B = {T - o}`` over all as-of dates and offsets is
   sorted into boundaries ``b_1 < ... < b_K``.
2. Each stream row goes to bucket ``k`` = number of boundaries ``<= day`` (one ASOF
   join against the tiny boundary table) and rows are aggregated per
   ``(client_id, k, group columns)`` — the single scan over the events.
3. Measures (counts per slice, sums, last day) are pivoted from that small table,
   then accumulated over ``k`` per client (running sums / running max).
4. "Rows with ``day < b_j``" are exactly buckets ``0..j-1``, so each lookup is an
   ASOF join of the spine on ``k <= j - 1``.

A training table of many snapshots therefore costs one scan plus lookups: K grows
with the number of distinct cut-off dates, not with the number of rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import duckdb
import pandas as pd

_REF = re.compile(r"\bo(\d+)_([a-z0-9_]+)\b")


@dataclass(frozen=True)
class Measure:
    """An aggregate of a stream per client and bucket, accumulated over time.

    Parameters
    ----------
    name : str
        Column name (``[a-z0-9_]``), unique within the stream.
    expr : str
        Aggregate SQL over the stage-1 table, whose columns are the stream's
        ``group_cols``, ``n`` (row count), ``s_<col>`` (sum of each ``sum_cols``),
        ``x_<col>`` (max of each ``max_cols``) and ``last_day`` (max day), e.g. ``sum(n) FILTER (WHERE event = 'paused')``.
    how : {"sum", "max"}
        How the measure accumulates over time (running sum or running max).
    """

    name: str
    expr: str
    how: str = "sum"


@dataclass(frozen=True)
class Stream:
    """A derived event stream: ``sql`` yields ``client_id``, ``day`` (DATE) and columns."""

    name: str
    sql: str
    group_cols: tuple[str, ...] = ()
    sum_cols: tuple[str, ...] = ()
    max_cols: tuple[str, ...] = ()
    measures: tuple[Measure, ...] = ()


@dataclass(frozen=True)
class FeatureExpr:
    """A feature as SQL over looked-up measures.

    ``expr`` refers to measure ``m`` of stream ``s`` as it stood at ``as_of - o`` days
    with ``o{o}_{s}__{m}``, and may use ``as_of`` (DATE). Example:
    ``o0_campaigns__paused - o7_campaigns__paused`` = pauses in ``[T-7d, T)``.
    """

    name: str
    expr: str


@dataclass
class Plan:
    """Everything the engine computes: streams, feature expressions and extra joins."""

    streams: list[Stream] = field(default_factory=list)
    features: list[FeatureExpr] = field(default_factory=list)
    # SQL selecting (rid, <feature columns>) from the registered `_spine` table.
    extra_sql: list[str] = field(default_factory=list)
    # Stages of expressions over already computed features (may use window
    # functions over the spine, e.g. quintiles by as_of); evaluated last, stage by stage.
    post: list[list[FeatureExpr]] = field(default_factory=list)


def _refs(features: list[FeatureExpr]) -> dict[str, set[tuple[int, str]]]:
    """Map stream name -> {(offset, measure)} referenced by the feature expressions."""
    out: dict[str, set[tuple[int, str]]] = {}
    for f in features:
        for off, ref in _REF.findall(f.expr):
            stream, _, measure = ref.partition("__")
            out.setdefault(stream, set()).add((int(off), measure))
    return out


def compute(con: duckdb.DuckDBPyConnection, spine: pd.DataFrame, plan: Plan) -> pd.DataFrame:
    """Compute every feature of ``plan`` for each ``(client_id, as_of)`` row of ``spine``.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Connection holding the contract tables the streams read.
    spine : DataFrame
        Columns ``client_id`` and ``as_of`` (dates); other columns are ignored.
    plan : Plan
        Streams, measures and feature expressions.

    Returns
    -------
    DataFrame
        ``client_id``, ``as_of`` and one column per feature, in spine order.
    """
    sp = pd.DataFrame(
        {
            "rid": range(len(spine)),
            "client_id": spine["client_id"].astype(str).to_numpy(),
            "as_of": pd.to_datetime(spine["as_of"]).dt.date.to_numpy(),
        }
    )
    con.register("_spine_df", sp)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _spine AS "
        "SELECT rid::BIGINT AS rid, client_id::VARCHAR AS client_id, as_of::DATE AS as_of "
        "FROM _spine_df"
    )
    con.unregister("_spine_df")
    refs = _refs(plan.features)
    streams = {s.name: s for s in plan.streams}
    unknown = set(refs) - set(streams)
    if unknown:
        raise ValueError(f"feature expressions refer to unknown streams: {sorted(unknown)}")

    offsets = sorted({o for pairs in refs.values() for o, _ in pairs})
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _bnd AS "
        "SELECT row_number() OVER (ORDER BY b)::INTEGER AS k, b FROM ("
        "  SELECT DISTINCT (s.as_of - o.o::INTEGER) AS b FROM (SELECT DISTINCT as_of FROM _spine) s"
        f"  CROSS JOIN (SELECT unnest({offsets or [0]}) AS o) o)"
    )
    max_b = con.execute("SELECT max(b) FROM _bnd").fetchall()[0][0]

    lookup_tables: list[tuple[str, list[str]]] = []
    for sname, pairs in sorted(refs.items()):
        stream = streams[sname]
        used = {m for _, m in pairs}
        measures = [m for m in stream.measures if m.name in used]
        missing = used - {m.name for m in measures}
        if missing:
            raise ValueError(f"stream {sname} has no measures {sorted(missing)}")
        _accumulate(con, stream, measures, max_b)
        for off in sorted({o for o, _ in pairs}):
            cols = sorted(m for o, m in pairs if o == off)
            tname = f"_lk_{sname}_{off}"
            sel = ", ".join(f"c.{m} AS o{off}_{sname}__{m}" for m in cols)
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {tname} AS "
                f"SELECT q.rid, {sel} FROM ("
                f"  SELECT s.rid, s.client_id, b.k - 1 AS j FROM _spine s "
                f"  JOIN _bnd b ON b.b = s.as_of - {off}::INTEGER) q "
                f"ASOF LEFT JOIN _cum_{sname} c ON q.client_id = c.client_id AND q.j >= c.k"
            )
            lookup_tables.append((tname, [f"o{off}_{sname}__{m}" for m in cols]))

    # Measures that never accumulated (client without rows) are 0 for sums, NULL for max.
    hows = {f"{s.name}__{m.name}": m.how for s in plan.streams for m in s.measures}
    select_cols = []
    for tname, cols in lookup_tables:
        for c in cols:
            how = hows[c.split("_", 1)[1]]
            select_cols.append(f"COALESCE({tname}.{c}, 0) AS {c}" if how == "sum" else f"{tname}.{c}")
    joins = " ".join(f"LEFT JOIN {t} USING (rid)" for t, _ in lookup_tables)
    base_cols = ", ".join(["s.rid", "s.client_id", "s.as_of", *select_cols])
    con.execute(f"CREATE OR REPLACE TEMP TABLE _lk AS SELECT {base_cols} FROM _spine s {joins}")

    feat_sql = ", ".join(f"({f.expr})::DOUBLE AS \"{f.name}\"" for f in plan.features)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _feat AS SELECT rid, client_id, as_of"
        + (f", {feat_sql}" if feat_sql else "")
        + " FROM _lk"
    )
    for i, sql in enumerate(plan.extra_sql):
        con.execute(f"CREATE OR REPLACE TEMP TABLE _x{i} AS {sql}")
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _feat AS SELECT f.*, x.* EXCLUDE (rid) "
            f"FROM _feat f LEFT JOIN _x{i} x USING (rid)"
        )
    for stage in plan.post:
        if not stage:
            continue
        post_sql = ", ".join(f"({p.expr})::DOUBLE AS \"{p.name}\"" for p in stage)
        con.execute(f"CREATE OR REPLACE TEMP TABLE _feat AS SELECT *, {post_sql} FROM _feat")
    out = con.execute("SELECT * EXCLUDE (rid) FROM _feat ORDER BY rid").df()
    for t in ["_spine", "_bnd", "_lk", "_feat"] + [t for t, _ in lookup_tables]:
        con.execute(f"DROP TABLE IF EXISTS {t}")
    for s in refs:
        con.execute(f"DROP TABLE IF EXISTS _cum_{s}")
    for i in range(len(plan.extra_sql)):
        con.execute(f"DROP TABLE IF EXISTS _x{i}")
    out["as_of"] = pd.to_datetime(out["as_of"])
    return out


def _accumulate(
    con: duckdb.DuckDBPyConnection, stream: Stream, measures: list[Measure], max_b
) -> None:
    """Build ``_cum_<stream>``: running measures per (client_id, bucket k)."""
    group = ", ".join(stream.group_cols)
    sums = "".join(f", sum({c})::DOUBLE AS s_{c}" for c in stream.sum_cols)
    sums += "".join(f", max({c})::DOUBLE AS x_{c}" for c in stream.max_cols)
    stage1 = (
        f"SELECT e.client_id, COALESCE(b.k, 0) AS k{', ' + group if group else ''}, "
        f"count(*)::DOUBLE AS n{sums}, max(e.day) AS last_day "
        f"FROM (SELECT * FROM ({stream.sql}) WHERE day < DATE '{max_b}') e "
        f"ASOF LEFT JOIN _bnd b ON e.day >= b.b "
        f"GROUP BY ALL"
    )
    pivot = ", ".join(f"{m.expr} AS {m.name}" for m in measures)
    running = ", ".join(
        (
            f"sum({m.name}) OVER w AS {m.name}"
            if m.how == "sum"
            else f"max({m.name}) OVER w AS {m.name}"
        )
        for m in measures
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _cum_{stream.name} AS "
        f"SELECT client_id, k, {running} FROM ("
        f"  SELECT client_id, k, {pivot} FROM ({stage1}) GROUP BY client_id, k) "
        f"WINDOW w AS (PARTITION BY client_id ORDER BY k ROWS UNBOUNDED PRECEDING)"
    )
