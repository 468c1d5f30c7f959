"""Tiny hand-built data sets for unit tests of labels and features (no files needed)."""

from __future__ import annotations

from types import SimpleNamespace

import duckdb
import pandas as pd

COLUMNS = {
    "clients": {
        "client_id": "VARCHAR",
        "signup_date": "DATE",
        "name": "VARCHAR",
        "segment": "VARCHAR",
        "account_manager": "VARCHAR",
        "monthly_revenue": "DOUBLE",
        "phone": "VARCHAR",
        "email": "VARCHAR",
    },
    "campaign_events": {
        "client_id": "VARCHAR",
        "campaign_id": "VARCHAR",
        "ts": "TIMESTAMP",
        "event": "VARCHAR",
        "initiator": "VARCHAR",
        "reason": "VARCHAR",
        "daily_budget": "DOUBLE",
    },
    "invoices": {
        "client_id": "VARCHAR",
        "invoice_id": "VARCHAR",
        "issued_at": "TIMESTAMP",
        "due_at": "DATE",
        "amount": "DOUBLE",
        "paid_at": "TIMESTAMP",
    },
    "contacts": {
        "client_id": "VARCHAR",
        "ts": "TIMESTAMP",
        "channel": "VARCHAR",
        "direction": "VARCHAR",
        "topic": "VARCHAR",
        "outcome": "VARCHAR",
        "staff": "VARCHAR",
    },
    "spend": {
        "client_id": "VARCHAR",
        "date": "DATE",
        "spend": "DOUBLE",
        "impressions": "DOUBLE",
        "clicks": "DOUBLE",
        "conversions": "DOUBLE",
    },
    "assignments": {"client_id": "VARCHAR", "account_manager": "VARCHAR", "from_date": "DATE"},
    "activity": {"client_id": "VARCHAR", "ts": "TIMESTAMP", "event": "VARCHAR", "value": "DOUBLE"},
    "freezes": {"client_id": "VARCHAR", "frozen_at": "TIMESTAMP", "unfrozen_at": "TIMESTAMP"},
}


def make_ds(tables: dict[str, list[tuple] | pd.DataFrame], start="2024-01-01", end=None):
    """Register ``tables`` (rows as tuples in COLUMNS order, or frames) in a new DuckDB."""
    con = duckdb.connect()
    present = set()
    stamps = []
    for name, rows in tables.items():
        cols = COLUMNS[name]
        df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows, columns=list(cols))
        for c in cols:
            if c not in df.columns:
                df[c] = None
        df = df[list(cols)]
        con.register("_tmp", df)
        casts = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in cols.items())
        con.execute(f"CREATE TABLE {name} AS SELECT {casts} FROM _tmp")
        con.unregister("_tmp")
        present.add(name)
        for c, t in cols.items():
            if t in ("TIMESTAMP", "DATE") and name not in ("clients", "freezes"):
                v = con.execute(f'SELECT max(CAST("{c}" AS TIMESTAMP)) FROM {name}').fetchall()[0][
                    0
                ]
                if v is not None:
                    stamps.append(pd.Timestamp(v))
    data_end = pd.Timestamp(end) if end else (max(stamps) if stamps else pd.Timestamp(start))
    return SimpleNamespace(
        con=con,
        present=present,
        data_dir="test-data",
        data_start=pd.Timestamp(start),
        data_end=data_end,
    )
