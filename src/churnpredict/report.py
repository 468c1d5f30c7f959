"""The training report: PNG plots and one self-contained ``report.html``.

matplotlib is imported inside the functions (object API with the Agg canvas, no pyplot
global state). Every file is written atomically (temp file + ``os.replace``).
"""

from __future__ import annotations

import base64
import html
import io
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from churnpredict.modeling.evaluate import (
    beaten_by,
    calibration_table,
    gains_curve,
    precision_at_k_curve,
)

if TYPE_CHECKING:
    from churnpredict.modeling.backtest import BacktestResult, TrainResult

LABELS = {
    "model": "churn model",
    "paused_rule": "paused-campaign rule",
    "rfm": "RFM score",
    "logistic": "logistic regression",
    "recency": "recency of the label's source",
    "bgnbd": "BG/NBD (knows the idle rule)",
    "p_true": "simulator truth (ceiling)",
}
COLORS = {
    "model": "#1f77b4",
    "paused_rule": "#d62728",
    "rfm": "#ff7f0e",
    "logistic": "#2ca02c",
    "recency": "#9467bd",
    "bgnbd": "#8c564b",
    "p_true": "#7f7f7f",
}
TABLE_METRICS = {
    "pr_auc": "PR AUC",
    "roc_auc": "ROC AUC",
    "precision_at_k": "precision @ capacity",
    "recall_at_k": "recall @ capacity",
    "lift_at_10": "lift @ top 10%",
    "brier": "Brier",
    "ece": "calibration error (ECE)",
    "paused_recall_at_k": "freezes caught among paused",
    "rows": "rows",
    "positives": "freezes",
}


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _figure(ncols: int = 1, width: float = 6.4, height: float = 4.2) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), dpi=100, layout="constrained")
    axes = fig.subplots(1, ncols)
    return fig, axes


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _scorers(preds: pd.DataFrame) -> list[str]:
    return [s for s in LABELS if s in preds.columns]


def _groups(preds: pd.DataFrame) -> np.ndarray:
    key = preds["as_of"].astype(str)
    if "cut" in preds.columns:
        key = preds["cut"].astype(str) + "/" + key
    return key.to_numpy()


# ------------------------------------------------------------------------------ plots
def plot_calibration(preds: pd.DataFrame, n_bins: int = 15) -> bytes:
    """Plot observed freeze rate against mean predicted risk per equal-mass bin."""
    fig, ax = _figure()
    y = preds["label"].to_numpy(float)
    top = 0.0
    for s in ("model", "logistic", "p_true"):
        if s not in preds.columns:
            continue
        ok = preds[s].notna().to_numpy()
        tab = calibration_table(y[ok], preds.loc[ok, s].to_numpy(float), n_bins)
        ax.plot(tab["mean_score"], tab["observed"], "o-", color=COLORS[s], label=LABELS[s])
        top = max(top, tab["mean_score"].max(), tab["observed"].max())
    ax.plot([0, top], [0, top], "k--", lw=1, label="perfect calibration")
    ax.set_xlabel("predicted risk (mean per bin)")
    ax.set_ylabel("observed freeze rate")
    ax.set_title(f"Calibration ({n_bins} equal-size bins of test rows)")
    ax.legend()
    return _png(fig)


def plot_calibration_fixed(preds: pd.DataFrame, width: float = 0.1) -> bytes:
    """Plot observed freeze rate per fixed-width bin of predicted risk, with row counts.

    Equal-size bins crowd into the low risks where most clients are; fixed bins show the
    0.3-1.0 range the call list acts on (a bin with few rows is drawn as it is: its
    count is printed next to it).
    """
    fig, ax = _figure(width=7.0)
    y = preds["label"].to_numpy(float)
    edges = np.linspace(0.0, 1.0, int(round(1 / width)) + 1)
    for s in ("model", "logistic", "p_true"):
        if s not in preds.columns:
            continue
        p = preds[s].to_numpy(float)
        ok = ~np.isnan(p)
        idx = np.clip(np.digitize(p[ok], edges[1:-1]), 0, len(edges) - 2)
        n = np.bincount(idx, minlength=len(edges) - 1)
        pos = np.bincount(idx, weights=y[ok], minlength=len(edges) - 1)
        mean_p = np.bincount(idx, weights=p[ok], minlength=len(edges) - 1)
        have = n > 0
        ax.plot(
            mean_p[have] / n[have], pos[have] / n[have], "o-", color=COLORS[s], label=LABELS[s]
        )
        if s == "model":
            for x, obs, k in zip(
                mean_p[have] / n[have], pos[have] / n[have], n[have], strict=True
            ):
                ax.annotate(f"{k:,}", (x, obs), textcoords="offset points", xytext=(4, -10),
                            fontsize=7, color=COLORS[s])  # fmt: skip
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted risk (mean per bin)")
    ax.set_ylabel("observed freeze rate")
    ax.set_title(f"Calibration (fixed bins of width {width:g}; model rows per bin)")
    ax.legend(loc="upper left")
    return _png(fig)


def capacity_table(preds: pd.DataFrame, capacity: int | None, scorer: str = "model"):
    """Return calls per day vs freezes reached per day (mean over as-of dates).

    One row per number of calls ``k``: ``precision`` (share of calls reaching a client
    who then freezes), ``freezes_reached_per_day`` and ``share_of_freezes``.
    """
    y = preds["label"].to_numpy(float)
    groups = _groups(preds)
    days = max(len(set(groups)), 1)
    ks = sorted({10, 25, 50, 100, 200, 400, 800} | ({int(capacity)} if capacity else set()))
    c = precision_at_k_curve(y, preds[scorer].to_numpy(float), ks, groups)
    c["freezes_reached_per_day"] = c["recall"] * y.sum() / days
    return c.rename(columns={"k": "calls_per_day", "recall": "share_of_freezes"})


def plot_gains(preds: pd.DataFrame) -> bytes:
    """Plot cumulative gains and lift for every scorer."""
    fig, (ax1, ax2) = _figure(2)
    y = preds["label"].to_numpy(float)
    for s in _scorers(preds):
        ok = preds[s].notna().to_numpy()
        g = gains_curve(y[ok], preds.loc[ok, s].to_numpy(float))
        ax1.plot(g["share_called"], g["share_caught"], color=COLORS[s], label=LABELS[s])
        lift = g["share_caught"] / g["share_called"].replace(0, np.nan)
        ax2.plot(g["share_called"][1:], lift[1:], color=COLORS[s], label=LABELS[s])
    ax1.plot([0, 1], [0, 1], "k--", lw=1, label="random")
    ax1.set_xlabel("share of clients called (highest risk first)")
    ax1.set_ylabel("share of freezes reached")
    ax1.set_title("Cumulative gains")
    ax1.legend()
    ax2.axhline(1, color="k", ls="--", lw=1)
    ax2.set_xlabel("share of clients called")
    ax2.set_ylabel("lift over random calling")
    ax2.set_title("Lift")
    return _png(fig)


def plot_precision_at_k(preds: pd.DataFrame, capacity: int | None) -> bytes:
    """Plot precision per as-of date against the number of calls per day."""
    fig, ax = _figure()
    y = preds["label"].to_numpy(float)
    groups = _groups(preds)
    per_day = int(pd.Series(groups).value_counts().median())
    hi = max(10, min(per_day, 5 * (capacity or max(per_day // 20, 10))))
    ks = sorted(set(np.unique(np.geomspace(1, hi, 25).astype(int)).tolist()))
    for s in _scorers(preds):
        ok = preds[s].notna().to_numpy()
        c = precision_at_k_curve(y[ok], preds.loc[ok, s].to_numpy(float), ks, groups[ok])
        ax.plot(c["k"], c["precision"], color=COLORS[s], label=LABELS[s])
    if capacity:
        ax.axvline(capacity, color="k", ls=":", lw=1, label=f"capacity ({capacity}/day)")
    ax.axhline(y.mean(), color="k", ls="--", lw=1, label="base rate")
    ax.set_xscale("log")
    ax.set_xlabel("calls per day (top k of each day's list)")
    ax.set_ylabel("share of calls reaching a client who then freezes")
    ax.set_title("Precision at k")
    ax.legend()
    return _png(fig)


def plot_risk_distribution(preds: pd.DataFrame) -> bytes:
    """Plot the model's risk for clients that froze and clients that did not."""
    fig, ax = _figure()
    risk = preds["model"].to_numpy(float)
    y = preds["label"].to_numpy(int)
    bins = np.linspace(0, max(risk.max(), 1e-6), 50)
    ax.hist(risk[y == 0], bins=bins, density=True, alpha=0.6, label="did not freeze")
    ax.hist(risk[y == 1], bins=bins, density=True, alpha=0.6, label="froze")
    ax.set_xlabel("predicted risk")
    ax.set_ylabel("density")
    ax.set_title("Risk by outcome (test rows)")
    ax.legend()
    return _png(fig)


def importance_table(result: TrainResult, sample_rows: int = 2000, top: int = 20) -> pd.DataFrame:
    """Return gain and mean |SHAP| per feature (SHAP on a seeded sample of test rows)."""
    model = result.model
    imp = model.feature_importance().set_index("feature")
    X = result.X_test
    if len(X) > sample_rows:
        X = X.sample(n=sample_rows, random_state=model.params.seed)
    contrib = model.contributions(X).drop(columns="bias")
    imp["mean_abs_shap"] = contrib.abs().mean()
    imp["gain_share"] = imp["gain"] / max(imp["gain"].sum(), 1e-12)
    desc = {f.name: f.description for f in model.catalog_}
    imp["description"] = [desc.get(n, "") for n in imp.index]
    return imp.sort_values("mean_abs_shap", ascending=False).head(max(top, 1) * 3)


def plot_importance(imp: pd.DataFrame, top: int = 20) -> bytes:
    """Plot the top features by gain and by mean |SHAP|."""
    fig, (ax1, ax2) = _figure(2, width=7.5, height=0.28 * top + 1.5)
    g = imp.sort_values("gain", ascending=False).head(top)[::-1]
    ax1.barh(g.index, g["gain_share"], color=COLORS["model"])
    ax1.set_xlabel("share of total gain")
    ax1.set_title("Top features by gain")
    s = imp.sort_values("mean_abs_shap", ascending=False).head(top)[::-1]
    ax2.barh(s.index, s["mean_abs_shap"], color=COLORS["logistic"])
    ax2.set_xlabel("mean |SHAP| (log-odds)")
    ax2.set_title("Top features by mean |SHAP| on test rows")
    for ax in (ax1, ax2):
        ax.tick_params(axis="y", labelsize=8)
    return _png(fig)


def plot_backtest(bt: BacktestResult) -> bytes:
    """Plot PR AUC and precision at capacity per backtest cut for every scorer."""
    fig, (ax1, ax2) = _figure(2)
    pc = bt.per_cut
    for s in [x for x in LABELS if x in set(pc["scorer"])]:
        sub = pc[pc["scorer"] == s].sort_values("cut")
        ax1.plot(sub["cut"], sub["pr_auc"], "o-", color=COLORS[s], label=LABELS[s])
        ax2.plot(sub["cut"], sub["precision_at_k"], "o-", color=COLORS[s], label=LABELS[s])
    ax1.set_title("PR AUC per cut")
    ax2.set_title("Precision at capacity per cut")
    for ax in (ax1, ax2):
        ax.set_xlabel("cut date")
        ax.tick_params(axis="x", rotation=30)
    ax1.legend()
    return _png(fig)


# ------------------------------------------------------------------------------- html
def plot_survival_curves(curves: pd.DataFrame) -> bytes:
    """Plot S(t) of a few example clients per risk band (survival fold)."""
    fig, ax = _figure(width=7.0)
    colors = {"high": "#c0392b", "medium": "#e67e22", "low": "#2e86c1"}
    seen: set[str] = set()
    for (_cid, _as_of, band), part in curves.groupby(["client_id", "as_of", "band"], sort=False):
        ax.plot(
            part["day"],
            part["survival"],
            color=colors.get(band, "grey"),
            alpha=0.8,
            label=f"{band} risk" if band not in seen else None,
        )
        seen.add(band)
    ax.set_xlabel("days after the as-of date")
    ax.set_ylabel("S(t): probability of no freeze yet")
    ax.set_ylim(0, 1.02)
    ax.set_title("Time to freeze of example clients (highest, middle, lowest of each band)")
    ax.legend()
    return _png(fig)


def plot_survival_calibration(calib: pd.DataFrame) -> bytes:
    """Plot predicted vs Kaplan-Meier observed risk by risk decile, one panel per horizon."""
    horizons = sorted(calib["horizon"].unique())
    fig, axes = _figure(ncols=len(horizons), width=4.0, height=3.8)
    axes = np.atleast_1d(axes)
    for ax, h in zip(axes, horizons, strict=True):
        part = calib[calib["horizon"] == h]
        top = float(max(part["predicted"].max(), part["observed"].max(), 1e-3))
        ax.plot(part["predicted"], part["observed"], "o-", color=COLORS.get("model", "C0"))
        ax.plot([0, top], [0, top], "k--", lw=1)
        ax.set_title(f"within {h} days")
        ax.set_xlabel("predicted (mean per risk decile)")
        ax.set_ylabel("observed (Kaplan-Meier)")
    return _png(fig)


def _fmt(v: Any, metric: str) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    if metric in ("rows", "positives"):
        return f"{int(v):,}"
    if metric in ("lift_at_10",):
        return f"{v:.2f}×"
    return f"{v:.3f}"


def _metrics_html(m: pd.DataFrame) -> str:
    cols = [c for c in TABLE_METRICS if c in m.columns]
    head = "".join(f"<th>{html.escape(TABLE_METRICS[c])}</th>" for c in cols)
    rows = []
    for scorer, row in m.iterrows():
        cls = ' class="model"' if scorer == "model" else ""
        cells = "".join(f"<td>{_fmt(row[c], c)}</td>" for c in cols)
        label = html.escape(LABELS.get(str(scorer), str(scorer)))
        rows.append(f"<tr{cls}><th>{label}</th>{cells}</tr>")
    return f"<table><tr><th></th>{head}</tr>{''.join(rows)}</table>"


def _frame_html(df: pd.DataFrame) -> str:
    return df.to_html(index=False, border=0, float_format=lambda x: f"{x:.3f}", na_rep="–")


def explain_in_plain_words(
    m: pd.DataFrame, capacity: int | None, top_pct: float | None, horizon: int
) -> str:
    """Return the sales-director summary of the metrics table, as plain text."""
    if "model" not in m.index:
        return ""
    if capacity is not None:
        n = f"the top {capacity} clients a day"
    else:
        n = f"the top {100 * (top_pct or 0):.0f}% of clients each day"
    x = 10 * m.loc["model", "precision_at_k"]
    base = 10 * m.loc["model", "base_rate"]
    parts = [
        f"If the team calls {n}, about {x:.1f} of every 10 calls reach a client who would "
        f"otherwise freeze within {horizon} days"
    ]
    if "paused_rule" in m.index:
        parts.append(
            f", against {10 * m.loc['paused_rule', 'precision_at_k']:.1f} with the "
            "paused-campaign rule"
        )
    if "rfm" in m.index:
        parts.append(f" and {10 * m.loc['rfm', 'precision_at_k']:.1f} with the RFM score")
    parts.append(f" (calling at random: {base:.1f}).")
    text = "".join(parts)
    if "p_true" in m.index and np.isfinite(m.loc["p_true", "pr_auc"]):
        share = m.loc["model", "pr_auc"] / m.loc["p_true", "pr_auc"]
        text += (
            f" On this simulated data the model reaches {100 * share:.0f}% of the best possible "
            "ranking quality (PR AUC of the simulator's own probabilities)."
        )
    ece = m.loc["model", "ece"]
    if np.isfinite(ece):
        text += (
            f" Its risk numbers can be read as probabilities: on average they are off by "
            f"{100 * ece:.1f} percentage points."
        )
    return text


CSS = """
.warn { color: #b00020; font-weight: bold; }
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;
margin:2em auto;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:1em 0;font-size:14px}
th,td{border-bottom:1px solid #ddd;padding:4px 10px;text-align:right}
tr th:first-child{text-align:left} tr.model{background:#eef5fc;font-weight:600}
.summary{font-size:17px;background:#f6f8fa;padding:1em 1.2em;border-left:4px solid #1f77b4}
img{max-width:100%;margin:0.5em 0 1.5em} .note{color:#666;font-size:13px}
"""


def write_report(
    result: TrainResult | BacktestResult, out_dir: Path, *, shap_rows: int = 2000
) -> Path:
    """Write the plots and a self-contained ``report.html`` into ``out_dir``.

    Parameters
    ----------
    result : TrainResult or BacktestResult
        A training result (its ``backtest`` is included when set) or a backtest alone.
    out_dir : Path
        Created when missing; existing files of the same names are replaced atomically.
    shap_rows : int
        Test rows sampled for the mean |SHAP| importances.

    Returns
    -------
    Path
        The path of ``report.html``.
    """
    from churnpredict.modeling.backtest import BacktestResult

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(result, BacktestResult):
        bt, train = result, None
        preds, m = result.predictions, result.pooled
        title = "churnpredict backtest report"
    else:
        bt, train = result.backtest, result
        preds, m = result.predictions, result.metrics
        title = "churnpredict training report"
    pngs: dict[str, tuple[str, bytes]] = {}
    pngs["calibration"] = ("Calibration", plot_calibration(preds))
    pngs["calibration_fixed"] = (
        "Calibration where the list acts (fixed bins)",
        plot_calibration_fixed(preds),
    )
    pngs["gains"] = ("Cumulative gains and lift", plot_gains(preds))
    pngs["precision_at_k"] = ("Precision at k", plot_precision_at_k(preds, result.capacity))
    pngs["risk_distribution"] = ("Risk by outcome", plot_risk_distribution(preds))
    imp = None
    if train is not None:
        imp = importance_table(train, shap_rows)
        pngs["importance"] = ("Feature importance", plot_importance(imp))
    if bt is not None:
        pngs["backtest"] = ("Metrics per backtest cut", plot_backtest(bt))
    surv = train.survival if train is not None else None
    if surv is not None:
        if len(surv.curves):
            pngs["survival_curves"] = (
                "Time to freeze: example clients per risk band",
                plot_survival_curves(surv.curves),
            )
        if len(surv.calibration):
            pngs["survival_calibration"] = (
                "Time to freeze: calibration at each horizon (survival fold)",
                plot_survival_calibration(surv.calibration),
            )
    for name, (_, data) in pngs.items():
        _atomic_write(out_dir / f"{name}.png", data)

    summary = explain_in_plain_words(m, result.capacity, result.top_pct, result.horizon)
    cap = (
        f"{result.capacity} calls per as-of date"
        if result.capacity is not None
        else f"top {100 * (result.top_pct or 0):.0f}% of rows per as-of date"
    )
    body = [f"<h1>{html.escape(title)}</h1>", f'<p class="summary">{html.escape(summary)}</p>']
    body.append("<h2>Metrics on the same test rows</h2>")
    body.append(_metrics_html(m))
    losers = beaten_by(m)
    if losers:
        names = ", ".join(html.escape(LABELS.get(s, s)) for s in losers)
        body.append(
            f'<p class="warn">The model does not beat {names} on these rows (PR AUC): '
            "prefer that reference, or find out why before acting on the list.</p>"
        )
    body.append(
        f'<p class="note">Capacity: {cap}. Precision and recall count the top of each day\'s '
        "list (ties split evenly); ECE uses equal-size bins of rows sorted by risk. "
        "Rule-based scores (paused rule, RFM) are rankings, not probabilities, so Brier and "
        "ECE do not apply.</p>"
    )
    skipped = result.skipped
    if skipped:
        items = "".join(
            f"<li>{html.escape(LABELS.get(k, k))}: {html.escape(v)}</li>"
            for k, v in skipped.items()
        )
        body.append(f"<p>Baselines skipped:</p><ul>{items}</ul>")
    if train is not None and train.by_group is not None:
        body.append("<h2>PR AUC by segment and for new clients (same test rows)</h2>")
        body.append(_frame_html(train.by_group.reset_index()))
    if surv is not None:
        lo, hi = surv.fold
        days = ", ".join(str(h) for h in surv.horizons[:-1]) + f" and {surv.horizons[-1]}"
        body.append(f"<h2>Time to freeze: risk at {days} days (survival fold)</h2>")
        body.append(
            f'<p class="note">As-of dates {lo.date()} to {hi.date()} ({surv.rows:,} rows), '
            f"whose whole {surv.horizons[-1]}-day follow-up is observed; every scorer fitted "
            f"on what was known on {lo.date()}. <b>model</b>: the curve anchored at the "
            "calibrated 30-day risk (what the call list shows); <b>hazard_raw</b>: the same "
            "hazard model without the anchor; <b>classifier</b>: the 30-day risk alone; "
            "Kaplan-Meier by segment and tenure band; Cox on "
            f"{html.escape(', '.join(surv.cox_features))}. Uno's C to day "
            f"{surv.horizons[-1]} (a seeded sample of at most 20,000 rows), integrated "
            f"Brier score over days 1..{surv.horizons[-1] - 1} (lower is better).</p>"
        )
        body.append(_frame_html(surv.metrics.reset_index().rename(columns={"index": "scorer"})))
        body.append("<h3>The same for new clients</h3>")
        body.append(_frame_html(surv.by_group.reset_index()))
    if "model" in preds.columns:
        body.append("<h2>Capacity: calls per day against freezes reached</h2>")
        body.append(_frame_html(capacity_table(preds, result.capacity)))
    if train is not None:
        meta = train.model.metadata_
        ev = train.evaluated.metadata_
        body.append("<h2>Evaluated and served model</h2>")
        body.append(
            f'<p class="note">The metrics above describe the model fitted on as-of dates '
            f"{html.escape(str(ev.get('first_as_of', '?')))} to "
            f"{html.escape(str(ev.get('trained_until', '?')))} (labels up to "
            f"{html.escape(str(ev.get('labels_until', '?')))}), {train.evaluated.best_iteration_}"
            " trees. The model registered for scoring"
            + (
                f" is refit the same way on as-of dates {html.escape(str(meta.get('first_as_of')))}"
                f" to {html.escape(str(meta.get('trained_until')))} ({train.model.best_iteration_}"
                f" trees, calibrated on {html.escape(str(meta.get('calibrated_on')))})."
                if train.eval_model is not None
                else " is that same model (model.refit is off)."
            )
            + "</p>"
        )
        body.append("<h2>Data used</h2>")
        body.append(_frame_html(train.folds.astype({"first": str, "last": str})))
        body.append(
            f'<p class="note">Horizon {train.horizon} days; trained on as-of dates up to '
            f"{html.escape(str(meta.get('trained_until', '?')))}; "
            f"{meta.get('n_fit_rows', 0):,} fit rows after sampling negatives; "
            f"{train.model.best_iteration_} trees; config {html.escape(train.config_hash)}.</p>"
        )
    if bt is not None and train is not None:
        body.append("<h2>Backtest (pooled over cuts)</h2>")
        body.append(_metrics_html(bt.pooled))
    if bt is not None:
        pc = bt.per_cut.copy()
        pc["cut"] = pc["cut"].astype(str)
        cols = ["cut", "scorer", "rows", "positives", "pr_auc", "precision_at_k", "ece"]
        body.append("<h2>Metrics per backtest cut</h2>")
        body.append(_frame_html(pc[cols]))
        if bt.survival is not None:
            sv = bt.survival.assign(cut=bt.survival["cut"].astype(str))
            body.append("<h2>Time to freeze per backtest cut (survival folds)</h2>")
            body.append(_frame_html(sv))
    for _name, (caption, data) in pngs.items():
        b64 = base64.b64encode(data).decode("ascii")
        body.append(f"<h2>{html.escape(caption)}</h2>")
        body.append(f'<img alt="{html.escape(caption)}" src="data:image/png;base64,{b64}">')
    if imp is not None:
        top = imp.head(20).reset_index()[["feature", "description", "mean_abs_shap", "gain_share"]]
        body.append("<h2>Top features (mean |SHAP|)</h2>")
        body.append(_frame_html(top))
    doc = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )
    path = out_dir / "report.html"
    _atomic_write(path, doc.encode("utf-8"))
    return path


def write_backtest_report(result: BacktestResult, out_dir: Path) -> Path:
    """Write the report of a backtest alone (see :func:`write_report`)."""
    return write_report(result, out_dir)
