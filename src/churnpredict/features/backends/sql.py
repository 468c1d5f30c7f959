"""SQL text helpers shared by the local backend and the spec resolver (DuckDB dialect)."""

from __future__ import annotations

from churnpredict.features.declarations import MISSING, OTHER


def quote(value: str) -> str:
    """Return ``value`` as a SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def ident(name: str) -> str:
    """Return ``name`` as a quoted SQL identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def category_sql(col: str, kept: list[str] | tuple[str, ...] | None) -> str:
    """SQL giving a category column as text: values outside ``kept`` as ``(other)``, NULL
    as ``(missing)`` (``Source.keep`` semantics).

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


def mapped_sql(sql: str, kept: tuple[tuple[str, tuple[str, ...]], ...]) -> str:
    """``sql`` with each ``(column, kept values)`` of ``kept`` mapped by
    :func:`category_sql` (the other columns as they are)."""
    if not kept:
        return sql
    cols = ", ".join(f"{category_sql(c, values)} AS {ident(c)}" for c, values in kept)
    return f"SELECT * REPLACE ({cols}) FROM ({sql})"
