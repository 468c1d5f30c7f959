"""The benchmark harness: ``python -m benchmarks.run`` (what ``make bench`` calls).

Each case runs in a fresh child process (``python -m benchmarks.run --child NAME``),
so the peak memory reported (``ru_maxrss``) belongs to that case alone. Timed cases
repeat ``--repeat`` times (default 3, ``--quick`` = 1); the table shows the median,
the ratio to the case's baseline measured in the same run, the peak RSS, and the
targets. A dated section with the machine's description is appended to
BENCHMARKS.md (unless ``--no-append``).

Adding a case
-------------
Write a function ``f(ctx) -> {"seconds": float, "phases": {...}, "info": {...}}`` in
:mod:`benchmarks.cases` (or any module) and add one line to :data:`CASES`::

    Case("score_100k", "benchmarks.cases:score_100k", baseline="floor",
         what="scoring 100k clients with the champion"),

Flags: ``--only NAME`` (repeatable; baselines of the chosen cases run too),
``--quick``, ``--repeat N``, ``--no-append``, ``--list``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.worlds import BENCH_DATA, ROOT, WORLDS, ensure_world, world_meta

RESULT_TAG = "BENCH_RESULT "
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
CASE_TIMEOUT_S = 3600
WORLD_ENV = "BENCH_WORLD"


@dataclass(frozen=True)
class Case:
    """One benchmark case.

    Parameters
    ----------
    name : str
        Unique name (``--only NAME``).
    func : str
        ``"module:function"`` run in the child; it gets a :class:`benchmarks.cases.Ctx`.
    what : str
        One line for the table.
    baseline : str, optional
        The case whose median is the denominator of the ratio.
    world : str
        The world directory (under bench-data/) the case reads.
    max_ratio, max_rss_gib : float, optional
        Targets shown as pass/fail.
    repeats : int, optional
        Cap on repetitions (e.g. 1 for a slow comparison case).
    needs : tuple of str
        Worlds to generate before running (besides ``world``).
    """

    name: str
    func: str
    what: str
    baseline: str | None = None
    world: str = "world-100k"
    max_ratio: float | None = None
    max_seconds: float | None = None
    max_rss_gib: float | None = None
    repeats: int | None = None
    needs: tuple[str, ...] = field(default_factory=tuple)


CASES: list[Case] = [
    Case(
        "load_raw",
        "benchmarks.cases:load_raw",
        "Parquet -> DuckDB tables (typed CREATE TABLE AS, no validation)",
    ),
    Case(
        "load_contract",
        "benchmarks.cases:load_contract",
        "contract.load_dataset: read + validate every rule + materialise",
        baseline="load_raw",
    ),
    Case(
        "floor",
        "benchmarks.cases:floor",
        "lower floor: one GROUP BY client (count + one column) per event table",
    ),
    Case(
        "floor_scan",
        "benchmarks.cases:floor_scan",
        "floor: one GROUP BY client per event table reading every feature column",
    ),
    Case(
        "features_1date",
        "benchmarks.cases:features_1date",
        "engine: all default features, 1 as-of date, active clients",
        baseline="floor_scan",
        max_ratio=4,
        max_rss_gib=2,
    ),
    Case(
        "features_12m",
        "benchmarks.cases:features_12m",
        "engine: training table, 12 monthly snapshots",
        baseline="floor_scan",
        max_ratio=10,
        max_rss_gib=4,
    ),
    Case(
        "pandas_1date",
        "benchmarks.cases:pandas_1date",
        "plain pandas: generic families, 1 as-of date (vs engine)",
        baseline="features_1date",
    ),
    Case(
        "engine_10k",
        "benchmarks.cases:features_1date_ft_subset",
        "engine: all default features, 1 date, 10k-client subset",
        world="world-10k",
    ),
    Case(
        "featuretools_10k",
        "benchmarks.cases:featuretools_dfs",
        "Featuretools DFS, cutoff times, 3 windows, 10k subset (own venv)",
        baseline="engine_10k",
        world="world-10k",
        repeats=1,
    ),
    Case(
        "spark_10k",
        "benchmarks.spark_cases:spark_1date",
        "Spark backend local[2]: all default features, 1 date, 10k clients (vs engine_10k)",
        baseline="engine_10k",
        world="world-10k",
        repeats=1,
    ),
    Case(
        "spark_100k",
        "benchmarks.spark_cases:spark_1date",
        "Spark backend local[2]: all default features, 1 date, 100k clients",
        baseline="features_1date",
        repeats=1,
    ),
    Case(
        "validate_30m",
        "benchmarks.pipeline_cases:validate_30m",
        "churnpredict validate: every contract rule over 31M events",
        baseline="load_raw",
        max_seconds=30,
        max_rss_gib=4,
    ),
    Case(
        "train_20k",
        "benchmarks.pipeline_cases:train_20k",
        "churnpredict train on the default simulated world (20k clients, 2 years)",
        max_seconds=180,
        repeats=1,
    ),
    Case(
        "score_100k",
        "benchmarks.pipeline_cases:score_100k",
        "churnpredict score: 100k clients, a year of history, reasons, call list",
        baseline="load_contract",
        max_seconds=60,
        max_rss_gib=4,
    ),
]


# ------------------------------------------------------------------ child side
def child(name: str, rep: int) -> None:
    """Run one case in this (fresh) process and print its result as one JSON line."""
    from benchmarks.cases import Ctx, peak_rss_mb

    case = _by_name()[name]
    mod, _, fn = case.func.partition(":")
    func = getattr(importlib.import_module(mod), fn)
    ctx = Ctx(world=BENCH_DATA / _world(case), rep=rep, check=rep == 0)
    res = func(ctx)
    res.setdefault("maxrss_mb", peak_rss_mb())
    print(RESULT_TAG + json.dumps(res, default=str), flush=True)


# ------------------------------------------------------------------ parent side
def _world(case: Case) -> str:
    """Return the case's world; ``--world`` (env BENCH_WORLD) replaces the big one."""
    if case.world == "world-100k":
        return os.environ.get(WORLD_ENV, case.world)
    return case.world


def _by_name() -> dict[str, Case]:
    return {c.name: c for c in CASES}


def select(only: list[str] | None) -> list[Case]:
    """Return the cases to run: ``only`` plus their baselines, in registry order."""
    cases = _by_name()
    if not only:
        return list(CASES)
    unknown = [n for n in only if n not in cases]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; known: {', '.join(cases)}")
    want = set(only)
    for n in only:
        b = cases[n].baseline
        while b and b not in want:
            want.add(b)
            b = cases[b].baseline
    return [c for c in CASES if c.name in want]


def run_case(case: Case, repeats: int, log=print) -> dict:
    """Run ``case`` ``repeats`` times, each in a fresh subprocess; return the summary."""
    n = min(repeats, case.repeats or repeats)
    runs, error = [], None
    for rep in range(n):
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.run", "--child", case.name, "--rep", str(rep)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=CASE_TIMEOUT_S,
        )
        wall = time.perf_counter() - t0
        line = next(
            (ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith(RESULT_TAG)), None
        )
        if proc.returncode != 0 or line is None:
            error = (proc.stderr or proc.stdout).strip().splitlines()[-12:]
            log(f"  {case.name} run {rep + 1}/{n}: FAILED (exit {proc.returncode})")
            log("    " + "\n    ".join(error))
            break
        res = json.loads(line[len(RESULT_TAG) :])
        res["wall"] = wall
        runs.append(res)
        log(
            f"  {case.name} run {rep + 1}/{n}: {res['seconds']:.2f} s "
            f"(peak {res['maxrss_mb'] / 1024:.2f} GiB, process {wall:.0f} s)"
        )
    out = {"case": case.name, "runs": runs, "error": error}
    if runs:
        out["median"] = statistics.median(r["seconds"] for r in runs)
        out["maxrss_mb"] = max(r["maxrss_mb"] for r in runs)
        phases = {}
        for k in runs[0]["phases"]:
            phases[k] = statistics.median(r["phases"].get(k, float("nan")) for r in runs)
        out["phases"] = phases
        out["info"] = runs[0].get("info", {})
    return out


def summarize(cases: list[Case], results: dict[str, dict]) -> list[dict]:
    """Add ratios and target verdicts; return one row per case."""
    rows = []
    for c in cases:
        r = results[c.name]
        row = {"case": c.name, "what": c.what, "runs": len(r["runs"]), "error": r["error"]}
        if "median" in r:
            row["median"] = r["median"]
            row["peak_gib"] = r["maxrss_mb"] / 1024
            row["phases"] = r["phases"]
            row["info"] = r["info"]
            base = results.get(c.baseline or "", {}).get("median")
            if c.baseline and base:
                row["baseline"] = c.baseline
                row["ratio"] = r["median"] / base
            verdicts = []
            if c.max_ratio is not None and "ratio" in row:
                ok = row["ratio"] <= c.max_ratio
                verdicts.append(f"ratio <= {c.max_ratio:g}: {'ok' if ok else 'MISSED'}")
            if c.max_seconds is not None:
                ok = r["median"] <= c.max_seconds
                verdicts.append(f"<= {c.max_seconds:g} s: {'ok' if ok else 'MISSED'}")
            if c.max_rss_gib is not None:
                ok = row["peak_gib"] <= c.max_rss_gib
                verdicts.append(f"peak <= {c.max_rss_gib:g} GiB: {'ok' if ok else 'MISSED'}")
            row["target"] = "; ".join(verdicts)
        rows.append(row)
    return rows


def _fmt_phases(phases: dict) -> str:
    return ", ".join(f"{k} {v:.1f}s" for k, v in phases.items())


def table_markdown(rows: list[dict]) -> str:
    """Render the result rows as a Markdown table."""
    lines = [
        "| case | median s | vs baseline | peak RSS GiB | target | runs | phases (median) |",
        "| --- | ---: | --- | ---: | --- | ---: | --- |",
    ]
    for r in rows:
        if "median" not in r:
            lines.append(f"| {r['case']} | failed | | | | {r['runs']} | see notes |")
            continue
        ratio = f"{r['ratio']:.2f}x {r['baseline']}" if "ratio" in r else ""
        lines.append(
            f"| {r['case']} | {r['median']:.2f} | {ratio} | {r['peak_gib']:.2f} | "
            f"{r.get('target', '')} | {r['runs']} | {_fmt_phases(r['phases'])} |"
        )
    return "\n".join(lines)


def _check_notes(rows: list[dict]) -> list[str]:
    notes = []
    for r in rows:
        info = dict(r.get("info") or {})
        check = info.pop("check", None)
        if info:
            notes.append(
                f"- `{r['case']}`: {r['what']}; " + ", ".join(f"{k} {v}" for k, v in info.items())
            )
        if r.get("error"):
            notes.append(f"- `{r['case']}` FAILED: `{' / '.join(r['error'][-3:])}`")
        if check:
            if "error" in check:
                notes.append(f"  - value check: {check}")
                continue
            bad = check["mismatched"]
            notes.append(
                f"  - value check vs engine: {check['compared']} common columns, "
                f"{len(bad)} differ"
                + (
                    ": "
                    + "; ".join(
                        f"{k} ({v['rows']} rows, e.g. {v['example']})"
                        for k, v in list(bad.items())[:5]
                    )
                    if bad
                    else ""
                )
            )
    return notes


# ------------------------------------------------------------------ machine description
def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine() -> dict:
    """Describe the machine and the software versions."""
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in _read("/proc/cpuinfo").splitlines()
            if ln.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    mem_kb = next(
        (
            int(ln.split()[1])
            for ln in _read("/proc/meminfo").splitlines()
            if ln.startswith("MemTotal")
        ),
        0,
    )
    versions = {}
    for mod in ("duckdb", "pandas", "numpy", "pyarrow", "lightgbm"):
        try:
            versions[mod] = importlib.import_module(mod).__version__
        except Exception:  # noqa: BLE001 - a missing package is just not reported
            versions[mod] = "not installed"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "src"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout.strip()
        if dirty:
            commit += " (+ uncommitted changes in src/)"
    except OSError:
        commit = "unknown"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kb / 2**20, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": versions,
        "commit": commit,
        "loadavg": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def section(rows: list[dict], mach: dict, repeats: int, worlds: dict[str, dict]) -> str:
    """Return the dated Markdown section for BENCHMARKS.md."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    v = mach["versions"]
    lines = [
        f"## {now} — {'quick (1 run per case)' if repeats == 1 else f'{repeats} runs per case'}",
        "",
        f"Machine: {mach['cpu']}, {mach['cores']} cores, {mach['ram_gib']} GiB RAM, "
        f"{mach['os']}; Python {mach['python']}, duckdb {v['duckdb']}, pandas {v['pandas']}, "
        f"numpy {v['numpy']}, pyarrow {v['pyarrow']}, lightgbm {v['lightgbm']}; "
        f"commit {mach['commit']}. Load average at the start (1/5/15 min): "
        f"{mach['loadavg']} (other work on the machine inflates and spreads the times).",
        "",
    ]
    for name, meta in worlds.items():
        if meta:
            rows_t = ", ".join(f"{t} {n:,}" for t, n in meta["rows"].items())
            lines.append(
                f"World `{name}` (generator v{meta['generator_version']}, "
                f"{meta['event_rows']:,} event rows, generated in {meta['seconds']} s): {rows_t}."
            )
    lines += ["", table_markdown(rows), "", "Notes:", ""]
    lines += _check_notes(rows)
    return "\n".join(lines) + "\n"


def append_section(text: str, path: Path = BENCHMARKS_MD) -> None:
    """Append ``text`` to BENCHMARKS.md (creating it with a header when missing)."""
    if not path.exists():
        path.write_text(
            "# Benchmarks\n\nAppended by `make bench` (`python -m benchmarks.run`); "
            "see benchmarks/run.py for the cases and how to add one.\n"
        )
    with path.open("a") as f:
        f.write("\n" + text)


def main(argv: list[str] | None = None) -> int:
    """Run the selected cases and print (and append) the results."""
    ap = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--only", action="append", metavar="NAME", help="run only this case")
    ap.add_argument("--quick", action="store_true", help="one run per case")
    ap.add_argument("--repeat", type=int, default=3, help="runs per timed case (default 3)")
    ap.add_argument("--no-append", action="store_true", help="do not write BENCHMARKS.md")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument(
        "--world", choices=sorted(WORLDS), help="replace world-100k (e.g. world-1k to smoke-test)"
    )
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--rep", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.rep)
        return 0
    if args.list:
        for c in CASES:
            print(f"{c.name:18s} {c.what}" + (f"  [baseline {c.baseline}]" if c.baseline else ""))
        return 0
    repeats = 1 if args.quick else max(1, args.repeat)
    if args.world:
        os.environ[WORLD_ENV] = args.world  # inherited by the children
    cases = select(args.only)
    worlds = {}
    for w in sorted({_world(c) for c in cases} | {n for c in cases for n in c.needs}):
        ensure_world(w)
        worlds[w] = world_meta(BENCH_DATA / w)
    mach = machine()
    print(f"{mach['cpu']}, {mach['cores']} cores, {mach['ram_gib']} GiB; commit {mach['commit']}")
    results = {}
    for c in cases:
        print(f"{c.name}: {c.what}", flush=True)
        results[c.name] = run_case(c, repeats)
    rows = summarize(cases, results)
    print()
    print(table_markdown(rows))
    print()
    print("\n".join(_check_notes(rows)))
    if not args.no_append:
        append_section(section(rows, mach, repeats, worlds))
        print(f"\nappended to {BENCHMARKS_MD}")
    return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
