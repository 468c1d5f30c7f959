"""Slice resolution from one grouped count per table equals one query per slice.

``features.build._resolve_slices`` reads each table once and derives every slice's
values in Python. The reference below is the resolver it replaced (one SQL query per
slice, wildcard and fixed value), kept here as the oracle: values, their order (ties
broken by text), the kept values and the warnings must be identical.
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnpredict.config import SliceConfig
from churnpredict.features import build
from churnpredict.features.backends.sql import category_sql, ident, quote
from churnpredict.features.declarations import MISSING, OTHER

# ------------------------------------------------------------- the reference (one query
# per slice, as before the resolver read each table once)


def _label(col):
    return f"COALESCE(CAST({ident(col)} AS VARCHAR), {quote(MISSING)})"


def _top_combos(con, table, by, fixed, top):
    cols = ", ".join(_label(c) for c in by)
    where = " AND ".join(f"{_label(c)} = {quote(v)}" for c, v in fixed.items()) or "TRUE"
    rows = con.execute(
        f"SELECT {cols}, count(*) AS n FROM {table} WHERE {where} "
        f"GROUP BY ALL ORDER BY n DESC, {cols} LIMIT {int(top)}"
    ).fetchall()
    return [[str(v) for v in r[:-1]] for r in rows]


def _exists(con, table, by, values):
    where = " AND ".join(f"{_label(c)} = {quote(v)}" for c, v in zip(by, values, strict=True))
    return bool(
        con.execute(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE {where or 'TRUE'})").fetchall()[
            0
        ][0]
    )


def reference(con, table, slices, warnings, source):
    if not _exists(con, table, [], []):
        return build._placeholder_slices(slices), {}
    keep, pending = {}, []
    for sl in slices:
        by = list(sl.by)
        if sl.values == "auto":
            combos = _top_combos(con, table, by, {}, sl.top)
            wild = [["*"] * len(by)] if len(by) == 1 else []
        else:
            combos, wild = [], []
            for v in sl.values:
                if "*" in v:
                    fixed = {c: x for c, x in zip(by, v, strict=True) if x != "*"}
                    combos.extend(_top_combos(con, table, by, fixed, sl.top))
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


# ------------------------------------------------------------------------------ tests

COLS = ["a", "b", "c"]
# few values (many ties), NULL, a literal "(missing)" / "(other)", non-ASCII text order
VALUES = st.sampled_from(["x", "y", "Z", "é", "x y", "(missing)", "(other)", None])
ROW = st.tuples(VALUES, VALUES, VALUES, st.integers(0, 9))


def _slice(draw_by, draw_values, top):
    return SliceConfig(by=draw_by, values=draw_values, top=top)


@st.composite
def slice_configs(draw):
    out = []
    for _ in range(draw(st.integers(1, 4))):
        by = draw(st.lists(st.sampled_from(COLS), min_size=1, max_size=3, unique=True))
        top = draw(st.integers(1, 4))
        if draw(st.booleans()):
            out.append(_slice(by, "auto", top))
            continue
        combos = draw(
            st.lists(
                st.lists(
                    st.sampled_from(["x", "y", "Z", "q", "*", "(missing)"]),
                    min_size=len(by),
                    max_size=len(by),
                ),
                min_size=1,
                max_size=3,
            )
        )
        out.append(_slice(by, combos, top))
    return out


def _con(rows):
    con = duckdb.connect()
    df = pd.DataFrame(rows, columns=[*COLS, "k"], dtype=object)
    df["k"] = df["k"].astype("int64")
    con.register("df", df)
    con.execute("CREATE TABLE t AS SELECT a::VARCHAR a, b::VARCHAR b, c::VARCHAR c, k FROM df")
    return con


def _both(con, slices, table="t"):
    w_ref, w_new = [], []
    ref = reference(con, table, slices, w_ref, "src")
    new = build._resolve_slices(con, table, slices, w_new, "src")
    return ref, new, w_ref, w_new


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(ROW, max_size=60), slices=slice_configs(), small=st.booleans())
def test_one_grouped_count_per_table_equals_one_query_per_slice(rows, slices, small):
    con = _con(rows)
    if small:  # also the fallback: one grouped count per slice
        old = build.UNION_COMBOS_MAX
        build.UNION_COMBOS_MAX = 2
        try:
            ref, new, w_ref, w_new = _both(con, slices)
        finally:
            build.UNION_COMBOS_MAX = old
    else:
        ref, new, w_ref, w_new = _both(con, slices)
    assert new == ref
    assert w_new == w_ref


def test_integer_category_columns_are_text_and_an_empty_table_gives_placeholders():
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE t AS SELECT * FROM (VALUES (1, 'p'), (1, 'p'), (2, 'p'), (10, NULL), "
        "(NULL, 'q')) v(a, b)"
    )
    slices = [
        SliceConfig(by=["a"], values="auto", top=2),
        SliceConfig(by=["b", "a"], values=[["p", "*"], ["q", "7"]], top=1),
    ]
    ref, new, w_ref, w_new = _both(con, slices)
    assert new == ref and w_new == w_ref
    # 2 rows, then a tie of one row each, broken by text: "(" sorts before digits
    assert new[0][0]["values"][:2] == [["1"], ["(missing)"]]
    assert w_new == ["src: configured value {'b': 'q', 'a': '7'} never occurs in t"]
    con.execute("CREATE TABLE e AS SELECT * FROM t WHERE false")
    ref, new, _, _ = _both(con, slices, "e")
    assert new == ref == (build._placeholder_slices(slices), {})


def test_no_slices_reads_nothing():
    class NoQueries:
        def execute(self, sql):
            raise AssertionError(f"unexpected query: {sql}")

    assert build._resolve_slices(NoQueries(), "t", [], [], "src") == ([], {})


@pytest.mark.parametrize("rows", [5, 500])
def test_many_combinations_fall_back_to_one_count_per_slice(rows, monkeypatch):
    con = duckdb.connect()
    con.execute(
        f"CREATE TABLE t AS SELECT (i % 7)::VARCHAR a, (i % 11)::VARCHAR b, "
        f"(i % 13)::VARCHAR c FROM range({rows}) r(i)"
    )
    slices = [SliceConfig(by=["a"], values="auto", top=3), SliceConfig(by=["b"], values="auto")]
    monkeypatch.setattr(build, "UNION_COMBOS_MAX", 50)
    ref, new, _, _ = _both(con, slices)
    assert new == ref
