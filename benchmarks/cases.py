"""Benchmark case bodies: each runs in a fresh child process and returns a result dict.

A case function takes a :class:`Ctx` and returns ``{"seconds": <the timed phase>,
"phases": {name: seconds}, "info": {...}}``; the harness adds the peak RSS. Setup
(loading the data) is timed as a phase but is not part of ``seconds`` unless the case
is about loading. Value checks (pandas vs engine, Featuretools vs engine) run after
the timed phase and only on the first repetition; the peak memory is read before them.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from benchmarks.worlds import BENCH_DATA, ROOT, TABLES

CONFIG = ROOT / "configs" / "default.yaml"
# One as-of date for the single-date cases: 90-day windows and 30-day trends fit the year.
AS_OF = pd.Timestamp("2025-12-01")
# Twelve monthly snapshots for the training-table case.
MONTHLY = list(pd.date_range("2025-02-01", periods=12, freq="MS"))
FT_VENV = BENCH_DATA / "ft-venv"
FT_SUBSET = "world-10k"
FT_WINDOWS = (7, 30, 90)
RTOL = 1e-5


@dataclass
class Ctx:
    """What a case needs: the world directory, the repetition index, whether to check."""

    world: Path
    rep: int
    check: bool


def peak_rss_mb() -> float:
    """Return this process's peak resident set size so far, in MiB (not its children)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cfg():
    from churnpredict.config import load_config

    return load_config(CONFIG)


# ------------------------------------------------------------------ loading
def load_world(world: Path, *, contract: bool = False):
    """Load a world's Parquet files into a DuckDB connection and return the data set.

    ``contract=False`` (default for the feature cases) creates the tables with plain
    ``CREATE TABLE AS SELECT ... FROM read_parquet`` and the contract's column types;
    ``contract=True`` goes through :func:`churnpredict.contract.load_dataset` (reading,
    validating every row rule and materialising). Both give the same tables.
    """
    from churnpredict.contract import connect, load_dataset

    if contract:
        return load_dataset(Path(world), _cfg())
    from churnpredict.contract import compact, table_coverage, table_specs

    specs = table_specs(_cfg())
    con = connect()
    present = set()
    for t in TABLES:
        path = Path(world) / f"{t}.parquet"
        if not path.exists():
            continue
        cols = ", ".join(f'CAST("{c.name}" AS {c.type}) AS "{c.name}"' for c in specs[t].columns)
        con.execute(f"CREATE TABLE {t} AS SELECT {cols} FROM read_parquet('{path}')")
        present.add(t)
        compact(con)  # as load_dataset does: compressed tables, table by table
    lo, hi = con.execute(
        "SELECT min(lo), max(hi) FROM ("
        "SELECT min(ts) lo, max(ts) hi FROM campaign_events UNION ALL "
        "SELECT min(ts), max(ts) FROM contacts UNION ALL "
        "SELECT min(issued_at), max(issued_at) FROM invoices UNION ALL "
        "SELECT min(date)::TIMESTAMP, max(date)::TIMESTAMP FROM spend UNION ALL "
        "SELECT min(ts), max(ts) FROM activity)"
    ).fetchone()
    ds = SimpleNamespace(
        con=con,
        present=present,
        data_dir=Path(world),
        data_start=pd.Timestamp(lo),
        data_end=pd.Timestamp(hi),
    )
    # as load_dataset does: each table's coverage is known once loaded (the feature
    # build's coverage mask reads it instead of scanning the tables again)
    ds.coverage = table_coverage(ds, _cfg())
    return ds


def _timed(phases: dict, name: str, fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    phases[name] = time.perf_counter() - t0
    return out


def _rows(ds) -> int:
    return sum(ds.con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ds.present)


# ------------------------------------------------------------------ cases
def load_raw(ctx: Ctx) -> dict:
    """Time reading the Parquet files into DuckDB tables (typed, no validation)."""
    phases: dict = {}
    ds = _timed(phases, "load", load_world, ctx.world)
    return {"seconds": phases["load"], "phases": phases, "info": {"rows": _rows(ds)}}


def load_contract(ctx: Ctx) -> dict:
    """Time ``contract.load_dataset`` (read + validate every row rule + materialise)."""
    phases: dict = {}
    ds = _timed(phases, "load_dataset", load_world, ctx.world, contract=True)
    return {"seconds": phases["load_dataset"], "phases": phases, "info": {"rows": _rows(ds)}}


FLOOR_SQL = {
    "campaign_events": "count(*), sum(daily_budget)",
    "invoices": "count(*), sum(amount)",
    "contacts": "count(*), sum((direction = 'inbound')::INT)",
    "spend": "count(*), sum(spend)",
    "activity": "count(*), sum(value)",
    "assignments": "count(*), max(from_date)",
}


# The floor as the issue defines it: scan the event columns once, one GROUP BY client
# pass per table reading every column the default features read (categories via
# max(), numbers via sum(), timestamps via max()).
SCAN_SQL = {
    "campaign_events": "count(*), max(ts), max(campaign_id), max(event), max(initiator), "
    "max(reason), sum(daily_budget)",
    "invoices": "count(*), max(issued_at), max(due_at), sum(amount), max(paid_at)",
    "contacts": "count(*), max(ts), max(channel), max(direction), max(topic), max(outcome)",
    "spend": "count(*), max(date), sum(spend), sum(impressions), sum(clicks), sum(conversions)",
    "activity": "count(*), max(ts), max(event), sum(value)",
    "assignments": "count(*), max(from_date)",
}


def floor_scan(ctx: Ctx) -> dict:
    """Time the floor: one GROUP BY client_id pass over every feature column of each table."""
    return _group_by_floor(ctx, SCAN_SQL)


def floor(ctx: Ctx) -> dict:
    """Time a lower floor: one GROUP BY client_id pass reading one column per table."""
    return _group_by_floor(ctx, FLOOR_SQL)


def _group_by_floor(ctx: Ctx, sql: dict[str, str]) -> dict:
    """One GROUP BY client_id pass with ``sql[table]`` aggregates over each event table.

    Each result (one row per client) is fetched into pandas, as the engine does with
    its feature table.
    """
    phases: dict = {}
    ds = _timed(phases, "load", load_world, ctx.world)
    rss_load = peak_rss_mb()
    t0 = time.perf_counter()
    n = 0
    for t, aggs in sql.items():
        if t in ds.present:
            df = ds.con.execute(f"SELECT client_id, {aggs} FROM {t} GROUP BY client_id").df()
            n += len(df)
    phases["group_by"] = time.perf_counter() - t0
    return {
        "seconds": phases["group_by"],
        "phases": phases,
        "info": {"rows": _rows(ds), "result_rows": n, "rss_after_load_mb": round(rss_load)},
    }


def _spine(ds, dates, *, with_label: bool):
    from churnpredict.labels import build_spine

    return build_spine(ds, _cfg(), dates, with_label=with_label)


def _engine(ds, spine):
    """Build all default features (the package is imported before the clock starts:
    module imports are paid once per process, not per feature table)."""
    from churnpredict.features.build import build_features

    return build_features(ds, spine, _cfg())


def _import_engine() -> None:
    """Import the feature build and the local backend: with Numba, whose typing
    registries ``kernels`` loads at import (~0.6-0.7 s in all, 0.3-0.4 s of it the
    registries, which Numba would otherwise load inside the first build)."""
    from churnpredict.features.backends import get_backend

    get_backend("local")


def spine_path(world: Path) -> Path:
    """Return where the single-date spine of ``world`` is cached."""
    return BENCH_DATA / "results" / f"{Path(world).name}-spine-{AS_OF:%Y%m%d}.parquet"


def write_spine(world: Path) -> Path:
    """Cache the engine's spine at ``AS_OF`` (built in a separate process) and return it.

    The pandas case reads it so that its own peak memory holds no DuckDB tables.
    """
    path = spine_path(world)
    if not path.exists():
        code = (
            "import sys; from pathlib import Path; from benchmarks import cases as c; "
            "ds = c.load_world(Path(sys.argv[1])); p = c.spine_path(Path(sys.argv[1])); "
            "p.parent.mkdir(parents=True, exist_ok=True); "
            "c._spine(ds, [c.AS_OF], with_label=False).to_parquet(p)"
        )
        subprocess.run([sys.executable, "-c", code, str(world)], check=True, cwd=ROOT)
    return path


def features_1date(ctx: Ctx) -> dict:
    """Time the engine: every default feature for the active clients at one as-of date."""
    phases: dict = {}
    ds = _timed(phases, "load", load_world, ctx.world)
    spine = _timed(phases, "spine", _spine, ds, [AS_OF], with_label=False)
    rss_load = peak_rss_mb()
    _import_engine()
    table, catalog, _ = _timed(phases, "features", _engine, ds, spine)
    info = {
        "spine_rows": len(spine),
        "features": len(catalog),
        "rss_after_load_mb": round(rss_load),
        "table_mb": round(table.memory_usage(deep=True).sum() / 2**20),
    }
    if ctx.check:
        out = BENCH_DATA / "results" / f"{ctx.world.name}-engine-{AS_OF:%Y%m%d}.parquet"
        out.parent.mkdir(parents=True, exist_ok=True)
        table.to_parquet(out)
    return {"seconds": phases["features"], "phases": phases, "info": info}


def features_12m(ctx: Ctx) -> dict:
    """Time the engine on a training table: 12 monthly snapshots of the active clients."""
    phases: dict = {}
    ds = _timed(phases, "load", load_world, ctx.world)
    spine = _timed(phases, "spine", _spine, ds, MONTHLY, with_label=True)
    rss_load = peak_rss_mb()
    _import_engine()
    table, catalog, _ = _timed(phases, "features", _engine, ds, spine)
    info = {
        "spine_rows": len(spine),
        "features": len(catalog),
        "rss_after_load_mb": round(rss_load),
        "table_mb": round(table.memory_usage(deep=True).sum() / 2**20),
    }
    return {"seconds": phases["features"], "phases": phases, "info": info}


def compare(ours: pd.DataFrame, engine: pd.DataFrame, *, rtol: float = RTOL) -> dict:
    """Compare feature columns both frames have, row-aligned on ``client_id``.

    Returns the number of columns compared, the columns that differ (with the count of
    differing rows and an example), and the columns only one side has.
    """
    a = ours.set_index("client_id").sort_index()
    b = engine.set_index("client_id").sort_index()
    if not a.index.equals(b.index):
        return {"error": "client sets differ", "ours": len(a), "engine": len(b)}
    common = [c for c in a.columns if c in b.columns and c not in ("as_of", "label")]
    bad = {}
    for c in common:
        x = a[c].to_numpy(dtype=np.float64)
        y = b[c].to_numpy(dtype=np.float64)
        same = np.isclose(x, y, rtol=rtol, atol=1e-6) | (np.isnan(x) & np.isnan(y))
        if not same.all():
            i = int(np.flatnonzero(~same)[0])
            bad[c] = {"rows": int((~same).sum()), "example": [a.index[i], x[i], y[i]]}
    return {
        "compared": len(common),
        "mismatched": bad,
        "only_ours": sorted(set(a.columns) - set(b.columns) - {"as_of"}),
        "only_engine": len(set(b.columns) - set(a.columns)),
    }


def pandas_1date(ctx: Ctx) -> dict:
    """Time a plain pandas implementation of the generic families at one as-of date.

    Reading the Parquet files into pandas is a separate phase; the check compares with
    the engine on the same spine (the active clients at ``AS_OF``).
    """
    from benchmarks.pandas_features import generic_features, read_tables

    phases: dict = {}
    cfg = _cfg()
    tables = _timed(phases, "read_parquet", read_tables, ctx.world, cfg)
    spine_path = write_spine(ctx.world)
    clients = pd.read_parquet(spine_path)["client_id"].astype(str).to_numpy()
    rss_read = peak_rss_mb()
    feats = _timed(phases, "features", generic_features, tables, cfg, clients, AS_OF)
    out = {
        "seconds": phases["features"],
        "phases": phases,
        "info": {
            "spine_rows": len(clients),
            "features": feats.shape[1] - 1,
            "rss_after_read_mb": round(rss_read),
        },
        "maxrss_mb": peak_rss_mb(),
    }
    if ctx.check:
        del tables
        ds = load_world(ctx.world)
        spine = pd.DataFrame({"client_id": clients, "as_of": AS_OF})
        table, _, _ = _engine(ds, spine)
        out["info"]["check"] = compare(feats, table)
    return out


def features_1date_ft_subset(ctx: Ctx) -> dict:
    """Time the engine at one as-of date on the Featuretools subset (all its clients)."""
    return _subset_engine(ctx)[0]


def _subset_engine(ctx: Ctx):
    phases: dict = {}
    ds = _timed(phases, "load", load_world, BENCH_DATA / FT_SUBSET)
    spine = pd.DataFrame(
        {
            "client_id": ds.con.execute(
                f"SELECT client_id FROM clients WHERE signup_date < DATE '{AS_OF:%Y-%m-%d}' "
                "ORDER BY client_id"
            )
            .df()["client_id"]
            .astype(str),
            "as_of": AS_OF,
        }
    )
    _import_engine()
    table, catalog, _ = _timed(phases, "features", _engine, ds, spine)
    res = {
        "seconds": phases["features"],
        "phases": phases,
        "info": {"spine_rows": len(spine), "features": len(catalog)},
    }
    return res, table


def featuretools_dfs(ctx: Ctx) -> dict:
    """Time Featuretools DFS with cutoff times on the subset, in its own virtualenv.

    The DFS runs ``benchmarks/ft_case.py`` with ``bench-data/ft-venv/bin/python``
    (featuretools needs pandas < 3); that script reports its own timings and peak
    memory. The check compares windowed counts and sums where the definitions coincide.
    """
    py = FT_VENV / "bin" / "python"
    if not py.exists():
        raise RuntimeError(
            f"no Featuretools virtualenv at {FT_VENV}: create it with "
            f"python3 -m venv {FT_VENV} && {py.parent}/pip install 'featuretools>=1.31,<2' "
            "'pandas>=2.2,<3' pyarrow"
        )
    out_dir = BENCH_DATA / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    fm_path = out_dir / f"ft-{FT_SUBSET}-{AS_OF:%Y%m%d}.parquet"
    proc = subprocess.run(
        [
            str(py),
            str(Path(__file__).with_name("ft_case.py")),
            str(BENCH_DATA / FT_SUBSET),
            f"{AS_OF:%Y-%m-%d}",
            ",".join(map(str, FT_WINDOWS)),
            str(fm_path),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ""},
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("FT_RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"featuretools run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    ft = json.loads(line[len("FT_RESULT ") :])
    out = {
        "seconds": ft["phases"]["dfs"],
        "phases": ft["phases"],
        "info": {
            "spine_rows": ft["instances"],
            "features": ft["features"],
            "featuretools": ft["versions"],
        },
        "maxrss_mb": ft["maxrss_mb"],
    }
    if ctx.check:
        _, table = _subset_engine(ctx)
        fm = pd.read_parquet(fm_path)
        out["info"]["check"] = compare(ft_to_engine_names(fm), table)
    return out


def ft_to_engine_names(fm: pd.DataFrame) -> pd.DataFrame:
    """Rename Featuretools columns whose definition equals an engine feature.

    ``COUNT(campaign_events WHERE event = paused)`` in a 30-day training window is
    ``campaigns__paused__30d``; ``SUM(spend.spend)`` in it is ``spend__spend__30d``;
    and so on. Columns without an equal engine feature are dropped.
    """
    sources = {
        "campaign_events": "campaigns",
        "contacts": "contacts",
        "spend": "spend",
        "activity": "activity",
    }
    ren = {}
    for col in fm.columns:
        if "__w" not in col:
            continue
        base, _, w = col.rpartition("__w")
        for tbl, src in sources.items():
            if base == f"COUNT({tbl})":
                ren[col] = f"{src}__events__{w}d"
            elif base.startswith(f"COUNT({tbl} WHERE ") and base.endswith(")"):
                cond = base[len(f"COUNT({tbl} WHERE ") : -1]
                if " AND " in cond or " = " not in cond:
                    continue
                _, _, val = cond.partition(" = ")
                ren[col] = f"{src}__{val.lower()}__{w}d"
            elif base.startswith(f"SUM({tbl}.") and base.endswith(")"):
                num = base[len(f"SUM({tbl}.") : -1]
                ren[col] = f"{src}__{num}__{w}d"
            elif base.startswith(f"MEAN({tbl}.") and base.endswith(")"):
                num = base[len(f"MEAN({tbl}.") : -1]
                ren[col] = f"{src}__{num}_mean__{w}d__ft"  # FT skips NaN rows: not equal
    out = fm[list(ren)].rename(columns=ren)
    # FT fills COUNT/SUM of no rows with 0 like the engine; keep the index as a column
    out.insert(0, "client_id", fm.index.astype(str) if "client_id" not in fm else fm["client_id"])
    return out.reset_index(drop=True)
