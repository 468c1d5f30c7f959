"""Model quality at the scoring date, the way a user meets it, on several worlds.

For each world and each of the last ``--dates`` weekly scoring dates T whose labels are
complete, the served model is fitted exactly as ``churnpredict train --as-of T`` fits it
(snapshots with labels complete before T, the configured protocol), then scores the
clients active at T. PR AUC at T is compared with the simulator's ``p_true`` on the same
rows (the ceiling) and with simple references: the "paused in the last 7 days" rule,
plain recency of the label's source and logistic regression on the same features.

Worlds (cached under ``bench-data/quality/``):

- ``sim-s{seed}``: the default simulator, 5,000 clients × 730 days, per seed;
- ``sim-alt``: other simulator parameters (more harmless pauses, fewer calls, a harsher
  newcomer phase, longer billing cycle);
- ``foreign``: a simulated world exported the way another platform would: every free-text
  category value (campaign reasons, contact topics and outcomes, activity events)
  renamed to codes the default config never names;
- ``cdnow``: the real CDNOW purchase log with ``configs/cdnow.yaml`` (no truth).

    python -m benchmarks.quality                       # all worlds, the default protocol
    python -m benchmarks.quality --worlds sim-s1 foreign --set model.refit=false
    python -m benchmarks.quality --survival --worlds sim-s1 sim-s2 sim-alt foreign

``--survival`` evaluates the time-to-freeze curve instead, as ``train`` does (its survival
fold: the latest weekly as-of dates whose 90-day follow-up is observed, everything fitted
on what was known at the fold's start): PR AUC at 7/30/90 days, Uno's C and the integrated
Brier score of the model, the hazard model alone, Cox, Kaplan-Meier, the paused rule and
the truth, with the two ratios of issue 15 (90-day PR AUC / the truth's, 7-day PR AUC /
the paused rule's), and where the 90-day gap is: the ratio with the truth's risk by day 30
in place of the classifier's (``truth_30d_ratio``, the model's days 31-90 kept) and with
the truth's days 31-90 in place of the model's (``truth_after_ratio``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from benchmarks.worlds import BENCH_DATA

ROOT = Path(__file__).resolve().parents[1]
QDATA = BENCH_DATA / "quality"
CDNOW = ROOT.parent / "shared" / "data" / "cdnow"
WORLDS = ("sim-s1", "sim-s2", "sim-alt", "foreign", "cdnow")

ALT = {
    "pauses": {"client_rate": 0.006, "partial_share": 0.6},
    "managers": {"calls_per_client_month": 0.6},
    "churn": {"newcomer_boost": 1.6, "base_log_hazard": -6.9},
    "billing": {"every_days": 45, "bad_payer_share": 0.2},
}


def _rename(values: pd.Series, prefix: str) -> pd.Series:
    """Map each distinct non-null value to ``prefix`` + a stable code (order of frequency)."""
    order = values.value_counts().index
    mapping = {v: f"{prefix}{i:02d}" for i, v in enumerate(order)}
    return values.map(mapping).where(values.notna(), None)


def _foreignize(src: Path, out: Path) -> None:
    """Rename every free-text category value of a simulated world (see module doc)."""
    out.mkdir(parents=True, exist_ok=True)
    for f in src.glob("*.parquet"):
        df = pd.read_parquet(f)
        if f.stem == "campaign_events":
            df["reason"] = _rename(df["reason"], "why")
        elif f.stem == "contacts":
            df["topic"] = _rename(df["topic"], "subj")
            df["outcome"] = _rename(df["outcome"], "res")
        elif f.stem == "activity":
            df["event"] = _rename(df["event"], "act")
        df.to_parquet(out / f.name, index=False)


def ensure(name: str) -> tuple[Path, Path | None]:
    """Return (data dir, config path or None) for a world, simulating it when missing."""
    from churnpredict.config import load_config, override
    from churnpredict.simulate import simulate

    if name == "cdnow":
        return CDNOW, ROOT / "configs" / "cdnow.yaml"
    path = QDATA / name
    truth = path / "truth.parquet"
    if truth.exists():
        import pyarrow.parquet as pq

        if "p_true_90d" in pq.read_schema(truth).names:
            return path, None
    cfg = load_config(ROOT / "configs" / "default.yaml")
    seed = {"sim-s1": 1, "sim-s2": 2, "sim-alt": 3, "foreign": 4}[name]
    sim = cfg.simulate.model_dump(mode="json")
    sim.update({"clients": 5000, "days": 730, "seed": seed})
    if name == "sim-alt":
        for section, values in ALT.items():
            sim[section].update(values)
    cfg = override(cfg, "simulate", **sim)
    target = path if name != "foreign" else QDATA / "foreign-src"
    simulate(cfg.simulate, target, label_cfg=cfg.label)
    if name == "foreign":
        _foreignize(target, path)
    return path, None


def evaluate_world(name: str, n_dates: int, sets: list[str]) -> pd.DataFrame:
    """Return one row per scoring date: PR AUC of model, references and truth at T."""
    from sklearn.metrics import average_precision_score as ap

    from churnpredict.config import load_config, override
    from churnpredict.modeling.backtest import feature_columns, fit_protocol
    from churnpredict.modeling.baselines import fit_baselines, label_source
    from churnpredict.modeling.split import fit_valid_calib
    from churnpredict.pipeline import load, load_truth, training_table

    data, config = ensure(name)
    cfg = load_config(config or ROOT / "configs" / "default.yaml")
    for item in sets:
        key, value = item.split("=", 1)
        section, field = key.split(".", 1)
        import yaml

        cfg = override(cfg, section, **{field: yaml.safe_load(value)})
    ds = load(data, cfg)
    table, catalog, _ = training_table(ds, cfg)
    table = table.reset_index(drop=True)
    truth = load_truth(data)
    feats = feature_columns(table, catalog)
    d = pd.to_datetime(table["as_of"]).dt.normalize()
    h = cfg.label.horizon_days
    rows = []
    for T in sorted(d.unique())[-n_dates:]:
        T = pd.Timestamp(T)
        train = (d <= T - pd.Timedelta(days=h)).to_numpy()
        sub = table[train].reset_index(drop=True)
        masks = fit_valid_calib(d[train].reset_index(drop=True), T - pd.Timedelta(days=h - 1), cfg)
        t0 = time.perf_counter()
        model = fit_protocol(sub, feats, masks, catalog, cfg, {})
        fit_s = time.perf_counter() - t0
        test = table[(d == T).to_numpy()].reset_index(drop=True)
        y = test["label"].to_numpy(float)
        X = test[feats]
        out = {"world": name, "as_of": T.date(), "rows": len(y), "pos": int(y.sum())}
        out["model"] = ap(y, model.predict_risk(X))
        out["trees"] = model.best_iteration_
        out["fit_s"] = round(fit_s, 1)
        # the references, fitted on the same rows the served model saw
        base = fit_baselines(
            sub[feats],
            sub["label"].to_numpy(float),
            wanted=["paused_rule", "recency", "logistic", "bgnbd"],
            logistic_max_rows=cfg.evaluation.logistic_max_rows,
            random_state=cfg.model.seed,
            label=label_source(cfg),
        )
        for ref, score in base.score(X).items():
            out[ref] = ap(y, score)
        if truth is not None:
            t = truth[truth["as_of"] == T].set_index("client_id")["p_true"]
            p = test["client_id"].map(t)
            ok = p.notna().to_numpy()
            if ok.all():
                out["p_true"] = ap(y, p.to_numpy(float))
                out["ratio"] = out["model"] / out["p_true"]
        rows.append(out)
        print(pd.DataFrame([out]).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return pd.DataFrame(rows)


def _config(config: Path | None, sets: list[str]):
    import yaml

    from churnpredict.config import load_config, override

    cfg = load_config(config or ROOT / "configs" / "default.yaml")
    for item in sets:
        key, value = item.split("=", 1)
        section, field = key.split(".", 1)
        cfg = override(cfg, section, **{field: yaml.safe_load(value)})
    return cfg


def survival_world(name: str, sets: list[str]) -> pd.DataFrame:
    """Return the time-to-freeze metrics of one world (rows = scorers), as ``train`` does."""
    import numpy as np

    from churnpredict.modeling.backtest import feature_columns, segment_of
    from churnpredict.modeling.model import ChurnModel
    from churnpredict.modeling.split import train_valid_calib_test
    from churnpredict.modeling.survival_eval import MODEL_FIRST, TRUTH_FIRST, evaluate_survival
    from churnpredict.pipeline import load, load_truth, training_table

    data, config = ensure(name)
    cfg = _config(config, sets)
    table, catalog, _ = training_table(load(data, cfg), cfg)
    table = table.reset_index(drop=True)
    feats = feature_columns(table, catalog)
    masks = train_valid_calib_test(table["as_of"], cfg)
    y = table["label"].to_numpy(dtype=float)
    t0 = time.perf_counter()
    fit, valid, calib = masks["fit"], masks["valid"], masks["calib"]
    es = ChurnModel(cfg.model).fit(
        table.loc[fit, feats],
        y[fit],
        table.loc[valid, feats],
        y[valid],
        table.loc[calib, feats],
        y[calib],
        catalog=catalog,
    )
    ev, _ = evaluate_survival(
        table, feats, masks, es, cfg, load_truth(data), segment_of(table), decompose=True
    )
    if ev is None:
        return pd.DataFrame()
    m = ev.metrics.copy()
    m.insert(0, "world", name)
    m["rows"] = ev.rows
    m["seconds"] = round(time.perf_counter() - t0, 1)
    if "p_true" in m.index:
        m["ratio_90d"] = m["pr_auc_90d"] / m.loc["p_true", "pr_auc_90d"]
        for name, col in ((TRUTH_FIRST, "truth_30d_ratio"), (MODEL_FIRST, "truth_after_ratio")):
            if name in m.index:  # the 90-day ratio with one part swapped for the truth's
                m[col] = m.loc[name, "pr_auc_90d"] / m.loc["p_true", "pr_auc_90d"]
    if "paused_rule" in m.index:
        m["ratio_7d_rule"] = m["pr_auc_7d"] / m.loc["paused_rule", "pr_auc_7d"]
    print(m.to_string(float_format=lambda v: f"{v:.4f}"), flush=True)
    return m.replace([np.inf, -np.inf], np.nan)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worlds", nargs="*", default=list(WORLDS), choices=WORLDS)
    ap.add_argument("--dates", type=int, default=3, help="scoring dates per world")
    ap.add_argument("--set", nargs="*", default=[], help="config overrides section.key=value")
    ap.add_argument("--survival", action="store_true", help="the time-to-freeze metrics")
    args = ap.parse_args(argv)
    if args.survival:
        res = pd.concat([survival_world(w, args.set) for w in args.worlds])
        res = res[res.index == "model"].set_index("world")
        cols = [
            "pr_auc_7d",
            "pr_auc_90d",
            "ratio_90d",
            "ratio_7d_rule",
            "uno_c",
            "truth_30d_ratio",
            "truth_after_ratio",
        ]
        print("\nthe model per world:")
        print(res[[c for c in cols if c in res]].to_string(float_format=lambda v: f"{v:.3f}"))
        return
    res = pd.concat([evaluate_world(w, args.dates, args.set) for w in args.worlds])
    cols = [
        c
        for c in (
            "model",
            "p_true",
            "ratio",
            "paused_rule",
            "recency",
            "logistic",
            "bgnbd",
            "trees",
        )
        if c in res
    ]
    print("\nmean over scoring dates (PR AUC at T):")
    print(res.groupby("world")[cols].mean().to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
