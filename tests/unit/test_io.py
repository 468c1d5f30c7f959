"""Atomic writes, the output lock, and spreadsheet-safe CSV."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

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
