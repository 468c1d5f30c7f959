"""A tiny valid data directory and a corpus of broken copies (one defect each).

Reusable by unit tests (contract) and CLI tests (exit status 2, nothing written):

    from tests.bad_corpus import make_bad_cases, make_valid_dir
"""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd

TABLES = (
    "clients",
    "campaign_events",
    "invoices",
    "contacts",
    "spend",
    "freezes",
    "assignments",
    "activity",
)


def valid_frames() -> dict[str, pd.DataFrame]:
    """Return the tables of a tiny valid world as all-string frames (as a CSV holds them)."""
    clients = pd.DataFrame(
        {
            "client_id": ["c1", "c2", "c3", "c4"],
            "signup_date": ["2024-01-01", "2024-01-05", "2024-02-01", "2024-02-10"],
            "name": ["Acme", "Бета", "Gamma, Inc.", ""],
            "segment": ["smb", "key", "low-cost", "smb"],
            "account_manager": ["ann", "bob", "", "ann"],
            "monthly_revenue": ["1000", "25000.5", "", "0"],
            "phone": ["+1 555 0100", "", "", ""],
            "email": ["a@example.com", "", "", ""],
        }
    )
    campaign_events = pd.DataFrame(
        {
            "client_id": ["c1", "c1", "c1", "c2", "c2", "c3", "c4"],
            "campaign_id": ["k1", "k1", "k1", "k2", "k2", "k3", "k4"],
            "ts": [
                "2024-01-02T09:00:00",
                "2024-01-02 10:00:00",
                "2024-02-01T08:30:00+03:00",
                "2024-01-06T00:00:00Z",
                "2024-03-01T12:00:00",
                "2024-02-02",
                "2024-02-11T10:00:00",
            ],
            "event": ["created", "started", "paused", "started", "stopped", "started", "started"],
            "initiator": ["client", "client", "system", "manager", "client", "", "client"],
            "reason": ["", "", "low_balance", "", "results", "", ""],
            "daily_budget": ["10", "10", "", "50.5", "", "5", "7"],
        }
    )
    invoices = pd.DataFrame(
        {
            "client_id": ["c1", "c2", "c3"],
            "invoice_id": ["i1", "i2", "i3"],
            "issued_at": ["2024-01-10T00:00:00", "2024-01-20 12:00:00", "2024-02-05T00:00:00"],
            "due_at": ["2024-01-20", "2024-01-30", "2024-02-15"],
            "amount": ["100", "2500.75", "30"],
            "paid_at": ["2024-01-15T10:00:00", "", "2024-02-06T00:00:00+05:00"],
        }
    )
    contacts = pd.DataFrame(
        {
            "client_id": ["c1", "c2", "c3", "c4"],
            "ts": [
                "2024-01-03T10:00:00",
                "2024-01-07T11:00:00",
                "2024-02-03T12:00:00",
                "2024-02-12T09:15:00",
            ],
            "channel": ["call", "email", "ticket", "chat"],
            "direction": ["outbound", "inbound", "inbound", "inbound"],
            "topic": ["sales", "billing", "technical", ""],
            "outcome": ["reached", "", "", ""],
            "staff": ["ann", "bob", "tech1", ""],
        }
    )
    spend = pd.DataFrame(
        {
            "client_id": ["c1", "c1", "c2"],
            "date": ["2024-01-02", "2024-01-03", "2024-01-06"],
            "spend": ["10", "9.5", "50"],
            "impressions": ["1000", "900", ""],
            "clicks": ["10", "8", "40"],
            "conversions": ["1", "0", "3"],
        }
    )
    freezes = pd.DataFrame(
        {
            "client_id": ["c1", "c2"],
            "frozen_at": ["2024-02-01T08:30:00", "2024-03-01T12:00:00"],
            "unfrozen_at": ["2024-02-20T00:00:00", ""],
        }
    )
    assignments = pd.DataFrame(
        {
            "client_id": ["c1", "c2", "c1"],
            "account_manager": ["bob", "bob", "ann"],
            "from_date": ["2024-01-01", "2024-01-05", "2024-02-01"],
        }
    )
    activity = pd.DataFrame(
        {
            "client_id": ["c1", "c2", "c4"],
            "ts": ["2024-01-04T10:00:00", "2024-01-08T10:00:00", "2024-02-12T10:00:00"],
            "event": ["login", "report_view", "login"],
            "value": ["1", "", "2.5"],
        }
    )
    staff = pd.DataFrame(
        {
            "name": ["ann", "Рита", "Tom"],
            "role": ["account_manager", "receivables", "technical"],
            "calls_per_day": ["20", "40", ""],
        }
    )
    return {
        "clients": clients,
        "campaign_events": campaign_events,
        "invoices": invoices,
        "contacts": contacts,
        "spend": spend,
        "freezes": freezes,
        "assignments": assignments,
        "activity": activity,
        "staff": staff,
    }


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    df.to_csv(path, index=False, encoding="utf-8")


def _typed(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Return ``df`` with contract types, as a Parquet writer would store them."""
    out = df.replace("", None).copy()
    for col in out.columns:
        if col in ("ts", "issued_at", "paid_at", "frozen_at", "unfrozen_at"):
            out[col] = pd.to_datetime(out[col], utc=True, format="ISO8601").dt.tz_localize(None)
        elif col in ("signup_date", "due_at", "date", "from_date"):
            out[col] = pd.to_datetime(out[col]).dt.date
        elif col in (
            "monthly_revenue",
            "daily_budget",
            "amount",
            "spend",
            "impressions",
            "clicks",
            "conversions",
            "value",
            "calls_per_day",
        ):
            out[col] = pd.to_numeric(out[col]).astype("float64")
        else:
            out[col] = out[col].astype(object)
    return out


def make_valid_dir(path: Path, fmt: str = "csv") -> Path:
    """Write a tiny valid data directory (4 clients, every table) and return it.

    Parameters
    ----------
    path : Path
        Directory to create (parents too).
    fmt : {"csv", "parquet"}
        File format of every table.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for name, df in valid_frames().items():
        if fmt == "csv":
            _write_csv(df, path / f"{name}.csv")
        elif fmt == "parquet":
            _typed(name, df).to_parquet(path / f"{name}.parquet", index=False)
        else:
            raise ValueError(f"unknown format {fmt}")
    return path


# ---------------------------------------------------------------------------- defects
def _set(table: str, col: str, value: str, row: int = 0) -> Callable[[Path], None]:
    def apply(d: Path) -> None:
        df = pd.read_csv(d / f"{table}.csv", dtype=str, keep_default_na=False)
        df.loc[row, col] = value
        _write_csv(df, d / f"{table}.csv")

    return apply


def _drop_col(table: str, col: str) -> Callable[[Path], None]:
    def apply(d: Path) -> None:
        df = pd.read_csv(d / f"{table}.csv", dtype=str, keep_default_na=False)
        _write_csv(df.drop(columns=[col]), d / f"{table}.csv")

    return apply


def _rename_col(table: str, col: str, new: str) -> Callable[[Path], None]:
    def apply(d: Path) -> None:
        df = pd.read_csv(d / f"{table}.csv", dtype=str, keep_default_na=False)
        _write_csv(df.rename(columns={col: new}), d / f"{table}.csv")

    return apply


def _remove(table: str) -> Callable[[Path], None]:
    def apply(d: Path) -> None:
        (d / f"{table}.csv").unlink()

    return apply


def _header_only(table: str) -> Callable[[Path], None]:
    def apply(d: Path) -> None:
        df = pd.read_csv(d / f"{table}.csv", dtype=str, keep_default_na=False)
        _write_csv(df.iloc[:0], d / f"{table}.csv")

    return apply


def _dup_key(table: str, key: str) -> Callable[[Path], None]:
    def apply(d: Path) -> None:
        df = pd.read_csv(d / f"{table}.csv", dtype=str, keep_default_na=False)
        df.loc[1, key] = df.loc[0, key]
        _write_csv(df, d / f"{table}.csv")

    return apply


def _near_dup_key(table: str, key: str) -> Callable[[Path], None]:
    """Row 1 gets row 0's key in another case with a trailing space ("c1" -> "C1 ")."""

    def apply(d: Path) -> None:
        df = pd.read_csv(d / f"{table}.csv", dtype=str, keep_default_na=False)
        df.loc[1, key] = df.loc[0, key].swapcase() + " "
        _write_csv(df, d / f"{table}.csv")

    return apply


def _raw_bytes(table: str, data: bytes) -> Callable[[Path], None]:
    def apply(d: Path) -> None:
        (d / f"{table}.csv").write_bytes(data)

    return apply


def _append_line(table: str, line: str) -> Callable[[Path], None]:
    def apply(d: Path) -> None:
        with open(d / f"{table}.csv", "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    return apply


def _parquet_string_col(table: str, col: str, value: str) -> Callable[[Path], None]:
    def apply(d: Path) -> None:
        df = pd.read_csv(d / f"{table}.csv", dtype=str, keep_default_na=False)
        df.loc[0, col] = value
        (d / f"{table}.csv").unlink()
        df.astype(object).to_parquet(d / f"{table}.parquet", index=False)

    return apply


def _corrupt_parquet(table: str) -> Callable[[Path], None]:
    def apply(d: Path) -> None:
        (d / f"{table}.csv").unlink()
        (d / f"{table}.parquet").write_bytes(b"PAR1" + b"\x00garbage" * 20)

    return apply


def _both_formats(table: str) -> Callable[[Path], None]:
    def apply(d: Path) -> None:
        df = pd.read_csv(d / f"{table}.csv", dtype=str, keep_default_na=False)
        df.astype(object).to_parquet(d / f"{table}.parquet", index=False)

    return apply


def _gz_garbage(table: str) -> Callable[[Path], None]:
    def apply(d: Path) -> None:
        (d / f"{table}.csv").unlink()
        (d / f"{table}.csv.gz").write_bytes(b"\x1f\x8bnot really gzip")

    return apply


def _gz_ok_then_set(table: str, col: str, value: str) -> Callable[[Path], None]:
    def apply(d: Path) -> None:
        df = pd.read_csv(d / f"{table}.csv", dtype=str, keep_default_na=False)
        df.loc[0, col] = value
        (d / f"{table}.csv").unlink()
        with gzip.open(d / f"{table}.csv.gz", "wt", encoding="utf-8", newline="") as fh:
            df.to_csv(fh, index=False)

    return apply


# (name, defect, file the problem is in, column or None for file-level problems)
DEFECTS: list[tuple[str, Callable[[Path], None], str, str | None]] = [
    ("clients_missing_table", _remove("clients"), "clients", None),
    (
        "clients_missing_signup_date",
        _drop_col("clients", "signup_date"),
        "clients.csv",
        "signup_date",
    ),
    ("clients_empty_client_id", _set("clients", "client_id", ""), "clients.csv", "client_id"),
    ("clients_duplicate_client_id", _dup_key("clients", "client_id"), "clients.csv", "client_id"),
    (
        "clients_client_id_differs_only_in_case_and_spaces",
        _near_dup_key("clients", "client_id"),
        "clients.csv",
        "client_id",
    ),
    (
        "clients_signup_not_a_date",
        _set("clients", "signup_date", "yesterday"),
        "clients.csv",
        "signup_date",
    ),
    (
        "clients_signup_us_format",
        _set("clients", "signup_date", "03/01/2024"),
        "clients.csv",
        "signup_date",
    ),
    (
        "clients_negative_revenue",
        _set("clients", "monthly_revenue", "-5"),
        "clients.csv",
        "monthly_revenue",
    ),
    (
        "clients_revenue_text",
        _set("clients", "monthly_revenue", "a lot"),
        "clients.csv",
        "monthly_revenue",
    ),
    (
        "clients_future_signup",
        _set("clients", "signup_date", "2999-01-01"),
        "clients.csv",
        "signup_date",
    ),
    ("clients_header_only", _header_only("clients"), "clients.csv", "client_id"),
    (
        "clients_uppercase_header",
        _rename_col("clients", "client_id", "Client_ID"),
        "clients.csv",
        "client_id",
    ),
    ("campaigns_missing_table", _remove("campaign_events"), "campaign_events", None),
    (
        "campaigns_missing_event",
        _drop_col("campaign_events", "event"),
        "campaign_events.csv",
        "event",
    ),
    (
        "campaigns_bad_event",
        _set("campaign_events", "event", "frozen"),
        "campaign_events.csv",
        "event",
    ),
    (
        "campaigns_bad_initiator",
        _set("campaign_events", "initiator", "robot"),
        "campaign_events.csv",
        "initiator",
    ),
    (
        "campaigns_bad_ts",
        _set("campaign_events", "ts", "2024-13-45T99:00"),
        "campaign_events.csv",
        "ts",
    ),
    ("campaigns_empty_ts", _set("campaign_events", "ts", ""), "campaign_events.csv", "ts"),
    (
        "campaigns_unknown_client",
        _set("campaign_events", "client_id", "ghost"),
        "campaign_events.csv",
        "client_id",
    ),
    (
        "campaigns_negative_budget",
        _set("campaign_events", "daily_budget", "-1"),
        "campaign_events.csv",
        "daily_budget",
    ),
    (
        "campaigns_budget_text",
        _set("campaign_events", "daily_budget", "ten"),
        "campaign_events.csv",
        "daily_budget",
    ),
    (
        "campaigns_future_ts",
        _set("campaign_events", "ts", "2999-01-01T00:00:00"),
        "campaign_events.csv",
        "ts",
    ),
    (
        "campaigns_empty_campaign_id",
        _set("campaign_events", "campaign_id", ""),
        "campaign_events.csv",
        "campaign_id",
    ),
    (
        "campaigns_empty_client_id",
        _set("campaign_events", "client_id", "  "),
        "campaign_events.csv",
        "client_id",
    ),
    (
        "campaigns_budget_nan",
        _set("campaign_events", "daily_budget", "NaN"),
        "campaign_events.csv",
        "daily_budget",
    ),
    ("invoices_missing_table", _remove("invoices"), "invoices", None),
    ("invoices_duplicate_id", _dup_key("invoices", "invoice_id"), "invoices.csv", "invoice_id"),
    ("invoices_zero_amount", _set("invoices", "amount", "0"), "invoices.csv", "amount"),
    ("invoices_negative_amount", _set("invoices", "amount", "-10"), "invoices.csv", "amount"),
    (
        "invoices_paid_before_issued",
        _set("invoices", "paid_at", "2023-12-01T00:00:00"),
        "invoices.csv",
        "paid_at",
    ),
    (
        "invoices_due_before_issued",
        _set("invoices", "due_at", "2024-01-01"),
        "invoices.csv",
        "due_at",
    ),
    ("invoices_bad_due_at", _set("invoices", "due_at", "2024-02-30"), "invoices.csv", "due_at"),
    ("invoices_missing_amount", _drop_col("invoices", "amount"), "invoices.csv", "amount"),
    (
        "invoices_unknown_client",
        _set("invoices", "client_id", "ghost"),
        "invoices.csv",
        "client_id",
    ),
    ("invoices_bad_paid_at", _set("invoices", "paid_at", "paid"), "invoices.csv", "paid_at"),
    ("invoices_empty_amount", _set("invoices", "amount", ""), "invoices.csv", "amount"),
    ("contacts_bad_channel", _set("contacts", "channel", "pigeon"), "contacts.csv", "channel"),
    (
        "contacts_bad_direction",
        _set("contacts", "direction", "sideways"),
        "contacts.csv",
        "direction",
    ),
    (
        "contacts_missing_direction",
        _drop_col("contacts", "direction"),
        "contacts.csv",
        "direction",
    ),
    ("contacts_empty_channel", _set("contacts", "channel", ""), "contacts.csv", "channel"),
    ("contacts_bad_ts", _set("contacts", "ts", "tuesday"), "contacts.csv", "ts"),
    ("contacts_channel_uppercase", _set("contacts", "channel", "CALL"), "contacts.csv", "channel"),
    ("spend_negative", _set("spend", "spend", "-3"), "spend.csv", "spend"),
    ("spend_bad_date", _set("spend", "date", "2024/01/02"), "spend.csv", "date"),
    ("spend_negative_clicks", _set("spend", "clicks", "-1"), "spend.csv", "clicks"),
    (
        "freezes_unfrozen_before_frozen",
        _set("freezes", "unfrozen_at", "2024-01-01T00:00:00"),
        "freezes.csv",
        "unfrozen_at",
    ),
    ("freezes_bad_frozen_at", _set("freezes", "frozen_at", "soon"), "freezes.csv", "frozen_at"),
    ("freezes_missing_frozen_at", _drop_col("freezes", "frozen_at"), "freezes.csv", "frozen_at"),
    ("activity_missing_event", _drop_col("activity", "event"), "activity.csv", "event"),
    (
        "activity_unknown_client",
        _set("activity", "client_id", "ghost"),
        "activity.csv",
        "client_id",
    ),
    ("activity_value_text", _set("activity", "value", "high"), "activity.csv", "value"),
    (
        "assignments_bad_from_date",
        _set("assignments", "from_date", "01.02.2024"),
        "assignments.csv",
        "from_date",
    ),
    (
        "campaigns_not_utf8",
        _raw_bytes(
            "campaign_events", b"client_id,campaign_id,ts,event\n\xff\xfe,k,2024-01-01,started\n"
        ),
        "campaign_events.csv",
        None,
    ),
    (
        "campaigns_too_many_fields",
        _append_line("campaign_events", "c1,k1,2024-01-05T00:00:00,started,client,,10,extra,more"),
        "campaign_events.csv",
        None,
    ),
    (
        "campaigns_unterminated_quote",
        _append_line("campaign_events", 'c1,"k1,2024-01-05T00:00:00,started,client,,10'),
        "campaign_events.csv",
        None,
    ),
    (
        "invoices_parquet_amount_text",
        _parquet_string_col("invoices", "amount", "lots"),
        "invoices.parquet",
        "amount",
    ),
    (
        "invoices_parquet_bad_issued_at",
        _parquet_string_col("invoices", "issued_at", "2024-99-01"),
        "invoices.parquet",
        "issued_at",
    ),
    ("contacts_corrupt_parquet", _corrupt_parquet("contacts"), "contacts.parquet", None),
    ("clients_csv_and_parquet", _both_formats("clients"), "clients", None),
    ("contacts_gzip_garbage", _gz_garbage("contacts"), "contacts.csv.gz", None),
    (
        "contacts_gzip_bad_direction",
        _gz_ok_then_set("contacts", "direction", "up"),
        "contacts.csv.gz",
        "direction",
    ),
]


def make_bad_cases(base_dir: Path) -> list[tuple[str, Path, str, str | None]]:
    """Write one broken data directory per defect under ``base_dir``.

    Returns
    -------
    list of (case_name, data_dir, expected_file, expected_column)
        ``expected_file`` is a file name (or table name for a missing/ambiguous table)
        that the error must mention; ``expected_column`` is None for file-level problems.
    """
    base_dir = Path(base_dir)
    valid = make_valid_dir(base_dir / "_valid")
    cases = []
    for name, defect, file, column in DEFECTS:
        d = base_dir / name
        if d.exists():
            shutil.rmtree(d)
        shutil.copytree(valid, d)
        defect(d)
        cases.append((name, d, file, column))
    return cases
