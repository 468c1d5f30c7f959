"""The local backend: feature declarations evaluated by DuckDB + NumPy on one machine.

:func:`compute` compiles the declarations (``features.declarations``) into the plan of
the point-in-time engine (``backends/engine.py``: one scan per stream, bucketing at the
cut-off boundaries, NumPy pivots and running sums, look-ups, two workers) and runs it.
This module and the engine are the only places where the local backend's SQL lives.

How each declaration compiles
-----------------------------
- ``Aggregation``: one engine stream per ``Source`` (its SQL selects ``client_id``, the
  day, the category columns mapped by ``keep``, the numeric and derived columns); each
  aggregation is one structured measure of it (count = ``n``, sum = ``s_<col>``, max =
  ``x_<col>``, last = ``last_day``, ``where`` = equality filters).
- ``Level``: the levels over one (source, entity, state column, tie order) share one
  sorted pass (DuckDB sorts the events by entity, time and tie order; NumPy derives each
  event's change of every declared level), handed to the engine as arrays of per-event
  deltas whose running sums are the levels; ``last_exit`` is a running max of the days
  on which an entity left the state; ``age_max`` joins the spine with the open states.
- ``Interval``: count and sum become a stream of ``+1`` / ``-1`` rows (opening day,
  closing day) whose running sum is the number open; ``age_max`` joins the spine with
  the rows open at some as-of date.
- ``Static``: one join of the spine with ``clients``.
- Expressions become the engine's feature SQL (arithmetic runs in NumPy, the rest in
  DuckDB); features reading other features (``Feat``) run in later stages.

A feature reading measures of several streams (e.g. a source's count over an
interval's count) looks each measure up into a hidden float32 column and is evaluated
in a later stage. ``Level(stat="age_max")``, ``Interval(stat="age_max")`` and ``Static``
have no offsets (``At(measure, 0)`` only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from churnpredict.features import declarations as d
from churnpredict.features.backends import engine, kernels
from churnpredict.features.backends.engine import FeatureExpr, Measure, Plan, Stream
from churnpredict.features.backends.sql import ident, mapped_sql, quote
from churnpredict.features.events import slug as _slug

_US_PER_DAY = 86_400_000_000


def compute(data: Any, spine: pd.DataFrame, declarations: list[d.FeatureDecl]) -> pd.DataFrame:
    """Every declared feature for each ``(client_id, as_of)`` row of ``spine``.

    Parameters
    ----------
    data : contract.Dataset or duckdb.DuckDBPyConnection
        The contract tables (``data.con``, or the connection itself).
    spine : DataFrame
        ``client_id`` and ``as_of``; other columns are ignored.
    declarations : list of FeatureDecl

    Returns
    -------
    DataFrame
        ``client_id``, ``as_of`` and one float32 column per declaration, in spine order.
    """
    con = getattr(data, "con", data)
    out = engine.compute(con, spine[["client_id", "as_of"]], compile_plan(declarations))
    return out[["client_id", "as_of", *(f.name for f in declarations)]]  # no hidden columns


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _null(sql: str) -> str:
    """SQL turning a NaN value (the engine's missing value) into NULL."""
    return f"NULLIF({sql}, 'NaN'::DOUBLE)"


def _row_sql(e: d.RowExpr) -> str:
    """SQL for a derived row column (``Source.columns``)."""
    if isinstance(e, d.Col):
        return f"CAST({ident(e.name)} AS DOUBLE)"
    if isinstance(e, d.Const):
        return _num(e.value)
    if isinstance(e, d.DaysBetween):
        return f"(CAST({ident(e.end)} AS DATE) - CAST({ident(e.start)} AS DATE))"
    if isinstance(e, d.Greater):
        return f"({_row_sql(e.left)} > {_row_sql(e.right)})::DOUBLE"
    if isinstance(e, d.Greatest):
        return f"greatest({_row_sql(e.left)}, {_row_sql(e.right)})::DOUBLE"
    raise TypeError(f"not a row expression: {e!r}")


# ------------------------------------------------------------------------ the compiler


@dataclass
class _SourceStream:
    """One engine stream per ``Source``: its aggregations are the stream's measures."""

    name: str
    source: d.Source
    measures: dict[d.Aggregation, str] = field(default_factory=dict)

    def ref(self, agg: d.Aggregation) -> str:
        if agg not in self.measures:
            self.measures[agg] = f"m{len(self.measures)}"
        return self.measures[agg]

    def stream(self) -> Stream:
        src = self.source
        keep = src.keep_map()
        derived = dict(src.columns)
        nums = sorted({a.column for a in self.measures if a.op in ("sum", "max")})
        unknown = [c for c in nums if c not in derived and c not in src.numerics]
        if unknown:
            raise ValueError(f"source {src.name}: aggregated columns {unknown} not declared")
        sel = [f"CAST({ident(src.time)} AS DATE) AS day"]
        # categories as raw text: the engine maps them by ``kept`` (Stream.kept)
        sel += [f"CAST({ident(c)} AS VARCHAR) AS {ident(c)}" for c in src.categories]
        for c in nums:
            value = _row_sql(derived[c]) if c in derived else f"CAST({ident(c)} AS DOUBLE)"
            sel.append(f"{value} AS {ident('num_' + _slug(c))}")
        cols = ", ".join(sel)
        where = f"{ident(src.time)} IS NOT NULL"
        if src.after_first:
            sql = (
                f"SELECT * EXCLUDE (_rn) FROM (SELECT client_id, {cols}, row_number() OVER "
                f"(PARTITION BY client_id ORDER BY {ident(src.time)}) AS _rn "
                f"FROM {src.table} WHERE {where}) WHERE _rn > 1"
            )
        else:
            sql = f"SELECT client_id, {cols} FROM {src.table} WHERE {where}"
        measures = []
        for a, name in self.measures.items():
            unknown = [c for c, _ in a.where if c not in src.categories]
            if unknown:
                raise ValueError(f"source {src.name}: filter on undeclared categories {unknown}")
            base = {"count": "n", "last": "last_day"}.get(a.op)
            if base is None:
                base = ("s_" if a.op == "sum" else "x_") + "num_" + _slug(a.column)
            agg = "max" if a.op in ("max", "last") else "sum"
            cond = " AND ".join(f"{ident(c)} = {quote(v)}" for c, v in a.where)
            expr = f"{agg}({base})" + (f" FILTER (WHERE {cond})" if cond else "")
            how = "max" if a.op in ("max", "last") else "sum"
            measures.append(
                Measure(name, expr, how, base=base, where=a.where, decimals=a.decimals)
            )
        sums = sorted({_slug(a.column) for a in self.measures if a.op == "sum"})
        maxes = sorted({_slug(a.column) for a in self.measures if a.op == "max"})
        return Stream(
            name=self.name,
            sql=sql,
            group_cols=tuple(ident(c) for c in src.categories),
            sum_cols=tuple(f"num_{c}" for c in sums),
            max_cols=tuple(f"num_{c}" for c in maxes),
            measures=tuple(measures),
            kept=tuple((c, tuple(keep[c])) for c in src.categories if keep.get(c) is not None),
        )


@dataclass
class _IntervalStream:
    """Count and sum of open rows: ``+1`` at the opening day, ``-1`` at the closing day."""

    name: str
    key: tuple[str, str, str | None, str | None]  # table, start, end, known
    measures: dict[tuple[str, str | None, int | None], str] = field(default_factory=dict)

    def ref(self, iv: d.Interval) -> str:
        k = (iv.stat, iv.weight if iv.stat == "sum" else None, iv.decimals)
        if k not in self.measures:
            self.measures[k] = f"m{len(self.measures)}"
        return self.measures[k]

    def stream(self) -> Stream:
        table, start, end, known = self.key
        weights = sorted({w for _, w, _ in self.measures if w})
        opened = f"CAST({ident(start)} AS DATE)"
        if known:
            opened = f"greatest({opened}, CAST({ident(known)} AS DATE))"
        closed = f"CAST({ident(end)} AS DATE)" if end else "NULL::DATE"
        present = " AND ".join(f"{ident(c)} IS NOT NULL" for c in (start, known) if c)
        w_cols = "".join(f", CAST({ident(w)} AS DOUBLE) AS w_{_slug(w)}" for w in weights)
        # one scan: each open row gives +1 on its opening day and, when it closes later,
        # -1 on its closing day (a NULL day otherwise, which the engine's scan drops)
        w_rows = "".join(
            f", unnest([w_{_slug(w)}, -w_{_slug(w)}]) AS w_{_slug(w)}" for w in weights
        )
        sql = (
            "SELECT client_id, unnest([o, CASE WHEN c > o THEN c END]) AS day, "
            f"unnest([1.0, -1.0]) AS sign{w_rows} "
            f"FROM (SELECT client_id, {opened} AS o, {closed} AS c{w_cols} FROM {table} "
            f"WHERE {present}) WHERE c IS NULL OR c > o"
        )
        measures = []
        for (stat, w, dec), name in self.measures.items():
            base = "s_sign" if stat == "count" else f"s_w_{_slug(w)}"
            measures.append(Measure(name, f"sum({base})", base=base, decimals=dec))
        return Stream(
            name=self.name,
            sql=sql,
            sum_cols=("sign", *(f"w_{_slug(w)}" for w in weights)),
            measures=tuple(measures),
        )


@dataclass
class _TableStream:
    """The sources and intervals over one table, scanned as one stream.

    Each part's rows carry its tag in column ``_part`` (``UNION ALL`` of the parts'
    queries), and each of its measures filters on that tag: one scan and one pivot of
    the table instead of one per view (invoices: issued, paid, unpaid, overdue).
    """

    name: str
    parts: dict[Any, Any] = field(default_factory=dict)  # part key -> part stream

    def part(self, key, make) -> Any:
        if key not in self.parts:
            self.parts[key] = make(f"p{len(self.parts)}")
        return self.parts[key]

    def stream(self) -> Stream:
        streams = [(p.name, p.stream()) for p in self.parts.values()]
        if len(streams) == 1:
            name, one = streams[0]
            measures = tuple(
                Measure(f"{name}{m.name}", m.expr, m.how, m.base, m.where, m.decimals)
                for m in one.measures
            )
            return Stream(
                self.name,
                one.sql,
                one.group_cols,
                one.sum_cols,
                one.max_cols,
                measures,
                kept=one.kept,
            )
        cats = sorted({c for _, st in streams for c in st.group_cols})
        nums = sorted({c for _, st in streams for c in (*st.sum_cols, *st.max_cols)})
        selects, measures = [], []
        for tag, st in streams:
            have = set(st.group_cols) | set(st.sum_cols) | set(st.max_cols)
            cols = [f"'{tag}' AS _part"]
            cols += [c if c in have else f"NULL::VARCHAR AS {c}" for c in cats]
            cols += [ident(c) if c in have else f"NULL::DOUBLE AS {ident(c)}" for c in nums]
            selects.append(
                f"SELECT client_id, day, {', '.join(cols)} FROM ({mapped_sql(st.sql, st.kept)})"
            )
            for m in st.measures:
                where = (("_part", tag), *m.where)
                cond = " AND ".join(f"{ident(c)} = {quote(v)}" for c, v in where)
                agg = "max" if m.how == "max" else "sum"
                measures.append(
                    Measure(
                        f"{tag}{m.name}",
                        f"{agg}({m.base}) FILTER (WHERE {cond})",
                        m.how,
                        m.base,
                        where,
                        m.decimals,
                    )
                )
        return Stream(
            name=self.name,
            sql=" UNION ALL ".join(selects),
            group_cols=("_part", *cats),
            sum_cols=tuple(sorted({c for _, st in streams for c in st.sum_cols})),
            max_cols=tuple(sorted({c for _, st in streams for c in st.max_cols})),
            measures=tuple(measures),
        )


_LevelKey = tuple[d.Source, str, str, tuple[str, ...]]


@dataclass
class _LevelStream:
    """The levels over one (source, entity, state column, tie order): one sorted pass."""

    name: str
    key: _LevelKey
    weight: str | None = None
    defs: dict[tuple, int] = field(default_factory=dict)  # (changes, active, inactive) -> j
    stats: dict[tuple[int, str, int | None], str] = field(default_factory=dict)
    ages: dict[int, str] = field(default_factory=dict)  # def -> name of its open states
    open: dict[str, tuple[np.ndarray, ...]] = field(default_factory=dict)  # name -> states
    events: dict[str, np.ndarray] = field(default_factory=dict)

    def _def(self, lv: d.Level) -> int:
        k = (lv.changes, tuple(lv.active), lv.inactive)
        return self.defs.setdefault(k, len(self.defs))

    def ref(self, lv: d.Level) -> str:
        if lv.weight is not None:
            if self.weight not in (None, lv.weight):
                raise ValueError(
                    f"levels over source {lv.source.name}, entity {lv.entity}: two weight "
                    f"columns ({self.weight}, {lv.weight}); declare one"
                )
            self.weight = lv.weight
        j = self._def(lv)
        if lv.stat == "age_max":
            return self.ages.setdefault(j, f"_{self.name}_age{j}")
        k = (j, lv.stat, lv.decimals)
        if k not in self.stats:
            self.stats[k] = f"{lv.stat[0]}{j}_{len(self.stats)}"
        return self.stats[k]

    def prepare(self, con) -> list[str]:
        """Compute the per-event deltas (kept for :meth:`arrays`) and the open states."""
        self.events.clear()
        self.events.update(_level_state(con, self, self.ages))
        return []

    def age(self, key: str, name: str) -> Callable[..., dict[str, np.ndarray]]:
        """Feature ``name``: per spine row, the age in days of the client's oldest state
        of ``key`` open at as-of (``prepare`` has found the open states)."""

        def column(con, cidx: np.ndarray, as_of: np.ndarray) -> dict[str, np.ndarray]:
            c, start, end, start_day = self.open[key]
            return {name: _oldest_open_age(c, start, end, start_day, cidx, as_of, _US_PER_DAY)}

        return column

    def arrays(self) -> dict[str, np.ndarray]:
        out = dict(self.events)
        self.events.clear()  # free them once the engine has them
        return out

    def stream(self) -> Stream:
        measures = []
        for (_, stat, dec), name in self.stats.items():
            if stat == "last_exit":
                measures.append(Measure(name, f"max(x_{name})", "max", base=f"x_{name}"))
            else:
                measures.append(Measure(name, f"sum(s_{name})", base=f"s_{name}", decimals=dec))
        return Stream(name=self.name, arrays=self.arrays, measures=tuple(measures))


def _oldest_open_age(c, start, end, start_day, cidx, as_of, unit) -> np.ndarray:
    """Per spine row (client index ``cidx``, as-of day ``as_of``): as-of minus the
    earliest ``start_day`` of the client's intervals (client ``c``) open at as-of,
    ``start < as_of * unit <= end``; NaN when none is open."""
    days, row = np.unique(as_of, return_inverse=True)
    n_clients = int(cidx.max()) + 1 if len(cidx) else 0
    oldest = kernels.oldest_open(c, start, end, start_day, days * unit, n_clients)
    first = oldest[row, cidx]
    none = first == np.iinfo(np.int64).max
    return np.where(none, np.nan, days[row] - np.where(none, 0, first))


def _interval_age(iv: d.Interval, name: str) -> Callable[..., dict[str, np.ndarray]]:
    """Feature ``name`` (``Interval`` with ``stat="age_max"``): per spine row, the age
    in days of the client's oldest row of ``iv.table`` open at as-of."""

    def column(con, cidx: np.ndarray, as_of: np.ndarray) -> dict[str, np.ndarray]:
        if not len(as_of):
            return {name: np.zeros(0)}

        def day(col: str) -> str:
            return f"date_diff('day', DATE '1970-01-01', CAST(i.{ident(col)} AS DATE))"

        lo, hi = (str(np.datetime64(int(x), "D")) for x in (as_of.min(), as_of.max()))
        # open at some as-of date: starts before the last, ends (if ever) after the first
        where = [
            f"i.{ident(iv.start)} IS NOT NULL",
            f"CAST(i.{ident(iv.start)} AS DATE) < DATE '{hi}'",
        ]
        key = day(iv.start)  # open once both the start and the row are known
        if iv.known:
            where.append(f"i.{ident(iv.known)} IS NOT NULL")
            key = f"greatest({key}, {day(iv.known)})"
        end = f"{np.iinfo(np.int64).max}"
        if iv.end:
            where.append(
                f"(i.{ident(iv.end)} IS NULL OR CAST(i.{ident(iv.end)} AS DATE) >= DATE '{lo}')"
            )
            end = f"COALESCE({day(iv.end)}, {end})"
        tab = engine._arrow(
            con,
            f"SELECT c.cidx::BIGINT AS cidx, ({key})::BIGINT AS k, ({end})::BIGINT AS e, "
            f"({day(iv.start)})::BIGINT AS s FROM {iv.table} i "
            f"JOIN _cidx c ON i.client_id = c.client_id WHERE {' AND '.join(where)}",
        )
        a = {n: tab.column(n).to_numpy() for n in tab.column_names}
        return {name: _oldest_open_age(a["cidx"], a["k"], a["e"], a["s"], cidx, as_of, 1)}

    return column


def _order_ties(cp: np.ndarray, t: np.ndarray, ord_: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Order events of one entity with the same time and tie class by weight (missing
    first), so that the order is total. Such events differ only in their weight, so
    sorting the weights within each run of ties is enough."""
    tie = (cp[1:] == cp[:-1]) & (t[1:] == t[:-1]) & (ord_[1:] == ord_[:-1])
    if not tie.any():
        return w
    in_run = np.r_[False, tie] | np.r_[tie, False]  # rows in a run of two or more
    run = np.cumsum(np.r_[True, ~tie])[in_run]  # each such row's run number
    rows = np.flatnonzero(in_run)
    b = w[rows]
    out = w.copy()
    out[rows] = b[np.lexsort((np.where(np.isnan(b), -np.inf, b), run))]
    return out


def _in_time_order(cp: np.ndarray, t: np.ndarray, ord_: np.ndarray) -> bool:
    """Whether the events of each entity (contiguous) are in (time, tie order) order."""
    if len(cp) < 2:
        return True
    back = (t[1:] < t[:-1]) | ((t[1:] == t[:-1]) & (ord_[1:] < ord_[:-1]))
    return not (back & (cp[1:] == cp[:-1])).any()


def _level_state(con, ls: _LevelStream, ages: dict[int, str]) -> dict[str, np.ndarray]:
    """Each event's change of every level of ``ls``, and the open states of the levels
    read as ``age_max`` (tables ``ages[j]``).

    The events (of the spine's clients) are needed grouped by entity and, within each
    entity, in (time, tie order) order; the order of the entities does not matter.
    Event logs are usually written in time order (per client or overall), so the rows
    are grouped by entity keeping the table's order within each (one counting sort of
    the entities numbered by pandas, ``kernels.group_order``; DuckDB's ``ORDER BY``
    entity, time, tie order took 0.58-0.69 s of CPU on 4M campaign events); only when
    an entity's events then turn out not to be in time order does DuckDB sort them.
    (The join with the client index may return the rows in another order, varying from
    run to run: the rows of a base table are put in the table's order by their row ids.)
    Ties are then ordered by weight in NumPy (a fourth sort key made DuckDB's sort
    0.50 s instead of 0.31 s on 4M campaign events). Every level's changes are then one
    compiled pass over the events (``kernels.level_deltas``).

    Events at or after the last as-of date of ``_spine`` are not read: no as-of date
    sees them, and the state after an event depends only on the events before it (an
    open state whose next change is not read stays open, which no as-of date can tell
    from a change at or after it).
    """
    source, entity, state, order = ls.key
    mentioned = list(order)
    for changes, active, inactive in ls.defs:
        for v in (*(changes or ()), *active, *(inactive or ())):
            if v not in mentioned:
                mentioned.append(v)
    if len(mentioned) >= 127:
        raise ValueError(f"level over {source.name}.{state}: too many state values")
    col, time = f"e.{ident(state)}", ident(source.time)

    def position(values: list[str], other: int) -> str:
        """SQL: the state value's position in ``values``, ``other`` when not listed."""
        if not values:
            return str(other)
        whens = "".join(f"WHEN {col} = {quote(v)} THEN {i} " for i, v in enumerate(values))
        return f"CASE {whens}ELSE {other} END"

    ord_sql, val_sql = position(list(order), len(order)), position(mentioned, -1)
    weight = f", CAST(e.{ident(ls.weight)} AS DOUBLE) AS w" if ls.weight else ""
    val = "" if mentioned == list(order) else f", ({val_sql})::TINYINT AS val"
    # the join's parallel threads may return the rows in another order than the table's
    # (it varies from run to run): a base table's row ids restore the table's order
    rowid = (
        ", e.rowid AS _row"
        if con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [source.table]
        ).fetchall()[0][0]
        else ""
    )
    sql = (
        f"SELECT c.cidx::INTEGER AS cidx, "
        f"hash(c.cidx, e.{ident(entity)}) AS cp, epoch_us(CAST(e.{time} AS TIMESTAMP)) AS t, "
        f"({ord_sql})::TINYINT AS ord{val}"
        f"{weight}{rowid} FROM {source.table} e JOIN _cidx c ON e.client_id = c.client_id "
        f"WHERE e.{time} IS NOT NULL AND CAST(e.{time} AS TIMESTAMP) < "
        "(SELECT max(as_of)::TIMESTAMP FROM _spine)"
    )
    tab = engine._arrow(con, sql)
    # the rows grouped by entity, each entity's in the table's order (by row ids)
    entity, uniq = pd.factorize(tab.column("cp").to_numpy())
    row = tab.column("_row").to_numpy() if rowid else np.zeros(0, np.int64)
    perm, identity = kernels.group_order(entity, len(uniq), row)
    perm = None if identity else perm
    del entity, uniq, row

    def column(name: str) -> np.ndarray:
        """A column of ``tab`` in the rows' processing order (nulls: NaN)."""
        v = tab.column(name).to_numpy(zero_copy_only=False)
        return v if perm is None else v[perm]

    cp, t, ord_ = column("cp"), column("t"), column("ord")
    if not _in_time_order(cp, t, ord_):
        tab, perm = con.sql(sql + " ORDER BY cp, t, ord").to_arrow_table(), None
        cp, t, ord_ = column("cp"), column("t"), column("ord")
    # without a ``val`` column: positions in ``order``; values not listed: -1
    vals = column("val") if val else np.where(ord_ < len(order), ord_, -1).astype(np.int8)
    day = np.floor_divide(t, _US_PER_DAY).astype(np.int32)  # days since 1970 (UTC)
    n = len(cp)
    new = np.ones(n, dtype=bool)
    if n:
        new[1:] = cp[1:] != cp[:-1]

    def member(values: tuple[str, ...]) -> np.ndarray:
        """Look-up table: is a value code (``vals``) in ``values``? (the last cell is
        for -1, values not mentioned: never)"""
        lut = np.zeros(len(mentioned) + 1, dtype=bool)
        lut[[mentioned.index(v) for v in values]] = True
        return lut

    w = None
    if ls.weight:
        w = _order_ties(cp, t, ord_, column("w"))  # null -> NaN
    elif any(stat == "weight" for _, stat, _ in ls.stats):
        raise ValueError(f"level {ls.name} reads a weight but none is declared")
    out: dict[str, np.ndarray] = {"cidx": column("cidx"), "day": day}
    # per level: which values change the state (none: every event sets it) and which
    # states count as in the level; per stat: its level and what it measures
    defs = sorted(ls.defs.items(), key=lambda kv: kv[1])
    changes_lut = np.stack(
        [member(ch) if ch is not None else member(()) for (ch, _, _), _ in defs]
    )
    every = np.array([ch is None for (ch, _, _), _ in defs])
    state_lut = np.stack(
        [member(act) if ina is None else ~member(ina) for (_, act, ina), _ in defs]
    )
    kinds = {"count": 0, "last_exit": 1, "weight": 2}
    stats = list(ls.stats.items())
    stat_def = np.array([j for (j, _, _), _ in stats], dtype=np.int64)
    stat_kind = np.array([kinds[stat] for (_, stat, _), _ in stats], dtype=np.int8)
    # changes of counts and days are whole numbers: float32 is exact
    deltas32 = np.empty((int((stat_kind < 2).sum()), n), dtype=np.float32)
    deltas64 = np.empty((int((stat_kind == 2).sum()), n))
    kernels.level_deltas(
        new, vals, np.zeros(0) if w is None else w, day, changes_lut, every, state_lut,
        stat_def, stat_kind, deltas32, deltas64,
    )  # fmt: skip
    i32 = i64 = 0
    for (_, name), kind in zip(stats, stat_kind, strict=True):
        if kind == 2:
            out[name], i64 = deltas64[i64], i64 + 1
        else:
            out[name], i32 = deltas32[i32], i32 + 1
    if ages:
        _open_states(con, ls, ages, vals, cp, t, mentioned, out["cidx"])
    return out


def _open_states(con, ls, ages, vals, cp, t, mentioned, cidx) -> None:
    """Keep (``ls.open``), per level read as ``age_max``, the states that are open at
    some as-of date of ``_spine``: client index, start (epoch microseconds), end (the
    entity's next state-changing event; past every as-of date while the state lasts)
    and start day."""
    lo, hi = con.execute(
        "SELECT epoch_us(min(as_of)::TIMESTAMP), epoch_us(max(as_of)::TIMESTAMP) FROM _spine"
    ).fetchall()[0]
    defs = {j: k for k, j in ls.defs.items()}
    ls.open.clear()
    for j, key in ages.items():
        changes, active, inactive = defs[j]
        # value codes (the last cell: values not mentioned) that set the state / in which
        # the state is open
        sets = np.zeros(len(mentioned) + 1, dtype=bool)
        if changes is None:  # every event sets the state
            sets[:] = True
        else:
            sets[[mentioned.index(v) for v in changes]] = True
        opens = np.zeros(len(mentioned) + 1, dtype=bool)
        opens[[mentioned.index(v) for v in (inactive if inactive is not None else active)]] = True
        if inactive is not None:
            opens = ~opens
        rows, end = kernels.open_states(
            cp, vals, t, sets, opens, lo if lo is not None else 0, hi if hi is not None else 0
        )
        start = t[rows]
        ls.open[key] = (cidx[rows], start, end, np.floor_divide(start, _US_PER_DAY))


def _statics(statics: list[tuple[str, d.Static]]) -> Callable[..., dict[str, np.ndarray]]:
    """Features from columns of ``clients``: read once per client (values, comparisons,
    dates as epoch days), then spread to the spine rows (dates against each as-of)."""

    def column(con, cidx: np.ndarray, as_of: np.ndarray) -> dict[str, np.ndarray]:
        sel = []
        for i, (_, st) in enumerate(statics):
            c = f"c.{ident(st.column)}"
            if st.op == "value":
                sql = f"CAST({c} AS DOUBLE)"
            elif st.op == "equals":
                sql = (
                    f"CASE WHEN {c} IS NULL THEN NULL "
                    f"ELSE (CAST({c} AS VARCHAR) = {quote(st.value)})::DOUBLE END"
                )
            elif st.op in ("days_since", "within"):
                sql = f"date_diff('day', DATE '1970-01-01', CAST({c} AS DATE))::DOUBLE"
            else:
                raise ValueError(f"unknown Static op {st.op!r}")
            sel.append(f"{sql} AS v{i}")
        tab = engine._arrow(
            con, f"SELECT x.cidx, {', '.join(sel)} FROM clients c JOIN _cidx x USING (client_id)"
        )
        n_clients = int(cidx.max()) + 1 if len(cidx) else 0
        at = tab.column("cidx").to_numpy()
        out = {}
        for i, (name, st) in enumerate(statics):
            per_client = np.full(n_clients, np.nan)  # a client without a row: missing
            per_client[at] = tab.column(f"v{i}").to_numpy(zero_copy_only=False)
            v = per_client[cidx]
            if st.op in ("days_since", "within"):
                v = as_of - v
                if st.op == "within":
                    v = np.where(np.isnan(v), np.nan, (v <= int(st.days)).astype(np.float64))
            out[name] = v
        return out

    return column


class _Compiler:
    def __init__(self) -> None:
        self.sources: dict[d.Source, _SourceStream] = {}
        self.levels: dict[_LevelKey, _LevelStream] = {}
        self.tables: dict[str, _TableStream] = {}
        self.stream_order: list[Any] = []

    def _new(self, kind: str, table: dict, key, make) -> Any:
        if key not in table:
            label = {"s": lambda: key.name, "l": lambda: key[0].name}.get(kind, lambda: key)()
            table[key] = make(f"{kind}{len(self.stream_order)}_{_slug(label)}")
            self.stream_order.append(table[key])
        return table[key]

    def ref(self, m: d.Measure, offset: int) -> tuple[str, str]:
        """The engine reference ``o{offset}_{stream}__{measure}`` and its stream."""
        if isinstance(m, d.Aggregation) and m.source.after_first:
            s = self._new("s", self.sources, m.source, lambda n: _SourceStream(n, m.source))
        elif isinstance(m, (d.Aggregation, d.Interval)):  # one stream per table
            table = m.source.table if isinstance(m, d.Aggregation) else m.table
            t = self._new("t", self.tables, table, lambda n: _TableStream(n))
            if isinstance(m, d.Aggregation):
                part = t.part(m.source, lambda n: _SourceStream(n, m.source))
            else:
                key = (m.table, m.start, m.end, m.known)
                part = t.part(key, lambda n: _IntervalStream(n, key))
            return f"o{offset}_{t.name}__{part.name}{part.ref(m)}", t.name
        elif isinstance(m, d.Level):
            key = (m.source, m.entity, m.state, tuple(m.order))
            s = self._new("l", self.levels, key, lambda n: _LevelStream(n, key))
        else:
            raise ValueError(f"{type(m).__name__} cannot be part of an expression here")
        return f"o{offset}_{s.name}__{s.ref(m)}", s.name

    def sql(self, e: d.Expr, streams: set[str], hide=None) -> str:
        """The engine SQL of an expression; ``streams`` collects the streams it reads.

        With ``hide`` (a function of an ``At``), every measure read becomes the column
        ``hide`` returns (for features evaluated after the streams, over other columns).
        """

        def r(x: d.Expr, _streams: set[str]) -> str:
            return self.sql(x, streams, hide)

        if isinstance(e, d.At):
            if hide is not None:
                return ident(hide(e))
            ref, stream = self.ref(e.measure, e.offset)
            streams.add(stream)
            return ref
        if isinstance(e, d.Feat):
            return ident(e.name)
        if isinstance(e, d.Num):
            return _num(e.value)
        if isinstance(e, (d.Add, d.Sub, d.Mul)):
            op = {d.Add: "+", d.Sub: "-", d.Mul: "*"}[type(e)]
            return f"({r(e.left, streams)} {op} {r(e.right, streams)})"
        if isinstance(e, d.Div):
            return f"({r(e.left, streams)} / NULLIF({r(e.right, streams)}, 0))"
        if isinstance(e, d.DaysSince):
            return f"(as_of - {r(e.day, streams)})"
        if isinstance(e, d.Min):
            return "list_min([" + ", ".join(r(a, streams) for a in e.args) + "])"
        # missing values are NaN in the engine's columns (NULL only inside SQL), and
        # DuckDB orders NaN above every number: make them NULL where that matters
        if isinstance(e, d.Coalesce):
            return f"COALESCE({_null(r(e.value, streams))}, {r(e.default, streams)})"
        if isinstance(e, d.Where):
            op = "=" if e.op == "==" else e.op
            return (
                f"CASE WHEN {_null(r(e.left, streams))} {op} {_null(r(e.right, streams))} "
                f"THEN {r(e.then, streams)} END"
            )
        if isinstance(e, d.Quintile):
            v = _null(r(e.value, streams))
            if e.missing is not None:
                v = f"COALESCE({v}, {_num(e.missing)})"
            desc = " DESC" if e.descending else ""
            return f"ceil(5 * cume_dist() OVER (PARTITION BY as_of ORDER BY {v}{desc} NULLS LAST))"
        raise TypeError(f"not an expression: {e!r}")


def _whole(e: d.Expr) -> d.Measure | None:
    """The measure of a feature whose value is one measure read as a whole column
    (``Static``, ``age_max``), else None."""
    if isinstance(e, d.At) and _is_column(e.measure):
        if e.offset != 0:
            raise ValueError(f"{type(e.measure).__name__} has no offsets (At(m, 0) only)")
        return e.measure
    return None


def _is_column(m: d.Measure) -> bool:
    """Whether a measure is computed as a column joined to the spine (not a stream)."""
    return isinstance(m, d.Static) or (
        isinstance(m, (d.Level, d.Interval)) and m.stat == "age_max"
    )


def compile_plan(decls: list[d.FeatureDecl]) -> Plan:
    """Compile declarations into the engine's plan (streams, measures, feature SQL).

    A feature reading the measures of one stream is evaluated with that stream; one
    reading other features, or measures of several streams (each first looked up into a
    hidden column ``__h...``, dropped by :func:`compute`), in a later stage.
    """
    comp = _Compiler()
    plan = Plan()
    statics: list[tuple[str, d.Static]] = []
    stage_of: dict[str, int] = {}
    post: list[list[FeatureExpr]] = []
    hidden: dict[d.At, str] = {}

    def column(name: str, m: d.Measure) -> None:
        """Add the spine-joined column ``name`` computing measure ``m``."""
        if isinstance(m, d.Static):
            statics.append((name, m))
        elif isinstance(m, d.Interval):
            plan.extra_arrays.append(_interval_age(m, name))
        else:
            key = (m.source, m.entity, m.state, tuple(m.order))
            group = comp._new("l", comp.levels, key, lambda n, k=key: _LevelStream(n, k))
            plan.extra_arrays.append(group.age(group.ref(m), name))

    def hide(at: d.At) -> str:
        """The hidden column holding ``at`` (created on first use)."""
        if at not in hidden:
            name = hidden[at] = f"__h{len(hidden)}"
            if _is_column(at.measure):
                if at.offset != 0:
                    raise ValueError(f"{type(at.measure).__name__} has no offsets")
                column(name, at.measure)
            else:
                plan.features.append(FeatureExpr(name, comp.sql(at, set())))
        return hidden[at]

    for f in decls:
        reads = d.features_of(f.value)
        unknown = [n for n in reads if n not in stage_of]
        if unknown:
            raise ValueError(f"feature {f.name} reads features not declared before: {unknown}")
        whole = _whole(f.value)
        if whole is not None:
            column(f.name, whole)
            stage_of[f.name] = 0
            continue
        measures = d.measures_of(f.value)
        streams: set[str] = set()
        if not reads and not any(_is_column(m) for m, _ in measures):
            expr = comp.sql(f.value, streams)
            if len(streams) == 1:
                plan.features.append(FeatureExpr(f.name, expr))
                stage_of[f.name] = 0
                continue
        if not measures and not reads:
            raise ValueError(f"feature {f.name} reads no data")
        stage = 1 + max((stage_of[n] for n in reads), default=0)
        while len(post) < stage:
            post.append([])
        post[stage - 1].append(FeatureExpr(f.name, comp.sql(f.value, streams, hide)))
        stage_of[f.name] = stage
    if statics:
        plan.extra_arrays.append(_statics(statics))
    for s in comp.stream_order:
        plan.streams.append(s.stream())
        if isinstance(s, _LevelStream):
            plan.prepare.append(s.prepare)
    plan.post = post
    return plan
