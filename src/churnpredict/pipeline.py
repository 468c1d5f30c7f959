"""End-to-end jobs the CLI calls: each wires the stages of the flow and returns a summary.

data dir -> contract -> labels -> features -> modeling -> tracking -> scoring -> calls
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from churnpredict.config import Config
from churnpredict.errors import ConfigError, DataError, UsageError
from churnpredict.features.build import (
    build_features,
    catalog_of,
    constant_columns,
    resolve_spec,
)
from churnpredict.features.catalog import Feature

log = logging.getLogger("churnpredict.pipeline")


# ------------------------------------------------------------------------------ data
def load(
    data_dir: Path,
    cfg: Config,
    *,
    policy: str = "strict",
    quarantine_dir: Path | None = None,
    engine: str = "local",
):
    """Load and validate a data directory (raises ``DataError`` when unusable).

    ``engine`` ``local`` (DuckDB) or ``spark`` (any Spark path; see :mod:`churnpredict.data`).
    """
    from churnpredict import data

    data.check_engine(engine)
    if engine == "local" and not Path(data_dir).is_dir():
        raise DataError(
            "data directory not found",
            file=str(data_dir),
            expected="a directory of contract tables",
        )
    t0 = time.perf_counter()
    where = data.spark_path(data_dir) if engine == "spark" else Path(data_dir)
    ds = data.load(where, cfg, engine=engine, policy=policy, quarantine_dir=quarantine_dir)
    log.info("loaded %s in %.1fs (engine %s)", data_dir, time.perf_counter() - t0, engine)
    return ds


def data_fingerprint(ds) -> str:
    """Return a short hash of the tables' names, row counts and time ranges."""
    h = hashlib.sha256()
    for table in sorted(ds.present):
        n = ds.con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
        h.update(f"{table}:{n};".encode())
    h.update(f"{ds.data_start}:{ds.data_end}".encode())
    return h.hexdigest()[:12]


def training_table(
    ds, cfg: Config, *, until: date | None = None, presample: bool = False
) -> tuple[pd.DataFrame, list[Feature], dict[str, Any]]:
    """Build the labelled training table from snapshots with complete label windows.

    ``presample`` (``train --engine spark``): decide from the labelled spine alone which
    rows the fits and evaluations need (:mod:`churnpredict.modeling.presample`) and build
    the features only for those; the table then has a ``presample_weight`` column and
    ``table.attrs["presample"]`` holds the whole spine's totals.
    """
    from churnpredict.data import engine_of
    from churnpredict.labels import build_spine, followup, freezes_frame, snapshot_dates

    t0 = time.perf_counter()
    freezes = freezes_frame(ds, cfg)
    dates = snapshot_dates(ds, cfg, until=pd.Timestamp(until) if until else None)
    if len(dates) < 4:
        raise DataError(
            f"too little history for training: {len(dates)} snapshot dates",
            file=str(ds.data_dir),
            expected=(
                f"at least snapshots.warmup_days ({cfg.snapshots.warmup_days}) + "
                f"label.horizon_days ({cfg.label.horizon_days}) + several "
                f"snapshots.every_days ({cfg.snapshots.every_days}) of data"
            ),
        )
    spine = build_spine(ds, cfg, dates, freezes=freezes)
    # the time to freeze (or the days observed) up to label.max_horizon_days, cut at `until`
    fu = followup(ds, cfg, spine, until=pd.Timestamp(until) if until else None, freezes=freezes)
    spine = spine.assign(
        followup_days=fu["followup_days"].to_numpy(), freeze_day=fu["freeze_day"].to_numpy()
    )
    info = None
    if presample:
        spine, info = _presampled_spine(spine, cfg)
    table, catalog, spec = build_features(ds, spine, cfg, backend=engine_of(ds))
    constant = constant_columns(table, catalog)
    if constant:
        log.warning(
            "%d of %d feature columns hold one value on every training row (their source, "
            "slice value or window never varies in this data), e.g. %s",
            len(constant),
            len(catalog),
            ", ".join(constant[:8]),
        )
    log.info(
        "training table: %d rows × %d features over %d as-of dates (%.1fs), label rate %.3f",
        len(table),
        len(catalog),
        len(dates),
        time.perf_counter() - t0,
        table["label"].mean(),
    )
    if info is not None:
        info["features"] = len(catalog)
        table.attrs["presample"] = info
        log.info("%s", _collected_text(info))
    return table, catalog, spec


def _presampled_spine(spine: pd.DataFrame, cfg: Config) -> tuple[pd.DataFrame, dict]:
    """Return the spine rows training needs (with their weights) and the spine's totals."""
    from churnpredict.modeling.presample import WEIGHT, plan

    p = plan(spine, cfg)
    info = {
        "rows": int(len(spine)),
        "collected": p.rows,
        "clients": int(spine["client_id"].nunique()),
        "label_rate": float(spine["label"].mean()),
        "rate": p.rate,
        "full_from": str(p.full_from.date()),
        "droppable": p.droppable,
    }
    out = spine.loc[p.keep].assign(**{WEIGHT: p.weights[p.keep]}).reset_index(drop=True)
    return out, info


def _collected_text(info: dict) -> str:
    """Return the line that says how many snapshot rows reached the driver."""
    from churnpredict.modeling.presample import driver_bytes, human_bytes

    return (
        f"Collected {info['collected']:,} of {info['rows']:,} snapshot rows to the driver "
        f"({info['collected'] / max(info['rows'], 1):.0%}: every row from "
        f"{info['full_from']} on, every positive, {info['rate']:.3g} of the other "
        f"negatives), ~{human_bytes(driver_bytes(info['collected'], info['features']))} "
        f"of driver memory for the table (rows × {info['features']} features × 8 bytes)."
    )


def _spark_truth(ds) -> pd.DataFrame | None:
    """Return the simulator's truth read by Spark (when the data set has it)."""
    from churnpredict.data import spark_truth

    return spark_truth(ds)


def load_truth(data_dir: Path) -> pd.DataFrame | None:
    """Return the simulator's truth (client_id, as_of, p_true[, p_true_7d, p_true_90d])."""
    import pyarrow.parquet as pq

    path = Path(data_dir) / "truth.parquet"
    if not path.exists():
        return None
    have = set(pq.read_schema(path).names)
    cols = [c for c in ("client_id", "as_of", "p_true", "p_true_7d", "p_true_90d") if c in have]
    truth = pd.read_parquet(path, columns=cols)
    truth["as_of"] = pd.to_datetime(truth["as_of"])
    truth["client_id"] = truth["client_id"].astype(str)
    return truth


# -------------------------------------------------------------------------- features
def feature_catalog(cfg: Config, data_dir: Path | None = None) -> list[Feature]:
    """Return the catalog for a data directory, or for the config's declared values."""
    if data_dir is not None:
        ds = load(data_dir, cfg)
        spec = resolve_spec(ds, cfg)
    else:
        spec = _static_spec(cfg)
    return catalog_of(spec)


def _static_spec(cfg: Config) -> dict[str, Any]:
    """Resolve the spec without data: every declared table present, 'auto' slices empty."""
    from types import SimpleNamespace

    import duckdb

    from churnpredict.contract import table_specs

    con = duckdb.connect()
    specs = table_specs(cfg)
    for spec in specs.values():
        cols = ", ".join(f'"{c.name}" {c.type}' for c in spec.columns)
        con.execute(f'CREATE TABLE "{spec.name}" ({cols})')
    ds = SimpleNamespace(con=con, present=set(specs) - {"freezes"}, data_dir="(no data)")
    return resolve_spec(ds, cfg)


def write_feature_docs(catalog: list[Feature], path: Path, cfg: Config) -> None:
    """Write the catalog as a Markdown table (docs/features.md)."""
    from churnpredict.io import atomic_write_text

    lines = [
        "# Features",
        "",
        "Generated by `churnpredict features list --markdown docs/features.md` from "
        "configs/default.yaml. Every feature at as-of T uses only rows before T 00:00 UTC; "
        "a window `Nd` covers [T - N days, T). Slice values taken from the data (`values: auto` "
        'or a `"*"` in a combination) are resolved at training time: here each stands as '
        "one `<column>` row (e.g. pauses by `<reason>`); training makes one feature per "
        "frequent value plus `(other)` and `(missing)`.",
        "",
        f"{len(catalog)} features.",
        "",
        "| name | family | kind | description |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| `{f.name}` | {f.family} | {f.kind} | {f.description} |" for f in catalog]
    atomic_write_text(Path(path), "\n".join(lines) + "\n")


def run_features_build(
    data_dir: Path,
    cfg: Config,
    dates: list[date],
    out: Path,
    *,
    policy: str = "strict",
    engine: str = "local",
) -> str:
    """Build the feature table for every active client at each date and write Parquet.

    ``engine`` ``spark`` reads, checks, labels and builds the features on Spark; the
    table is then written by this process (atomically), as with ``local``.
    """
    from churnpredict.io import atomic_write_bytes
    from churnpredict.labels import build_spine

    if not dates:
        raise UsageError("give at least one --as-of date")
    ds = load(data_dir, cfg, policy=policy, engine=engine)
    spine = build_spine(ds, cfg, [pd.Timestamp(d) for d in dates], with_label=False)
    table, catalog, _ = build_features(ds, spine, cfg, backend=engine)
    import io

    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    atomic_write_bytes(Path(out), buf.getvalue())
    return f"Wrote {len(table)} rows × {len(catalog)} features for {len(dates)} date(s) to {out}"


def default_as_of(cfg: Config) -> date:
    """Return today's date in ``calls.timezone``."""
    from zoneinfo import ZoneInfo

    try:
        tz = ZoneInfo(cfg.calls.timezone)
    except Exception:
        raise UsageError(
            f"calls.timezone {cfg.calls.timezone!r} is not a known time zone"
        ) from None
    return datetime.now(tz).date()


def day_after_last_event(ds) -> date:
    """Return the default training cut-off: the day after the newest event."""
    return (pd.Timestamp(ds.data_end).normalize() + timedelta(days=1)).date()


def resolve_as_of(value: date | str | None, ds, cfg: Config) -> pd.Timestamp:
    """Return the as-of date: given, ``latest`` (day after the newest event) or today."""
    if value == "latest":
        return pd.Timestamp(day_after_last_event(ds))
    if value is None:
        return pd.Timestamp(default_as_of(cfg))
    return pd.Timestamp(value)


def _metrics_text(metrics: pd.DataFrame, title: str) -> str:
    cols = [
        c
        for c in (
            "pr_auc",
            "roc_auc",
            "precision_at_k",
            "recall_at_k",
            "lift_at_10",
            "brier",
            "ece",
            "paused_recall_at_k",
        )
        if c in metrics.columns
    ]
    shown = metrics[cols].copy()
    return f"{title}\n" + shown.to_string(float_format=lambda v: f"{v:.3f}")


# ------------------------------------------------------------------------------ train
def run_train(
    data_dir: Path,
    cfg: Config,
    *,
    as_of: date | None = None,
    policy: str = "strict",
    report_dir: Path = Path("reports/train"),
    engine: str = "local",
) -> str:
    """Train on snapshots before ``as_of``, evaluate on the latest ones, register in MLflow.

    With ``engine="spark"`` the data is checked and labelled on Spark; this process picks
    from the labels alone the snapshot rows the fits and evaluations need (every row of
    the validation, calibration, test and survival folds, every positive, a seeded share of
    the other negatives: :mod:`churnpredict.modeling.presample`), Spark builds the features
    of those rows only, and LightGBM is fitted here on them, with the sampling accounted
    for (the same rates and log-odds offsets as on the whole table).
    """
    from churnpredict.drift import reference_stats
    from churnpredict.modeling.backtest import train_and_evaluate
    from churnpredict.report import write_report
    from churnpredict.tracking import log_training_run

    t0 = time.perf_counter()
    ds = load(data_dir, cfg, policy=policy, quarantine_dir=Path(report_dir), engine=engine)
    until = as_of or day_after_last_event(ds)
    table, catalog, spec = training_table(ds, cfg, until=until, presample=engine == "spark")
    presampled = table.attrs.get("presample")
    truth = load_truth(data_dir) if engine == "local" else _spark_truth(ds)
    result = train_and_evaluate(table, catalog, cfg, truth)
    result.model.metadata_["feature_spec"] = spec
    # what a freeze and the horizon meant in training: `score` refuses another definition
    result.model.metadata_["label"] = cfg.label.model_dump(mode="json")
    # the drift check's reference: the latest training as-of dates (see drift.py)
    result.model.metadata_["drift_reference"] = reference_stats(
        table, result.model.catalog_, seed=cfg.model.seed
    )
    report = write_report(result, Path(report_dir))
    reg = log_training_run(
        result,
        cfg,
        data_fingerprint=data_fingerprint(ds),
        config_hash=cfg.fingerprint(),
        report_dir=Path(report_dir),
    )
    log.info(
        "model: %s version %s registered (champion: version %s)",
        reg.model_name,
        reg.version,
        reg.champion_version,
    )
    if presampled is None:
        n_rows, n_clients, rate = len(table), table["client_id"].nunique(), table["label"].mean()
    else:
        n_rows, n_clients = presampled["rows"], presampled["clients"]
        rate = presampled["label_rate"]
    lines = [
        f"Trained on {n_rows:,} snapshots of {n_clients:,} clients "
        f"({len(catalog)} features, label rate {rate:.3f}) "
        f"in {time.perf_counter() - t0:.0f}s.",
        *([_collected_text(presampled)] if presampled is not None else []),
        _metrics_text(
            result.metrics,
            f"Test fold (latest {cfg.model.test_days} days of as-of dates; precision/recall at "
            f"{_capacity_text(cfg)} per as-of date):",
        ),
        *_group_lines(result),
        *_survival_lines(result),
        *_served_lines(result),
        f"Registered {reg.model_name} version {reg.version} (@challenger). {reg.reason}",
        f"Report: {report}",
        f"MLflow: {reg.tracking_uri}",
    ]
    return "\n".join(lines)


def _group_lines(result) -> list[str]:
    from churnpredict.modeling.evaluate import beaten_by

    lines = []
    losers = beaten_by(result.metrics)
    if losers:
        lines.append(
            "WARNING: the model does not beat " + ", ".join(losers) + " on the test fold "
            "(PR AUC): prefer that reference or look at the report"
        )
    g = result.by_group
    if g is not None and len(g) > 1:
        cols = [c for c in g.columns if c not in ("rows", "positives")]
        lines.append(
            "PR AUC by segment and for new clients (same test rows):\n"
            + g[["rows", "positives", *cols]].to_string(float_format=lambda v: f"{v:.3f}")
        )
    return lines


def _survival_lines(result) -> list[str]:
    sv = result.survival
    if sv is None:
        return []
    lo, hi = sv.fold
    h = sv.horizons
    lines = [
        f"Time to freeze (survival fold: as-of dates {lo.date()}..{hi.date()}, {sv.rows:,} "
        f"rows with {h[-1]} days of follow-up; everything fitted on what was known on "
        f"{lo.date()}; Uno's C to day {h[-1]}, IBS over days 1..{h[-1] - 1}):",
        sv.metrics.to_string(float_format=lambda v: f"{v:.3f}", na_rep="-"),
    ]
    m, H = sv.metrics, h[-1]
    said = []
    if {"model", "p_true"} <= set(m.index) and m.loc["p_true", f"pr_auc_{H}d"] > 0:
        a, b = m.loc["model", f"pr_auc_{H}d"], m.loc["p_true", f"pr_auc_{H}d"]
        said.append(f"{H}-day PR AUC {a:.4f} = {a / b:.3f}x the truth's ({b:.4f})")
    if {"model", "paused_rule"} <= set(m.index) and m.loc["paused_rule", "pr_auc_7d"] > 0:
        a, b = m.loc["model", "pr_auc_7d"], m.loc["paused_rule", "pr_auc_7d"]
        said.append(f"7-day PR AUC {a:.4f} = {a / b:.1f}x the paused rule's ({b:.4f})")
    if said:
        lines.append("; ".join(said) + ".")
    g = sv.by_group
    new = [k for k in g.index.get_level_values(0).unique() if k != "all"]
    if new:
        cols = [c for c in g.columns if c.startswith("pr_auc") or c in ("uno_c", "ibs")]
        keep = ("model", "classifier", "km_segment_tenure", "cox", "p_true")
        sub = g.loc[[(k, s) for k in new for s in keep if (k, s) in g.index], ["rows", *cols]]
        lines.append(
            "Time to freeze for new clients (same fold):\n"
            + sub.to_string(float_format=lambda v: f"{v:.3f}", na_rep="-")
        )
    return lines


def _served_lines(result) -> list[str]:
    m, ev = result.model.metadata_, result.evaluated.metadata_
    if result.eval_model is None:
        return [f"Served model = the evaluated one ({result.model.best_iteration_} trees)."]
    return [
        f"Evaluated model: as-of dates {ev.get('first_as_of')}..{ev.get('trained_until')}, "
        f"{result.evaluated.best_iteration_} trees. Served model: refit on "
        f"{m.get('first_as_of')}..{m.get('trained_until')} ({result.model.best_iteration_} "
        f"trees), calibrated on {m.get('calibrated_on')}."
    ]


def _capacity_text(cfg: Config) -> str:
    ev = cfg.evaluation
    if ev.top_pct:
        return f"the top {ev.top_pct:.0%}"
    return f"{ev.calls_per_day * ev.capacity_days} calls"


def run_backtest(
    data_dir: Path,
    cfg: Config,
    *,
    policy: str = "strict",
    report_dir: Path = Path("reports/backtest"),
) -> str:
    """Run the rolling-origin backtest and write its report."""
    from churnpredict.modeling.backtest import run_backtest as backtest
    from churnpredict.report import write_backtest_report

    ds = load(data_dir, cfg, policy=policy, quarantine_dir=Path(report_dir))
    table, catalog, _ = training_table(ds, cfg, until=day_after_last_event(ds))
    result = backtest(table, catalog, cfg, load_truth(data_dir))
    report = write_backtest_report(result, Path(report_dir))
    per_cut = result.per_cut
    lines = [_metrics_text(result.pooled, f"Backtest, {len(result.cuts)} cuts, pooled:")]
    if len(per_cut):
        cols = [
            c for c in ("cut", "scorer", "pr_auc", "precision_at_k", "ece") if c in per_cut.columns
        ]
        lines.append(
            "Per cut:\n" + per_cut[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}")
        )
    if result.survival is not None:
        sv = result.survival.assign(cut=result.survival["cut"].astype(str).str[:10])
        mean = sv.drop(columns=["cut", "fold"]).groupby("scorer", sort=False).mean()
        lines.append(
            "Time to freeze per cut (each cut's survival fold: its latest as-of dates with the "
            "whole follow-up observed):\n"
            + sv.to_string(index=False, float_format=lambda v: f"{v:.3f}", na_rep="-")
            + "\nMean over cuts:\n"
            + mean.to_string(float_format=lambda v: f"{v:.3f}", na_rep="-")
        )
    for name, why in result.skipped.items():
        lines.append(f"skipped {name}: {why}")
    lines.append(f"Report: {report}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ score
def _scored_frame(ds, table: pd.DataFrame, risk, T: pd.Timestamp, cfg: Config) -> pd.DataFrame:
    """Join risk with what the call list shows from `clients` and `contacts`, and the
    feature columns the routing reads (``calls.narrow_feature``, ``calls.reached_feature``)."""
    con = ds.con
    con.register("_ids", pd.DataFrame({"client_id": table["client_id"].to_numpy()}))
    has_contacts = "contacts" in ds.present
    last_contact = (
        "(SELECT max(ts) FROM contacts k WHERE k.client_id = c.client_id "
        f"AND k.ts < TIMESTAMP '{T}') AS last_contact_at"
        if has_contacts
        else "NULL::TIMESTAMP AS last_contact_at"
    )
    info = con.execute(
        "SELECT c.client_id, c.name, c.account_manager, c.monthly_revenue, c.phone, c.email, "
        f"c.segment, {last_contact} "
        "FROM clients c JOIN _ids USING (client_id)"
    ).df()
    con.unregister("_ids")
    scored = pd.DataFrame({"client_id": table["client_id"].astype(str).to_numpy(), "risk": risk})
    scored = scored.merge(info.astype({"client_id": str}), on="client_id", how="left")
    for col in dict.fromkeys((cfg.calls.narrow_feature, cfg.calls.reached_feature)):
        if col in table.columns:
            scored[col] = table[col].to_numpy()
    return scored


def run_score(
    data_dir: Path,
    cfg: Config,
    *,
    as_of: date | str | None,
    out: Path,
    sort: str = "risk",
    top: int | None = None,
    split_by: str | None = None,
    policy: str = "strict",
    model_version: str | None = None,
    allow_stale: bool = False,
    engine: str = "local",
    segment: str | None = None,
) -> str:
    """Score every active client at ``as_of`` with the champion and write the call list.

    With ``engine="spark"`` the data is checked, the active clients found, the features,
    the client facts and the list's client columns computed on Spark, and the model and
    the reasons run on Spark's executors (``mapInPandas``, the model broadcast); only
    one small row per scored client (risk, reasons, routing columns) and the drift
    counts come back to this process, where the list is ranked and written.

    Refuses stale data (``DataError``, exit 2) when a required table ends more than
    ``data.max_lag_days`` before ``as_of``, unless ``allow_stale``. Also writes the
    digest (``out`` with ``.html``) and reports the list's quality. With a time-to-freeze
    curve in the model the list gets ``risk_7d``, ``risk_90d`` and
    ``expected_active_days``. ``segment="new"`` lists only the clients who signed up at
    most ``calls.new_client_days`` days before ``as_of`` (the drift check still sees
    every active client).
    """
    if segment not in (None, "new"):
        raise UsageError(f"--segment must be 'new', got {segment!r}")
    from churnpredict.calls import (
        build_call_list,
        find_previous_list,
        list_quality,
        read_staff,
        write_call_list,
    )
    from churnpredict.digest import write_digest
    from churnpredict.drift import check_drift, drift_reference
    from churnpredict.explain import top_reasons
    from churnpredict.facts import client_facts, contact_topics, lookback_days
    from churnpredict.io import output_lock
    from churnpredict.labels import build_spine
    from churnpredict.tracking import load_champion, load_version

    t0 = time.perf_counter()
    out = Path(out)
    # the data first: unusable data is exit 2 whatever the registry holds, and a run
    # that fails on its input creates neither the output folder nor the lock file
    ds = load(data_dir, cfg, policy=policy, quarantine_dir=out.parent, engine=engine)
    T = resolve_as_of(as_of, ds, cfg)
    check_fresh(ds, cfg, T, allow_stale=allow_stale)
    out.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(out):
        if model_version:
            model, version = load_version(cfg, model_version)
        else:
            model, version = load_champion(cfg)
        log.info("model: %s version %s", cfg.tracking.model_name, version)
        _check_model_label(model, version, cfg)
        spine = build_spine(ds, cfg, [T], with_label=False)
        if spine.empty:
            raise DataError(
                f"no active clients at {T.date()}",
                file=str(data_dir),
                expected="clients who signed up before the as-of date and are not frozen",
            )
        spec = model.metadata_.get("feature_spec")
        if engine == "spark":
            table, risk, horizons, reasons, facts, drift = _score_spark(
                ds, spine, cfg, spec, model, T, segment
            )
        else:
            table, _, _ = build_features(ds, spine, cfg, spec, backend=engine)
            drift = check_drift(drift_reference(model), table, model.feature_names_, cfg)
        if not drift.ok:
            log.warning("%s", drift.text())
        else:
            log.info("%s", drift.text())
        if engine != "spark" and segment == "new":
            table = _new_clients(ds, table, T, cfg)
        if segment == "new" and table.empty:  # a nightly job gets an empty list, not an error
            return _empty_new_list(model, out, cfg, T, split_by)
        if engine != "spark":
            X = table[model.feature_names_]
            risk = model.predict_risk(X)
            horizons = model.predict_horizons(X, risk)
            contrib = model.contributions(X)
            facts = client_facts(ds, T, table["client_id"].astype(str), cfg)
            reasons = top_reasons(
                contrib,
                X,
                model.catalog_,
                language=cfg.calls.language,
                k=cfg.calls.top_reasons,
                facts=facts,
                min_contribution=cfg.calls.min_contribution,
                lookback=lookback_days(cfg),
                nouns={k: (v.en, v.ru, v.ru_plural) for k, v in cfg.calls.nouns.items()},
                contact_topics=contact_topics(cfg),
            )
        scored = _scored_frame(ds, table, risk, T, cfg)
        for col in horizons.columns:
            scored[col] = horizons[col].to_numpy()
        previous = find_previous_list(out, T.date())
        calls = build_call_list(
            scored,
            reasons,
            cfg,
            as_of=T.date(),
            model_version=f"{cfg.tracking.model_name}/{version}",
            sort=sort,
            top=top,
            previous=previous,
            facts=facts,
            staff=read_staff(ds),
        )
        paths = write_call_list(calls, out, cfg, split_by=split_by, locked=True)
        if "risk_14d" in scored:  # the digest may say "likely within 2 weeks"
            soon = scored.set_index(scored["client_id"].astype(str))["risk_14d"]
            for_digest = calls.assign(risk_14d=calls["client_id"].astype(str).map(soon))
        else:
            for_digest = calls
        digest = write_digest(for_digest, out.with_suffix(".html"), cfg, previous=previous)
    bands = calls["risk_band"].value_counts()
    who = (
        "active clients"
        if segment is None
        else f"new clients (first {cfg.calls.new_client_days} days)"
    )
    in_cap = int(calls["in_capacity"].sum()) if "in_capacity" in calls else len(calls)
    at_risk = calls["risk_band"].isin(["high", "medium"]) & ~calls["hold_out"]
    missed = int((at_risk & ~calls["in_capacity"]).sum())
    q = list_quality(calls, facts.set_index("client_id").loc[calls["client_id"]], cfg)
    return (
        f"Scored {len(calls):,} {who} as of {T.date()} with "
        f"{cfg.tracking.model_name} v{version} in {time.perf_counter() - t0:.1f}s: "
        f"{bands.get('high', 0):,} high, {bands.get('medium', 0):,} medium, "
        f"{bands.get('low', 0):,} low risk; {in_cap:,} calls fit today's capacity, "
        f"{missed:,} high/medium clients did not fit.\n"
        f"{q.text()}\n"
        f"Call list: {paths[0]}"
        + (f" (+{len(paths) - 1} per-owner files)" if len(paths) > 1 else "")
        + (f"\nDigest:    {digest}" if digest else "")
    )


def _score_spark(ds, spine: pd.DataFrame, cfg: Config, spec, model, T: pd.Timestamp, segment):
    """Score on Spark's executors (:func:`churnpredict.spark.score_on_executors`).

    Returns the scored rows' table (ids and routing columns), risk, time-to-freeze
    outputs, reasons, facts and the drift report, as the local path computes them.
    """
    from churnpredict.drift import check_drift, drift_reference
    from churnpredict.facts import client_facts
    from churnpredict.spark import score_on_executors

    keep = (lambda t: _new_clients(ds, t, T, cfg)) if segment == "new" else None
    table, risk, horizons, reasons, facts, counts = score_on_executors(
        ds,
        spine,
        cfg,
        spec,
        model,
        lambda ids: client_facts(ds, T, ids, cfg),
        keep_rows=keep,
    )
    drift = check_drift(drift_reference(model), counts, model.feature_names_, cfg)
    return table, risk, horizons, reasons, facts, drift


def _check_model_label(model, version, cfg: Config) -> None:
    """Refuse a model trained for another freeze definition or horizon (exit 2).

    The list, the digest and ``outcomes`` read ``risk`` as a freeze within
    ``label.horizon_days``, and the idle rule decides who is active (scored) at all; a
    model trained with another ``label`` section would be mislabelled. Models saved
    before the section was recorded are checked on the horizon alone.
    """
    now = cfg.label.model_dump(mode="json")
    label = model.metadata_.get("label")
    if isinstance(label, dict):
        keys = sorted(set(label) | set(now))
    else:  # an older model: only its horizon is known
        label, keys = {"horizon_days": model.metadata_.get("horizon_days")}, ["horizon_days"]
        if label["horizon_days"] is None:
            return
    diff = [k for k in keys if label.get(k) != now.get(k)]
    if diff:
        said = "; ".join(f"label.{k}: trained {label.get(k)!r}, now {now.get(k)!r}" for k in diff)
        raise ConfigError(
            f"model {cfg.tracking.model_name} version {version} was trained with another "
            f"freeze definition or horizon ({said}): its risk means something else. Score "
            "with the config it was trained with, or retrain."
        )


def _new_clients(ds, table: pd.DataFrame, T: pd.Timestamp, cfg: Config) -> pd.DataFrame:
    """Return the rows of clients who signed up at most ``calls.new_client_days`` before T."""
    signup = ds.con.execute("SELECT client_id, signup_date FROM clients").df()
    when = pd.to_datetime(
        signup.set_index(signup["client_id"].astype(str))["signup_date"]
    ).dt.normalize()
    days = (T.normalize() - when.reindex(table["client_id"].astype(str))).dt.days.to_numpy()
    keep = days <= cfg.calls.new_client_days
    return table.loc[keep].reset_index(drop=True)


def _empty_new_list(model, out: Path, cfg: Config, T: pd.Timestamp, split_by: str | None) -> str:
    """Write a call list with the header only (no new clients at T); return one line.

    The caller holds the output lock. The header is the one a list with rows would
    have (with the time-to-freeze columns when the model has a curve); with
    ``split_by`` the per-owner files of an earlier list are removed.
    """
    from churnpredict.calls import CALL_LIST_COLUMNS, EXTRA_COLUMNS, RISK_HELPERS, write_call_list

    helpers = RISK_HELPERS if getattr(model, "survival_", None) is not None else []
    empty = pd.DataFrame(columns=CALL_LIST_COLUMNS + helpers + EXTRA_COLUMNS)
    paths = write_call_list(empty, out, cfg, split_by=split_by, locked=True)
    return (
        f"No new clients at {T.date()}: nobody active signed up in the last "
        f"{cfg.calls.new_client_days} days (calls.new_client_days); wrote an empty call "
        f"list (header only): {paths[0]}"
    )


def check_fresh(ds, cfg: Config, T: pd.Timestamp, *, allow_stale: bool = False) -> None:
    """Refuse data whose required tables end more than ``data.max_lag_days`` before ``T``.

    Required: ``data.required_tables``, the ``derive_clients_from`` table and the label
    source (they decide who is active and what the features see). A table that ends
    early makes its clients look silent, so the list would be wrong (DATA_CONTRACT.md
    §2). With ``allow_stale`` the problem is logged as a warning instead.
    """
    from churnpredict.contract import table_coverage, table_specs
    from churnpredict.labels import label_source

    need = set(cfg.data.required_tables) | {label_source(ds, cfg)}
    if cfg.data.derive_clients_from:
        need.add(cfg.data.derive_clients_from)
    lag = cfg.data.max_lag_days
    stale = []
    coverage = table_coverage(ds, cfg)
    for table, (_, last) in sorted(coverage.items()):
        days = (pd.Timestamp(T).normalize() - pd.Timestamp(last).normalize()).days
        if table in need and days > lag:
            stale.append((table, pd.Timestamp(last), days))
    # a required event table with no rows (an export that came out empty) says nothing
    # about anyone: its clients would read as silent, like a table that ended long ago
    specs = table_specs(cfg)
    for table in sorted(need & set(ds.present) - set(coverage)):
        if table in specs and specs[table].time_columns:
            stale.append((table, None, None))
    if not stale:
        return
    said = "; ".join(
        f"{t} has no rows" if last is None else f"{t} ends {last} ({d} days before {T.date()})"
        for t, last, d in stale
    )
    text = (
        f"stale data: {said}; data.max_lag_days is {lag}, so recent activity is missing "
        "and clients would look silent"
    )
    if allow_stale:
        log.warning("%s (scoring anyway: --allow-stale)", text)
        return
    raise DataError(
        text,
        file=", ".join(ds.files.get(t, t) for t, _, _ in stale),
        expected=(
            f"every required table with rows up to {lag} days before the as-of date, "
            "an earlier --as-of, or --allow-stale to score anyway"
        ),
    )


def run_outcomes(lists_dir: Path, data_dir: Path, cfg: Config, *, policy: str = "strict") -> str:
    """Compare past call lists with the freezes that followed."""
    from churnpredict.labels import derive_freezes
    from churnpredict.outcomes import evaluate_outcomes

    if not Path(lists_dir).is_dir():
        raise UsageError(f"--lists {lists_dir} is not a folder of call lists")
    ds = load(data_dir, cfg, policy=policy)
    freezes = derive_freezes(ds, cfg)
    report = evaluate_outcomes(
        Path(lists_dir),
        freezes,
        cfg.label.horizon_days,
        cfg.calls.calls_per_owner_per_day,
        observed_until=pd.Timestamp(ds.data_end).date(),
        risk_bands_medium=cfg.calls.risk_bands.medium,
    )
    return report.text()
