"""MLflow tracking in a temporary SQLite store: run, registry, aliases, champion rule."""

from __future__ import annotations

import numpy as np
import pytest

from churnpredict.config import build_config
from churnpredict.errors import ModelNotFoundError
from churnpredict.modeling.backtest import train_and_evaluate
from churnpredict.tracking import (
    list_models,
    load_champion,
    load_version,
    log_training_run,
    promote,
    tracking_uri,
)

from .synthetic_table import make_table, small_config


def _cfg(tmp_path, **model):
    base = small_config(**model).model_dump(mode="json")
    base["tracking"] = {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "experiment": "t"}
    return build_config(base)


@pytest.fixture(scope="module")
def table():
    return make_table(n_clients=600, seed=11)


def test_tracking_uri_priority(tmp_path, monkeypatch):
    cfg = build_config({"tracking": {"uri": "sqlite:///x.db"}})
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://example:5000")
    assert tracking_uri(cfg) == "sqlite:///x.db"
    assert tracking_uri(build_config({})) == "http://example:5000"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.chdir(tmp_path)
    assert tracking_uri(build_config({})) == f"sqlite:///{tmp_path}/mlflow.db"


def test_no_champion_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no champion model yet.*churnpredict train"):
        load_champion(_cfg(tmp_path))
    assert list_models(_cfg(tmp_path)).empty


def test_register_champion_rule_promote(tmp_path, table, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory
    t, catalog, _ = table
    cfg = _cfg(tmp_path)
    good = train_and_evaluate(t, catalog, cfg)
    report = tmp_path / "report"
    report.mkdir()
    (report / "report.html").write_text("<html></html>")

    v1 = log_training_run(good, cfg, data_fingerprint="d1", config_hash="c1", report_dir=report)
    assert v1.version == "1" and v1.is_champion and v1.champion_pr_auc is None
    model, version = load_champion(cfg)
    assert version == "1"
    # the served (refit) model is registered; the test metrics describe the evaluated one
    assert good.eval_model is not None
    np.testing.assert_allclose(
        model.predict_risk(good.X_test), good.model.predict_risk(good.X_test)
    )
    np.testing.assert_allclose(good.evaluated.predict_risk(good.X_test), good.predictions["model"])

    # a worse challenger (noise features only) does not take the champion's place
    weak_cols = ["client_id", "as_of", "label", "noise__a", "noise__b"]
    weak_cat = [f for f in catalog if f.name.startswith("noise")]
    weak = train_and_evaluate(t[weak_cols], weak_cat, cfg)
    v2 = log_training_run(
        weak, cfg, data_fingerprint="d1", config_hash="c2", report_dir=None,
        X_test=good.X_test, y_test=good.y_test,
    )  # fmt: skip
    assert v2.version == "2" and not v2.is_champion and v2.champion_version == "1"
    assert "champion stays" in v2.reason and v2.champion_pr_auc > v2.challenger_pr_auc
    assert load_champion(cfg)[1] == "1"

    # the same model again ties on PR AUC: a tie moves the champion
    v3 = log_training_run(good, cfg, data_fingerprint="d1", config_hash="c1")
    assert v3.is_champion and "champion moves" in v3.reason

    models = list_models(cfg)
    assert models["version"].tolist() == ["1", "2", "3"]
    assert models.set_index("version").loc["3", "aliases"] == "challenger,champion"
    assert (
        models.set_index("version").loc["2", "pr_auc"]
        < models.set_index("version").loc["1", "pr_auc"]
    )
    assert load_version(cfg, 2)[1] == "2"
    assert load_version(cfg, "challenger")[1] == "3"
    with pytest.raises(ModelNotFoundError, match="no version 7"):
        load_version(cfg, 7)
    assert promote(cfg, 2) == "2"
    assert load_champion(cfg)[1] == "2"
    with pytest.raises(ModelNotFoundError, match="no version 9"):
        promote(cfg, 9)

    # run contents: tags, params, metrics, artifacts
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=cfg.tracking.uri)
    run = client.get_run(v1.run_id)
    assert run.data.tags["data_fingerprint"] == "d1"
    assert run.data.tags["config_hash"] == "c1"
    assert run.data.tags["git_commit"]
    assert run.data.params["label.horizon_days"] == "7"
    assert run.data.metrics["pr_auc"] == pytest.approx(good.metrics.loc["model", "pr_auc"])
    assert "paused_rule.precision_at_k" in run.data.metrics
    arts = {a.path for a in client.list_artifacts(v1.run_id)}
    assert {"report", "tables"} <= arts
    assert not (tmp_path / "mlruns").exists()

    # the pyfunc flavour predicts risk
    pyf = mlflow.pyfunc.load_model(f"models:/{cfg.tracking.model_name}/1")
    out = pyf.predict(good.X_test.head(20))
    np.testing.assert_allclose(np.asarray(out), good.model.predict_risk(good.X_test.head(20)))
