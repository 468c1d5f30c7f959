"""MLflow tracking in a temporary SQLite store: run, registry, aliases, champion rule."""

from __future__ import annotations

import subprocess
import sys
import textwrap

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
    # no store at all: said as such, and not created by reading
    with pytest.raises(ModelNotFoundError, match="does not exist.*churnpredict train"):
        load_champion(_cfg(tmp_path))
    assert list_models(_cfg(tmp_path)).empty
    assert not (tmp_path / "mlflow.db").exists()
    # a store without a champion
    from churnpredict.tracking import _experiment_id, _mlflow

    with _mlflow(_cfg(tmp_path)) as mlflow:
        _experiment_id(mlflow, _cfg(tmp_path))
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


# ------------------------------------------------- an unusable store is exit 6 (issue 17)
def _uri_cfg(uri):
    return build_config({"tracking": {"uri": uri, "experiment": "t"}})


def test_dead_server_is_a_tracking_error_within_seconds():
    import time

    from churnpredict.errors import TrackingError
    from churnpredict.tracking import check_store

    cfg = _uri_cfg("http://127.0.0.1:9")
    t0 = time.monotonic()
    with pytest.raises(TrackingError, match=r"http://127\.0\.0\.1:9 cannot be reached") as err:
        check_store(cfg)
    assert time.monotonic() - t0 < 10
    assert err.value.exit_code == 6
    # past the check too: MLflow's own retries are bounded and never read as "no model"
    t0 = time.monotonic()
    with pytest.raises(TrackingError, match="127.0.0.1:9"):
        load_champion(cfg)
    assert time.monotonic() - t0 < 60


def test_silent_server_times_out_within_seconds():
    import socket
    import time

    from churnpredict.errors import TrackingError
    from churnpredict.tracking import check_store

    with socket.socket() as srv:  # accepts connections (backlog), never answers
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        cfg = _uri_cfg(f"http://127.0.0.1:{srv.getsockname()[1]}")
        t0 = time.monotonic()
        with pytest.raises(TrackingError, match="cannot be reached"):
            check_store(cfg)
        assert time.monotonic() - t0 < 12


@pytest.mark.parametrize("uri", ["file:///tmp/churnpredict-no-store", "bogus://x", "mlruns"])
def test_unsupported_store_uris_are_tracking_errors(uri, tmp_path, monkeypatch):
    from churnpredict.errors import TrackingError
    from churnpredict.tracking import check_store

    monkeypatch.chdir(tmp_path)
    with pytest.raises(TrackingError, match="not supported|file store"):
        check_store(_uri_cfg(uri), write=True)
    assert list(tmp_path.iterdir()) == []


def test_missing_sqlite_store_is_not_created_except_by_train(tmp_path):
    from churnpredict.errors import TrackingError
    from churnpredict.tracking import check_store

    db = tmp_path / "mlfow.db"  # a misspelt path
    cfg = _uri_cfg(f"sqlite:///{db}")
    with pytest.raises(ModelNotFoundError, match="does not exist.*misspelt") as err:
        check_store(cfg)
    assert err.value.exit_code == 3 and not db.exists()
    check_store(cfg, write=True)  # train may create it
    assert not db.exists()  # ... but the check itself creates nothing
    with pytest.raises(TrackingError, match="folder .* does not exist"):
        check_store(_uri_cfg(f"sqlite:///{tmp_path / 'nope' / 'm.db'}"), write=True)
    (tmp_path / "broken.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(TrackingError, match="cannot be read"):
        check_store(_uri_cfg(f"sqlite:///{tmp_path / 'broken.db'}"))


def test_new_sqlite_store_opened_by_several_processes_at_once(tmp_path):
    """Two trains on a new store raced on the schema ("duplicate column name: step")."""
    db = tmp_path / "new.db"
    code = textwrap.dedent(
        f"""
        from churnpredict.config import build_config
        from churnpredict.tracking import _mlflow
        cfg = build_config({{"tracking": {{"uri": "sqlite:///{db}"}}}})
        with _mlflow(cfg) as mlflow:
            c = mlflow.MlflowClient()
            c.search_experiments()
            c.search_registered_models()
        print("ok")
        """
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    errors = [err.decode()[-500:] for p, (_, err) in zip(procs, outs, strict=True) if p.returncode]
    assert errors == []


def test_champion_decision_is_serialised(tmp_path, table, monkeypatch):
    """While one run decides (read, compare, set alias), another waits for the lock."""
    import threading

    from churnpredict import tracking

    t, catalog, _ = table
    cfg = _cfg(tmp_path)
    result = train_and_evaluate(t, catalog, cfg)
    log_training_run(result, cfg, data_fingerprint="d", config_hash="c")
    order = []
    real = tracking._decide_champion

    def slow(*args, **kwargs):
        order.append("start")
        out = real(*args, **kwargs)
        import time

        time.sleep(1.0)
        order.append("end")
        return out

    monkeypatch.setattr(tracking, "_decide_champion", slow)
    threads = [
        threading.Thread(
            target=log_training_run,
            args=(result, cfg),
            kwargs={"data_fingerprint": "d", "config_hash": "c"},
        )
        for _ in range(2)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    assert order == ["start", "end", "start", "end"]


def test_runs_of_killed_trains_are_closed(tmp_path):
    from churnpredict.tracking import _close_dead_runs, _experiment_id, _mlflow

    cfg = _cfg(tmp_path)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with _mlflow(cfg) as mlflow:
        client = mlflow.MlflowClient()
        exp = _experiment_id(mlflow, cfg)
        import socket

        run = client.create_run(exp, tags={"host": socket.gethostname(), "pid": dead})
        alive = client.create_run(exp, tags={"host": socket.gethostname(), "pid": "1"})
        assert _close_dead_runs(client, exp) == [run.info.run_id]
        assert client.get_run(run.info.run_id).info.status == "KILLED"
        assert client.get_run(alive.info.run_id).info.status == "RUNNING"
