"""The point-in-time engine: every feature for every (client_id, as_of) in one pass.

The local backend's executor (``backends/local.py`` compiles the feature declarations
into its plan): *streams* (a SQL query giving ``client_id, day`` plus columns, or
arrays) and *measures* over them; feature expressions combine measure values looked up
at ``as_of - offset``.

How it stays point-in-time and cheap
------------------------------------
Every feature at as-of ``T`` is built from values of the form "aggregate of the
stream's rows with ``day < T - o``" for a few offsets ``o`` (0, the windows, twice
the windows for trends). A row with timestamp ``ts`` is known at ``T`` iff
``ts < T 00:00 UTC`` iff ``date(ts) < T``, so working with ``day = date(ts)`` is exact.

1. The set of cut-off dates ``B = {T - o}`` over all as-of dates and offsets is
   sorted into boundaries ``b_1 < ... < b_K``.
2. Each stream row goes to bucket ``k`` = number of boundaries ``<= day``: the single
   scan over the events, in DuckDB. A stream sliced by category columns (campaigns,
   contacts, activity, invoices) is fetched as raw rows (client index, day, category
   codes, numbers; up to ``RAW_ROWS``), which NumPy buckets; other streams (daily
   spend) shrink most by aggregating per ``(client, k)``: in NumPy over runs of
   equal keys while their rows arrive grouped by client, else in SQL (a join with a
   tiny day -> bucket table).
3. Measures (counts per slice, sums, last day) are pivoted per ``(client, k)`` group
   (NumPy; raw rows ordered by their category combination, so that each slice is a
   few contiguous runs), then accumulated over ``k`` per client (running sums /
   maxima).
4. "Rows with ``day < b_j``" are exactly buckets ``0..j-1``: a ``(client, boundary)
   -> last group`` index turns each look-up into one gather per measure, and feature
   expressions are evaluated on the looked-up columns (NumPy for arithmetic, DuckDB
   SQL for the rest).

A training table of many snapshots therefore costs one scan plus lookups: K grows
with the number of distinct cut-off dates, not with the number of rows.

Both cores are kept busy: two workers each take a stream from scan to evaluated
features, on a DuckDB connection of their own (scratch tables ``_spine`` (``rid``,
``client_id``, ``cidx``, ``as_of``), ``_cidx``, ``_daymap`` are therefore real tables,
dropped at the end); one of them first runs the prepare functions (entity levels such
as the campaign state, computed in NumPy from one sorted pass and handed over as
arrays), after which the main thread computes the extra columns (``Plan.extra_arrays``).
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from churnpredict.features.backends import kernels
from churnpredict.features.backends.sql import mapped_sql, quote
from churnpredict.features.declarations import MISSING, OTHER

log = logging.getLogger(__name__)
# Wall time per engine stage of the last ``compute`` call (seconds); logged at DEBUG.
# Stages on worker threads overlap, so their sum exceeds the total.
STAGE_TIMES: dict[str, float] = defaultdict(float)
_STAGE_LOCK = threading.Lock()


@contextmanager
def _stage(name: str):
    t0 = time.perf_counter()
    try:
        yield
    finally:
        with _STAGE_LOCK:
            STAGE_TIMES[name] += time.perf_counter() - t0


_REF = re.compile(r"\bo(\d+)_([a-z0-9_]+)\b")
# Missing feature values leave DuckDB as NaN, not NULL: an Arrow column without a
# validity bitmap converts to NumPy/pandas without a copy (10x faster on big tables).
_NAN = "'NaN'::FLOAT"


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
    base, where : optional
        The same measure in structured form — the stage-1 column it aggregates
        (``n``, ``last_day``, ``s_<col>``) and ``(column, value)`` equality filters —
        which lets the engine pivot in NumPy instead of SQL FILTER aggregates (much
        faster with many slices). Used when every measure of a stream has a ``base``.
    decimals : int, optional
        Round the accumulated value to this many decimals (sum measures). For money
        levels built from deltas (+amount, -amount): running sums are differences
        of totals over all clients, so "no budget left" comes out as a residue like
        1e-9 instead of 0, and a ratio over it as nonsense (1e13).
    """

    name: str
    expr: str
    how: str = "sum"
    base: str | None = None
    where: tuple[tuple[str, str], ...] = ()
    decimals: int | None = None


@dataclass(frozen=True)
class Stream:
    """A derived event stream: ``sql`` yields ``client_id``, ``day`` (DATE) and columns.

    A stream already computed in NumPy (e.g. by a ``Plan.prepare`` function) gives
    ``arrays`` instead of ``sql``: a function returning one array per row attribute —
    ``cidx`` (the client's index in the engine's ``_cidx`` table), ``day`` (epoch
    days) and the columns its structured measures name (``s_<col>`` sums ``<col>``,
    ``x_<col>`` takes its maximum, NaN being no value; ``where`` compares ``<col>`` with
    the value).

    Category columns listed in ``kept`` (column, kept values) come from ``sql`` as
    raw text: a value not kept counts as ``(other)`` and NULL as ``(missing)``
    (``Source.keep``). The SQL paths map them (``mapped_sql``); the raw-row path codes
    them directly (``_code_sql``), as a CASE over millions of strings costs more
    than the rest of the scan.
    """

    name: str
    sql: str = ""
    group_cols: tuple[str, ...] = ()
    sum_cols: tuple[str, ...] = ()
    max_cols: tuple[str, ...] = ()
    measures: tuple[Measure, ...] = ()
    arrays: Callable[[], dict[str, np.ndarray]] | None = None
    kept: tuple[tuple[str, tuple[str, ...]], ...] = ()


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
    """Everything the engine computes: streams, feature expressions, extra columns."""

    streams: list[Stream] = field(default_factory=list)
    features: list[FeatureExpr] = field(default_factory=list)
    # Stages of expressions over already computed features (may use window
    # functions over the spine, e.g. quintiles by as_of); evaluated last, stage by stage.
    post: list[list[FeatureExpr]] = field(default_factory=list)
    # Functions ``f(con) -> [names]`` run once, after ``_spine`` exists and before the
    # streams they feed: they create the (real) tables those streams read
    # and return their names; the engine drops them at the end. (SQL streams run
    # meanwhile: their SQL must not read ``_spine`` or these tables.)
    prepare: list[Callable[[duckdb.DuckDBPyConnection], list[str]]] = field(default_factory=list)
    # Functions ``f(con, cidx, as_of) -> {name: values}`` run on the main thread once
    # the prepare functions have: feature columns from each spine row's client index
    # and as-of day (epoch days), NaN for none, in spine order (``con`` may read the
    # tables and ``_cidx``).
    extra_arrays: list[
        Callable[[duckdb.DuckDBPyConnection, np.ndarray, np.ndarray], dict[str, np.ndarray]]
    ] = field(default_factory=list)


def _refs(features: list[FeatureExpr]) -> dict[str, set[tuple[int, str]]]:
    """Map stream name -> {(offset, measure)} referenced by the feature expressions."""
    out: dict[str, set[tuple[int, str]]] = {}
    for f in features:
        for off, ref in _REF.findall(f.expr):
            stream, _, measure = ref.partition("__")
            out.setdefault(stream, set()).add((int(off), measure))
    return out


def _epoch_days(values) -> np.ndarray:
    return pd.to_datetime(values).to_numpy().astype("datetime64[D]").astype(np.int64)


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
        ``client_id``, ``as_of`` and one float32 column per feature, in spine order.
    """
    STAGE_TIMES.clear()
    t_start = time.perf_counter()
    with _stage("setup"):
        client_id = spine["client_id"].astype(str).to_numpy()
        as_of_day = _epoch_days(spine["as_of"])
        codes, uniques = _factorize(client_id)
    tables: list[str] = []  # scratch tables (real: the workers' connections read them)
    try:
        with _stage("setup_cidx"):
            _table(
                con,
                tables,
                "_cidx",
                pd.DataFrame({"client_id": uniques, "cidx": np.arange(len(uniques))}),
                "client_id::VARCHAR AS client_id, cidx::BIGINT AS cidx",
            )
        table = _compute(con, plan, client_id, as_of_day, codes, tables)
    finally:
        for t in tables:
            con.execute(f"DROP TABLE IF EXISTS {t}")
    # one chunk per column already (see _compute): one NumPy array per column without a
    # copy (split_blocks)
    with _stage("to_pandas"):
        out = table.to_pandas(split_blocks=True, self_destruct=True)
    out["as_of"] = pd.to_datetime(out["as_of"]).astype("datetime64[ns]")
    STAGE_TIMES["total"] = time.perf_counter() - t_start
    log.debug("engine stages (s): %s", {k: round(v, 3) for k, v in STAGE_TIMES.items()})
    return out


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``pd.factorize(values, sort=True)``, in one pass when ``values`` are sorted (as
    ``build_features`` sorts the spine)."""
    if len(values) and (values[1:] >= values[:-1]).all():
        new = np.r_[True, values[1:] != values[:-1]]
        return np.cumsum(new) - 1, values[new]
    return pd.factorize(values, sort=True)


def _table(
    con, tables: list[str], name: str, df: pd.DataFrame, select: str, order: str = ""
) -> None:
    """Create scratch table ``name`` from ``df`` (a real table, not TEMP: the scan
    thread's connection must see it)."""
    con.register(f"{name}_df", df)
    con.execute(
        f"CREATE OR REPLACE TABLE {name} AS SELECT {select} FROM {name}_df"
        + (f" ORDER BY {order}" if order else "")
    )
    con.unregister(f"{name}_df")
    tables.append(name)


def _compute(con, plan, client_id, as_of_day, codes, tables) -> pa.Table:
    """Every feature of ``plan`` as an Arrow table in spine order (see ``compute``).

    Two workers take the streams, longest first, from scan to evaluated features, each
    on a DuckDB connection of its own; the main thread computes the extra columns
    meanwhile (DuckDB, NumPy and Arrow release the GIL for their heavy work).
    """
    refs = _refs(plan.features)
    streams = {s.name: s for s in plan.streams}
    unknown = set(refs) - set(streams)
    if unknown:
        raise ValueError(f"feature expressions refer to unknown streams: {sorted(unknown)}")
    order = [
        (streams[name], pairs, _measures_of(streams[name], pairs))
        for name, pairs in sorted(refs.items())
    ]
    parts: list[pa.Table] = []
    n_clients = int(codes.max()) + 1 if len(codes) else 0
    # cursors are closed last, after the threads that use them have finished
    with (
        _cursor(con) as cur_main,
        _cursor(con) as cur_a,
        _cursor(con) as cur_b,
        ThreadPoolExecutor(max_workers=2) as pool,
    ):
        bounds = None
        if order:
            offsets = sorted({o for _, pairs, _ in order for o, _ in pairs})
            bounds = np.unique(
                (np.unique(as_of_day)[:, None] - np.array(offsets)[None, :]).ravel()
            )  # sorted b_1 < ... < b_K (epoch days)
            # day -> bucket k (number of boundaries <= day) for days in [b_1, b_K)
            days = np.arange(bounds[0], bounds[-1], dtype=np.int64)
            _table(
                con,
                tables,
                "_daymap",
                pd.DataFrame(
                    {
                        "day": days.astype("datetime64[D]"),
                        "k": np.searchsorted(bounds, days, side="right"),
                    }
                ),
                "day::DATE AS day, k::BIGINT AS k",
            )

        by_stream: dict[str, list[FeatureExpr]] = {}
        for f in plan.features:
            first = _REF.search(f.expr)
            by_stream.setdefault(first.group(2).partition("__")[0] if first else "", []).append(f)
        leftover = [f.name for name, fs in by_stream.items() if name not in streams for f in fs]
        if leftover:
            raise ValueError(f"features without a stream reference: {leftover}")
        uniq, inverse = np.unique(as_of_day, return_inverse=True)

        def finish(i: int, piv: _Pivot, cur) -> pa.Table:
            """Look a stream's measures up and evaluate its features (one chunk per
            column, so that the final conversion to pandas is zero-copy)."""
            stream, pairs, _ = order[i]
            with _stage("lookups"):
                lookups = _lookup_pivot(stream, piv, pairs, codes, (uniq, inverse), bounds)
            del piv
            lookups["as_of"] = as_of_day
            with _stage("evaluate"):
                part = _evaluate(cur, lookups, by_stream.get(stream.name, []))
            del lookups
            return part.combine_chunks()

        # Two workers each take a stream from scan to evaluated features. One of them
        # first builds ``_spine`` and runs the prepare functions on ``con``, then
        # finishes the streams they feed; SQL streams run on a cursor of their own.
        free: queue.SimpleQueue = queue.SimpleQueue()
        free.put(cur_a)
        free.put(cur_b)

        prepared_ok = threading.Event()  # the prepare functions' tables exist
        prepare_ended = threading.Event()

        def prepared() -> dict[int, pa.Table]:
            try:
                with _stage("spine"):  # read by the prepare functions only
                    _table(
                        con,
                        tables,
                        "_spine",
                        pd.DataFrame(
                            {
                                "rid": np.arange(len(client_id), dtype=np.int64),
                                "client_id": client_id,
                                "cidx": codes,
                                "as_of": as_of_day.astype("datetime64[D]"),
                            }
                        ),
                        # (no ORDER BY: rows keep the frame's order, and every reader
                        # groups by rid or orders by it)
                        "rid::BIGINT AS rid, client_id::VARCHAR AS client_id, "
                        "cidx::BIGINT AS cidx, as_of::DATE AS as_of",
                    )
                with _stage("prepare"):
                    for prep in plan.prepare:
                        tables.extend(prep(con))
                prepared_ok.set()
            finally:
                prepare_ended.set()
            out = {}
            for i, (stream, _, measures) in enumerate(order):
                if stream.arrays is not None:
                    with _stage("pivot_arrays"):
                        piv = _pivot_arrays(stream.arrays(), measures, bounds, n_clients)
                    out[i] = finish(i, piv, con)
            return out

        def scanned(i: int, stream: Stream, measures: list[Measure]) -> dict[int, pa.Table]:
            cur = free.get()
            try:
                return {i: finish(i, _fetch(cur, stream, measures, bounds, n_clients), cur)}
            finally:
                free.put(cur)

        # longest first (so that the two workers end together): by the rows of the
        # tables each stream reads, then by the number of look-ups
        rows = _table_rows(con)
        futures = [pool.submit(prepared)] + [
            pool.submit(scanned, i, stream, measures)
            for i, (stream, pairs, measures) in sorted(
                enumerate(order), key=lambda x: (-_rows_read(x[1][0], rows), -len(x[1][1]))
            )
            if stream.arrays is None
        ]
        done: dict[int, pa.Table] = {}
        extra: list[pa.Table] = []
        try:
            # meanwhile this thread computes the extra columns (once prepared)
            prepare_ended.wait()
            for fn in plan.extra_arrays if prepared_ok.is_set() else []:
                with _stage("extra_arrays"):
                    cols = fn(cur_main, codes, as_of_day)
                    extra.append(pa.table({k: v.astype(np.float32) for k, v in cols.items()}))
            for fut in as_completed(futures):
                done.update(fut.result())
        except BaseException:
            pool.shutdown(cancel_futures=True)  # no point scanning the rest
            raise
        parts.extend(done[i] for i in sorted(done))  # columns in stream order
        parts.extend(extra)
    cols: dict[str, pa.Array] = {
        "client_id": pa.array(client_id),
        "as_of": pa.array(as_of_day.astype("datetime64[D]")),
    }
    for part in parts:
        for name in part.column_names:
            cols[name] = part.column(name)
    table = pa.table(cols)
    for stage in plan.post:
        with _stage("post"):
            columns = {name: table.column(name).to_numpy() for name in table.column_names[2:]}
            columns["as_of"] = as_of_day.astype("datetime64[D]")  # a DATE, as in SQL
            part = _evaluate(con, columns | {"__rid": np.arange(len(client_id))}, stage)
        for name in part.column_names:
            table = table.append_column(name, part.column(name))
    return table


def _table_rows(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """The (estimated) row count of each table ``con`` sees, by lower-case name."""
    rows: dict[str, int] = {}
    for name, n in con.execute(
        "SELECT table_name, estimated_size FROM duckdb_tables()"
    ).fetchall():
        rows[name.lower()] = max(rows.get(name.lower(), 0), int(n or 0))
    return rows


_FROM = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\()", re.IGNORECASE)


def _rows_read(stream: Stream, rows: dict[str, int]) -> int:
    """A stream's cost for the workers' order: the rows of the tables its SQL reads,
    once per mention (a union of four views of one table reads it four times). Only
    an order: a wrong guess costs time, not values."""
    return sum(rows.get(t.lower(), 0) for t in _FROM.findall(stream.sql))


@contextmanager
def _cursor(con: duckdb.DuckDBPyConnection):
    """A second connection to ``con``'s database, using the same catalog and schema."""
    db, schema = con.execute("SELECT current_database(), current_schema()").fetchall()[0]
    cur = con.cursor()
    try:
        cur.execute(f'USE "{db}"."{schema}"')
        yield cur
    finally:
        cur.close()


@dataclass
class _Pivot:
    """One stream's measures per ``(client, bucket)`` group, before accumulation.

    ``cidx``/``k`` list the groups (sorted); ``sums`` holds the sum measures as one
    row of ``groups + 1`` values each (the last stays 0: "nothing yet"); each max
    measure is one value per group (NaN: none).
    """

    cidx: np.ndarray
    k: np.ndarray
    sum_names: list[str]
    sums: list[np.ndarray]
    decimals: list[int | None]
    maxes: dict[str, np.ndarray]


def _measures_of(stream: Stream, pairs: set[tuple[int, str]]) -> list[Measure]:
    """The stream's measures referenced by ``pairs`` (an error for unknown ones)."""
    used = {m for _, m in pairs}
    measures = [m for m in stream.measures if m.name in used]
    missing = used - {m.name for m in measures}
    if missing:
        raise ValueError(f"stream {stream.name} has no measures {sorted(missing)}")
    return measures


def _fetch(
    con: duckdb.DuckDBPyConnection,
    stream: Stream,
    measures: list[Measure],
    bounds: np.ndarray,
    n_clients: int,
):
    """Run a SQL stream's one scan (stage 1) on ``con`` and pivot it.

    Streams sliced by categories are fetched as raw rows (up to ``RAW_ROWS``) and
    pivoted in NumPy; others are reduced from runs of rows grouped by client
    (``_fetch_runs``), or, in any other order, grouped per ``(client, k)`` in SQL.
    """
    max_b = str(np.datetime64(int(bounds[-1]), "D"))
    group = "".join(f", {g}" for g in stream.group_cols)
    aggs = "".join(f", sum({c})::DOUBLE AS s_{c}" for c in stream.sum_cols)
    aggs += "".join(f", max({c})::DOUBLE AS x_{c}" for c in stream.max_cols)
    # clients become integer indices before grouping: integer keys hash faster
    stage = f"""
        WITH e AS (SELECT c.cidx, x.* EXCLUDE (client_id)
                   FROM ({mapped_sql(stream.sql, stream.kept)}) x
                   JOIN _cidx c ON x.client_id = c.client_id
                   WHERE x.day < DATE '{max_b}'),
        s1 AS (
            SELECT e.cidx, COALESCE(m.k, 0) AS k{group},
                   count(*)::DOUBLE AS n{aggs}, max(e.day) AS last_day
            FROM e LEFT JOIN _daymap m ON e.day = m.day
            GROUP BY ALL)
    """
    if all(m.base for m in measures):
        if stream.group_cols:
            with _stage("stage1_raw"):
                raw = _fetch_raw(con, stream, measures, max_b)
            if raw is not None:
                with _stage("pivot_raw"):
                    return _pivot_arrays(raw.arrays, measures, bounds, n_clients, raw.values)
        else:
            with _stage("stage1_runs"):
                rows = _fetch_runs(con, stream, measures, bounds, max_b)
            if rows is not None:
                with _stage("pivot_rows"):
                    return _pivot_rows(rows, measures)
        with _stage("stage1_sql"):
            rows = _fetch_rows(con, stage, measures)
        with _stage("pivot_rows"):
            return _pivot_rows(rows, measures)
    with _stage("stage1_sql"):
        return _pivot_sql(con, stage, measures)


# A stream sliced by category columns is fetched as raw rows (client index, day, codes,
# numbers: a few bytes per row) and pivoted in NumPy while it has at most this many
# rows: grouping by (client, bucket, categories) in SQL hardly reduces such rows but
# costs a hash aggregate over string keys. Longer streams are grouped in SQL.
RAW_ROWS = 16_000_000


@dataclass
class _Raw:
    """A stream's rows as arrays, category columns as codes (``values`` position + 1)."""

    arrays: dict[str, np.ndarray]
    values: dict[str, list[str]]


def _fetch_raw(
    con: duckdb.DuckDBPyConnection, stream: Stream, measures: list[Measure], max_b: str
) -> _Raw | None:
    """Fetch the stream's rows before ``max_b`` (unsorted), or None past ``RAW_ROWS``."""
    values = _slice_values(measures)
    kept = dict(stream.kept)
    coded = ""
    for c, vals in values.items():
        sql_type = "TINYINT" if len(vals) < 127 else "INTEGER"
        col = f'e."{c}"'
        coded += f", {_code_sql(col, vals, sql_type, kept.get(c))} AS {col[2:]}"
    nums = sorted({m.base[2:] for m in measures if m.base.startswith(("s_", "x_"))})
    tab = con.sql(
        _rows_sql(stream, coded + _doubles_sql(nums), max_b) + f" LIMIT {RAW_ROWS + 1}"
    ).to_arrow_table()
    if tab.num_rows > RAW_ROWS:
        return None
    arrays = {name: tab.column(name).to_numpy(zero_copy_only=False) for name in tab.column_names}
    return _Raw(arrays, values)


def _rows_sql(stream: Stream, columns: str, max_b: str) -> str:
    """SQL for the stream's rows before ``max_b``: client index, epoch day, then
    ``columns`` (select items over ``e``, each starting with a comma)."""
    return (
        "SELECT c.cidx::INTEGER AS cidx, "
        "date_diff('day', DATE '1970-01-01', e.day)::INTEGER AS day"
        + columns
        + f" FROM ({stream.sql}) e JOIN _cidx c ON e.client_id = c.client_id"
        f" WHERE e.day < DATE '{max_b}'"
    )


def _doubles_sql(columns: list[str]) -> str:
    """Select items for numeric stream columns, as DOUBLE under their own names."""
    return "".join(f', e."{c}"::DOUBLE AS "{c}"' for c in columns)


# Rows of a stream without slices (daily spend) arrive in batches of this many; while
# they come grouped by client (runs of one (client, bucket) key at least
# RUN_MIN_LENGTH rows long on average) each batch is reduced to its runs in NumPy,
# which costs a fraction of DuckDB's hash aggregate over millions of (client, bucket)
# groups. Rows in any other order are grouped in SQL.
RUN_BATCH = 1 << 20
RUN_MIN_LENGTH = 2


def _fetch_runs(
    con: duckdb.DuckDBPyConnection,
    stream: Stream,
    measures: list[Measure],
    bounds: np.ndarray,
    max_b: str,
) -> dict[str, np.ndarray] | None:
    """Stage-1 rows of an unsliced stream as ``_fetch_rows`` gives them (one per
    ``(cidx, k)``, sorted), reduced in NumPy from runs of equal keys in the rows' own
    order; None as soon as the rows turn out not to be grouped by client."""
    sums = sorted({m.base[2:] for m in measures if m.base.startswith("s_")})
    maxes = sorted({m.base[2:] for m in measures if m.base.startswith("x_")})
    sql = _rows_sql(stream, _doubles_sql(sorted({*sums, *maxes})), max_b)
    width = len(bounds) + 1
    parts: list[dict[str, np.ndarray]] = []
    n_rows = n_runs = 0
    reader = con.sql(sql).to_arrow_reader(RUN_BATCH)
    try:
        for batch in reader:
            arr = {n: batch.column(n).to_numpy(zero_copy_only=False) for n in batch.schema.names}
            key, starts = _runs(arr["cidx"], arr["day"], bounds)
            n_rows, n_runs = n_rows + len(arr["day"]), n_runs + len(starts)
            if n_runs * RUN_MIN_LENGTH > n_rows:
                return None
            parts.append(_reduce_raw_runs(key, starts, arr, sums, maxes))
    finally:
        reader.close()
    if not parts:
        return None
    part = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    key = part.pop("key")
    if (key[1:] < key[:-1]).any():  # a few sorted stretches: timsort merges them
        order = np.argsort(key, kind="stable")
        key, part = key[order], {name: v[order] for name, v in part.items()}
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    if len(starts) < len(key):  # keys split across batches (or stretches)
        part = _merge_runs(key, starts, part, sums, maxes)
        key = part.pop("key")
    rows = {"cidx": key // width, "k": key % width, "n": part["n"].astype(np.float64)}
    rows.update({f"s_{c}": part[f"s_{c}"] for c in sums})
    rows.update({f"x_{c}": part[f"x_{c}"] for c in maxes})
    rows["last_day"] = part["last_day"].astype(np.float64)
    return rows


def _runs(cidx: np.ndarray, day: np.ndarray, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The runs of equal ``(client, bucket)`` keys in the rows' order: each run's key
    (``cidx * (len(bounds) + 1) + bucket``) and first row."""
    width = len(bounds) + 1
    lut = _bucket_table(bounds)
    if lut is not None:
        return kernels.run_keys(cidx, day, *lut, width)
    key = cidx.astype(np.int64) * width + np.searchsorted(bounds, day, side="right")
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    return key[starts], starts


def _reduce_raw_runs(
    key: np.ndarray,
    starts: np.ndarray,
    arr: dict[str, np.ndarray],
    sums: list[str],
    maxes: list[str],
) -> dict[str, np.ndarray]:
    """Aggregate raw rows over the runs beginning at ``starts`` (``key``: each run's
    key): row count, sums (NaN adds nothing), maxima (NaN is no value), last day."""
    out = {"key": key, "n": np.diff(np.r_[starts, len(arr["day"])])}
    for c in sums:
        out[f"s_{c}"] = kernels.run_sums(arr[c], starts)
    for c in maxes:
        out[f"x_{c}"] = kernels.run_maxes(arr[c], starts)
    out["last_day"] = np.maximum.reduceat(arr["day"], starts)
    return out


def _merge_runs(
    key: np.ndarray,
    starts: np.ndarray,
    part: dict[str, np.ndarray],
    sums: list[str],
    maxes: list[str],
) -> dict[str, np.ndarray]:
    """Merge partial aggregates (``_reduce_raw_runs``'s, concatenated) over the runs of
    equal keys beginning at ``starts``."""
    out = {"key": key[starts], "n": np.add.reduceat(part["n"], starts)}
    for c in sums:
        out[f"s_{c}"] = np.add.reduceat(part[f"s_{c}"], starts)
    for c in maxes:
        out[f"x_{c}"] = np.fmax.reduceat(part[f"x_{c}"], starts)
    out["last_day"] = np.maximum.reduceat(part["last_day"], starts)
    return out


def _buckets(day: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Each day's bucket, the number of boundaries ``<= day``, i.e.
    ``np.searchsorted(bounds, day, side="right")``, as a look-up in a table of the days
    between the first and last boundary: 4M days in no order took 89 ms to search,
    10 ms to look up."""
    lut = _bucket_table(bounds)
    if lut is None:
        return np.searchsorted(bounds, day, side="right")
    table, lo, hi = lut
    return table[np.clip(day, lo, hi) - lo]


def _bucket_table(bounds: np.ndarray) -> tuple[np.ndarray, int, int] | None:
    """``(table, lo, hi)``: a day's bucket is ``table[min(max(day, lo), hi) - lo]``
    (None when the boundaries span more than 2**20 days)."""
    if len(bounds) == 0 or bounds[-1] - bounds[0] > 1 << 20:
        return None
    lo, hi = int(bounds[0]) - 1, int(bounds[-1])  # days before lo / after hi: same bucket
    return np.searchsorted(bounds, np.arange(lo, hi + 1), side="right").astype(np.int32), lo, hi


def _lookup_pivot(stream, piv, pairs, codes, as_of, bounds) -> dict[str, np.ndarray]:
    """Accumulate a stream's pivot over time and look up each (offset, measure).

    Sum measures become running sums per client (one compiled pass along each
    measure's row); a ``(client, boundary) ->
    last group`` index (``_group_index``) turns each offset's look-up into one gather per
    measure, with a trailing column for "nothing yet". Max measures become running
    maxima per client and are looked up the same way. Counts and days (integers) are
    served as float32.
    """
    exact32 = {m.name for m in stream.measures if m.base in ("n", "last_day")}
    width = len(bounds) + 1
    n_clients = int(codes.max()) + 1 if len(codes) else 0
    uniq, inverse = as_of  # distinct as-of days and each spine row's index into them
    offsets = sorted({o for o, _ in pairs})
    cidx, n_groups = piv.cidx, len(piv.cidx)
    group_at = _group_index(cidx, piv.k, n_clients, width, len(codes))
    idx_of = {}  # each spine row's last group before T - off (n_groups: none)
    for off in offsets:
        # the row's position in the dense index for T - off (T - off is a boundary)
        idx = group_at(codes * width + np.searchsorted(bounds, uniq - off)[inverse])
        idx[idx < 0] = n_groups
        idx_of[off] = idx
    first = np.flatnonzero(np.r_[True, cidx[1:] != cidx[:-1]])  # each client's first group
    out: dict[str, np.ndarray] = {}

    def serve(name: str, run: np.ndarray) -> None:
        for off in offsets:
            if (off, name) in pairs:
                out[f"o{off}_{stream.name}__{name}"] = run.take(idx_of[off])

    if piv.sum_names:
        run, piv.sums = piv.sums, None  # accumulated in place; last cell: nothing yet
        for j, (name, d) in enumerate(zip(piv.sum_names, piv.decimals, strict=True)):
            row, run[j] = run[j], None  # freed once served: the next arrays reuse it
            peak = kernels.running_sum(row, first)
            if d is not None:  # a level from deltas: "none left" exactly 0, not a residue
                np.round(row, d, out=row)
            # counts are served as float32 (exact below 2**24): half the memory to fill
            serve(name, row.astype(np.float32) if name in exact32 and peak < 2**24 else row)
        del run

    run = np.empty(n_groups + 1)  # one buffer for every running maximum
    run[n_groups] = np.nan  # "nothing yet"
    for name, values in piv.maxes.items():
        kernels.running_max(values, first, run)
        piv.maxes[name] = None
        serve(name, run.astype(np.float32) if name in exact32 else run)  # days: exact
    return out


def _groups(cidx: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return each row's group number and the first row of each ``(cidx, k)`` group."""
    if len(cidx) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    new = np.r_[True, (cidx[1:] != cidx[:-1]) | (k[1:] != k[:-1])]
    return np.cumsum(new) - 1, np.flatnonzero(new)


def _group_max(g: np.ndarray, n_groups: int, v: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Max of ``v`` over the rows in ``mask`` per group (rows sorted by group; NaN: none)."""
    out = np.full(n_groups, np.nan)
    sub = np.flatnonzero(mask & ~np.isnan(v))
    if len(sub):
        gs = g[sub]
        first = np.flatnonzero(np.r_[True, gs[1:] != gs[:-1]])
        out[gs[first]] = np.maximum.reduceat(v[sub], first)
    return out


# The dense (client, boundary) index is used while it has at most this many cells per
# spine row (plus a fixed allowance); beyond that, a binary search per look-up.
DENSE_INDEX_CELLS_PER_ROW = 64


def _group_index(
    cidx: np.ndarray, k: np.ndarray, n_clients: int, width: int, n_rows: int
) -> Callable[[np.ndarray], np.ndarray]:
    """Map ``client * width + j`` to the client's last group with ``k <= j`` (-1: none).

    Groups are sorted by ``(cidx, k)``. With few cells per spine row the map is a dense
    table filled once (one running maximum per client); otherwise each call is a
    binary search over the group keys, so memory stays proportional to the groups.
    """
    n_groups = len(cidx)
    if n_clients * width <= DENSE_INDEX_CELLS_PER_ROW * n_rows + (1 << 22):
        itype = np.int32 if n_groups < 2**31 - 1 else np.int64
        last = np.full(n_clients * width, -1, dtype=itype)
        last[cidx * width + k] = np.arange(n_groups, dtype=itype)
        last = last.reshape(n_clients, width)
        np.maximum.accumulate(last, axis=1, out=last)  # last group at or before j
        last = last.ravel()
        return lambda flat: last[flat].astype(np.intp)  # intp: later gathers need no cast
    return lambda flat: _search_group(cidx, k, width, flat)


def _search_group(cidx: np.ndarray, k: np.ndarray, width: int, flat: np.ndarray) -> np.ndarray:
    """Binary search: for each ``client * width + j`` in ``flat``, the index of the
    client's last ``(cidx, k)`` group (sorted) with ``k <= j``, or -1."""
    idx = np.searchsorted(cidx * width + k, flat, side="right") - 1
    ok = idx >= 0
    ok[ok] = cidx[idx[ok]] == flat[ok] // width
    idx[~ok] = -1
    return idx


def _pivot_sql(con: duckdb.DuckDBPyConnection, stage: str, measures: list[Measure]) -> _Pivot:
    """Pivot with one SQL aggregate per measure (measures given only as SQL)."""
    pivot = ", ".join(
        f"({m.expr})::DOUBLE AS {m.name}"
        if m.how == "sum"
        else f"date_diff('day', DATE '1970-01-01', ({m.expr})::DATE)::DOUBLE AS {m.name}"
        if "last_day" in m.expr
        else f"({m.expr})::DOUBLE AS {m.name}"
        for m in measures
    )
    res = con.execute(
        f"{stage} SELECT cidx, k, {pivot} FROM s1 GROUP BY cidx, k ORDER BY cidx, k"
    ).fetchnumpy()
    cidx = np.asarray(res["cidx"], dtype=np.int64)
    k = np.asarray(res["k"], dtype=np.int64)

    def values(name: str) -> np.ndarray:
        v = res[name]
        return v.astype(np.float64).filled(np.nan) if np.ma.isMaskedArray(v) else v.astype(float)

    sums = [m for m in measures if m.how == "sum"]
    mat = _sum_rows(len(sums), len(cidx))
    for j, m in enumerate(sums):
        mat[j][: len(cidx)] = np.nan_to_num(values(m.name), nan=0.0)
    maxes = {}
    for m in measures:
        if m.how != "sum":
            maxes[m.name] = values(m.name)
    return _Pivot(cidx, k, [m.name for m in sums], mat, [m.decimals for m in sums], maxes)


def _slice_values(measures: list[Measure]) -> dict[str, list[str]]:
    """Category column -> the values the measures filter on (codes are positions + 1)."""
    values: dict[str, list[str]] = {}
    for m in measures:
        for col, val in m.where:
            values.setdefault(col, [])
            if val not in values[col]:
                values[col].append(val)
    return values


def _fetch_rows(
    con: duckdb.DuckDBPyConnection, stage: str, measures: list[Measure]
) -> dict[str, np.ndarray]:
    """Fetch stage-1 rows sorted by ``(cidx, k)``, category columns as integer codes."""
    values = _slice_values(measures)
    cols = sorted(values)
    coded = "".join(
        ", " + _code_sql(f's1."{c}"', values[c], "INTEGER") + f" AS g{i}"
        for i, c in enumerate(cols)
    )
    bases = sorted({m.base for m in measures} - {"last_day"})
    return con.execute(
        f"{stage} SELECT cidx, k{coded}"
        + "".join(f", {b}::DOUBLE AS {b}" for b in bases)
        + ", date_diff('day', DATE '1970-01-01', last_day)::DOUBLE AS last_day "
        "FROM s1 ORDER BY cidx, k"
    ).fetchnumpy()


def _pivot_rows(rows: dict[str, np.ndarray], measures: list[Measure]) -> _Pivot:
    """Pivot stage-1 rows into measures per ``(cidx, k)``, in NumPy.

    Category columns come as small integer codes (position in the list of values the
    measures filter on), so each slice is an integer comparison; sums are one
    ``bincount`` per measure, maxima a ``maximum.reduceat`` over the matching rows only.
    """
    values = _slice_values(measures)
    cols = sorted(values)
    bases = sorted({m.base for m in measures} - {"last_day"})
    cidx = np.asarray(rows["cidx"], dtype=np.int64)
    k = np.asarray(rows["k"], dtype=np.int64)
    g, starts = _groups(cidx, k)
    gc, gk = cidx[starts], k[starts]
    code = {c: np.asarray(rows[f"g{i}"], dtype=np.int32) for i, c in enumerate(cols)}
    data = {}
    for b in [*bases, "last_day"]:
        v = rows[b]
        data[b] = v.astype(np.float64).filled(np.nan) if np.ma.isMaskedArray(v) else v
    sums = [m for m in measures if m.how == "sum"]
    mat = _sum_rows(len(sums), len(starts))
    maxes = {}
    if len(starts) == len(cidx) and not values:  # one row per group, no slices: as is
        for j, m in enumerate(sums):
            mat[j][: len(starts)] = data[m.base]
            np.nan_to_num(mat[j], nan=0.0, copy=False)
        for m in measures:
            if m.how != "sum":
                maxes[m.name] = data[m.base]
        return _Pivot(gc, gk, [m.name for m in sums], mat, [m.decimals for m in sums], maxes)
    for m in measures:
        mask = np.ones(len(cidx), dtype=bool)
        for col, val in m.where:
            mask &= code[col] == values[col].index(val) + 1
        v = data[m.base]
        if m.how == "sum":
            mat[sums.index(m)][: len(starts)] = np.bincount(
                g[mask], weights=np.nan_to_num(v[mask], nan=0.0), minlength=len(starts)
            )
        else:
            maxes[m.name] = _group_max(g, len(starts), v, mask)
    return _Pivot(gc, gk, [m.name for m in sums], mat, [m.decimals for m in sums], maxes)


def _pivot_arrays(
    arrays: dict[str, np.ndarray],
    measures: list[Measure],
    bounds: np.ndarray,
    n_clients: int,
    codes: dict[str, list[str]] | None = None,
) -> _Pivot:
    """Pivot a stream given as NumPy arrays into measures per ``(cidx, k)`` group.

    Columns named in ``codes`` hold codes (position in ``codes[col]`` + 1), others the
    values themselves. Rows on or after the last boundary are never looked up and are
    skipped. Rows are ordered by their combination of category values (a counting
    sort, ``kernels.combo_order``, with each row's group carried alongside), so that
    each measure's slice is a few runs of rows, each added by one compiled loop
    (``kernels.scatter``); a column that many measures read is put in that order once.
    """
    codes = codes or {}
    width = len(bounds) + 1
    n_keys = n_clients * width
    lut = _bucket_table(bounds)
    if lut is not None and n_keys <= 4 * len(arrays["day"]) + (1 << 20):
        # dense key space: groups numbered by counting keys (no sort)
        g, present = kernels.group_ids(
            arrays["cidx"], arrays["day"], *lut, len(bounds), width, n_keys
        )
    else:
        k = _buckets(arrays["day"], bounds)
        key = np.where(k < len(bounds), arrays["cidx"].astype(np.int64) * width + k, -1)
        present, g = np.unique(key, return_inverse=True)
        g = g.reshape(-1) - (len(present) > 0 and present[0] < 0)  # -1: skipped rows
        present = present[present >= 0]
    n_groups = len(present)
    gc, gk = present // width, present % width

    # the rows' combination of category values (first column most significant)
    cats = sorted({col for m in measures for col, _ in m.where})
    values = {
        c: codes[c] if c in codes else sorted({v for m in measures for w, v in m.where if w == c})
        for c in cats
    }
    combo = np.zeros(len(g) if cats else 0, dtype=np.int64)  # empty: all rows combination 0
    for c in cats:
        a = arrays[c]
        if c in codes:
            code = a
        else:
            code = np.zeros(len(a), dtype=np.int8 if len(values[c]) < 127 else np.int32)
            for i, v in enumerate(values[c]):
                code[a == np.asarray(v, a.dtype)] = i + 1
        combo *= len(values[c]) + 1
        combo += code
    total = int(np.prod([len(values[c]) + 1 for c in cats]))
    if total > 1 << 16:  # many possible combinations: number the ones present
        combos, combo = np.unique(combo, return_inverse=True)
        combo = combo.reshape(-1)
    else:
        combos = np.arange(total)
    combo_code = {}  # each combination's code of each category column
    rest = combos.copy()
    for c in reversed(cats):
        radix = len(values[c]) + 1
        combo_code[c] = rest % radix
        rest //= radix

    # rows ordered by combination (a counting sort), each row's group alongside: each
    # measure's slice is then a few runs of rows, added by one compiled loop each
    if not cats and len(g) and g.min() >= 0:  # one combination, no row skipped: as is
        order, group, starts = np.zeros(0, np.int64), g, np.array([0, len(g)])
    else:
        order, group, starts = kernels.combo_order(combo, len(combos), g)
    del combo, g

    def read(m: Measure) -> str | None:
        """The column a measure adds up (None: a count)."""
        if m.base in ("n", "last_day"):
            return "day" if m.base == "last_day" else None
        return m.base[2:] if m.base[:2] in ("s_", "x_") else m.base

    runs = {}  # each measure's runs of ordered rows
    visits: dict[str | None, int] = defaultdict(int)  # rows each column is read at
    for m in measures:
        sel = np.ones(len(combos), dtype=bool)
        for col, val in m.where:
            sel &= combo_code[col] == values[col].index(val) + 1
        edges = np.flatnonzero(np.diff(np.r_[0, sel.view(np.int8), 0]))
        runs[m.name] = list(zip(starts[edges[::2]], starts[edges[1::2]], strict=True))
        visits[read(m)] += sum(b - a for a, b in runs[m.name])
    # a column read at many rows is put in the rows' order once (then read in order);
    # others are read through ``order``
    ordered = {
        c: arrays[c].take(order)
        for c, v in visits.items()
        if c and len(order) and v > 2 * len(order)
    }
    in_order = np.zeros(0, np.int64)

    sums = [m for m in measures if m.how == "sum"]
    mat = _sum_rows(len(sums), n_groups)
    maxes = {}
    for m in measures:
        if m.how == "sum":
            out = mat[sums.index(m)]
        else:
            out = maxes[m.name] = np.full(n_groups, np.nan)
        kind = 2 if m.base == "n" else 1 if m.base == "last_day" else 0
        c = read(m)
        values_of, rows = (
            (group, in_order) if c is None
            else (ordered[c], in_order) if c in ordered
            else (arrays[c], order)  # (order empty: the rows as they are)
        )  # fmt: skip
        for a, b in runs[m.name]:
            kernels.scatter(out, group, values_of, rows, kind, m.how != "sum", a, b)
    return _Pivot(gc, gk, [m.name for m in sums], mat, [m.decimals for m in sums], maxes)


def _sum_rows(n_measures: int, n_groups: int) -> list[np.ndarray]:
    """Zeroed running-sum rows, one array per measure with a last cell for "nothing
    yet". Separate rows (not one matrix) stay below glibc's mmap threshold for up to
    4M groups, so they reuse freed heap memory instead of faulting in fresh pages, and
    each is freed as soon as it is served."""
    return [np.zeros(n_groups + 1) for _ in range(n_measures)]


def _code_sql(
    column: str, values: list[str], sql_type: str, kept: tuple[str, ...] | None = None
) -> str:
    """SQL giving ``column``'s code: its position in ``values`` (1-based), 0 if absent.

    With ``kept``, the code of the value as ``category_sql`` maps the raw text (not
    kept: ``(other)``; NULL: ``(missing)``), without building that text."""
    listed = ", ".join(quote(v) for v in values)
    if kept is None:
        return f"COALESCE(list_position([{listed}], {column}), 0)::{sql_type}"
    pos = {v: i + 1 for i, v in enumerate(values)}
    missing, other = pos.get(MISSING, 0), pos.get(OTHER, 0)
    if not kept:
        return f"(CASE WHEN {column} IS NULL THEN {missing} ELSE {other} END)::{sql_type}"
    codes = ", ".join(str(pos.get(v, 0)) for v in kept)
    names = ", ".join(quote(v) for v in kept)
    return (
        f"(CASE WHEN {column} IS NULL THEN {missing} ELSE COALESCE([{codes}]"
        f"[list_position([{names}], {column})], {other}) END)::{sql_type}"
    )


def _evaluate(
    con: duckdb.DuckDBPyConnection, lookups: dict[str, np.ndarray], features: list[FeatureExpr]
) -> pa.Table:
    """Evaluate feature expressions over looked-up measure columns (float32 result).

    Arithmetic expressions (the vast majority) are evaluated in NumPy with DuckDB's
    types and IEEE results (see ``_arith``): binding hundreds of SQL expressions costs
    more than computing them. Anything else is evaluated in DuckDB SQL.
    """
    if not features:
        return pa.table({})
    compiled = {f.name: _arith(f.expr, lookups) for f in features}
    cols: dict[str, pa.Array] = {}
    in_sql = [f for f in features if compiled[f.name] is None]
    if in_sql:
        con.register("_lk_df", pa.table(lookups))
        sql = ", ".join(f'COALESCE(({f.expr})::FLOAT, {_NAN}) AS "{f.name}"' for f in in_sql)
        # window functions do not keep row order: a ``__rid`` column restores it (other
        # expressions keep it: DuckDB preserves the insertion order without ORDER BY)
        windowed = any(_OVER.search(f.expr) for f in in_sql)
        order = " ORDER BY __rid" if windowed and "__rid" in lookups else ""
        res = _arrow(con, f"SELECT {sql} FROM _lk_df{order}")
        con.unregister("_lk_df")
        cols.update(zip(res.column_names, res.columns, strict=True))
    if len(in_sql) < len(features):
        env = dict(lookups)
        if env.get("as_of") is not None and env["as_of"].dtype.kind == "i":
            # epoch days as FLOAT, as DuckDB promotes BIGINT with FLOAT: exact
            env["as_of"] = env["as_of"].astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            n = len(next(iter(lookups.values())))
            for f in features:
                if compiled[f.name] is not None:
                    value = np.asarray(compiled[f.name](env))
                    # (no copy of a result that is float32 already)
                    value = np.broadcast_to(value, n).astype(np.float32, copy=False)
                    cols[f.name] = pa.array(value)
    return pa.table({f.name: cols[f.name] for f in features})


_OVER = re.compile(r"\bOVER\s*\(", re.IGNORECASE)
_TOKENS = re.compile(r'\s*(?:(\d+\.?\d*)|([A-Za-z_][A-Za-z0-9_]*|"[A-Za-z0-9_]+")|(\S))')


def _arith(
    expr: str, names: dict[str, np.ndarray]
) -> Callable[[dict[str, np.ndarray]], np.ndarray] | None:
    """Compile ``expr`` to a NumPy function if it is only numeric columns of ``names``
    (plain or double-quoted), numbers, ``+ - * /``, parentheses and ``NULLIF(x, y)``; otherwise
    return None.

    The results equal DuckDB's: FLOAT with FLOAT stays FLOAT (float32 arithmetic),
    anything with DOUBLE is DOUBLE, division is IEEE (x / 0 = inf, 0 / 0 = NaN, as in
    DuckDB), and NULL is NaN (``NULLIF`` gives NaN; NaN propagates like NULL).
    """
    tokens = [m.group(1, 2, 3) for m in _TOKENS.finditer(expr)]
    if "".join("".join(t for t in tok if t) for tok in tokens) != re.sub(r"\s", "", expr):
        return None
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else (None, None, None)

    def take(symbol: str) -> None:
        nonlocal pos
        if peek()[2] != symbol:
            raise SyntaxError(symbol)
        pos += 1

    def binary(ops: str, operand):
        nonlocal pos
        node = operand()
        while peek()[2] is not None and peek()[2] in ops:
            fn = _OPS[peek()[2]]
            pos += 1
            node = _apply(fn, node, operand())
        return node

    def sum_():
        return binary("+-", product)

    def product():
        return binary("*/", unary)

    def unary():
        nonlocal pos
        if peek()[2] == "-":
            pos += 1
            inner = unary()
            return lambda e: -inner(e)
        return atom()

    def atom():
        nonlocal pos
        number, name, symbol = peek()
        pos += 1
        if number is not None:
            value = float(number) if "." in number else int(number)
            return lambda e: value
        if symbol == "(":
            node = sum_()
            take(")")
            return node
        if name is not None and name.upper() == "NULLIF" and peek()[2] == "(":
            take("(")
            x = sum_()
            take(",")
            y = sum_()
            take(")")
            return lambda e: _nullif(x(e), y(e))
        col = None if name is None else name.strip('"')
        if col in names and col != "__rid" and np.asarray(names[col]).dtype.kind in "iuf":
            return lambda e: e[col]
        raise SyntaxError(expr)

    try:
        fn = sum_()
    except SyntaxError:
        return None
    return fn if pos == len(tokens) else None


_OPS = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide}


def _apply(fn, a, b):
    return lambda e: fn(a(e), b(e))


def _nullif(x, y):
    """SQL ``NULLIF(x, y)`` with NaN as NULL."""
    x = np.asarray(x)
    out = x.astype(np.result_type(x.dtype, np.float32), copy=True)
    out[np.broadcast_to(x == y, out.shape)] = np.nan
    return out


def _arrow(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """Run ``sql`` and return the result as an Arrow table (no pandas round trip)."""
    return con.sql(sql).to_arrow_table()
