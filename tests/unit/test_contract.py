"""Loading and validating data directories: formats, types, rules, policies."""

from __future__ import annotations

import gzip
import json
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import pytest

from churnpredict.config import Config, build_config
from churnpredict.contract import CONTRACT_TABLES, load_dataset, validate
from churnpredict.errors import DataError
from tests.bad_corpus import make_valid_dir, valid_frames

CFG = Config()


def _types(ds, table: str) -> dict[str, str]:
    rows = ds.con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return dict(rows)


def _write(d: Path, frames: dict[str, pd.DataFrame], **kw) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, df in frames.items():
        df.to_csv(d / f"{name}.csv", index=False, **kw)
    return d


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_valid_dir_loads_with_contract_types(tmp_path, fmt):
    ds = load_dataset(make_valid_dir(tmp_path / fmt, fmt), CFG)
    assert ds.report.usable and not ds.report.errors and not ds.report.warnings
    assert ds.present == set(CONTRACT_TABLES)
    for name, spec in CONTRACT_TABLES.items():
        assert _types(ds, name) == {c.name: c.type for c in spec.columns}
        n = ds.con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
        assert n == len(valid_frames()[name])
    assert ds.data_end == pd.Timestamp("2024-03-01 12:00:00")
    assert ds.data_start == pd.Timestamp("2024-01-02 00:00:00")
    assert ds.files["clients"].endswith(f"clients.{fmt}")


def test_offsets_become_naive_utc_and_dates_midnight(tmp_path):
    ds = load_dataset(make_valid_dir(tmp_path / "v"), CFG)
    got = ds.con.execute(
        "SELECT ts FROM campaign_events WHERE client_id = 'c1' AND event = 'paused'"
    ).fetchone()[0]
    assert got == datetime(2024, 2, 1, 5, 30)  # 08:30+03:00
    got = ds.con.execute("SELECT ts FROM campaign_events WHERE client_id = 'c3'").fetchone()[0]
    assert got == datetime(2024, 2, 2)  # a bare date is midnight
    got = ds.con.execute("SELECT paid_at FROM invoices WHERE invoice_id = 'i3'").fetchone()[0]
    assert got == datetime(2024, 2, 5, 19, 0)  # 2024-02-06T00:00+05:00


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_bom_and_other_separators(tmp_path, sep):
    d = _write(tmp_path / "d", valid_frames(), sep=sep, encoding="utf-8-sig")
    ds = load_dataset(d, CFG)
    assert ds.con.execute("SELECT name FROM clients WHERE client_id = 'c3'").fetchone()[0] == (
        "Gamma, Inc."
    )
    assert (
        ds.con.execute("SELECT name FROM clients WHERE client_id = 'c2'").fetchone()[0] == "Бета"
    )


def test_fixed_separator_from_config(tmp_path):
    d = _write(tmp_path / "d", valid_frames(), sep=";")
    cfg = build_config({"data": {"csv_separator": ";"}})
    assert load_dataset(d, cfg).report.usable
    bad = build_config({"data": {"csv_separator": ","}})
    with pytest.raises(DataError, match="missing"):
        load_dataset(d, bad)


def test_gzip_and_folder_of_parts(tmp_path):
    frames = valid_frames()
    d = _write(
        tmp_path / "d",
        {k: v for k, v in frames.items() if k not in ("campaign_events", "invoices")},
    )
    with gzip.open(d / "invoices.csv.gz", "wt", encoding="utf-8", newline="") as fh:
        frames["invoices"].to_csv(fh, index=False)
    parts = d / "campaign_events"
    parts.mkdir()
    ce = frames["campaign_events"]
    ce.iloc[:3].to_csv(parts / "part-0.csv", index=False)
    with gzip.open(parts / "part-1.csv.gz", "wt", encoding="utf-8", newline="") as fh:
        ce.iloc[3:].to_csv(fh, index=False, sep=",")
    (parts / "_SUCCESS").write_text("")
    ds = load_dataset(d, CFG)
    assert ds.con.execute("SELECT count(*) FROM campaign_events").fetchone()[0] == len(ce)
    assert ds.con.execute("SELECT count(*) FROM invoices").fetchone()[0] == 3
    assert ds.files["campaign_events"].endswith("campaign_events/")


def test_line_numbers_in_examples_of_a_part_file(tmp_path):
    frames = valid_frames()
    d = _write(tmp_path / "d", {k: v for k, v in frames.items() if k != "contacts"})
    parts = d / "contacts"
    parts.mkdir()
    c = frames["contacts"].copy()
    c.loc[3, "channel"] = "pigeon"
    c.iloc[:2].to_csv(parts / "a.csv", index=False)
    c.iloc[2:].to_csv(parts / "b.csv", index=False)
    report = validate(d, CFG)
    (p,) = report.errors
    assert p.column == "channel" and p.count == 1
    assert p.examples[0].startswith(str(Path("contacts") / "b.csv") + " line 3:")


def test_parquet_with_wrong_but_castable_types(tmp_path):
    d = make_valid_dir(tmp_path / "d", "parquet")
    inv = valid_frames()["invoices"].astype(object).replace("", None)  # all strings
    inv.to_parquet(d / "invoices.parquet", index=False)
    ce = pd.read_parquet(d / "campaign_events.parquet")
    ce["ts"] = ce["ts"].dt.tz_localize("UTC").dt.tz_convert("Europe/Moscow")  # tz-aware
    ce.to_parquet(d / "campaign_events.parquet", index=False)
    ds = load_dataset(d, CFG)
    assert _types(ds, "invoices")["amount"] == "DOUBLE"
    assert ds.con.execute("SELECT sum(amount) FROM invoices").fetchone()[0] == 2630.75
    got = ds.con.execute("SELECT min(ts) FROM campaign_events").fetchone()[0]
    assert got == datetime(2024, 1, 2, 9, 0)


def test_missing_optional_columns_are_null_and_extra_dropped(tmp_path):
    frames = valid_frames()
    frames["clients"] = frames["clients"][["client_id", "signup_date"]].assign(extra="x")
    d = _write(tmp_path / "d", frames)
    ds = load_dataset(d, CFG)
    assert list(_types(ds, "clients")) == [c.name for c in CONTRACT_TABLES["clients"].columns]
    assert _types(ds, "clients")["monthly_revenue"] == "DOUBLE"
    assert ds.con.execute("SELECT count(monthly_revenue) FROM clients").fetchone()[0] == 0


def test_absent_optional_tables_are_empty_and_not_present(tmp_path):
    frames = valid_frames()
    for t in ("spend", "freezes", "assignments", "activity", "staff"):
        del frames[t]
    ds = load_dataset(_write(tmp_path / "d", frames), CFG)
    assert ds.present == {"clients", "campaign_events", "invoices", "contacts"}
    assert ds.con.execute("SELECT count(*) FROM freezes").fetchone()[0] == 0
    assert _types(ds, "freezes") == {
        "client_id": "VARCHAR",
        "frozen_at": "TIMESTAMP",
        "unfrozen_at": "TIMESTAMP",
    }


def test_empty_optional_table_is_a_warning(tmp_path):
    frames = valid_frames()
    frames["activity"] = frames["activity"].iloc[:0]
    ds = load_dataset(_write(tmp_path / "d", frames), CFG)
    assert ds.report.usable
    assert [p.code for p in ds.report.warnings] == ["empty_table"]


def test_exact_duplicates_are_counted_and_dropped_once(tmp_path):
    frames = valid_frames()
    ce = frames["campaign_events"]
    frames["campaign_events"] = pd.concat([ce, ce.iloc[[0, 0, 1]]], ignore_index=True)
    d = _write(tmp_path / "d", frames)
    report = validate(d, CFG)
    assert report.usable
    t = report.tables["campaign_events"]
    assert (t.rows_read, t.rows_accepted, t.rows_duplicate) == (len(ce) + 3, len(ce) + 3, 3)
    ds = load_dataset(d, CFG)
    assert ds.con.execute("SELECT count(*) FROM campaign_events").fetchone()[0] == len(ce)
    assert ds.report.tables["campaign_events"].rows_duplicate == 3


def test_events_before_signup_are_kept_with_a_warning(tmp_path):
    frames = valid_frames()
    frames["contacts"].loc[0, "ts"] = "2023-06-01T00:00:00"
    ds = load_dataset(_write(tmp_path / "d", frames), CFG)
    (w,) = ds.report.warnings
    assert (w.code, w.column, w.count) == ("before_signup", "ts", 1)
    assert ds.con.execute("SELECT count(*) FROM contacts").fetchone()[0] == 4


def test_future_tolerance_is_relative_to_today(tmp_path):
    frames = valid_frames()
    frames["contacts"].loc[0, "ts"] = "2025-06-01T00:00:00"
    d = _write(tmp_path / "d", frames)
    assert validate(d, CFG, today=date(2024, 12, 31)).usable  # within 366 days
    report = validate(d, CFG, today=date(2024, 3, 1))
    assert [(p.code, p.column) for p in report.errors] == [("future", "ts")]


def test_strict_error_carries_the_full_report(tmp_path):
    frames = valid_frames()
    frames["invoices"].loc[1, "amount"] = "-3"
    with pytest.raises(DataError) as info:
        load_dataset(_write(tmp_path / "d", frames), CFG)
    err = info.value
    assert err.column == "amount" and err.file.endswith("invoices.csv")
    assert "invoices.csv line 3" in err.examples[0]
    assert "Result: NOT USABLE" in str(err) and "expected: a number greater than 0" in str(err)


def test_lenient_quarantine_file(tmp_path):
    frames = valid_frames()
    frames["invoices"].loc[1, "amount"] = "-3"
    frames["invoices"].loc[2, "due_at"] = "soon"
    q = tmp_path / "q"
    ds = load_dataset(_write(tmp_path / "d", frames), CFG, policy="lenient", quarantine_dir=q)
    t = ds.report.tables["invoices"]
    assert (t.rows_read, t.rows_accepted, t.rows_quarantined) == (3, 1, 2)
    got = pd.read_csv(q / "invoices.quarantine.csv", dtype=str)
    assert list(got.columns[:6]) == list(frames["invoices"].columns)
    assert got["problem"].tolist() == ["amount: not above 0", "due_at: cannot be read as date"]
    assert got["source_line"].tolist() == ["3", "4"]
    assert ds.con.execute("SELECT invoice_id FROM invoices").fetchall() == [("i1",)]
    assert "rejected" in ds.report.render_text()


def test_lenient_without_quarantine_dir_still_counts(tmp_path):
    frames = valid_frames()
    frames["contacts"].loc[0, "direction"] = "up"
    ds = load_dataset(_write(tmp_path / "d", frames), CFG, policy="lenient")
    assert ds.report.tables["contacts"].rows_quarantined == 1
    assert ds.report.tables["contacts"].quarantine_file is None


def test_declared_event_table_and_derived_clients(tmp_path):
    d = tmp_path / "shop"
    d.mkdir()
    pd.DataFrame(
        {
            "customer": ["u1", "u1", "u2"],
            "day": ["2024-01-03", "2024-01-05", "2024-01-04"],
            "kind": ["buy", "return", "buy"],
            "total": ["10", "5.5", ""],
            "junk": ["a", "b", "c"],
        }
    ).to_csv(d / "purchases.csv", index=False)
    cfg = build_config(
        {
            "data": {
                "required_tables": [],
                "derive_clients_from": "purchases",
                "event_tables": {
                    "purchases": {
                        "key": "customer",
                        "ts": "day",
                        "categories": ["kind"],
                        "numerics": ["total"],
                    }
                },
            }
        }
    )
    ds = load_dataset(d, cfg)
    assert ds.present == {"purchases", "clients"}
    assert _types(ds, "purchases") == {
        "client_id": "VARCHAR",
        "ts": "TIMESTAMP",
        "kind": "VARCHAR",
        "total": "DOUBLE",
    }
    assert ds.con.execute("SELECT client_id, signup_date FROM clients ORDER BY 1").fetchall() == [
        ("u1", date(2024, 1, 3)),
        ("u2", date(2024, 1, 4)),
    ]
    assert ds.data_end == pd.Timestamp("2024-01-05")
    assert ds.con.execute("SELECT count(*) FROM campaign_events").fetchone()[0] == 0


def test_declared_table_missing_column_names_the_config_name(tmp_path):
    d = make_valid_dir(tmp_path / "d")
    pd.DataFrame({"client_id": ["c1"], "when": ["2024-01-03"]}).to_csv(
        d / "logins.csv", index=False
    )
    cfg = build_config({"data": {"event_tables": {"logins": {"ts": "at"}}}})
    with pytest.raises(DataError, match="'at' is missing"):
        load_dataset(d, cfg)


def test_required_tables_follow_the_config(tmp_path):
    frames = valid_frames()
    del frames["contacts"], frames["spend"]
    d = _write(tmp_path / "d", frames)
    with pytest.raises(DataError, match="contacts"):
        load_dataset(d, CFG)
    cfg = build_config({"data": {"required_tables": ["clients", "campaign_events", "invoices"]}})
    assert load_dataset(d, cfg).report.usable
    cfg = build_config({"data": {"required_tables": ["clients", "spend"]}})
    assert not validate(d, cfg).usable


def test_report_to_dict_is_json(tmp_path):
    frames = valid_frames()
    frames["contacts"].loc[0, "channel"] = "fax"
    out = validate(_write(tmp_path / "d", frames), CFG).to_dict()
    json.dumps(out)
    assert out["usable"] is False
    (p,) = out["tables"]["contacts"]["problems"]
    assert p["column"] == "channel" and p["count"] == 1 and p["examples"]


def test_missing_data_dir_is_a_data_error(tmp_path):
    assert not validate(tmp_path / "nope", CFG).usable
    with pytest.raises(DataError):
        load_dataset(tmp_path / "nope", CFG)


def test_duckdb_memory_cap_follows_the_environment(monkeypatch):
    from churnpredict.contract import MEMORY_ENV, connect, memory_limit

    monkeypatch.setenv(MEMORY_ENV, "3GB")
    assert memory_limit() == "3GB"
    got = connect().execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    assert got.startswith("2.7") and "GiB" in got  # 3 GB = 2.79 GiB
    monkeypatch.delenv(MEMORY_ENV)
    assert int(memory_limit().removesuffix("MB")) >= 2048


@pytest.mark.parametrize("pad", [0, 400])
def test_a_file_in_another_code_page_names_its_line(tmp_path, pad):
    """Windows-1251 names, early in the file or far beyond the first read chunk."""
    frames = valid_frames()
    clients = frames["clients"]
    filler = clients.iloc[[0] * pad].assign(client_id=[f"p{i}" for i in range(pad)])
    clients = pd.concat([filler, clients], ignore_index=True)
    d = _write(tmp_path / "d", {k: v for k, v in frames.items() if k != "clients"})
    clients.to_csv(d / "clients.csv", index=False, encoding="cp1251")
    line = 2 + pad + int(clients.iloc[pad:]["name"].tolist().index("Бета"))
    report = validate(d, CFG)
    [p] = [p for p in report.errors if p.table == "clients"]
    assert f"clients.csv line {line} has the bytes c1 e5 f2 e0" in p.message, p.message
    assert "UTF-8" in p.expected
    with pytest.raises(DataError, match=f"line {line}"):
        load_dataset(d, CFG)
