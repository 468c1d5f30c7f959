"""Atomic writes, the output lock, and spreadsheet-safe CSV."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from churnpredict.errors import LockedError
from churnpredict.io import (
    atomic_write_bytes,
    atomic_write_csv,
    atomic_write_text,
    atomic_writer,
    lock_path,
    neutralize_formulas,
    output_lock,
    read_csv_any,
)


def test_formula_cells_are_quoted_numbers_are_not():
    df = pd.DataFrame(
        {
            "name": ['=HYPERLINK("x")', "+7 999", "-5", "@SUM(A1)", "\tx", "\rx", "ok", None],
            "risk": [0.5, 0.1, -0.5, 0.0, 1.0, 0.2, 0.3, 0.4],
        }
    )
    out = neutralize_formulas(df)
    assert out["name"].tolist()[:7] == [
        '\'=HYPERLINK("x")',
        "'+7 999",
        "'-5",
        "'@SUM(A1)",
        "'\tx",
        "'\rx",
        "ok",
    ]
    assert pd.isna(out["name"].iloc[7])
    assert out["risk"].tolist() == df["risk"].tolist()  # numbers stay numbers, even -0.5


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_csv_bom_separator_and_roundtrip(tmp_path, sep):
    df = pd.DataFrame(
        {"client_id": ["c1", "-c2"], "client_name": ["Ромашка, ООО", "=1+1"], "risk": [0.9, 0.1]}
    )
    p = atomic_write_csv(
        df, tmp_path / "list.csv", sep=sep, bom=True, columns=["risk", "client_id", "client_name"]
    )
    raw = p.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    header = raw[3:].decode("utf-8").splitlines()[0]
    assert header == sep.join(["risk", "client_id", "client_name"])
    assert "'=1+1" in raw.decode("utf-8")
    back = read_csv_any(p, dtype={"client_id": str})
    assert back["client_name"].tolist() == ["Ромашка, ООО", "=1+1"]
    assert back["client_id"].tolist() == ["c1", "-c2"]
    assert back["risk"].tolist() == [0.9, 0.1]


def test_no_bom_when_disabled(tmp_path):
    p = atomic_write_csv(pd.DataFrame({"a": [1]}), tmp_path / "x.csv", bom=False)
    assert p.read_bytes() == b"a\n1\n"


def test_crash_mid_write_keeps_previous_file(tmp_path):
    target = tmp_path / "calls.csv"
    atomic_write_text(target, "old list\n")
    with pytest.raises(RuntimeError), atomic_writer(target) as fh:
        fh.write(b"half of the new li")
        raise RuntimeError("killed")
    assert target.read_text() == "old list\n"
    assert [p.name for p in tmp_path.iterdir()] == ["calls.csv"]  # no temp file left


def test_killed_process_keeps_previous_file(tmp_path):
    target = tmp_path / "calls.csv"
    atomic_write_text(target, "old list\n")
    code = textwrap.dedent(
        f"""
        import os, signal
        from churnpredict.io import atomic_writer
        with atomic_writer({str(target)!r}) as fh:
            fh.write(b"x" * 100000)
            fh.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False)
    assert proc.returncode != 0
    assert target.read_text() == "old list\n"
    # the next successful write replaces it and sweeps the stale temp file
    atomic_write_text(target, "new list\n")
    assert target.read_text() == "new list\n"
    assert sorted(os.listdir(tmp_path)) == ["calls.csv"]


def test_lock_second_holder_fails_fast(tmp_path):
    out = tmp_path / "calls.csv"
    with output_lock(out) as lp:
        assert lp == lock_path(out)
        with pytest.raises(LockedError) as err, output_lock(out):
            pass
        assert str(lock_path(out)) in str(err.value)
        assert err.value.exit_code == 4
    with output_lock(out):  # released: can be taken again
        pass


def test_lock_held_by_another_process(tmp_path):
    out = tmp_path / "calls.csv"
    code = textwrap.dedent(
        f"""
        import sys, time
        from churnpredict.io import output_lock
        with output_lock({str(out)!r}):
            print("locked", flush=True)
            sys.stdin.readline()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(LockedError), output_lock(out):
            pass
    finally:
        proc.communicate("\n", timeout=30)
    with output_lock(out):
        pass


def test_atomic_write_gives_normal_permissions(tmp_path):
    import os
    import stat

    target = tmp_path / "list.csv"
    atomic_write_bytes(target, b"x")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    os.chmod(target, 0o640)
    atomic_write_bytes(target, b"y")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


# ---------------------------------------------------------------- hostile text (issue 17)
HOSTILE = [
    "Anna\r@SUM(1+1)",  # a bare CR: unquoted, every reader split the row here
    "Anna\n=1+1",
    "Anna\r\n+1",
    'say "hi"',
    "a,b;c\td|e",
    '=HYPERLINK("http://x")',
    "+7 999",
    "-5",
    "@SUM(A1)",
    "\tTab",
    "\rCR first",
    "plain",
]


def _read_back_csv(path, sep):
    import csv
    import io as _io

    text = path.read_bytes().decode("utf-8-sig")
    return list(csv.reader(_io.StringIO(text, newline=""), delimiter=sep, strict=True))


@pytest.mark.parametrize("sep", [",", ";"])
def test_hostile_text_stays_in_its_row_and_never_starts_a_formula(tmp_path, sep):
    import duckdb

    n = len(HOSTILE)
    df = pd.DataFrame(
        {
            "rank": range(1, n + 1),
            "client_id": [f"c{i}" for i in range(n)],
            "client_name": HOSTILE,
            "account_manager": list(reversed(HOSTILE)),
            "risk": [0.5] * n,
        }
    )
    p = atomic_write_csv(df, tmp_path / "list.csv", sep=sep)
    rows = _read_back_csv(p, sep)
    assert rows[0] == list(df.columns)
    assert len(rows) == n + 1 and {len(r) for r in rows} == {5}
    assert [r[1] for r in rows[1:]] == df["client_id"].tolist()  # row-aligned
    for r in rows[1:]:
        for cell in (r[2], r[3]):
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    # the text itself survives (after the quote that marks formula cells as text)
    back = [c[1:] if c.startswith("'") else c for c in (r[2] for r in rows[1:])]
    assert back == HOSTILE
    # DuckDB, strict RFC 4180 reader, sees the same rows
    con = duckdb.connect()
    got = con.execute(
        f"SELECT client_id, client_name FROM read_csv('{p}', header=true, delim='{sep}', "
        "quote='\"', escape='\"', strict_mode=true, all_varchar=true) ORDER BY rank::INT"
    ).fetchall()
    assert [g[0] for g in got] == df["client_id"].tolist()
    assert got[0][1] == "Anna\r@SUM(1+1)"
    # and pandas through read_csv_any (used for the previous list)
    again = read_csv_any(p, dtype={"client_id": str})
    assert again["client_name"].tolist() == HOSTILE


def test_carriage_return_is_quoted_in_the_written_text():
    from churnpredict.io import to_csv_text

    text = to_csv_text(pd.DataFrame({"a": ["x\ry", "p\r\nq"], "b": [1, 2]}))
    assert text == 'a,b\n"x\ry",1\n"p\r\nq",2\n'


def test_overlong_cell_is_cut_to_the_spreadsheet_limit(tmp_path, caplog):
    from churnpredict.io import MAX_CELL_CHARS

    df = pd.DataFrame({"client_id": ["c1", "c2"], "client_name": ["x" * 10_000_000, "ok"]})
    p = atomic_write_csv(df, tmp_path / "l.csv")
    rows = _read_back_csv(p, ",")
    assert len(rows[1][1]) == MAX_CELL_CHARS
    assert rows[1][1].endswith("[cut: 10,000,000 characters]")
    assert rows[2] == ["c2", "ok"]
    assert "cut" in caplog.text


def test_output_path_checks_create_nothing(tmp_path):
    from churnpredict.errors import OutputError
    from churnpredict.io import check_output_path

    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputError, match="is a file"):
        check_output_path(tmp_path / "afile" / "sub" / "l.csv", "--out")
    with pytest.raises(OutputError, match="is a folder"):
        check_output_path(tmp_path, "--out")
    check_output_path(tmp_path / "new" / "deeper" / "l.csv")
    assert not (tmp_path / "new").exists()


def test_full_disk_is_an_output_error_and_keeps_the_previous_file(tmp_path, monkeypatch):
    import errno

    from churnpredict.errors import OutputError

    target = tmp_path / "l.csv"
    atomic_write_text(target, "old\n")

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OutputError, match="No space left") as err:
        atomic_write_text(target, "new\n")
    assert err.value.exit_code == 2
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["l.csv"]


def test_a_set_is_staged_before_any_target_changes(tmp_path, monkeypatch):
    from churnpredict.io import atomic_write_set

    a, b, c = tmp_path / "full.csv", tmp_path / "by" / "x.csv", tmp_path / "by" / "y.csv"
    atomic_write_set([(a, b"old"), (b, b"old"), (c, b"old")])
    real_fdopen = os.fdopen
    calls = {"n": 0}

    def dying_fdopen(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:  # killed while writing the third file
            raise KeyboardInterrupt
        return real_fdopen(*args, **kwargs)

    monkeypatch.setattr(os, "fdopen", dying_fdopen)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_set([(a, b"new"), (b, b"new"), (c, b"new")])
    monkeypatch.undo()
    assert [p.read_bytes() for p in (a, b, c)] == [b"old"] * 3
    assert not list(tmp_path.rglob("*.tmp"))
    renamed = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda s, d: (renamed.append(Path(d)), real_replace(s, d)))
    atomic_write_set([(a, b"new"), (b, b"new"), (c, b"new")])
    assert renamed == [b, c, a]  # the full list last
    assert [p.read_bytes() for p in (a, b, c)] == [b"new"] * 3


def test_lock_message_does_not_advise_deleting_the_lock(tmp_path):
    out = tmp_path / "l.csv"
    with output_lock(out), pytest.raises(LockedError) as err, output_lock(out):
        pass
    assert "do not delete" in str(err.value)
