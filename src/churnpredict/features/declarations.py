"""Feature declarations as data: what every feature *is*, independent of how it is run.

A feature is a :class:`FeatureDecl`: its catalog fields (name, family, description,
kind, window, slice values, column — the same fields as :class:`~churnpredict.features.
catalog.Feature`, so stored models, reasons and docs keep working), ``tags`` for phrases
and routing, and its ``value``: an expression tree of frozen dataclasses over *measures*.
Backends (``features/backends``) evaluate the declarations; nothing here knows SQL,
NumPy, DuckDB or Spark.

Time and the point-in-time rule
-------------------------------
A feature at as-of date ``T`` (00:00 UTC) may use only rows whose time is strictly before
``T``. A row's *day* is the UTC date of its time column, so "time < T" is exactly
"day < T", and every measure below is defined by days. Backends enforce the rule; a
declaration never filters on ``T`` itself.

Measures (the leaves)
---------------------
A measure has a value per ``(client, cut-off day c)``; ``At(measure, o)`` reads it at
``c = T - o`` days. So "pauses in the last 7 days" is
``Sub(At(pauses, 0), At(pauses, 7))``: rows with ``day < T`` minus rows with
``day < T - 7``, i.e. rows in ``[T - 7, T)``; a trend adds offset ``2w``.

- :class:`Aggregation` over a :class:`Source` (one table viewed on one time column):
  count / sum / max / last day of the rows with ``day < c``.
- :class:`Level`: a running level from per-entity state (campaigns running, paused,
  live, their budgets, the age of the longest current state, the day an entity last
  left the state).
- :class:`Interval`: rows open at ``c`` (unpaid and overdue invoices, days overdue).
- :class:`Static`: a column of the ``clients`` table (one row per client, no history).

Expressions (``Expr``)
----------------------
``At``, ``Feat`` (another feature of the same row, declared earlier), ``Num``, ``Add``,
``Sub``, ``Mul``, ``Div`` (x / 0 is missing), ``DaysSince`` (``T`` minus a day),
``Min`` (smallest non-missing), ``Coalesce``, ``Where`` (a conditional), ``Quintile``
(cross-sectional score per as-of date). Missing values propagate through arithmetic.

Design notes (where this differs from the issue's sketch, and why)
------------------------------------------------------------------
- Windows are offsets on references (``At(m, w)``), not a field of ``Aggregation``: a
  window count, a trend (``2w``) and a change over ``w`` days ("running now minus running
  ``w`` days ago") are then one mechanism, and a measure is shared by every feature that
  reads it (backends deduplicate measures by equality; all declarations are hashable).
- A feature is one class, ``FeatureDecl``; "Derived" features are those whose value uses
  ``Feat`` (other features) — backends evaluate them after the features they read, in
  declaration order.
- ``Level`` and ``Interval`` carry a ``stat`` (what to read of the state), so that the
  longest current pause and the idle days are the same primitive as the running count.

Notes for backend authors
-------------------------
- Output: one float32 column per declaration, rows in spine order; missing is NaN.
- Equal declarations are equal objects (frozen dataclasses): deduplicate measures with a
  dict keyed by the measure, and share one scan per ``Source`` (or per table).
- A missing operand makes arithmetic missing; a comparison with a missing operand is
  false (``Where`` gives missing); ``Coalesce`` and ``Min`` skip missing values.
- ``tests/conformance`` holds hand-computed values for every primitive; run it with your
  backend added to ``BACKENDS`` in its conftest.

Keep these types stable (add fields with defaults, do not rename): the Spark backend
evaluates them too. Changes are announced in commits starting "DECL API:".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Union

from churnpredict.features.catalog import Feature, Kind

OTHER = "(other)"  # a category value ``Source.keep`` does not name
MISSING = "(missing)"  # an empty (null) category value

# --------------------------------------------------------------------------- row level


@dataclass(frozen=True)
class Col:
    """A column of the source row (numbers as float; dates/timestamps as they are)."""

    name: str


@dataclass(frozen=True)
class Const:
    """A constant number."""

    value: float


@dataclass(frozen=True)
class DaysBetween:
    """Whole days from ``date(start)`` to ``date(end)`` (UTC dates of the two columns):
    ``date(end) - date(start)``; missing when either is missing."""

    start: str
    end: str


@dataclass(frozen=True)
class Greater:
    """1.0 when ``left > right``, 0.0 when not, missing when either is missing."""

    left: RowExpr
    right: RowExpr


@dataclass(frozen=True)
class Greatest:
    """The larger of ``left`` and ``right``, ignoring a missing one (SQL ``greatest``;
    missing only when both are)."""

    left: RowExpr
    right: RowExpr


RowExpr = Union[Col, Const, DaysBetween, Greater, Greatest]  # noqa: UP007 (dataclass refs)


@dataclass(frozen=True)
class Source:
    """One table viewed on one time column: each row with a non-null time is an event on
    day ``date(time)`` (UTC) of the client ``client_id``.

    The same table on two time columns is two sources (``invoices`` at ``issued_at`` and
    at ``paid_at``).

    Attributes
    ----------
    name : str
        Unique name of this view (used by backends for their scans and messages).
    table : str
        Contract table (or declared event table) holding ``client_id`` and ``time``.
    time : str
        Timestamp or date column; rows where it is null are not events.
    categories : tuple of str
        Category columns that ``Aggregation.where`` filters on.
    keep : tuple of (column, values)
        For category columns listed here: a value in ``values`` is itself, any other
        value is ``"(other)"``, null is ``"(missing)"``. A category column not listed is
        compared as text as it is (null matches no filter).
    numerics : tuple of str
        Numeric columns (as float; null adds nothing to a sum and is no value for max).
    columns : tuple of (name, RowExpr)
        Derived numeric row columns, e.g. ``("late", Greater(DaysBetween("due_at",
        "paid_at"), Const(0)))``; aggregations name them like numerics.
    after_first : bool
        Drop each client's first row by time (of rows with the same first time, one):
        e.g. manager *changes* are the assignments after the first.
    """

    name: str
    table: str
    time: str
    categories: tuple[str, ...] = ()
    keep: tuple[tuple[str, tuple[str, ...]], ...] = ()
    numerics: tuple[str, ...] = ()
    columns: tuple[tuple[str, RowExpr], ...] = ()
    after_first: bool = False

    def keep_map(self) -> dict[str, tuple[str, ...]]:
        """``keep`` as a dict."""
        return dict(self.keep)


# ---------------------------------------------------------------------------- measures


@dataclass(frozen=True)
class Aggregation:
    """A running per-client measure of a source: its value at cut-off day ``c`` is ``op``
    over the source's rows matching ``where`` with ``day < c``.

    Attributes
    ----------
    source : Source
    op : {"count", "sum", "max", "last"}
        ``count``: number of rows (0 when none); ``sum``: sum of ``column`` (0 when none);
        ``max``: largest ``column`` value (missing when none); ``last``: the last row's day
        as epoch days (days since 1970-01-01; missing when none).
    column : str, optional
        Numeric or derived column for ``sum`` / ``max``.
    where : tuple of (column, value)
        Equality filters on category columns (after ``Source.keep`` mapping), all must hold.
    decimals : int, optional
        Round a ``sum`` to this many decimals (money: a backend computing it as a
        difference of large running totals leaves residues such as 1e-9 instead of 0).
    """

    source: Source
    op: Literal["count", "sum", "max", "last"]
    column: str | None = None
    where: tuple[tuple[str, str], ...] = ()
    decimals: int | None = None


@dataclass(frozen=True)
class Level:
    """A running level from per-entity state, per client.

    The source's rows are the events of entities (``entity`` column, e.g. campaign_id,
    within a client), ordered per entity by time, then at equal times by the position of
    their ``state`` value in ``order`` (values not listed come last, in one tie class),
    then by ``weight`` (missing first). At cut-off day ``c`` only events with ``day < c``
    have happened.

    An entity's *state-changing* events are those whose ``state`` value is in
    ``changes`` (every event when ``changes`` is None). The entity is *in the state*
    when it has had a state-changing event and the value of its last one is in
    ``active`` (or, when ``inactive`` is given instead, is not in ``inactive``).

    ``stat`` says what to read:

    - ``count``: number of entities in the state (0 when none).
    - ``weight``: sum over entities in the state of the entity's last non-missing
      ``weight`` value among its events so far (0 for an entity without one).
    - ``age_max``: the largest ``c - day of the entity's last state-changing event``
      over entities in the state (missing when none): e.g. the longest current pause.
    - ``last_exit``: the last day (epoch days) on which an event moved an entity from in
      the state to out of it (missing when never).

    Attributes
    ----------
    source : Source
    entity, state : str
    changes : tuple of str or None
    active : tuple of str
    inactive : tuple of str or None
    order : tuple of str
    weight : str, optional
    stat : {"count", "weight", "age_max", "last_exit"}
    decimals : int, optional
        Round ``weight`` levels to this many decimals (see ``Aggregation.decimals``).
    """

    source: Source
    entity: str
    state: str
    changes: tuple[str, ...] | None
    active: tuple[str, ...] = ()
    inactive: tuple[str, ...] | None = None
    order: tuple[str, ...] = ()
    weight: str | None = None
    stat: Literal["count", "weight", "age_max", "last_exit"] = "count"
    decimals: int | None = None

    def is_active(self, value: str | None) -> bool:
        """Whether an entity whose last state-changing event has ``value`` is in the state."""
        if self.inactive is not None:
            return value not in self.inactive
        return value in self.active


@dataclass(frozen=True)
class Interval:
    """Rows of ``table`` open at cut-off day ``c``, per client.

    A row is open at ``c`` when ``date(start) < c``, and ``end`` is missing or
    ``date(end) >= c`` (an end at or after ``c`` is not known yet: an invoice paid
    exactly on ``c`` is still unpaid at ``c``), and, when ``known`` is given,
    ``date(known) < c`` (the row itself exists before ``c``). Rows with a missing
    ``start`` (or ``known``) are never open.

    ``stat``: ``count`` of open rows (0 when none), ``sum`` of ``weight`` over them (0
    when none; missing weights add nothing), ``age_max``: the largest ``c - date(start)``
    in days over them (missing when none).
    """

    table: str
    start: str
    end: str | None = None
    known: str | None = None
    weight: str | None = None
    stat: Literal["count", "sum", "age_max"] = "count"
    decimals: int | None = None


@dataclass(frozen=True)
class Static:
    """A column of the ``clients`` table (one row per client, no history) at ``T``.

    ``op``: ``value`` — the column as a number; ``equals`` — 1.0 when the column as text
    equals ``value``, 0.0 when not, missing when the column is; ``days_since`` — ``T``
    minus the (date) column in days; ``within`` — 1.0 when ``T`` minus the date column
    is at most ``days``, else 0.0. Missing when the column is missing or the client has
    no ``clients`` row.
    Offsets do not apply (``At(static, 0)`` only).
    """

    column: str
    op: Literal["value", "equals", "days_since", "within"] = "value"
    value: str | None = None
    days: int | None = None


Measure = Union[Aggregation, Level, Interval, Static]  # noqa: UP007

# -------------------------------------------------------------------------- expressions


@dataclass(frozen=True)
class At:
    """``measure`` as it stood at cut-off ``T - offset`` days."""

    measure: Measure
    offset: int = 0


@dataclass(frozen=True)
class Feat:
    """The value of another feature (declared earlier) on the same row."""

    name: str


@dataclass(frozen=True)
class Num:
    """A constant."""

    value: float


@dataclass(frozen=True)
class Add:
    """``left + right`` (missing if either is)."""

    left: Expr
    right: Expr


@dataclass(frozen=True)
class Sub:
    """``left - right`` (missing if either is)."""

    left: Expr
    right: Expr


@dataclass(frozen=True)
class Mul:
    """``left * right`` (missing if either is)."""

    left: Expr
    right: Expr


@dataclass(frozen=True)
class Div:
    """``left / right``; missing when ``right`` is 0 or either is missing (SQL
    ``left / NULLIF(right, 0)``)."""

    left: Expr
    right: Expr


@dataclass(frozen=True)
class DaysSince:
    """``T - day`` in days, ``day`` an epoch day (e.g. ``At(Aggregation(op="last"))``)."""

    day: Expr


@dataclass(frozen=True)
class Min:
    """The smallest non-missing argument (missing when all are)."""

    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Coalesce:
    """``value``, or ``default`` where ``value`` is missing."""

    value: Expr
    default: Expr


@dataclass(frozen=True)
class Where:
    """``then`` where ``left <op> right`` holds, missing where it does not (or where an
    operand is missing)."""

    left: Expr
    op: Literal["<", "<=", ">", ">=", "=="]
    right: Expr
    then: Expr


@dataclass(frozen=True)
class Quintile:
    """Cross-sectional score 1..5 among the rows with the same as-of date:
    ``ceil(5 * cume_dist)`` ordering by ``value`` ascending (descending when
    ``descending``), where cume_dist of a row is the share of rows whose value is
    ordered at or before its own (ties share a score). Missing values are replaced by
    ``missing`` first; with ``missing`` None they are ordered last."""

    value: Expr
    descending: bool = False
    missing: float | None = None


Expr = Union[At, Feat, Num, Add, Sub, Mul, Div, DaysSince, Min, Coalesce, Where, Quintile]  # noqa: UP007


# ----------------------------------------------------------------------------- features


@dataclass(frozen=True)
class FeatureDecl:
    """One feature: its catalog fields, tags and value.

    Attributes
    ----------
    name, family, description, kind, window, slice_values, column
        As :class:`churnpredict.features.catalog.Feature` (see there).
    value : Expr
        How the value at ``T`` is computed (see the module docstring).
    tags : tuple of str
        Words phrases, reasons and routing select features by (e.g. ``("pause",
        "client")``, ``("overdue",)``), instead of literal names the config can change.
    """

    name: str
    family: str
    description: str
    kind: Kind
    value: Expr
    window: int | None = None
    slice_values: tuple[str, ...] = ()
    column: str | None = None
    tags: tuple[str, ...] = field(default=())

    def feature(self) -> Feature:
        """The catalog entry (as stored with models and used by reasons)."""
        return Feature(
            self.name,
            self.family,
            self.description,
            self.kind,
            self.window,
            tuple(self.slice_values),
            self.column,
        )


def window(measure: Measure, w: int) -> Expr:
    """Rows (or the sum) of ``measure`` in ``[T - w, T)``: ``At(m, 0) - At(m, w)``."""
    return Sub(At(measure, 0), At(measure, w))


def measures_of(expr: Expr) -> list[tuple[Measure, int]]:
    """Every ``(measure, offset)`` an expression reads, in first-use order (no duplicates)."""
    out: dict[tuple[Any, int], None] = {}

    def walk(e: Expr) -> None:
        if isinstance(e, At):
            out[(e.measure, e.offset)] = None
        elif isinstance(e, (Add, Sub, Mul, Div)):
            walk(e.left)
            walk(e.right)
        elif isinstance(e, DaysSince):
            walk(e.day)
        elif isinstance(e, Min):
            for a in e.args:
                walk(a)
        elif isinstance(e, Coalesce):
            walk(e.value)
            walk(e.default)
        elif isinstance(e, Where):
            walk(e.left)
            walk(e.right)
            walk(e.then)
        elif isinstance(e, Quintile):
            walk(e.value)

    walk(expr)
    return list(out)


def features_of(expr: Expr) -> list[str]:
    """Names of the other features an expression reads (``Feat``), in first-use order."""
    out: dict[str, None] = {}

    def walk(e: Expr) -> None:
        if isinstance(e, Feat):
            out[e.name] = None
        for child in _children(e):
            walk(child)

    walk(expr)
    return list(out)


def _children(e: Expr) -> list[Expr]:
    if isinstance(e, (Add, Sub, Mul, Div)):
        return [e.left, e.right]
    if isinstance(e, DaysSince):
        return [e.day]
    if isinstance(e, Min):
        return list(e.args)
    if isinstance(e, Coalesce):
        return [e.value, e.default]
    if isinstance(e, Where):
        return [e.left, e.right, e.then]
    if isinstance(e, Quintile):
        return [e.value]
    return []


def has_quintile(expr: Expr) -> bool:
    """Whether an expression needs the whole as-of cross-section (``Quintile``)."""
    return isinstance(expr, Quintile) or any(has_quintile(c) for c in _children(expr))


def with_tags(decls: list[FeatureDecl], tag: str) -> list[FeatureDecl]:
    """The declarations carrying ``tag``, in order."""
    return [d for d in decls if tag in d.tags]


def declare(spec: dict[str, Any]) -> list[FeatureDecl]:
    """Every feature of a resolved spec (``features.build.resolve_spec``), in catalog order.

    The order and the catalog fields are those of the feature table: a feature reading
    others (``Feat``) comes after them.
    """
    from churnpredict.features import campaigns, events, invoices, profile, spend, static

    windows = list(spec["windows"])
    decls: list[FeatureDecl] = []
    post: list[list[FeatureDecl]] = []  # features over features, evaluated last by stage

    def add_post(stages: list[list[FeatureDecl]]) -> None:
        for i, stage in enumerate(stages):
            while len(post) <= i:
                post.append([])
            post[i].extend(stage)

    for name, s in spec["sources"].items():
        decls.extend(
            events.declare_source(
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
            add_post([spend.declare_ratios(name, s["numerics"], windows)])
    if spec["campaign_state"]:
        decls.extend(campaigns.declare_state(windows))
    if spec["invoice_state"]:
        decls.extend(invoices.declare_invoices(windows))
    if "profile" in spec:
        p = spec["profile"]
        direct, stages = profile.declare_profile(
            p["segments"], p["assignments"], windows, p["rfm_sources"], p["rfm_monetary"]
        )
        decls.extend(direct)
        add_post(stages)
    if spec.get("static"):
        decls.extend(static.declare_static(spec["static"]))
    for stage in post:
        decls.extend(stage)
    names = [d.name for d in decls]
    if len(names) != len(set(names)):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"duplicate feature names: {dup[:5]}")
    return decls


def catalog(decls: list[FeatureDecl]) -> list[Feature]:
    """The catalog entries of ``decls``."""
    return [d.feature() for d in decls]
