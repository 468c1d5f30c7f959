"""Train on time folds and evaluate on later snapshots, against baselines and the truth.

- :func:`train_and_evaluate`: one fit on fit / valid / calib folds, metrics on the test fold
  (the latest ``model.test_days`` of as-of dates) for the model, every baseline and, on
  simulated data, the simulator's ``p_true`` (the ceiling), all on the same rows.
- :func:`run_backtest`: the same per rolling-origin cut, plus metrics pooled over cuts.

The training table holds ``client_id``, ``as_of``, ``label`` and one column per feature of
the catalog.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from churnpredict.config import Config
from churnpredict.errors import DataError
from churnpredict.features.catalog import Feature
from churnpredict.modeling.baselines import (
    PROBABILISTIC,
    fit_baselines,
    label_source,
    paused_mask,
)
from churnpredict.modeling.evaluate import METRIC_NAMES, capacity_from_config, metrics
from churnpredict.modeling.model import ChurnModel
from churnpredict.modeling.presample import WEIGHT, check_presampled, weights_of
from churnpredict.modeling.split import (
    Cut,
    backtest_cuts,
    describe_folds,
    fit_valid_calib,
    gap_days,
    train_valid_calib_test,
)
from churnpredict.modeling.survival_eval import SurvivalEval, evaluate_survival, refit_hazard

log = logging.getLogger(__name__)

KEYS = ("client_id", "as_of", "label")
SURV_COLS = ("followup_days", "freeze_day")  # the follow-up (labels.followup), not features
NOT_FEATURES = (*KEYS, *SURV_COLS, WEIGHT)  # WEIGHT: a pre-sampled table's (presample.py)
MODEL = "model"
TRUTH = "p_true"
TENURE = "profile__tenure_days"
SEGMENT_PREFIX = "profile__segment_"
NEW_CLIENT_DAYS = (30, 90)


def segment_of(X: pd.DataFrame) -> np.ndarray:
    """Return each row's segment from the ``profile__segment_*`` flags ("-" when none)."""
    cols = [c for c in X.columns if c.startswith(SEGMENT_PREFIX)]
    out = np.full(len(X), "-", dtype=object)
    for c in cols:
        on = X[c].to_numpy(dtype=float) > 0.5
        out[on] = c[len(SEGMENT_PREFIX) :].replace("_", "-")
    return out


def group_metrics(preds: pd.DataFrame, scorers: Sequence[str]) -> pd.DataFrame:
    """Return PR AUC per scorer for every segment and for clients in their first days.

    One row per group (``all``, ``segment <name>``, ``first <n> days``) with ``rows``,
    ``positives`` and one PR AUC column per scorer (NaN where a group has one class).
    """
    from sklearn.metrics import average_precision_score

    from churnpredict.modeling.evaluate import finite_ranks

    y = preds["label"].to_numpy(dtype=float)
    groups: list[tuple[str, np.ndarray]] = [("all", np.ones(len(preds), bool))]
    if "segment" in preds:
        for seg in sorted(set(preds["segment"]) - {"-"}):
            groups.append((f"segment {seg}", (preds["segment"] == seg).to_numpy()))
    if "tenure_days" in preds:
        t = preds["tenure_days"].to_numpy(dtype=float)
        for n in NEW_CLIENT_DAYS:
            groups.append((f"first {n} days", t <= n))
    rows = []
    for name, m in groups:
        row: dict = {"group": name, "rows": int(m.sum()), "positives": int(y[m].sum())}
        for s in scorers:
            ok = m & preds[s].notna().to_numpy()
            yy = y[ok]
            row[s] = (
                float(average_precision_score(yy, finite_ranks(preds.loc[ok, s].to_numpy())))
                if 0 < yy.sum() < len(yy)
                else float("nan")
            )
        rows.append(row)
    return pd.DataFrame(rows).set_index("group")


@dataclass
class BacktestResult:
    """Per-cut and pooled metrics of a rolling-origin backtest.

    Attributes
    ----------
    per_cut : DataFrame
        One row per (cut, scorer): ``cut``, ``scorer`` and the metric columns.
    pooled : DataFrame
        Index = scorer, metrics over all cuts' test rows (capacity per as-of date).
    predictions : DataFrame
        ``cut``, ``client_id``, ``as_of``, ``label``, then one score column per scorer.
    cuts : list of Cut
    skipped : dict of str to str
        Baselines not scored and why.
    horizon : int
    capacity : int or None
    top_pct : float or None
    survival : DataFrame or None
        The time-to-freeze metrics per cut (``cut``, ``fold``, ``scorer``, metrics): each
        cut's survival fold is the latest of its dates with the whole follow-up observed
        (see :mod:`churnpredict.modeling.survival_eval`).
    """

    per_cut: pd.DataFrame
    pooled: pd.DataFrame
    predictions: pd.DataFrame
    cuts: list[Cut]
    skipped: dict[str, str]
    horizon: int
    capacity: int | None
    top_pct: float | None
    seconds: float = 0.0
    survival: pd.DataFrame | None = None


@dataclass
class TrainResult:
    """A fitted model and its test-fold evaluation.

    Attributes
    ----------
    model : ChurnModel
        The served model: refit on every labelled snapshot when ``model.refit`` (see
        :func:`fit_protocol`), else the evaluated one.
    metrics : DataFrame
        Index = scorer (``model``, baselines, ``p_true``), columns = metric names, all on
        the test rows (``p_true`` on the rows the truth covers, see ``truth_coverage``).
    predictions : DataFrame
        Test rows: ``client_id``, ``as_of``, ``label``, ``paused_7d`` (bool or NaN) and one
        score column per scorer.
    X_test : DataFrame
        Test rows' feature columns (for explanations and champion comparisons).
    y_test : numpy.ndarray
    folds : DataFrame
        Rows, dates and date range per fold.
    skipped : dict of str to str
    horizon : int
    capacity, top_pct
        The capacity the precision/recall metrics use (per as-of date).
    config_hash : str
    truth_coverage : float or None
        Share of test rows with a ``p_true`` (None without truth).
    seconds : dict of str to float
        Wall-clock time per step.
    backtest : BacktestResult or None
    by_group : DataFrame or None
        PR AUC per scorer by segment and for new clients (see :func:`group_metrics`).
    eval_model : ChurnModel or None
        The model the metrics describe: the same protocol as ``model``, fitted on the rows
        whose labels end before the test fold (None: ``model`` itself).
    survival : SurvivalEval or None
        The time-to-freeze curve on the survival fold (see
        :mod:`churnpredict.modeling.survival_eval`); None without follow-up columns or
        without a fold whose whole follow-up is observed.
    """

    model: ChurnModel
    metrics: pd.DataFrame
    predictions: pd.DataFrame
    X_test: pd.DataFrame
    y_test: np.ndarray
    folds: pd.DataFrame
    skipped: dict[str, str]
    horizon: int
    capacity: int | None
    top_pct: float | None
    config_hash: str
    truth_coverage: float | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    backtest: BacktestResult | None = None
    eval_model: ChurnModel | None = None
    by_group: pd.DataFrame | None = None
    survival: SurvivalEval | None = None

    @property
    def evaluated(self) -> ChurnModel:
        """Return the model the test metrics describe."""
        return self.eval_model if self.eval_model is not None else self.model


# ----------------------------------------------------------------------------- helpers
def _check_table(table: pd.DataFrame) -> None:
    missing = [c for c in KEYS if c not in table.columns]
    if missing:
        raise DataError(
            "the training table lacks key columns",
            file="training table",
            column=", ".join(missing),
            expected="client_id, as_of, label, then feature columns",
        )
    lab = pd.to_numeric(table["label"], errors="coerce")
    bad = ~lab.isin([0, 1])
    if bad.any():
        ex = table.loc[bad, list(KEYS)].head(5).astype(str).agg(", ".join, axis=1).tolist()
        raise DataError("label must be 0 or 1", file="training table", column="label", examples=ex)


def feature_columns(table: pd.DataFrame, catalog: Sequence[Feature]) -> list[str]:
    """Return the feature columns of ``table``: the catalog's, in catalog order.

    Without a catalog, every numeric column other than the keys. Raises :class:`DataError`
    when a catalog feature is not in the table.
    """
    if catalog:
        names = [f.name for f in catalog]
        missing = [n for n in names if n not in table.columns]
        if missing:
            raise DataError(
                f"{len(missing)} catalog feature(s) are not columns of the training table",
                file="training table",
                column=", ".join(missing[:20]),
            )
        extra = [c for c in table.columns if c not in set(names) and c not in NOT_FEATURES]
        if extra:
            log.warning("ignoring %d table columns not in the catalog: %s", len(extra), extra[:5])
        return names
    return [
        c
        for c in table.columns
        if c not in NOT_FEATURES and pd.api.types.is_numeric_dtype(table[c])
    ]


def _as_ns(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s).dt.normalize().astype("datetime64[ns]")


def _truth_for(rows: pd.DataFrame, truth: pd.DataFrame | None) -> np.ndarray | None:
    """Return ``p_true`` aligned with ``rows`` (NaN where the truth has no row)."""
    if truth is None:
        return None
    need = {"client_id", "as_of", "p_true"}
    if not need <= set(truth.columns):
        raise DataError(
            "truth lacks columns",
            file="truth",
            column=", ".join(sorted(need - set(truth.columns))),
        )
    left = pd.DataFrame(
        {"client_id": rows["client_id"].astype(str).to_numpy(), "as_of": _as_ns(rows["as_of"])}
    )
    right = pd.DataFrame(
        {
            "client_id": truth["client_id"].astype(str).to_numpy(),
            "as_of": _as_ns(truth["as_of"]).to_numpy(),
            "p_true": pd.to_numeric(truth["p_true"], errors="coerce").to_numpy(dtype=float),
        }
    ).drop_duplicates(["client_id", "as_of"])
    merged = left.merge(right, on=["client_id", "as_of"], how="left", validate="many_to_one")
    return merged["p_true"].to_numpy(dtype=float)


def _groups(rows: pd.DataFrame) -> np.ndarray:
    """Return the capacity group of each row: the as-of date (and the cut, in backtests)."""
    key = rows["as_of"].astype(str)
    if "cut" in rows.columns:
        key = rows["cut"].astype(str) + "/" + key
    return key.to_numpy()


def _metrics_table(
    preds: pd.DataFrame,
    scorers: Sequence[str],
    cfg: Config,
    *,
    rows: np.ndarray | None = None,
) -> pd.DataFrame:
    capacity, top_pct = capacity_from_config(cfg)
    ev = cfg.evaluation
    out = {}
    pm_all = preds["paused_7d"]
    for name in scorers:
        sub = preds if rows is None else preds[rows]
        if name == TRUTH:
            sub = sub[sub[TRUTH].notna()]
        if len(sub) == 0:
            continue
        pm = None if pm_all.isna().all() else sub["paused_7d"].fillna(False).to_numpy(bool)
        out[name] = metrics(
            sub["label"].to_numpy(dtype=float),
            sub[name].to_numpy(dtype=float),
            capacity=capacity,
            top_pct=top_pct,
            groups=_groups(sub),
            paused_mask=pm,
            is_probability=name in PROBABILISTIC or name in (MODEL, TRUTH),
            lift_pct=ev.lift_pct,
            n_bins=ev.ece_bins,
        )
    return pd.DataFrame.from_dict(out, orient="index")[list(METRIC_NAMES)]


def _scaled_trees(best: int, rows_before: int, rows_after: int, max_scale: float) -> int:
    """Return the trees for a refit on more rows: ``best`` × the rows ratio, capped."""
    ratio = rows_after / max(rows_before, 1)
    return max(1, round(best * min(max(ratio, 1.0), max_scale)))


def fit_protocol(
    table: pd.DataFrame,
    feats: list[str],
    masks: dict[str, np.ndarray],
    catalog: Sequence[Feature],
    cfg: Config,
    metadata: dict,
    keep: dict | None = None,
) -> ChurnModel:
    """Fit the model the way it is served, on the rows of ``masks`` (fit | valid | calib).

    ``keep``, when given, receives the early-stopping model as ``keep["early_stopping"]``.

    1. Early stopping: a booster on ``fit``, stopped on ``valid`` by a ranking metric,
       picks the number of trees (its calibrator, fitted on ``calib``, is kept when
       ``model.refit`` is off, and that model is returned).
    2. Calibration on the latest labelled window: the same number of trees (scaled to
       the rows) on every row whose label ends before ``calib`` starts; the calibrator
       is fitted on its scores of the ``calib`` rows.
    3. The served booster: the same trees on every row up to the end of ``calib`` (gap
       rows included), with the calibrator of step 2.

    Every label used ends before the date the model is used from, so evaluating the
    result on a later test fold measures exactly what serving does.
    """
    y = table["label"].to_numpy(dtype=float)
    d = _as_ns(table["as_of"])
    w = weights_of(table)  # a pre-sampled table (presample.py): every fit counts by weight

    def wt(rows):
        return None if w is None else w[rows]

    es = ChurnModel(cfg.model).fit(
        table.loc[masks["fit"], feats],
        y[masks["fit"]],
        table.loc[masks["valid"], feats],
        y[masks["valid"]],
        table.loc[masks["calib"], feats],
        y[masks["calib"]],
        catalog=catalog,
        metadata=metadata,
        weights=wt(masks["fit"]),
    )
    if es.early_stopping_note_:
        log.warning("%s", es.early_stopping_note_)
    if keep is not None:
        keep["early_stopping"] = es
    if not cfg.model.refit:
        return es
    calib = masks["calib"]
    calib_lo = d[calib].min()
    gap = pd.Timedelta(days=gap_days(cfg))
    before_calib = (d + gap < calib_lo).to_numpy()
    pool = (d <= d[calib].max()).to_numpy()
    sampled = len(es._sample_fit_rows(y[pool], wt(pool))[0])
    n = _scaled_trees(
        es.best_iteration_, es.metadata_["n_fit_rows"], sampled, cfg.model.refit_max_scale
    )
    cal = ChurnModel(cfg.model).fit(
        table.loc[before_calib, feats],
        y[before_calib],
        None,
        None,
        table.loc[calib, feats],
        y[calib],
        catalog=catalog,
        n_trees=n,
        weights=wt(before_calib),
    )
    served = ChurnModel(cfg.model).fit(
        table.loc[pool, feats],
        y[pool],
        None,
        None,
        None,
        None,
        catalog=catalog,
        n_trees=n,
        calibrator=cal.calibrator_,
        weights=wt(pool),
    )
    served.metadata_.update(metadata)
    served.metadata_.update(
        {
            "protocol": "refit",
            "early_stopping_trees": es.best_iteration_,
            "early_stopping_metric": cfg.model.early_stopping_metric,
            "first_as_of": str(d[pool].min().date()),
            "trained_until": str(d[pool].max().date()),
            "labels_until": str(
                (d[pool].max() + pd.Timedelta(days=cfg.label.horizon_days)).date()
            ),
            "calibrated_on": f"{d[calib].min().date()}..{d[calib].max().date()}",
            "n_calib_rows": int(calib.sum()),
        }
    )
    return served


def _fit_and_score(
    table: pd.DataFrame,
    feats: list[str],
    masks: dict[str, np.ndarray],
    test: np.ndarray,
    catalog: Sequence[Feature],
    cfg: Config,
    truth: pd.DataFrame | None,
    metadata: dict,
    seconds: dict[str, float],
    keep: dict | None = None,
) -> tuple[ChurnModel, pd.DataFrame, list[str], dict[str, str], pd.DataFrame]:
    """Fit model + baselines on the folds and score the test rows."""
    t0 = time.perf_counter()
    y = table["label"].to_numpy(dtype=float)
    model = fit_protocol(table, feats, masks, catalog, cfg, metadata, keep)
    seconds["model_fit"] = seconds.get("model_fit", 0.0) + time.perf_counter() - t0
    t0 = time.perf_counter()
    X_fit = table.loc[masks["fit"], feats]
    base = fit_baselines(
        X_fit,
        y[masks["fit"]],
        wanted=cfg.evaluation.baselines,
        logistic_max_rows=cfg.evaluation.logistic_max_rows,
        random_state=cfg.model.seed,
        label=label_source(cfg),
        weights=weights_of(table, masks["fit"]),
    )
    del X_fit
    seconds["baselines_fit"] = seconds.get("baselines_fit", 0.0) + time.perf_counter() - t0
    t0 = time.perf_counter()
    rows = table.loc[test, ["client_id", "as_of", "label"]].reset_index(drop=True)
    rows["as_of"] = _as_ns(rows["as_of"])
    X_test = table.loc[test, feats]
    pm = paused_mask(X_test)
    rows["paused_7d"] = pd.Series(pm, dtype=object) if pm is not None else np.nan
    rows["segment"] = segment_of(X_test)
    if TENURE in X_test.columns:
        rows["tenure_days"] = X_test[TENURE].to_numpy(dtype=float)
    rows[MODEL] = model.predict_risk(X_test)
    for name, s in base.score(X_test).items():
        rows[name] = s
    scorers = [MODEL, *base.names]
    p_true = _truth_for(rows, truth)
    if p_true is not None:
        rows[TRUTH] = p_true
        scorers.append(TRUTH)
    seconds["scoring"] = seconds.get("scoring", 0.0) + time.perf_counter() - t0
    return model, rows, scorers, base.skipped, X_test


def _base_metadata(table: pd.DataFrame, cfg: Config, masks: dict[str, np.ndarray]) -> dict:
    d = _as_ns(table["as_of"])
    used = masks["fit"] | masks["valid"] | masks["calib"]
    last = d[used].max()
    h = cfg.label.horizon_days
    return {
        "horizon_days": h,
        "first_as_of": str(d[used].min().date()),
        "trained_until": str(last.date()),
        "labels_until": str((last + pd.Timedelta(days=h)).date()),
        "config_hash": cfg.fingerprint(),
    }


# --------------------------------------------------------------------------- public
def train_and_evaluate(
    table: pd.DataFrame,
    catalog: Sequence[Feature],
    cfg: Config,
    truth: pd.DataFrame | None = None,
) -> TrainResult:
    """Fit the model on the time folds and evaluate it and the baselines on the test fold.

    Parameters
    ----------
    table : DataFrame
        ``client_id``, ``as_of``, ``label`` and the feature columns.
    catalog : sequence of Feature
        Describes every feature column.
    cfg : Config
    truth : DataFrame, optional
        ``client_id``, ``as_of``, ``p_true`` from the simulator; adds the ``p_true`` row.

    Returns
    -------
    TrainResult
    """
    started = time.perf_counter()
    _check_table(table)
    feats = feature_columns(table, catalog)
    table = table.reset_index(drop=True)
    masks = train_valid_calib_test(table["as_of"], cfg)
    check_presampled(table, masks["valid"])
    folds = describe_folds(table["as_of"], masks)
    log.info("folds:\n%s", folds.to_string(index=False))
    seconds: dict[str, float] = {}
    keep: dict = {}
    model, preds, scorers, skipped, X_test = _fit_and_score(
        table,
        feats,
        masks,
        masks["test"],
        catalog,
        cfg,
        truth,
        _base_metadata(table, cfg, masks),
        seconds,
        keep,
    )
    surv, hazard = None, None
    if set(SURV_COLS) <= set(table.columns):
        t0 = time.perf_counter()
        surv, hazard = evaluate_survival(
            table, feats, masks, keep["early_stopping"], cfg, truth, segment_of(table)
        )
        seconds["survival_eval"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    mt = _metrics_table(preds, scorers, cfg)
    by_group = group_metrics(preds, scorers)
    seconds["metrics"] = time.perf_counter() - t0
    served = model
    if cfg.model.refit:
        t0 = time.perf_counter()
        d = _as_ns(table["as_of"])
        all_masks = fit_valid_calib(d, d.max() + pd.Timedelta(days=1), cfg)
        served = fit_protocol(
            table, feats, all_masks, catalog, cfg, _base_metadata(table, cfg, all_masks)
        )
        seconds["served_fit"] = time.perf_counter() - t0
        log.info(
            "served model: %d trees on as-of dates %s..%s, calibrated on %s",
            served.best_iteration_,
            served.metadata_["first_as_of"],
            served.metadata_["trained_until"],
            served.metadata_["calibrated_on"],
        )
    if hazard is not None:
        t0 = time.perf_counter()
        served.survival_ = refit_hazard(table, np.ones(len(table), bool), None, hazard, cfg)
        seconds["survival_served_fit"] = time.perf_counter() - t0
        log.info(
            "served time-to-freeze model: %d trees on %d snapshots (%d features)",
            served.survival_.best_iteration_,
            len(table),
            len(hazard.features),
        )
    seconds["total"] = time.perf_counter() - started
    coverage = float(preds[TRUTH].notna().mean()) if TRUTH in preds else None
    capacity, top_pct = capacity_from_config(cfg)
    return TrainResult(
        model=served,
        eval_model=model if served is not model else None,
        by_group=by_group,
        survival=surv,
        metrics=mt,
        predictions=preds,
        X_test=X_test.reset_index(drop=True),
        y_test=preds["label"].to_numpy(dtype=float),
        folds=folds,
        skipped=skipped,
        horizon=cfg.label.horizon_days,
        capacity=capacity,
        top_pct=top_pct,
        config_hash=cfg.fingerprint(),
        truth_coverage=coverage,
        seconds=seconds,
    )


def run_backtest(
    table: pd.DataFrame,
    catalog: Sequence[Feature],
    cfg: Config,
    truth: pd.DataFrame | None = None,
) -> BacktestResult:
    """Refit and evaluate at every rolling-origin cut; report per-cut and pooled metrics.

    For each cut date ``c`` (see :func:`~churnpredict.modeling.split.backtest_cuts`) the
    rows with ``as_of + horizon < c`` are split into fit / valid / calib folds, and the rows
    with ``c <= as_of < c + backtest.test_days`` are scored.

    Parameters
    ----------
    table, catalog, cfg, truth
        As for :func:`train_and_evaluate`.

    Returns
    -------
    BacktestResult
    """
    started = time.perf_counter()
    _check_table(table)
    if WEIGHT in table.columns:
        raise ValueError("a backtest needs the whole snapshot table, not a pre-sampled one")
    feats = feature_columns(table, catalog)
    table = table.reset_index(drop=True)
    h = cfg.label.horizon_days
    d = _as_ns(table["as_of"])
    cuts = backtest_cuts(d, cfg, h)
    per_cut, all_preds = [], []
    skipped: dict[str, str] = {}
    used: list[Cut] = []
    scorers: list[str] = []
    surv_rows: list[pd.DataFrame] = []
    with_surv = set(SURV_COLS) <= set(table.columns)
    seg_all = segment_of(table) if with_surv else None
    for cut in cuts:
        end = d[cut.train].max() + pd.Timedelta(days=1)
        try:
            sub = fit_valid_calib(d, end, cfg, h)
        except DataError as err:
            log.warning("skipping cut %s: %s", cut.cut.date(), err)
            continue
        masks = {k: v & cut.train for k, v in sub.items()}
        if not all(m.any() for m in masks.values()):
            log.warning("skipping cut %s: a fold is empty", cut.cut.date())
            continue
        log.info("backtest cut %s", cut.cut.date())
        keep: dict = {}
        _, preds, scorers, skipped, _ = _fit_and_score(
            table, feats, masks, cut.test, catalog, cfg, truth,
            _base_metadata(table, cfg, masks), {}, keep,
        )  # fmt: skip
        if with_surv:
            ev, _ = evaluate_survival(
                table, feats, masks, keep["early_stopping"], cfg, truth, seg_all,
                until=cut.cut + pd.Timedelta(days=cfg.backtest.test_days),
            )  # fmt: skip
            if ev is not None:
                sm = ev.metrics.rename_axis("scorer").reset_index()
                sm.insert(0, "fold", f"{ev.fold[0].date()}..{ev.fold[1].date()}")
                sm.insert(0, "cut", cut.cut)
                surv_rows.append(sm)
        m = _metrics_table(preds, scorers, cfg)
        m.insert(0, "cut", cut.cut)
        per_cut.append(m.rename_axis("scorer").reset_index())
        preds.insert(0, "cut", cut.cut)
        all_preds.append(preds)
        used.append(cut)
    if not used:
        raise DataError(
            "not enough history for a backtest: every cut lacks a fit, valid or calib fold",
            column="as_of",
        )
    predictions = pd.concat(all_preds, ignore_index=True)
    pooled = _metrics_table(predictions, scorers, cfg)
    capacity, top_pct = capacity_from_config(cfg)
    return BacktestResult(
        per_cut=pd.concat(per_cut, ignore_index=True),
        pooled=pooled,
        predictions=predictions,
        cuts=used,
        skipped=skipped,
        horizon=h,
        capacity=capacity,
        top_pct=top_pct,
        seconds=time.perf_counter() - started,
        survival=pd.concat(surv_rows, ignore_index=True) if surv_rows else None,
    )
