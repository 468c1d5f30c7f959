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
