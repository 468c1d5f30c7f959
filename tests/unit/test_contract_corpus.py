"""Every broken data directory of the corpus is caught, named, and never crashes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnpredict.config import Config
from churnpredict.contract import load_dataset, validate
from churnpredict.errors import DataError
from tests.bad_corpus import DEFECTS, TABLES, make_bad_cases, make_valid_dir, valid_frames

CFG = Config()


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> dict[str, tuple[Path, str, str | None]]:
    base = tmp_path_factory.mktemp("bad")
    return {name: (d, f, c) for name, d, f, c in make_bad_cases(base)}


def test_corpus_is_large_enough():
    assert len(DEFECTS) >= 40
    assert len({name for name, *_ in DEFECTS}) == len(DEFECTS)


@pytest.mark.parametrize("name", [d[0] for d in DEFECTS])
def test_validate_reports_file_and_column(cases, name):
    data_dir, file, column = cases[name]
    report = validate(data_dir, CFG)
    assert not report.usable
    hits = [p for p in report.errors if file in p.file and (column is None or p.column == column)]
    assert hits, report.render_text()
    text = report.render_text()
    assert file in text
    if column is not None:
        assert f"column {column}" in text
    json.dumps(report.to_dict())  # --format json must serialise


@pytest.mark.parametrize("name", [d[0] for d in DEFECTS])
def test_strict_load_raises_naming_file_and_column(cases, name, tmp_path):
    data_dir, file, column = cases[name]
    with pytest.raises(DataError) as info:
        load_dataset(data_dir, CFG, policy="strict", quarantine_dir=tmp_path / "q")
    msg = str(info.value)
    assert file in msg
    assert file in (info.value.file or "")
    if column is not None:
        assert column in msg
        assert info.value.column == column
    assert not (tmp_path / "q").exists()  # strict never writes a quarantine


# a representative fast subset; the whole corpus runs under the slow marker
_LENIENT_FAST = {
    "clients_negative_revenue",
    "campaigns_bad_event",
    "invoices_duplicate_id",
    "contacts_bad_ts",
    "spend_negative",
    "clients_missing_signup_date",
    "campaigns_not_utf8",
}


@pytest.mark.parametrize(
    "name",
    [
        d[0] if d[0] in _LENIENT_FAST else pytest.param(d[0], marks=pytest.mark.slow)
        for d in DEFECTS
    ],
)
def test_lenient_load_balances_rows(cases, name, tmp_path):
    data_dir, _, _ = cases[name]
    try:
        ds = load_dataset(data_dir, CFG, policy="lenient", quarantine_dir=tmp_path)
    except DataError as err:  # table-level problems stop even a lenient load
        assert err.file
        return
    for t in ds.report.tables.values():
        assert t.rows_accepted + t.rows_quarantined == t.rows_read
        if t.rows_quarantined:
            q = pd.read_csv(tmp_path / f"{t.table}.quarantine.csv", dtype=str)
            assert len(q) == t.rows_quarantined
            assert q["problem"].notna().all()
        if t.present:
            n = ds.con.execute(f'SELECT count(*) FROM "{t.table}"').fetchone()[0]
            assert n == t.rows_accepted - t.rows_duplicate
    assert ds.report.errors  # the defect was counted


# ------------------------------------------------------------------- random mutations
_TEXT = st.sampled_from(
    [
        "",
        " ",
        "x",
        "-1",
        "0",
        "1e309",
        "NaN",
        "2024-02-30",
        "2999-01-01",
        "2024-01-01T25:00",
        "c1",
        "ghost",
        "paused",
        "inbound",
        "\u00e9\u00e8",
        '"',
        "a,b",
        "2024-01-03T10:00:00+03:00",
    ]
)


@st.composite
def mutations(draw):
    frames = valid_frames()
    table = draw(st.sampled_from(TABLES))
    df = frames[table]
    kind = draw(st.sampled_from(["cell", "drop_col", "drop_rows", "dup_row", "rename"]))
    col = draw(st.sampled_from(list(df.columns)))
    row = draw(st.integers(0, len(df) - 1))
    value = draw(_TEXT)
    return table, kind, col, row, value


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(muts=st.lists(mutations(), min_size=1, max_size=3), fmt=st.sampled_from(["csv", "parquet"]))
def test_random_mutations_give_clean_report_or_data_error(tmp_path, muts, fmt):
    d = tmp_path / "m"
    if d.exists():
        shutil.rmtree(d)
    d.mkdir()
    frames = valid_frames()
    for table, kind, col, row, value in muts:
        df = frames[table]
        if col not in df.columns:
            continue
        row = min(row, len(df) - 1)
        if row < 0 and kind in ("cell", "dup_row"):
            continue
        if kind == "cell":
            df.loc[row, col] = value
        elif kind == "drop_col":
            df = df.drop(columns=[col])
        elif kind == "drop_rows":
            df = df.iloc[:row]
        elif kind == "dup_row":
            df = pd.concat([df, df.iloc[[row]]], ignore_index=True)
        elif kind == "rename":
            df = df.rename(columns={col: col.upper() if value == "" else value})
        frames[table] = df
    for table, df in frames.items():
        if fmt == "csv":
            df.to_csv(d / f"{table}.csv", index=False)
        else:
            df.astype(object).to_parquet(d / f"{table}.parquet", index=False)
    report = validate(d, CFG)  # never raises
    try:
        ds = load_dataset(d, CFG)
    except DataError:
        assert not report.usable
        return
    assert report.usable
    assert ds.report.usable
    for t in ds.report.tables.values():
        assert t.rows_accepted + t.rows_quarantined == t.rows_read


def test_valid_dir_survives_the_same_checks(tmp_path):
    d = make_valid_dir(tmp_path / "v")
    assert validate(d, CFG).usable
