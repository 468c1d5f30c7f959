"""Time every SQL statement the feature engine runs, to find its slow spots.

Usage::

    python -m benchmarks.profile_engine [--world world-100k] [--dates 1|12] [--top 15]
        [--cprofile] [--stages]

It loads the world like the benchmark cases, builds the same spine, and runs
``build_features`` with the connection wrapped so each ``execute`` is timed; it
prints the slowest statements (first line of SQL, seconds, share of the total).
Statements run on the engine's worker cursors are not seen by the wrapper; ``--stages``
covers them: the wall time and the CPU time of the calling thread per engine stage
(stages on the two workers overlap), and the process's CPU time (every thread,
DuckDB's own included). On 2 cores the process CPU time / 2 bounds the wall time
from below, however well the stages overlap.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import re
import resource
import threading
import time
from collections import defaultdict
from contextlib import contextmanager, nullcontext

from benchmarks.cases import AS_OF, MONTHLY, _cfg, _spine, load_world
from benchmarks.worlds import BENCH_DATA, ensure_world


class TimedConnection:
    """Wrap a DuckDB connection and record the wall time of each ``execute``."""

    def __init__(self, con):
        self._con = con
        self.log: list[tuple[float, str]] = []

    def execute(self, sql, *args, **kw):
        """Run ``sql`` on the wrapped connection and record its time."""
        t0 = time.perf_counter()
        out = self._con.execute(sql, *args, **kw)
        self.log.append((time.perf_counter() - t0, str(sql)))
        return out

    def sql(self, sql, *args, **kw):
        """Return the relation for ``sql``; its materialisation is timed."""
        return _TimedRelation(self._con.sql(sql, *args, **kw), str(sql), self.log)

    def __getattr__(self, name):
        return getattr(self._con, name)


class _TimedRelation:
    """A relation whose fetch methods record their wall time."""

    def __init__(self, rel, sql: str, log: list):
        self._rel, self._sql, self._log = rel, sql, log

    def __getattr__(self, name):
        attr = getattr(self._rel, name)
        if name not in ("to_arrow_table", "arrow", "df", "fetchnumpy", "fetchall", "fetchdf"):
            return attr

        def timed(*args, **kw):
            t0 = time.perf_counter()
            out = attr(*args, **kw)
            self._log.append((time.perf_counter() - t0, self._sql))
            return out

        return timed


class StageClock:
    """Record, per engine stage, the wall time and the CPU time of the calling thread.

    Installed by replacing ``engine._stage`` (the engine's own stage timer, which it
    still updates) for the duration of a ``with`` block.
    """

    def __init__(self):
        self.cpu: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    def __enter__(self):
        from churnpredict.features.backends import engine

        self._engine, self._orig = engine, engine._stage

        @contextmanager
        def stage(name: str):
            c0 = time.thread_time()
            try:
                with self._orig(name):
                    yield
            finally:
                with self._lock:
                    self.cpu[name] += time.thread_time() - c0

        engine._stage = stage
        return self

    def __exit__(self, *exc):
        self._engine._stage = self._orig

    def report(self) -> None:
        """Print the wall and thread CPU seconds per stage, largest wall time first."""
        wall = self._engine.STAGE_TIMES
        print("stage            wall s  thread CPU s")
        for name, t in sorted(wall.items(), key=lambda x: -x[1]):
            cpu = f"{self.cpu[name]:12.2f}" if name in self.cpu else ""
            print(f"{name:15s} {t:7.2f} {cpu}")


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def label(sql: str) -> str:
    """Return a short label for a statement: the table it creates, or its start."""
    m = re.search(r"TABLE\s+(\w+)", sql)
    if m:
        return m.group(1)
    return " ".join(sql.split())[:70]


def main(argv=None) -> None:
    """Profile ``build_features`` on a world and print the slowest statements."""
    from churnpredict.features.build import build_features

    ap = argparse.ArgumentParser(prog="python -m benchmarks.profile_engine")
    ap.add_argument("--world", default="world-100k")
    ap.add_argument("--dates", type=int, choices=(1, 12), default=1)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--cprofile", action="store_true", help="also print a cProfile summary")
    ap.add_argument(
        "--stages",
        action="store_true",
        help="also print the wall and thread CPU time per engine stage, and the process CPU",
    )
    args = ap.parse_args(argv)
    ensure_world(args.world)
    ds = load_world(BENCH_DATA / args.world)
    dates = [AS_OF] if args.dates == 1 else MONTHLY
    spine = _spine(ds, dates, with_label=False)
    timed = TimedConnection(ds.con)
    ds.con = timed
    cfg = _cfg()
    prof = cProfile.Profile() if args.cprofile else None
    clock = StageClock() if args.stages else None
    with clock or nullcontext():
        t0, c0 = time.perf_counter(), _cpu_seconds()
        if prof:
            prof.enable()
        build_features(ds, spine, cfg)
        if prof:
            prof.disable()
        total, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
    in_sql = sum(t for t, _ in timed.log)
    print(
        f"build_features: {total:.2f} s for {len(spine):,} spine rows; "
        f"{in_sql:.2f} s in {len(timed.log)} statements"
    )
    for t, sql in sorted(timed.log, reverse=True)[: args.top]:
        print(f"{t:8.2f} s {100 * t / total:5.1f}%  {label(sql)}")
    if clock:
        print(f"process CPU {cpu:.2f} s (all threads) for {total:.2f} s wall")
        clock.report()
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
