"""Invoices at T: unpaid and overdue now, days overdue, late payments and delays.

An invoice is known at ``T`` when ``issued_at < T``; it is paid at ``T`` only when
``paid_at < T`` — an invoice paid later is unpaid at ``T`` (DATA_CONTRACT.md §2). It is
overdue at ``T`` when unpaid at ``T`` and ``due_at < T`` (the due date has passed). It was
paid late when ``date(paid_at) > due_at``; the delay is ``date(paid_at) - due_at`` days.
The stream turns every invoice into dated rows (issued, paid, and overdue: +1 at the
due date, -1 when paid late) whose running sums are the state at ``T``.
"""

from __future__ import annotations

from churnpredict.features.catalog import Feature
from churnpredict.features.declarations import (
    Aggregation,
    At,
    Const,
    DaysBetween,
    DaysSince,
    Div,
    FeatureDecl,
    Greater,
    Greatest,
    Interval,
    Source,
    window,
)
from churnpredict.features.engine import FeatureExpr, Measure, Stream
from churnpredict.features.events import Part

_STREAM_SQL = """
SELECT client_id, CAST(issued_at AS DATE) AS day, 'issued' AS kind, amount,
       0.0 AS late, 0.0 AS delay, 1.0 AS sign
FROM invoices
UNION ALL
SELECT client_id, CAST(paid_at AS DATE), 'paid', amount,
       (CAST(paid_at AS DATE) > due_at)::DOUBLE,
       greatest(CAST(paid_at AS DATE) - due_at, 0)::DOUBLE, 1.0
FROM invoices WHERE paid_at IS NOT NULL
UNION ALL  -- overdue from the due date: +1 invoice, +amount
SELECT client_id, due_at, 'od', amount, 0.0, 0.0, 1.0
FROM invoices WHERE paid_at IS NULL OR CAST(paid_at AS DATE) > due_at
UNION ALL  -- ... until paid late: -1 invoice, -amount
SELECT client_id, CAST(paid_at AS DATE), 'od', -amount, 0.0, 0.0, -1.0
FROM invoices WHERE paid_at IS NOT NULL AND CAST(paid_at AS DATE) > due_at
"""

_DAYS_OVERDUE_SQL = """
SELECT s.rid, max(s.as_of - i.due_at)::DOUBLE AS invoices__days_overdue__now
FROM _spine s JOIN (
    SELECT client_id, due_at, issued_at, paid_at FROM invoices  -- open at some as-of date
    WHERE due_at < (SELECT max(as_of) FROM _spine)
      AND (paid_at IS NULL OR paid_at >= (SELECT min(as_of) FROM _spine))
) i ON i.client_id = s.client_id
     AND i.due_at < s.as_of AND i.issued_at < s.as_of
     AND (i.paid_at IS NULL OR i.paid_at >= s.as_of)
GROUP BY s.rid
"""


def _m(name: str, kind: str, base: str, how: str = "sum", decimals: int | None = None):
    """A measure over the rows of one ``kind`` (SQL and structured form)."""
    agg = "sum" if how == "sum" else "max"
    return Measure(
        name,
        f"{agg}({base}) FILTER (WHERE kind = '{kind}')",
        how,
        base=base,
        where=(("kind", kind),),
        decimals=decimals,
    )


def invoice_part(windows: list[int]) -> Part:
    """Declare the invoice family."""
    measures = (
        _m("issued_n", "issued", "n"),
        _m("issued_amt", "issued", "s_amount", decimals=4),
        _m("paid_n", "paid", "n"),
        _m("paid_amt", "paid", "s_amount", decimals=4),
        _m("late_n", "paid", "s_late"),
        _m("delay", "paid", "s_delay"),
        _m("delay_max", "paid", "x_delay", "max"),
        _m("paid_last", "paid", "last_day", "max"),
        _m("od_n", "od", "s_sign"),  # invoices overdue now: +1 at due, -1 when paid late
        _m("od_amt", "od", "s_amount", decimals=4),
    )
    stream = Stream(
        name="inv",
        sql=_STREAM_SQL,
        group_cols=("kind",),
        sum_cols=("amount", "late", "delay", "sign"),
        max_cols=("delay",),
        measures=measures,
    )
    part = Part(streams=[stream])

    def ref(off: int, m: str) -> str:
        return f"o{off}_inv__{m}"

    def add(name, expr, desc, kind, column, window=None):
        part.features.append(
            (FeatureExpr(name, expr), Feature(name, "invoices", desc, kind, window, (), column))
        )

    add(
        "invoices__unpaid_amount__now",
        f"{ref(0, 'issued_amt')} - {ref(0, 'paid_amt')}",
        "amount of unpaid invoices now",
        "amount",
        "unpaid_amount",
    )
    add(
        "invoices__unpaid__now",
        f"{ref(0, 'issued_n')} - {ref(0, 'paid_n')}",
        "unpaid invoices now",
        "state",
        "unpaid",
    )
    add(
        "invoices__overdue_amount__now",
        ref(0, "od_amt"),
        "amount of overdue invoices now",
        "amount",
        "overdue_amount",
    )
    add("invoices__overdue__now", ref(0, "od_n"), "overdue invoices now", "state", "overdue")
    add(
        "invoices__share_paid_late__all",
        f"{ref(0, 'late_n')} / NULLIF({ref(0, 'paid_n')}, 0)",
        "share of invoices ever paid late",
        "ratio",
        "share_paid_late",
    )
    add(
        "invoices__delay_max__all",
        ref(0, "delay_max"),
        "longest payment delay ever, in days",
        "state",
        "delay_max",
    )
    add(
        "invoices__payment__days_since",
        f"as_of - {ref(0, 'paid_last')}",
        "days since the last payment",
        "days_since",
        "payment",
    )
    for w in windows:
        add(
            f"invoices__issued__{w}d",
            f"{ref(0, 'issued_n')} - {ref(w, 'issued_n')}",
            f"invoices issued in the last {w} days",
            "count",
            "issued",
            w,
        )
        add(
            f"invoices__paid__{w}d",
            f"{ref(0, 'paid_n')} - {ref(w, 'paid_n')}",
            f"invoices paid in the last {w} days",
            "count",
            "paid",
            w,
        )
        add(
            f"invoices__paid_late__{w}d",
            f"{ref(0, 'late_n')} - {ref(w, 'late_n')}",
            f"invoices paid late in the last {w} days",
            "count",
            "paid_late",
            w,
        )
        add(
            f"invoices__delay_mean__{w}d",
            f"({ref(0, 'delay')} - {ref(w, 'delay')}) / NULLIF({ref(0, 'paid_n')} - {ref(w, 'paid_n')}, 0)",
            f"average payment delay (days) of invoices paid in the last {w} days",
            "mean",
            "delay",
            w,
        )
    part.extra_sql.append(
        (
            _DAYS_OVERDUE_SQL,
            [
                Feature(
                    "invoices__days_overdue__now",
                    "invoices",
                    "days the oldest overdue invoice is past due",
                    "state",
                    None,
                    (),
                    "days_overdue",
                )
            ],
        )
    )
    return part


ISSUED = Source("invoices_issued", "invoices", "issued_at", numerics=("amount",))
PAID = Source(
    "invoices_paid",
    "invoices",
    "paid_at",
    numerics=("amount",),
    columns=(
        ("late", Greater(DaysBetween("due_at", "paid_at"), Const(0))),
        ("delay", Greatest(DaysBetween("due_at", "paid_at"), Const(0))),
    ),
)
# unpaid at T: issued before T, not paid before T
UNPAID = Interval("invoices", "issued_at", "paid_at")
# overdue at T: issued before T, due before T, not paid before T
OVERDUE = Interval("invoices", "due_at", "paid_at", known="issued_at")


def declare_invoices(windows: list[int]) -> list[FeatureDecl]:
    """Declare the invoice family (see the module docstring for the definitions)."""
    from dataclasses import replace

    issued_n = Aggregation(ISSUED, "count")
    paid_n = Aggregation(PAID, "count")
    late_n = Aggregation(PAID, "sum", "late")
    delay = Aggregation(PAID, "sum", "delay")

    def decl(name, value, desc, kind, column, window=None, tags=()):
        return FeatureDecl(name, "invoices", desc, kind, value, window, (), column, tags)

    out = [
        decl(
            "invoices__unpaid_amount__now",
            At(replace(UNPAID, weight="amount", stat="sum", decimals=4)),
            "amount of unpaid invoices now",
            "amount",
            "unpaid_amount",
            tags=("unpaid",),
        ),
        decl(
            "invoices__unpaid__now",
            At(UNPAID),
            "unpaid invoices now",
            "state",
            "unpaid",
            tags=("unpaid",),
        ),
        decl(
            "invoices__overdue_amount__now",
            At(replace(OVERDUE, weight="amount", stat="sum", decimals=4)),
            "amount of overdue invoices now",
            "amount",
            "overdue_amount",
            tags=("overdue", "money"),
        ),
        decl(
            "invoices__overdue__now",
            At(OVERDUE),
            "overdue invoices now",
            "state",
            "overdue",
            tags=("overdue", "money"),
        ),
        decl(
            "invoices__share_paid_late__all",
            Div(At(late_n), At(paid_n)),
            "share of invoices ever paid late",
            "ratio",
            "share_paid_late",
            tags=("late",),
        ),
        decl(
            "invoices__delay_max__all",
            At(Aggregation(PAID, "max", "delay")),
            "longest payment delay ever, in days",
            "state",
            "delay_max",
            tags=("late",),
        ),
        decl(
            "invoices__payment__days_since",
            DaysSince(At(Aggregation(PAID, "last"))),
            "days since the last payment",
            "days_since",
            "payment",
            tags=("payment",),
        ),
    ]
    for w in windows:
        out.append(
            decl(
                f"invoices__issued__{w}d",
                window(issued_n, w),
                f"invoices issued in the last {w} days",
                "count",
                "issued",
                w,
            )
        )
        out.append(
            decl(
                f"invoices__paid__{w}d",
                window(paid_n, w),
                f"invoices paid in the last {w} days",
                "count",
                "paid",
                w,
                ("payment",),
            )
        )
        out.append(
            decl(
                f"invoices__paid_late__{w}d",
                window(late_n, w),
                f"invoices paid late in the last {w} days",
                "count",
                "paid_late",
                w,
                ("late",),
            )
        )
        out.append(
            decl(
                f"invoices__delay_mean__{w}d",
                Div(window(delay, w), window(paid_n, w)),
                f"average payment delay (days) of invoices paid in the last {w} days",
                "mean",
                "delay",
                w,
                ("late",),
            )
        )
    out.append(
        decl(
            "invoices__days_overdue__now",
            At(replace(OVERDUE, stat="age_max")),
            "days the oldest overdue invoice is past due",
            "state",
            "days_overdue",
            tags=("overdue", "money"),
        )
    )
    return out
