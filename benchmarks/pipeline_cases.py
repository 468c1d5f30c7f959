"""Benchmark cases for the whole jobs: validate 30M events, train on the default
simulated world, score 100k clients (issues 4, 5 and 6)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks.cases import AS_OF, Ctx, _cfg, peak_rss_mb
from benchmarks.worlds import BENCH_DATA, ensure_world

SIM_WORLD = BENCH_DATA / "sim-20k"


def _store(tmp: str) -> None:
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp}/mlflow.db"


def _sim_world() -> Path:
    """The default simulated world (20,000 clients × 730 days, seed 42), cached."""
    from churnpredict.simulate import simulate

    if not (SIM_WORLD / "truth.parquet").exists():
        cfg = _cfg()
        simulate(cfg.simulate, SIM_WORLD, label_cfg=cfg.label)
    return SIM_WORLD


def validate_30m(ctx: Ctx) -> dict:
    """Time ``churnpredict validate`` (every contract rule) on the 100k-client world."""
    from churnpredict.contract import validate

    t0 = time.perf_counter()
    report = validate(ctx.world, _cfg())
    seconds = time.perf_counter() - t0
    rows = sum(t.rows_read for t in report.tables.values())
    return {
        "seconds": seconds,
        "phases": {"validate": seconds},
        "info": {"rows_read": rows, "usable": report.usable, "errors": len(report.errors)},
    }


def train_20k(ctx: Ctx) -> dict:
    """Time ``churnpredict train`` (features, fit, calibration, report, registry) and
    report the issue-4 quality targets on the test fold."""
    from churnpredict.modeling.backtest import train_and_evaluate
    from churnpredict.pipeline import data_fingerprint, load, load_truth, training_table
    from churnpredict.report import write_report
    from churnpredict.tracking import log_training_run

    world = _sim_world()
    cfg = _cfg()
    phases: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        _store(tmp)
        t0 = time.perf_counter()
        ds = load(world, cfg)
        phases["load"] = time.perf_counter() - t0
        t = time.perf_counter()
        table, catalog, spec = training_table(ds, cfg)
        phases["features"] = time.perf_counter() - t
        t = time.perf_counter()
        result = train_and_evaluate(table, catalog, cfg, load_truth(world))
        result.model.metadata_["feature_spec"] = spec
        phases["fit+evaluate"] = time.perf_counter() - t
        t = time.perf_counter()
        write_report(result, Path(tmp) / "report")
        phases["report"] = time.perf_counter() - t
        t = time.perf_counter()
        log_training_run(
            result,
            cfg,
            data_fingerprint=data_fingerprint(ds),
            config_hash=cfg.fingerprint(),
            report_dir=Path(tmp) / "report",
        )
        phases["registry"] = time.perf_counter() - t
        seconds = time.perf_counter() - t0
    m = result.metrics
    info = {
        "rows": len(table),
        "features": len(catalog),
        "pr_auc_model": round(float(m.loc["model", "pr_auc"]), 4),
        "pr_auc_p_true": round(float(m.loc["p_true", "pr_auc"]), 4),
        "pr_auc_ratio_to_p_true": round(
            float(m.loc["model", "pr_auc"] / m.loc["p_true", "pr_auc"]), 3
        ),
        "precision_at_k_model": round(float(m.loc["model", "precision_at_k"]), 4),
        "precision_at_k_paused_rule": round(float(m.loc["paused_rule", "precision_at_k"]), 4),
        "precision_at_k_logistic": round(float(m.loc["logistic", "precision_at_k"]), 4),
        "ece_model": round(float(m.loc["model", "ece"]), 4),
    }
    # the time-to-freeze curve (issue 15): its share of the fit, and the quality targets
    for step in ("survival_eval", "survival_served_fit"):
        if step in result.seconds:
            phases[step] = result.seconds[step]
    sv = result.survival
    if sv is not None:
        sm = sv.metrics
        for h in sv.horizons:
            col = f"pr_auc_{h}d"
            info[f"{col}_model"] = round(float(sm.loc["model", col]), 4)
            if "p_true" in sm.index:
                info[f"{col}_ratio_to_p_true"] = round(
                    float(sm.loc["model", col] / sm.loc["p_true", col]), 3
                )
        if "paused_rule" in sm.index:
            info["pr_auc_7d_paused_rule"] = round(float(sm.loc["paused_rule", "pr_auc_7d"]), 4)
        for s in ("model", "km_segment_tenure", "cox"):
            if s in sm.index:
                info[f"uno_c_{s}"] = round(float(sm.loc[s, "uno_c"]), 4)
                info[f"ibs_{s}"] = round(float(sm.loc[s, "ibs"]), 4)
    return {"seconds": seconds, "phases": phases, "info": info}


def score_100k(ctx: Ctx) -> dict:
    """Time ``churnpredict score`` for 100k clients with a year of history, reasons
    included (the champion is trained beforehand on the 10k world, not timed)."""
    from churnpredict.pipeline import run_score, run_train

    cfg = _cfg()
    with tempfile.TemporaryDirectory() as tmp:
        _store(tmp)
        small = ensure_world("world-10k")
        run_train(small, cfg, report_dir=Path(tmp) / "rep")
        rss_before = peak_rss_mb()
        out = Path(tmp) / "lists" / "call_list.csv"
        t0 = time.perf_counter()
        summary = run_score(ctx.world, cfg, as_of=AS_OF.date(), out=out)
        seconds = time.perf_counter() - t0
        rows = len(pd.read_csv(out, usecols=["rank"], encoding="utf-8-sig"))
        shutil.rmtree(Path(tmp) / "lists")
    return {
        "seconds": seconds,
        "phases": {"score": seconds},
        "info": {
            "rows": rows,
            "rss_after_training_mb": round(rss_before),
            "summary": summary.splitlines()[0][:160],
        },
    }
