"""Fault injection: what an unwatched nightly cron run meets (issue 17).

Each test plays one operator fault against the real command line on a small simulated
world with its own MLflow store: hostile text, malformed CSV, the tracking server down,
unusable store URIs, a read-only store and a full disk (tmpfs, root only), kill -9 and
SIGTERM at several points, concurrent runs, the drift gate on unchanged and on broken
data, absurd dates and output paths, and JSON error lines.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "default.yaml"
TABLES = ("activity", "assignments", "campaign_events", "freezes", "invoices", "spend")
FORMULA = ("=", "+", "-", "@", "\t", "\r")

# runs the CLI with a fault point: before the first fsync (a file is being written) or
# when the feature build starts (lock held, nothing written yet); it touches
# $CP_FAULT_FLAG and sleeps there so that the test can kill it at that point
HARNESS = textwrap.dedent(
    """
    import os, sys, time
    point, flag = os.environ["CP_FAULT"], os.environ["CP_FAULT_FLAG"]

    def hold():
        open(flag, "w").close()
        time.sleep(120)

    if point == "fsync":
        real = os.fsync
        def fsync(fd):
            hold()
            real(fd)
        os.fsync = fsync
    elif point == "features":
        import churnpredict.pipeline as pl
        real_build = pl.build_features
        def build(*a, **k):
            hold()
            return real_build(*a, **k)
        pl.build_features = build
    from churnpredict.cli import main
    sys.argv = ["churnpredict", *sys.argv[1:]]
    main()
    """
)


def cli(store, *args, env=None, timeout=600, config=True):
    """Run the console script in a fresh process; return (exit code, stdout, stderr, s).

    ``store`` is a SQLite file (Path) or a tracking URI (str).
    """
    uri = store if isinstance(store, str) else f"sqlite:///{store}"
    full_env = {**os.environ, "MLFLOW_TRACKING_URI": uri, **(env or {})}
    cmd = [sys.executable, "-m", "churnpredict", *args]
    if config:
        cmd += ["--config", str(CONFIG)]
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=timeout)
    return p.returncode, p.stdout, p.stderr, time.monotonic() - t0


def _score(world: Path, out: Path) -> tuple[str, ...]:
    """The arguments of `score` for the world's last day into ``out``."""
    return ("score", "--data", str(world), "--as-of", _last_day(world), "--out", str(out))


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("faults") / "data"
    rc, so, se, _ = cli(
        out.parent / "unused.db",
        "simulate",
        "--out",
        str(out),
        "--clients",
        "800",
        "--days",
        "420",
        "--seed",
        "3",
    )
    assert rc == 0, se
    return out


@pytest.fixture(scope="module")
def store(world, tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("store") / "mlflow.db"
    rc, so, se, _ = cli(db, "train", "--data", str(world), "--reports", str(db.parent / "rep"))
    assert rc == 0, se
    assert "config:" in se and "tracking store:" in se and "data:" in se
    return db


def _last_day(world: Path) -> str:
    ts = pd.read_parquet(world / "contacts.parquet", columns=["ts"])["ts"].max()
    return str((pd.Timestamp(ts).normalize() + pd.Timedelta(days=1)).date())


def _copy_world(world: Path, dest: Path, skip=()) -> Path:
    dest.mkdir(parents=True)
    for t in (*TABLES, "clients", "contacts"):
        if t not in skip:
            (dest / f"{t}.parquet").symlink_to(world / f"{t}.parquet")
    return dest


def _rows(path: Path) -> list[list[str]]:
    text = path.read_bytes().decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text, newline=""), strict=True))


def _no_temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*.tmp")]


# ------------------------------------------------------------------------ hostile text
HOSTILE = [
    "Anna\r@SUM(1+1)",
    "Boris\n=1+1",
    "Vera\r\n+2",
    '=HYPERLINK("http://evil")',
    "+7 999",
    "-5",
    "@A1",
    "\tTab",
    "\rCR",
    'a,b;c "q"',
]


def test_hostile_names_give_a_formula_safe_row_aligned_list(world, store, tmp_path):
    data = _copy_world(world, tmp_path / "data", skip=("clients",))
    clients = pd.read_parquet(world / "clients.parquet")
    for i, text in enumerate(HOSTILE):
        clients.loc[i, "name"] = text
        clients.loc[len(HOSTILE) + i, "account_manager"] = text
    # a valid CSV (RFC 4180: CRLF lines, so every CR / LF inside a field is quoted)
    clients.to_csv(data / "clients.csv", index=False, lineterminator="\r\n")
    out = tmp_path / "lists" / "l.csv"
    rc, so, se, _ = cli(
        store, "score", "--data", str(data), "--as-of", _last_day(world), "--out", str(out)
    )
    assert rc == 0, se
    _check_safe_list(out)
    # the same names from Parquet, plus a 10 MB name (a spreadsheet cell holds 32,767)
    (data / "clients.csv").unlink()
    clients.loc[2 * len(HOSTILE), "name"] = "N" * 10_000_000
    clients.to_parquet(data / "clients.parquet", index=False)
    rc, so, se, _ = cli(
        store, "score", "--data", str(data), "--as-of", _last_day(world), "--out", str(out)
    )
    assert rc == 0, se
    assert "cut" in se
    rows = _check_safe_list(out)
    names = [r[rows[0].index("client_name")] for r in rows[1:]]
    assert any(n.startswith("NNNN") and n.endswith("[cut: 10,000,000 characters]") for n in names)


def _check_safe_list(out: Path) -> list[list[str]]:
    rows = _rows(out)
    header = rows[0]
    assert {len(r) for r in rows} == {len(header)}
    body = rows[1:]
    ids = [r[header.index("client_id")] for r in body]
    assert len(ids) == len(set(ids)) and all(i.startswith("C") for i in ids)
    for r in body:
        for col in ("client_name", "account_manager"):
            assert not r[header.index(col)].startswith(FORMULA), r[header.index(col)]
        assert len(r[header.index("client_name")]) <= 32_767
    con = duckdb.connect()
    n = con.execute(
        f"SELECT count(*) FROM read_csv('{out}', header=true, quote='\"', escape='\"', "
        "strict_mode=true, all_varchar=true)"
    ).fetchone()[0]
    assert n == len(body)
    return rows


def test_malformed_csv_exits_2_naming_file_and_line_and_creates_nothing(world, store, tmp_path):
    data = _copy_world(world, tmp_path / "data", skip=("clients",))
    pd.read_parquet(world / "clients.parquet").to_csv(data / "clients.csv", index=False)
    lines = (data / "clients.csv").read_text().split("\n")
    i = next(k for k in range(3, len(lines)) if '"' not in lines[k])
    cells = lines[i].split(",")
    cells[2] = "Anna\r@SUM(1+1)"  # a bare CR in an unquoted field (not RFC 4180)
    lines[i] = ",".join(cells)
    (data / "clients.csv").write_text("\n".join(lines), newline="")
    out = tmp_path / "new_folder" / "l.csv"
    for args in (["validate"], ["score", "--as-of", _last_day(world), "--out", str(out)]):
        rc, so, se, _ = cli(store, *args, "--data", str(data))
        assert rc == 2, se
        assert f"clients.csv line {i + 1}" in so + se
        assert "Traceback" not in se and "InvalidInputException" not in so + se
    assert not out.parent.exists()  # neither the folder nor a lock file


# ---------------------------------------------------------------------------- the store
def test_tracking_server_down_is_exit_6_within_seconds(world, tmp_path):
    out = tmp_path / "lists" / "l.csv"
    rc, so, se, sec = cli(
        "http://127.0.0.1:9",
        *_score(world, out),
    )
    assert rc == 6, se
    assert "http://127.0.0.1:9" in se and "no champion" not in se
    assert sec < 60
    assert not out.parent.exists()
    reports = tmp_path / "rep"
    rc, so, se, sec = cli(
        "http://127.0.0.1:9", "train", "--data", str(world), "--reports", str(reports)
    )
    assert rc == 6 and sec < 60, se  # before the long work
    assert not reports.exists()


def test_log_json_error_lines_are_json(world, tmp_path):
    rc, so, se, _ = cli(
        "http://127.0.0.1:9",
        "--log-json",
        *_score(world, tmp_path / "l.csv"),
    )
    assert rc == 6
    lines = [json.loads(line) for line in se.strip().splitlines()]
    assert lines[-1]["level"] == "error" and lines[-1]["exit_code"] == 6
    assert "127.0.0.1:9" in lines[-1]["message"]
    assert any(line["message"].startswith("config: ") for line in lines)


@pytest.mark.parametrize("uri", ["file:///tmp/cp-nowhere", "bogus://x"])
def test_unusable_store_uris_are_exit_6(world, tmp_path, uri):
    rc, so, se, _ = cli(
        uri,
        *_score(world, tmp_path / "l.csv"),
    )
    assert rc == 6, se
    assert uri in se and "Traceback" not in se and "internal error" not in se


def test_misspelt_sqlite_store_is_not_created(world, store, tmp_path):
    typo = store.parent / "mlfow.db"
    rc, so, se, _ = cli(
        typo,
        *_score(world, tmp_path / "l.csv"),
    )
    assert rc == 3 and "does not exist" in se and "misspelt" in se
    assert not typo.exists()
    rc, so, se, _ = cli(typo, "models")
    assert rc == 0 and not typo.exists()
    rc, so, se, _ = cli(
        tmp_path / "no" / "such" / "mlflow.db",
        "train",
        "--data",
        str(world),
        "--reports",
        str(tmp_path / "rep"),
    )
    assert rc == 6 and "does not exist" in se


def _tmpfs(path: Path, size: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs (read-only store / full disk faults)")
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if r.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")


def test_read_only_store_is_exit_6_before_training(world, store, tmp_path):
    mnt = tmp_path / "ro"
    _tmpfs(mnt, "64m")
    try:
        shutil.copy(store, mnt / "mlflow.db")
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        rc, so, se, sec = cli(
            mnt / "mlflow.db", "train", "--data", str(world), "--reports", str(tmp_path / "rep")
        )
        assert rc == 6, se
        assert "cannot be written" in se and "Traceback" not in se
        assert not (tmp_path / "rep").exists()  # decided before the long work
        # reading still works from a read-only store
        rc, so, se, _ = cli(mnt / "mlflow.db", "models")
        assert rc == 0 and "champion" in so, se
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_full_disk_keeps_the_previous_list(world, store, tmp_path):
    mnt = tmp_path / "full"
    _tmpfs(mnt, "96k")
    try:
        out = mnt / "l.csv"
        out.write_text("the previous list\n")
        rc, so, se, _ = cli(
            store, "score", "--data", str(world), "--as-of", _last_day(world), "--out", str(out)
        )
        assert rc == 2, se
        assert "No space left" in se and "Traceback" not in se
        assert out.read_text() == "the previous list\n"
        assert _no_temp_files(mnt) == []
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


# ---------------------------------------------------------------------- kill, concurrency
def _start_with_fault(store, point, flag, *args):
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{store}",
        "CP_FAULT": point,
        "CP_FAULT_FLAG": str(flag),
    }
    return subprocess.Popen(
        [sys.executable, "-c", HARNESS, *args, "--config", str(CONFIG)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait_for(flag: Path, proc, seconds=300):
    t0 = time.monotonic()
    while not flag.exists():
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() - t0 < seconds
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("point", "sig"),
    [("features", signal.SIGKILL), ("fsync", signal.SIGKILL), ("fsync", signal.SIGTERM)],
)
def test_killed_score_leaves_the_previous_lists_intact(world, store, tmp_path, point, sig):
    out = tmp_path / "lists" / "l.csv"
    day = _last_day(world)
    before = str((pd.Timestamp(day) - pd.Timedelta(days=7)).date())
    rc, so, se, _ = cli(
        store,
        "score",
        "--data",
        str(world),
        "--as-of",
        before,
        "--out",
        str(out),
        "--split-by",
        "account_manager",
    )
    assert rc == 0, se
    snapshot = {p: p.read_bytes() for p in out.parent.rglob("*.csv")}
    flag = tmp_path / "flag"
    split = ("score", "--data", str(world), "--as-of", day, "--out", str(out),
             "--split-by", "account_manager")  # fmt: skip
    proc = _start_with_fault(store, point, flag, *split)
    _wait_for(flag, proc)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    assert {p: p.read_bytes() for p in out.parent.rglob("*.csv")} == snapshot
    if sig == signal.SIGTERM:
        assert proc.returncode == 128 + signal.SIGTERM
        assert _no_temp_files(out.parent) == []  # cleaned up on the way out
    # the next run succeeds (the lock died with the process) and removes leftovers
    rc, so, se, _ = cli(store, *split)
    assert rc == 0, se
    assert _no_temp_files(out.parent) == []
    dates = {_rows(p)[1][_rows(p)[0].index("as_of")] for p in out.parent.rglob("*.csv")}
    assert dates == {day}  # the full list and every per-owner file: one date


def test_a_second_score_on_the_same_list_is_refused_while_the_first_runs(world, store, tmp_path):
    out = tmp_path / "l.csv"
    flag = tmp_path / "flag"
    first = _start_with_fault(
        store,
        "features",
        flag,
        *_score(world, out),
    )
    try:
        _wait_for(flag, first)
        rc, so, se, _ = cli(
            store, "score", "--data", str(world), "--as-of", _last_day(world), "--out", str(out)
        )
        assert rc == 4, se
        assert "do not delete" in se
    finally:
        first.kill()
        first.wait()


def test_two_trains_on_a_new_store_at_once(world, tmp_path):
    db = tmp_path / "new" / "mlflow.db"
    db.parent.mkdir()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{db}"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "churnpredict",
                "train",
                "--data",
                str(world),
                "--reports",
                str(tmp_path / f"rep{i}"),
                "--config",
                str(CONFIG),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-1500:] for o in outs]
    rc, so, se, _ = cli(db, "models")
    assert rc == 0
    assert so.count("champion") == 1, so


# ------------------------------------------------------------------------------- drift
def test_drift_gate_passes_unchanged_data_and_trips_when_contacts_stop(world, store, tmp_path):
    day = _last_day(world)
    env = {"CHURNPREDICT_CALLS__DRIFT__ACTION": "fail"}
    rc, so, se, _ = cli(
        store,
        "score",
        "--data",
        str(world),
        "--as-of",
        day,
        "--out",
        str(tmp_path / "ok.csv"),
        env=env,
    )
    assert rc == 0, se
    broken = _copy_world(world, tmp_path / "broken", skip=("contacts",))
    c = pd.read_parquet(world / "contacts.parquet")
    end = c["ts"].max()
    gap = (c["ts"] > end - pd.Timedelta(days=30)) & (c["ts"] <= end - pd.Timedelta(days=1))
    # the feed broke a month ago: only a trickle arrived since (the last day looks fine)
    kept = pd.concat([c[~gap], c[gap].sample(frac=0.03, random_state=0)])
    kept.to_parquet(broken / "contacts.parquet", index=False)
    rc, so, se, _ = cli(
        store,
        "score",
        "--data",
        str(broken),
        "--as-of",
        day,
        "--out",
        str(tmp_path / "bad.csv"),
        "--strict",
        env=env,
    )
    assert rc == 5, se
    assert "contacts (" in se and "did the export stop?" in se
    assert not (tmp_path / "bad.csv").exists()


# --------------------------------------------------------------------- dates and paths
def test_absurd_dates_and_output_paths_are_exit_2(world, store, tmp_path):
    for as_of in ("9999-12-31", "0001-01-01"):
        rc, so, se, _ = cli(
            store,
            "score",
            "--data",
            str(world),
            "--as-of",
            as_of,
            "--out",
            str(tmp_path / "l.csv"),
        )
        assert rc == 2 and "out of range" in se, se
    (tmp_path / "afile").write_text("x")
    rc, so, se, _ = cli(
        store,
        *_score(world, tmp_path / "afile" / "l.csv"),
    )
    assert rc == 2 and "is a file" in se and "Traceback" not in se, se


def test_every_run_logs_config_data_store_and_model(world, store, tmp_path):
    rc, so, se, _ = cli(
        store,
        *_score(world, tmp_path / "l.csv"),
        config=False,
    )
    assert rc == 0, se
    assert "config: " in se and "(the shipped default)" in se
    assert f"data: {world}" in se
    assert f"tracking store: sqlite:///{store}" in se
    assert "model: churnpredict version 1" in se
