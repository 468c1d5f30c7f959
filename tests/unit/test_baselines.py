"""Baselines: the paused rule, RFM, logistic regression; skipped when columns are missing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnpredict.modeling.backtest import run_backtest, train_and_evaluate
from churnpredict.modeling.baselines import (
    fit_baselines,
    paused_mask,
    paused_rule_score,
    rfm_score,
)

from .synthetic_table import make_table, small_config


def test_paused_rule_is_binary_and_missing_counts_as_no_pause():
    X = pd.DataFrame({"campaigns__paused__7d": [0.0, 1.0, 3.0, np.nan]})
    assert paused_rule_score(X).tolist() == [0, 1, 1, 0]
    assert paused_mask(X).tolist() == [False, True, True, False]
    assert paused_mask(pd.DataFrame({"x": [1.0]})) is None


def test_rfm_risk_is_the_negated_score():
    X = pd.DataFrame({"profile__rfm_score": [15.0, 3.0, 9.0, np.nan]})
    assert rfm_score(X).tolist() == [-15, -3, -9, -3]


def test_missing_columns_skip_baselines_with_a_reason():
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, np.nan, 0.0, 1.0]})
    b = fit_baselines(X, np.array([0, 1, 0, 1]))
    assert b.names == ["logistic"]
    assert set(b.skipped) == {"paused_rule", "rfm"}
    assert "campaigns__paused__7d" in b.skipped["paused_rule"]
    assert set(b.score(X)) == {"logistic"}


def test_logistic_learns_the_signal_and_subsamples():
    rng = np.random.default_rng(0)
    x = rng.normal(size=5000)
    y = (rng.random(5000) < 1 / (1 + np.exp(-(2 * x - 2)))).astype(int)
    X = pd.DataFrame({"x": x, "noise": rng.normal(size=5000)})
    X.loc[::7, "noise"] = np.nan
    b = fit_baselines(X, y, wanted=["logistic"], logistic_max_rows=1000)
    p = b.score(X)["logistic"]
    assert np.corrcoef(p, x)[0, 1] > 0.8
    assert b.logistic.lr_.n_features_in_ == 2
    assert b.logistic.medians_[1] == pytest.approx(np.nanmedian(X["noise"]), abs=0.2)


@pytest.fixture(scope="module")
def trained():
    table, catalog, truth = make_table(n_clients=1500, seed=5)
    return table, catalog, truth, train_and_evaluate(table, catalog, small_config(), truth)


def test_train_and_evaluate_scores_everyone_on_the_same_rows(trained):
    table, _, truth, r = trained
    assert list(r.metrics.index) == ["model", "paused_rule", "rfm", "logistic", "p_true"]
    assert r.metrics["rows"].nunique() == 1
    assert r.truth_coverage == 1.0
    assert len(r.predictions) == len(r.X_test) == len(r.y_test)
    assert r.predictions["as_of"].min() > table["as_of"].max() - pd.Timedelta(days=21)
    m = r.metrics
    # the model beats the rules and comes close to the truth on a known signal
    assert m.loc["model", "pr_auc"] > m.loc["paused_rule", "pr_auc"]
    assert m.loc["model", "pr_auc"] > m.loc["rfm", "pr_auc"]
    assert m.loc["model", "pr_auc"] > 0.8 * m.loc["p_true", "pr_auc"]
    assert m.loc["model", "ece"] < 0.05
    assert np.isnan(m.loc["paused_rule", "ece"])
    # p_true matches the truth table row by row
    merged = r.predictions.merge(
        truth.assign(as_of=truth["as_of"].astype("datetime64[ns]")), on=["client_id", "as_of"]
    )
    np.testing.assert_allclose(merged["p_true_x"], merged["p_true_y"])


def test_non_campaign_dataset_skips_the_paused_rule(trained):
    table, catalog, _, _ = trained
    t = table.drop(columns=["campaigns__paused__7d"])
    cat = [f for f in catalog if f.name != "campaigns__paused__7d"]
    r = train_and_evaluate(t, cat, small_config())
    assert "paused_rule" in r.skipped and "paused_rule" not in r.metrics.index
    assert "p_true" not in r.metrics.index
    assert np.isnan(r.metrics.loc["model", "paused_recall_at_k"])


def test_backtest_per_cut_and_pooled(trained):
    table, catalog, truth, _ = trained
    b = run_backtest(table, catalog, small_config(), truth)
    assert len(b.cuts) == 2
    assert set(b.per_cut["scorer"]) == {"model", "paused_rule", "rfm", "logistic", "p_true"}
    assert b.per_cut.groupby("cut").size().tolist() == [5, 5]
    per_model = b.per_cut[b.per_cut["scorer"] == "model"]
    assert b.pooled.loc["model", "rows"] == per_model["rows"].sum()
    for cut in b.cuts:
        test_dates = b.predictions.loc[b.predictions["cut"] == cut.cut, "as_of"]
        assert (test_dates >= cut.cut).all()


def test_served_model_is_refit_on_every_labelled_snapshot(trained):
    """The metrics describe a model fitted by the same protocol on rows whose labels end
    before the test fold; the served one is refit on every row, calibrated on the latest
    window, with the early-stopping trees scaled to the rows."""
    table, catalog, _, r = trained
    served, evaluated = r.model, r.eval_model
    assert evaluated is not None and served is not evaluated
    d = pd.to_datetime(table["as_of"])
    assert served.metadata_["trained_until"] == str(d.max().date())
    assert pd.Timestamp(evaluated.metadata_["labels_until"]) < r.predictions["as_of"].min()
    lo, hi = served.metadata_["calibrated_on"].split("..")
    assert hi == str(d.max().date())
    es = served.metadata_["early_stopping_trees"]
    assert es <= served.best_iteration_ <= 1.5 * es + 1
    np.testing.assert_allclose(evaluated.predict_risk(r.X_test), r.predictions["model"])
    # without refit the served model is the evaluated one
    plain = train_and_evaluate(table, catalog, small_config(refit=False))
    assert plain.eval_model is None and plain.evaluated is plain.model
    assert plain.model.metadata_["trained_until"] < served.metadata_["trained_until"]


def test_recency_and_bgnbd_know_the_idle_rule():
    """Recency ranks by days since the label source's last event; BG/NBD gives 0 to
    clients who cannot reach idle_days within the horizon and more risk to a longer
    silence of a frequent buyer."""
    from lifetimes.generate_data import beta_geometric_nbd_model

    from churnpredict.modeling.baselines import LabelSource, recency_score

    np.random.seed(0)  # lifetimes draws from NumPy's global generator
    sim = beta_geometric_nbd_model(300, 0.5, 20.0, 0.6, 2.5, size=6000)
    since_all = (sim["T"] - sim["recency"]).to_numpy()
    sim = sim[since_all < 90]  # active clients: silent for less than idle_days
    since = (sim["T"] - sim["recency"]).to_numpy()
    total = sim["frequency"].to_numpy() + 1
    age = sim["T"].to_numpy(float)
    n = len(sim)
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {
            "buys__events__days_since": since,
            "buys__events__total": total.astype(float),
            "profile__tenure_days": age,
        }
    )
    y = ((since >= 60) & (rng.random(n) < 0.8)).astype(float)
    label = LabelSource("buys", idle_days=90, horizon_days=30, purchase_like=True)
    b = fit_baselines(X, y, wanted=["recency", "bgnbd"], label=label)
    assert b.names == ["recency", "bgnbd"] and not b.skipped
    s = b.score(X)
    np.testing.assert_array_equal(s["recency"], recency_score(X, "buys__events__days_since"))
    risk = s["bgnbd"]
    assert (risk[since < 60] == 0).all() and (risk[since >= 60] > 0).all()
    assert ((risk >= 0) & (risk <= 1)).all()
    same = ((X["buys__events__total"] == 3) & (since >= 60)).to_numpy()
    assert same.sum() > 5
    order = np.argsort(since[same])
    assert np.all(np.diff(risk[same][order]) >= -1e-9)  # longer silence, more risk
    # not a purchase-like label (campaigns): BG/NBD is skipped with a reason
    other = fit_baselines(X, y, wanted=["bgnbd"], label=LabelSource("buys", 14, 30))
    assert "bgnbd" in other.skipped and not other.names


def test_group_metrics_by_segment_and_new_clients():
    from churnpredict.modeling.backtest import group_metrics, segment_of

    X = pd.DataFrame(
        {
            "profile__segment_low_cost": [1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
            "profile__segment_key": [0.0, 1.0, 0.0, 0.0, 1.0, 0.0],
        }
    )
    seg = segment_of(X)
    assert seg.tolist() == ["low-cost", "key", "-", "low-cost", "key", "-"]
    preds = pd.DataFrame(
        {
            "label": [1, 0, 1, 0, 1, 0],
            "segment": seg,
            "tenure_days": [10, 50, 200, 20, 400, 95],
            "model": [0.9, 0.1, 0.8, 0.2, 0.3, 0.4],
        }
    )
    g = group_metrics(preds, ["model"])
    assert g.index.tolist() == [
        "all", "segment key", "segment low-cost", "first 30 days", "first 90 days"
    ]  # fmt: skip
    assert g.loc["segment low-cost", "rows"] == 2 and g.loc["segment low-cost", "model"] == 1.0
    assert g.loc["first 90 days", "rows"] == 3 and g.loc["first 30 days", "positives"] == 1
