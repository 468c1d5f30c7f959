"""MLflow tracking and the model registry (the only module that imports mlflow).

- Store: ``tracking.uri`` from the config, else ``$MLFLOW_TRACKING_URI``, else a SQLite
  store ``mlflow.db`` in the current directory (artifacts next to it in ``mlartifacts/``).
- Each training run logs the resolved config (params), metrics of the model and every
  baseline, the report, tags (data fingerprint, config hash, git commit) and the model as
  an MLflow pyfunc (code file + the saved :class:`ChurnModel` directory as an artifact; no
  pickled objects). The model is registered as a new version with alias ``challenger``.
- ``champion`` moves to the new version when there is no champion yet, or when the
  challenger's PR AUC on the same test rows is at least the champion's (ties move), or
  when the champion cannot score those rows any more (changed features). ``promote`` moves
  it by hand. Aliases only, never stages.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from churnpredict.errors import DataError, ModelNotFoundError

if TYPE_CHECKING:
    from churnpredict.config import Config
    from churnpredict.modeling.backtest import TrainResult
    from churnpredict.modeling.model import ChurnModel

log = logging.getLogger(__name__)

CHALLENGER = "challenger"
CHAMPION = "champion"
MODEL_ARTIFACT = "churn_model"
# The model the run's test metrics describe (the served one may be refit on the test rows).
EVAL_ARTIFACT = "evaluated_model"
KEY_METRICS = ("pr_auc", "roc_auc", "precision_at_k", "recall_at_k", "ece", "brier")
NO_CHAMPION = "no champion model yet: run `churnpredict train --data DIR` first"

PYFUNC_CODE = '''"""MLflow pyfunc wrapper around a saved churnpredict ChurnModel (models-from-code)."""

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class ChurnPredictPyfunc(PythonModel):
    """Predict the calibrated freeze risk for rows of a churnpredict feature table."""

    def load_context(self, context):
        from churnpredict.modeling.model import ChurnModel

        self.model = ChurnModel.load(context.artifacts["churn_model"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.Series:
        frame = pd.DataFrame(model_input)
        return pd.Series(self.model.predict_risk(frame), index=frame.index, name="risk")


mlflow.models.set_model(ChurnPredictPyfunc())
'''


@dataclass(frozen=True)
class RegisteredVersion:
    """What :func:`log_training_run` registered and what happened to the champion.

    Attributes
    ----------
    model_name : str
    version : str
        The new version (alias ``challenger``).
    run_id : str
    is_champion : bool
        Whether the new version is now the champion.
    champion_version : str
        The champion after this run.
    reason : str
        Why the champion moved or stayed, in one sentence.
    challenger_pr_auc : float
    champion_pr_auc : float or None
        The previous champion's PR AUC on the same test rows (None when there was none).
    tracking_uri : str
    """

    model_name: str
    version: str
    run_id: str
    is_champion: bool
    champion_version: str
    reason: str
    challenger_pr_auc: float
    champion_pr_auc: float | None
    tracking_uri: str


# ------------------------------------------------------------------------------ setup
def tracking_uri(cfg: Config) -> str:
    """Return the tracking URI: config, else ``$MLFLOW_TRACKING_URI``, else ./mlflow.db."""
    if cfg.tracking.uri:
        return cfg.tracking.uri
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{(Path.cwd() / 'mlflow.db').as_posix()}"


def _sqlite_dir(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///") :]
    return Path(path if path.startswith("/") else Path.cwd() / path).parent


@contextlib.contextmanager
def _mlflow(cfg: Config) -> Iterator[Any]:
    """Import mlflow quietly, point it at the configured store and yield the module."""
    saved_env = {k: os.environ.get(k) for k in ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR",)}
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    levels = {}
    for name in ("mlflow", "alembic", "urllib3", "git"):
        lg = logging.getLogger(name)
        levels[name] = lg.level
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning)
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            import mlflow

            for name in ("mlflow", "alembic"):
                logging.getLogger(name).setLevel(logging.ERROR)
            uri = tracking_uri(cfg)
            mlflow.set_tracking_uri(uri)
            mlflow.set_registry_uri(uri)
            yield mlflow
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _experiment_id(mlflow: Any, cfg: Config) -> str:
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name(cfg.tracking.experiment)
    if exp is not None:
        return exp.experiment_id
    location = None
    db_dir = _sqlite_dir(tracking_uri(cfg))
    if db_dir is not None:
        location = (db_dir / "mlartifacts" / cfg.tracking.experiment).resolve().as_uri()
    return client.create_experiment(cfg.tracking.experiment, artifact_location=location)


def git_commit() -> str:
    """Return ``git rev-parse HEAD`` of the current directory, or ``"unknown"``."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _flatten(d: dict, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = str(v)[:5000]
    return out


def _metric_dict(result: TrainResult) -> dict[str, float]:
    out: dict[str, float] = {}
    for scorer, row in result.metrics.iterrows():
        for name, value in row.items():
            if value is None or not np.isfinite(value):
                continue
            key = str(name) if scorer == "model" else f"{scorer}.{name}"
            out[key] = float(value)
    out["best_iteration"] = float(result.model.best_iteration_)
    for step, sec in result.seconds.items():
        out[f"seconds.{step}"] = float(sec)
    return out


def _pr_auc(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(np.asarray(y, dtype=float), score))


def _download_model(mlflow: Any, model_uri: str, artifact: str = MODEL_ARTIFACT) -> ChurnModel:
    """Load the churnpredict model ``artifact`` of a logged model (the served one by default).

    Versions logged before the evaluated model was kept hold only the served one, which is
    then returned for ``EVAL_ARTIFACT`` too.
    """
    from churnpredict.modeling.model import ChurnModel

    with tempfile.TemporaryDirectory(prefix="churnpredict-model-") as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        found = sorted(
            p.parent for p in local.rglob("model.json") if (p.parent / "booster.txt").exists()
        )
        if not found:
            raise ModelNotFoundError(f"{model_uri} holds no churnpredict model files")
        named = [p for p in found if p.name == artifact] or [
            p for p in found if p.name == MODEL_ARTIFACT
        ]
        return ChurnModel.load((named or found)[0])


def _version_by_alias(client: Any, name: str, alias: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


# ---------------------------------------------------------------------------- public
def log_training_run(
    result: TrainResult,
    cfg: Config,
    *,
    data_fingerprint: str,
    config_hash: str,
    report_dir: Path | None = None,
    X_test: pd.DataFrame | None = None,
    y_test: np.ndarray | None = None,
) -> RegisteredVersion:
    """Log a training run, register the model as ``challenger`` and apply the champion rule.

    Parameters
    ----------
    result : TrainResult
        From :func:`churnpredict.modeling.train_and_evaluate`.
    cfg : Config
        The resolved config (logged as params; ``tracking.*`` picks store and names).
    data_fingerprint : str
        Identifies the input data (tag ``data_fingerprint``).
    config_hash : str
        Tag ``config_hash``.
    report_dir : Path, optional
        Directory written by :func:`churnpredict.report.write_report`; logged under
        ``report/``.
    X_test, y_test : DataFrame, array, optional
        Rows on which the challenger and the current champion are compared (default: the
        result's test rows).

    Returns
    -------
    RegisteredVersion
    """
    from churnpredict import __version__

    X_test = result.X_test if X_test is None else X_test
    y_test = result.y_test if y_test is None else np.asarray(y_test, dtype=float)
    # The served model may be refit on the test rows: compare the evaluated one.
    challenger_scores = result.evaluated.predict_risk(X_test)
    as_of = pd.to_datetime(result.predictions["as_of"]).to_numpy()
    if len(as_of) != len(y_test):
        as_of = None
    challenger_pr = _pr_auc(y_test, challenger_scores)
    name = cfg.tracking.model_name
    with _mlflow(cfg) as mlflow, tempfile.TemporaryDirectory(prefix="churnpredict-") as tmp:
        client = mlflow.MlflowClient()
        exp_id = _experiment_id(mlflow, cfg)
        meta = result.model.metadata_
        tags = {
            "data_fingerprint": data_fingerprint,
            "config_hash": config_hash,
            "git_commit": git_commit(),
            "churnpredict_version": __version__,
            "horizon_days": str(result.horizon),
            "trained_until": str(meta.get("trained_until", "")),
        }
        run_name = f"train-{meta.get('trained_until', 'model')}"
        with mlflow.start_run(experiment_id=exp_id, run_name=run_name) as run:
            run_id = run.info.run_id
            mlflow.set_tags(tags)
            params = _flatten(cfg.model_dump(mode="json"))
            items = list(params.items())
            for i in range(0, len(items), 90):
                mlflow.log_params(dict(items[i : i + 90]))
            mlflow.log_metrics(_metric_dict(result))
            tables = Path(tmp) / "tables"
            tables.mkdir()
            result.metrics.to_csv(tables / "metrics.csv", index_label="scorer")
            result.folds.to_csv(tables / "folds.csv", index=False)
            mlflow.log_artifacts(str(tables), artifact_path="tables")
            if report_dir is not None and Path(report_dir).is_dir():
                mlflow.log_artifacts(str(report_dir), artifact_path="report")
            model_dir = result.model.save(Path(tmp) / MODEL_ARTIFACT)
            artifacts = {MODEL_ARTIFACT: str(model_dir)}
            if result.eval_model is not None:
                artifacts[EVAL_ARTIFACT] = str(result.eval_model.save(Path(tmp) / EVAL_ARTIFACT))
            code = Path(tmp) / "churnpredict_pyfunc.py"
            code.write_text(PYFUNC_CODE, encoding="utf-8")
            with contextlib.redirect_stderr(io.StringIO()):  # "Registered model ..." chatter
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=str(code),
                    artifacts=artifacts,
                    pip_requirements=[
                        f"churnpredict=={__version__}",
                        "lightgbm",
                        "pandas",
                        "numpy",
                    ],
                    registered_model_name=name,
                    metadata={"horizon_days": result.horizon, "config_hash": config_hash},
                )
            version = str(info.registered_model_version)
        client.set_registered_model_alias(name, CHALLENGER, version)
        for key in KEY_METRICS:
            if key in result.metrics.columns:
                client.set_model_version_tag(
                    name, version, key, f"{float(result.metrics.loc['model', key]):.6g}"
                )
        client.set_model_version_tag(name, version, "trained_until", tags["trained_until"])

        current = _version_by_alias(client, name, CHAMPION)
        champion_pr: float | None = None
        if current is None:
            move, reason = True, f"no champion yet: version {version} becomes the champion"
        elif str(current.version) == version:
            move, reason = True, "already the champion"
        else:
            try:
                champ = _download_model(mlflow, f"models:/{name}/{current.version}", EVAL_ARTIFACT)
                # rows the champion was not trained on (its labels end before them)
                seen_until = champ.metadata_.get("labels_until")
                rows = np.ones(len(y_test), bool)
                if seen_until and as_of is not None:
                    rows = as_of > np.datetime64(pd.Timestamp(seen_until))
                if rows.sum() == 0 or len(np.unique(y_test[rows])) < 2:
                    raise ModelNotFoundError(
                        f"it was trained on labels up to {seen_until}, which cover the test rows"
                    )
                champion_pr = _pr_auc(y_test[rows], champ.predict_risk(X_test[rows]))
                challenger_pr = _pr_auc(y_test[rows], challenger_scores[rows])
                y_test = y_test[rows]
            except (DataError, ModelNotFoundError) as err:
                move = True
                first = str(err).splitlines()[0]
                reason = (
                    f"champion version {current.version} cannot be compared on unseen test rows "
                    f"({first}): version {version} becomes the champion"
                )
            else:
                move = challenger_pr >= champion_pr
                verdict = ">=" if move else "<"
                reason = (
                    f"challenger version {version} PR AUC {challenger_pr:.4f} {verdict} champion "
                    f"version {current.version} PR AUC {champion_pr:.4f} on the same "
                    f"{len(y_test)} test rows: " + ("champion moves" if move else "champion stays")
                )
        if move:
            client.set_registered_model_alias(name, CHAMPION, version)
        champion_version = version if move else str(current.version)
        client.set_tag(run_id, "champion_decision", reason)
        return RegisteredVersion(
            model_name=name,
            version=version,
            run_id=run_id,
            is_champion=move,
            champion_version=champion_version,
            reason=reason,
            challenger_pr_auc=challenger_pr,
            champion_pr_auc=champion_pr,
            tracking_uri=tracking_uri(cfg),
        )


def load_champion(cfg: Config) -> tuple[ChurnModel, str]:
    """Return the champion :class:`ChurnModel` and its version.

    Raises
    ------
    ModelNotFoundError
        When no champion exists in the configured store.
    """
    name = cfg.tracking.model_name
    with _mlflow(cfg) as mlflow:
        client = mlflow.MlflowClient()
        mv = _version_by_alias(client, name, CHAMPION)
        if mv is None:
            raise ModelNotFoundError(f"{NO_CHAMPION} (store: {tracking_uri(cfg)})")
        return _download_model(mlflow, f"models:/{name}/{mv.version}"), str(mv.version)


def load_version(cfg: Config, version: str | int) -> tuple[ChurnModel, str]:
    """Return the registered :class:`ChurnModel` of ``version`` (a number or an alias).

    Raises
    ------
    ModelNotFoundError
        When the version or alias does not exist.
    """
    name = cfg.tracking.model_name
    version = str(version)
    with _mlflow(cfg) as mlflow:
        from mlflow.exceptions import MlflowException

        client = mlflow.MlflowClient()
        try:
            if version.isdigit():
                mv = client.get_model_version(name, version)
            else:
                mv = client.get_model_version_by_alias(name, version)
        except MlflowException:
            raise ModelNotFoundError(
                f"model {name!r} has no version {version}: see `churnpredict models` "
                f"(store: {tracking_uri(cfg)})"
            ) from None
        return _download_model(mlflow, f"models:/{name}/{mv.version}"), str(mv.version)


def list_models(cfg: Config) -> pd.DataFrame:
    """Return one row per registered version: version, aliases, created, key metrics."""
    name = cfg.tracking.model_name
    cols = ["version", "aliases", "created", "trained_until", *KEY_METRICS, "run_id"]
    with _mlflow(cfg) as mlflow:
        client = mlflow.MlflowClient()
        try:
            versions = client.search_model_versions(f"name = '{name}'")
        except Exception as err:  # noqa: BLE001 - a store without the registry tables
            log.debug("search_model_versions failed: %s", err)
            versions = []
        alias_map: dict[str, list[str]] = {}
        try:
            for alias, v in (client.get_registered_model(name).aliases or {}).items():
                alias_map.setdefault(str(v), []).append(alias)
        except Exception as err:  # noqa: BLE001 - no registered model yet
            log.debug("get_registered_model failed: %s", err)
        rows = []
        for mv in versions:
            row: dict[str, Any] = {
                "version": str(mv.version),
                "aliases": ",".join(sorted(alias_map.get(str(mv.version), []))),
                "created": pd.Timestamp(int(mv.creation_timestamp), unit="ms"),
                "trained_until": (mv.tags or {}).get("trained_until", ""),
                "run_id": mv.run_id,
            }
            for key in KEY_METRICS:
                raw = (mv.tags or {}).get(key)
                row[key] = float(raw) if raw not in (None, "") else float("nan")
            rows.append(row)
    out = pd.DataFrame(rows, columns=cols)
    if len(out):
        out = out.sort_values("version", key=lambda s: s.astype(int)).reset_index(drop=True)
    return out


def promote(cfg: Config, version: str | int) -> str:
    """Point the ``champion`` alias at ``version`` and return it.

    Raises
    ------
    ModelNotFoundError
        When the version does not exist.
    """
    name = cfg.tracking.model_name
    version = str(version)
    with _mlflow(cfg) as mlflow:
        from mlflow.exceptions import MlflowException

        client = mlflow.MlflowClient()
        try:
            client.get_model_version(name, version)
        except MlflowException:
            raise ModelNotFoundError(
                f"model {name!r} has no version {version}: see `churnpredict models`"
            ) from None
        client.set_registered_model_alias(name, CHAMPION, version)
    return version


__all__ = [
    "RegisteredVersion",
    "git_commit",
    "list_models",
    "load_champion",
    "load_version",
    "log_training_run",
    "promote",
    "tracking_uri",
]
