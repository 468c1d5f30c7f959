"""Row rules of the data contract and the validation report.

The rules are SQL conditions over a *typed relation* built by :mod:`churnpredict.contract`:
for every contract column ``c`` it holds the typed value ``"c"`` and the raw value as read
``"raw.c"`` (VARCHAR, empty strings already NULL), plus ``_file`` (and ``_line`` when line
numbers were asked for). Each rule is one boolean column; a table is checked with one
aggregate pass (``count_if`` per rule) and examples are fetched with ``LIMIT 5`` only for
rules that fired.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any

ERROR = "error"
WARNING = "warning"


def q(name: str) -> str:
    """Quote ``name`` as a SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def lit(value: str) -> str:
    """Quote ``value`` as a SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


# ------------------------------------------------------------------------------- report
@dataclass
class Problem:
    """One kind of problem in one table: what, where, how often, examples, expectation."""

    table: str
    file: str
    column: str | None
    code: str
    message: str
    severity: str = ERROR  # "error" | "warning"
    count: int = 0
    expected: str | None = None
    examples: list[str] = field(default_factory=list)
    table_level: bool = False  # a broken table (missing, unreadable, missing column)

    def to_dict(self) -> dict[str, Any]:
        """Return the problem as a JSON-ready mapping."""
        return {
            "table": self.table,
            "file": self.file,
            "column": self.column,
            "code": self.code,
            "severity": self.severity,
            "level": "table" if self.table_level else "row",
            "count": self.count,
            "message": self.message,
            "expected": self.expected,
            "examples": list(self.examples),
        }


@dataclass
class TableReport:
    """What happened to one table: rows read, accepted, quarantined, de-duplicated."""

    table: str
    file: str
    present: bool = True
    rows_read: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    rows_duplicate: int = 0
    quarantine_file: str | None = None
    problems: list[Problem] = field(default_factory=list)
    first_ts: Any = None  # coverage: the first event time of the accepted rows
    last_ts: Any = None  # ... and the newest time of any of its time columns

    @property
    def coverage_text(self) -> str:
        """Return ``covers <first> .. <last>`` (or '' for a table without time columns)."""
        if self.first_ts is None and self.last_ts is None:
            return ""
        first = "?" if self.first_ts is None else str(self.first_ts)[:19]
        last = "?" if self.last_ts is None else str(self.last_ts)[:19]
        return f"covers {first} .. {last}"

    @property
    def errors(self) -> list[Problem]:
        """Return the error-severity problems."""
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        """Return the warning-severity problems."""
        return [p for p in self.problems if p.severity == WARNING]

    def to_dict(self) -> dict[str, Any]:
        """Return the table report as a JSON-ready mapping."""
        return {
            "table": self.table,
            "file": self.file,
            "present": self.present,
            "rows_read": self.rows_read,
            "rows_accepted": self.rows_accepted,
            "rows_quarantined": self.rows_quarantined,
            "rows_duplicate": self.rows_duplicate,
            "rows_loaded": self.rows_accepted - self.rows_duplicate,
            "quarantine_file": self.quarantine_file,
            "first_ts": None if self.first_ts is None else str(self.first_ts),
            "last_ts": None if self.last_ts is None else str(self.last_ts),
            "problems": [p.to_dict() for p in self.problems],
        }


@dataclass
class ValidationReport:
    """The result of checking a data directory against the contract.

    ``usable`` is False when a table is broken (missing, unreadable, required column
    missing, no clients) or, under the strict policy, when any row breaks a rule.
    Under the lenient policy bad rows are quarantined and the data stays usable.
    """

    data_dir: str
    policy: str
    tables: dict[str, TableReport] = field(default_factory=dict)

    @property
    def problems(self) -> list[Problem]:
        """Return every problem of every table."""
        return [p for t in self.tables.values() for p in t.problems]

    @property
    def errors(self) -> list[Problem]:
        """Return every error-severity problem."""
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        """Return every warning."""
        return [p for p in self.problems if p.severity == WARNING]

    @property
    def usable(self) -> bool:
        """Return whether the data can be loaded under the report's policy."""
        return all(not (p.table_level or self.policy == "strict") for p in self.errors)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-ready mapping (for ``--format json``)."""
        return {
            "data_dir": self.data_dir,
            "policy": self.policy,
            "usable": self.usable,
            "n_errors": len(self.errors),
            "n_warnings": len(self.warnings),
            "tables": {name: t.to_dict() for name, t in self.tables.items()},
        }

    def render_text(self) -> str:
        """Return a readable report: per table the counts, then each problem."""
        verdict = "usable" if self.usable else "NOT USABLE"
        if self.usable and self.errors:
            verdict += " (rows with errors are rejected)"
        lines = [
            f"Data directory: {self.data_dir} (policy: {self.policy})",
            f"Result: {verdict} - {len(self.errors)} error(s), {len(self.warnings)} warning(s)",
        ]
        for t in self.tables.values():
            lines.append("")
            if not t.present:
                lines.append(f"{t.table}: not found ({t.file})")
            else:
                counts = f"read {t.rows_read}, accepted {t.rows_accepted}"
                if t.rows_quarantined:
                    counts += f", rejected {t.rows_quarantined}"
                if t.rows_duplicate:
                    counts += f", duplicates dropped {t.rows_duplicate}"
                lines.append(f"{t.table} ({t.file}): {counts}")
                if t.coverage_text:
                    lines.append(f"  {t.coverage_text}")
            if t.quarantine_file:
                lines.append(f"  rejected rows written to {t.quarantine_file}")
            if t.present and not t.problems:
                lines.append("  ok")
            for p in t.problems:
                tag = "ERROR" if p.severity == ERROR else "WARN "
                where = f"column {p.column}: " if p.column else ""
                count = "" if p.table_level else f" ({p.count} row{'s' if p.count != 1 else ''})"
                lines.append(f"  {tag} {where}{p.message}{count}")
                if p.expected:
                    lines.append(f"        expected: {p.expected}")
                for ex in p.examples:
                    lines.append(f"        e.g. {ex}")
        return "\n".join(lines)


# -------------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class Rule:
    """A row rule: a SQL condition that is TRUE for offending rows."""

    code: str
    column: str | None
    sql: str
    message: str
    expected: str | None = None
    severity: str = ERROR

    @property
    def key(self) -> str:
        """Return the unique name of the rule's flag column."""
        return f"rule.{self.code}.{self.column or ''}"


TYPE_WORDS = {
    "VARCHAR": "text",
    "DOUBLE": "a number",
    "TIMESTAMP": "an ISO 8601 timestamp (e.g. 2024-03-01T12:00:00 or 2024-03-01 12:00:00+03:00)",
    "DATE": "a date YYYY-MM-DD",
}


def row_rules(spec, *, future_limit: str, fk: bool, unique_keys: str | None) -> list[Rule]:
    """Return the row rules of ``spec`` (a :class:`contract.TableSpec`).

    Parameters
    ----------
    spec : TableSpec
        The table's columns and constraints.
    future_limit : str
        A SQL timestamp literal; values after it are in the far future.
    fk : bool
        Whether a ``clients`` table is joined in as ``_c`` (foreign key and signup checks).
    unique_keys : str, optional
        Name of a table of conflicting key values (column ``key``) joined as ``_k``.
    """
    rules: list[Rule] = []
    for c in spec.columns:
        col, raw = q(c.name), q("raw." + c.name)
        if not c.nullable:
            what = "empty or missing value" if c.name != "client_id" else "empty client_id"
            rules.append(
                Rule("missing_value", c.name, f"{raw} IS NULL", what, "a value in every row")
            )
        if c.type != "VARCHAR":
            rules.append(
                Rule(
                    "bad_type",
                    c.name,
                    f"{raw} IS NOT NULL AND {col} IS NULL",
                    f"cannot be read as {c.type.lower()}",
                    TYPE_WORDS[c.type],
                )
            )
        if c.allowed:
            values = ", ".join(lit(v) for v in c.allowed)
            rules.append(
                Rule(
                    "not_allowed",
                    c.name,
                    f"{col} IS NOT NULL AND {col} NOT IN ({values})",
                    "value not allowed",
                    "one of " + ", ".join(c.allowed),
                )
            )
        if c.min_value is not None:
            op, word = (">", "greater than") if c.min_exclusive else (">=", "at least")
            rules.append(
                Rule(
                    "out_of_range",
                    c.name,
                    f"{col} IS NOT NULL AND NOT ({col} {op} {c.min_value})",
                    "negative" if not c.min_exclusive else f"not above {c.min_value:g}",
                    f"a number {word} {c.min_value:g}",
                )
            )
        if c.type in ("TIMESTAMP", "DATE"):
            rules.append(
                Rule(
                    "future",
                    c.name,
                    f"{col} IS NOT NULL AND CAST({col} AS TIMESTAMP) > {future_limit}",
                    "in the far future",
                    f"no later than {future_limit.split(chr(39))[1][:10]} "
                    "(today + data.future_tolerance_days)",
                )
            )
    for later, earlier, text in spec.order_rules:
        rules.append(
            Rule(
                "order",
                later,
                f"CAST({q(later)} AS TIMESTAMP) < CAST(CAST({q(earlier)} AS DATE) AS TIMESTAMP)"
                if spec.column(later).type == "DATE"
                else f"{q(later)} < CAST({q(earlier)} AS TIMESTAMP)",
                text,
                f"{later} not before {earlier}",
            )
        )
    if fk:
        rules.append(
            Rule(
                "unknown_client",
                "client_id",
                '"client_id" IS NOT NULL AND _c_client_id IS NULL',
                "client_id not in clients",
                "a client_id listed in the clients table",
            )
        )
    if unique_keys is not None:
        rules.append(
            Rule(
                "duplicate_key",
                spec.unique,
                "_k_key IS NOT NULL",
                f"{spec.unique} is not unique (different rows share it, or it differs "
                "from another only in upper/lower case or spaces)",
                f"each {spec.unique} exactly once, told apart by more than case or spaces",
            )
        )
    if fk and spec.time_columns:
        tcol = q(spec.time_columns[0])
        rules.append(
            Rule(
                "before_signup",
                spec.time_columns[0],
                f"CAST({tcol} AS TIMESTAMP) < CAST(_c_signup AS TIMESTAMP)",
                "before the client's signup_date (kept)",
                "on or after the client's signup_date",
                severity=WARNING,
            )
        )
    return rules


def problem_sql(rules: list[Rule]) -> str:
    """Return a SQL expression naming the failed error rules of a row (``; ``-joined)."""
    parts = [
        f"CASE WHEN {q(r.key)} THEN {lit(f'{r.column}: {r.message}' if r.column else r.message)} END"
        for r in rules
        if r.severity == ERROR
    ]
    return "concat_ws('; ', " + ", ".join(parts) + ")" if parts else "''"


def render_example(
    row: dict[str, Any], data_dir: str, columns: list[str], first: str | None
) -> str:
    """Render one example row as ``file line N: col='v', ...`` (problem column first)."""
    path = str(row.get("_file") or "")
    with contextlib.suppress(ValueError):  # relpath fails across Windows drives
        path = os.path.relpath(path, data_dir) if path else path
    line = row.get("_line")
    unit = "row" if row.get("_kind") == "parquet" else "line"
    where = f"{path} {unit} {line}" if line is not None else path
    order = ([first] if first in columns else []) + [c for c in columns if c != first]
    cells = []
    for c in order:
        v = row.get("raw." + c)
        cells.append(f"{c}=<empty>" if v is None else f"{c}={str(v)!r}")
    text = ", ".join(cells)
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{where}: {text}"
