"""The HTML report: plots written, one self-contained HTML, plain-words summary."""

from __future__ import annotations

import base64
import re

import pandas as pd
import pytest

from churnpredict.modeling.backtest import run_backtest, train_and_evaluate
from churnpredict.report import explain_in_plain_words, write_backtest_report, write_report

from .synthetic_table import make_table, small_config


@pytest.fixture(scope="module")
def results():
    table, catalog, truth = make_table(n_clients=500, seed=2)
    cfg = small_config()
    r = train_and_evaluate(table, catalog, cfg, truth)
    r.backtest = run_backtest(table, catalog, cfg, truth)
    return r


def test_train_report_has_plots_and_a_self_contained_html(results, tmp_path):
    path = write_report(results, tmp_path / "rep")
    names = {p.name for p in (tmp_path / "rep").iterdir()}
    assert names == {
        "report.html",
        "calibration.png",
        "calibration_fixed.png",
        "gains.png",
        "precision_at_k.png",
        "risk_distribution.png",
        "importance.png",
        "backtest.png",
    }
    text = path.read_text(encoding="utf-8")
    imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(imgs) == 7
    # the analyst's next questions: segments and new clients, capacity, both models
    for section in (
        "PR AUC by segment and for new clients",
        "calls per day against freezes reached",
        "Evaluated and served model",
    ):
        assert section in text
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in imgs)
    assert 'src="http' not in text and "<script" not in text
    for label in (
        "churn model",
        "paused-campaign rule",
        "RFM score",
        "logistic regression",
        "simulator truth",
    ):
        assert label in text
    assert "of every 10 calls reach a client who would otherwise freeze" in text


def test_rewriting_replaces_files_and_leaves_no_temp_files(results, tmp_path):
    write_report(results, tmp_path)
    write_report(results, tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_backtest_alone(results, tmp_path):
    path = write_backtest_report(results.backtest, tmp_path)
    assert (tmp_path / "backtest.png").exists() and not (tmp_path / "importance.png").exists()
    assert "Metrics per backtest cut" in path.read_text(encoding="utf-8")


def test_plain_words_numbers():
    m = pd.DataFrame(
        {
            "precision_at_k": [0.62, 0.21],
            "base_rate": [0.1, 0.1],
            "pr_auc": [0.4, 0.2],
            "ece": [0.012, float("nan")],
        },
        index=["model", "paused_rule"],
    )
    text = explain_in_plain_words(m, 100, None, 30)
    assert "top 100 clients a day, about 6.2 of every 10 calls" in text
    assert "against 2.1 with the paused-campaign rule" in text
    assert "at random: 1.0" in text and "1.2 percentage points" in text


def test_time_to_freeze_section_and_plots(tmp_path):
    """A table with follow-ups gets the survival fold's metrics, curves and calibration."""
    import numpy as np

    from churnpredict.config import build_config

    table, catalog, truth = make_table(n_clients=500, seed=3)
    rng = np.random.default_rng(0)
    d = pd.to_datetime(table["as_of"])
    end = d.max() + pd.Timedelta(days=7)
    fu = np.minimum(21, (end - d).dt.days.to_numpy())
    late = rng.integers(8, 22, len(table))
    fd = np.where(table["label"] == 1, rng.integers(1, 8, len(table)), 0)
    fd = np.where((fd == 0) & (rng.random(len(table)) < 0.1), late, fd)
    table = table.assign(followup_days=fu, freeze_day=np.where(fd <= fu, fd, 0))
    raw = small_config().model_dump(mode="json")
    raw["label"]["max_horizon_days"] = 21
    cfg = build_config(raw)
    r = train_and_evaluate(table, catalog, cfg, truth)
    assert r.model.survival_ is not None
    sv = r.survival
    assert sv is not None and sv.horizons == (7, 21)
    assert {"model", "hazard_raw", "classifier", "km_segment_tenure", "cox", "paused_rule"} <= set(
        sv.metrics.index
    )
    assert {"pr_auc_7d", "pr_auc_21d", "uno_c", "ibs"} <= set(sv.metrics.columns)
    assert sv.metrics.loc["model", "uno_c"] > 0.5
    path = write_report(r, tmp_path / "rep")
    names = {p.name for p in (tmp_path / "rep").iterdir()}
    assert {"survival_curves.png", "survival_calibration.png"} <= names
    text = path.read_text(encoding="utf-8")
    assert "Time to freeze: risk at 7 and 21 days (survival fold)" in text
    # the backtest: one survival fold per cut, before the cut's test window ends
    bt = run_backtest(table, catalog, cfg, truth)
    assert bt.survival is not None and bt.survival["cut"].nunique() == len(bt.cuts)
    assert {"model", "hazard_raw", "cox"} <= set(bt.survival["scorer"])
    for cut, fold in zip(bt.survival["cut"], bt.survival["fold"], strict=True):
        assert pd.Timestamp(fold.split("..")[1]) < cut + pd.Timedelta(days=21)
    assert "Time to freeze per backtest cut" in write_backtest_report(
        bt, tmp_path / "bt"
    ).read_text(encoding="utf-8")
