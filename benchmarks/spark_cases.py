"""Spark benchmark cases: the same features on Spark ``local[2]`` vs the local backend.

``spark_10k`` / ``spark_100k`` (``make bench`` or ``python -m benchmarks.run --only
spark_10k``): load and check the world on Spark, the spine at one as-of date, then every
default feature with the Spark backend (timed), checked equal to the local backend's
table (rtol 1e-5). ``info`` carries the events read and the throughput per core
(events / feature seconds / cores) used for the projection in BENCHMARKS.md.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.cases import AS_OF, CONFIG, Ctx, peak_rss_mb

CORES = 2  # local[2]


def _cfg():
    from churnpredict.config import load_config, override

    return override(load_config(CONFIG), "spark", master=f"local[{CORES}]", driver_memory="6g")


def spark_1date(ctx: Ctx) -> dict:
    """Time the Spark backend: all default features, 1 as-of date, active clients."""
    from churnpredict import data
    from churnpredict import spark as sparkmod
    from churnpredict.features.build import build_features, resolve_spec
    from churnpredict.labels import build_spine

    cfg = _cfg()
    phases: dict = {}
    t0 = time.perf_counter()
    sparkmod.session(cfg)
    phases["session"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ds = data.load(ctx.world, cfg, engine="spark")
    phases["load"] = time.perf_counter() - t0
    events = sum(
        ds.report.tables[t].rows_accepted
        for t in ("campaign_events", "invoices", "contacts", "spend", "activity")
        if t in ds.report.tables
    )
    t0 = time.perf_counter()
    spine = build_spine(ds, cfg, [AS_OF], with_label=False)
    phases["spine"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    spec = resolve_spec(ds, cfg)
    phases["resolve"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    table, catalog, _ = build_features(ds, spine, cfg, spec, backend="spark")
    phases["features"] = time.perf_counter() - t0
    info = {
        "spine_rows": len(spine),
        "features": len(catalog),
        "events": events,
        "events_per_s_per_core": round(events / phases["features"] / CORES),
        "driver_rss_mb": round(peak_rss_mb()),
    }
    if ctx.check:
        local = data.load(ctx.world, cfg, engine="local")
        t0 = time.perf_counter()
        ref, _, _ = build_features(local, spine, cfg, spec, backend="local")
        info["local_features_s"] = round(time.perf_counter() - t0, 2)
        bad = [
            f.name
            for f in catalog
            if not np.allclose(
                table[f.name].to_numpy(np.float64),
                ref[f.name].to_numpy(np.float64),
                rtol=1e-5,
                atol=1e-6,
                equal_nan=True,
            )
        ]
        info["features_differing"] = len(bad)
        if bad:
            info["differing_examples"] = bad[:5]
    sparkmod.stop()
    return {"seconds": phases["features"], "phases": phases, "info": info}
