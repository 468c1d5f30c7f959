"""Invoices at T: unpaid and overdue now, days overdue, late payments and delays.

An invoice is known at ``T`` when ``issued_at < T``; it is paid at ``T`` only when
``paid_at < T`` — an invoice paid later (or exactly at ``T``) is unpaid at ``T``
(DATA_CONTRACT.md §2). It is overdue at ``T`` when known and unpaid at ``T`` and
``due_at < T`` (the due date has passed). It was paid late when
``date(paid_at) > due_at``; the delay is ``date(paid_at) - due_at`` days. Unpaid and
overdue invoices are :class:`~churnpredict.features.declarations.Interval` s; issued and
paid invoices are two sources (the table viewed at ``issued_at`` and at ``paid_at``).
"""

from __future__ import annotations

from dataclasses import replace

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
