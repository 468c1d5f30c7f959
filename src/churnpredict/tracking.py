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
  it by hand. Aliases only, never stages. With a SQLite store, the first use of the store
  and the champion decision (read, compare, set alias) run under a file lock beside the
  database (``.<name>.db.lock``), so two ``train`` runs neither race on the schema nor
  both become champion on a stale comparison.
- Failures of the store itself are :class:`~churnpredict.errors.TrackingError` (exit 6),
  naming the URI: :func:`check_store` decides within seconds (HTTP: at most
  ``STORE_ATTEMPTS`` probes of ``STORE_TIMEOUT`` seconds; SQLite: the file and its folder
  are checked on disk), and MLflow's own HTTP retries are bounded (2 retries, 10 s
  timeout) unless ``MLFLOW_HTTP_REQUEST_*`` is set. A SQLite store that does not exist is
  created by ``train`` only; every other command says it is missing (exit 3) instead of
  creating an empty one (a misspelt path).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from churnpredict.errors import ChurnPredictError, DataError, ModelNotFoundError, TrackingError

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
STORE_TIMEOUT = 4.0  # seconds per probe of an HTTP tracking server
STORE_ATTEMPTS = 2
MIN_FREE_BYTES = 64 * 2**20  # a model version with its report needs a few MiB
# MLflow's HTTP defaults (7 retries, 120 s timeout, backoff 2) make a dead server cost
# ~4 minutes per call; these apply unless the variable is set
HTTP_ENV_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}
_MISSING_CODES = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}

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


def _sqlite_path(uri: str) -> Path | None:
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///") :].split("?", 1)[0]
    return Path(path if path.startswith("/") else Path.cwd() / path)


def _sqlite_dir(uri: str) -> Path | None:
    path = _sqlite_path(uri)
    return None if path is None else path.parent


def _probe_dir_writable(folder: Path, uri: str, what: str) -> None:
    """Create and remove a small file in ``folder``; raise TrackingError when it fails."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".churnpredict-probe-", dir=folder)
        try:
            os.write(fd, b"\0" * 4096)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(tmp)
    except OSError as err:
        raise TrackingError(
            f"tracking store {uri} cannot be written: {what} {folder}: {err.strerror or err}"
        ) from None
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < MIN_FREE_BYTES:
        raise TrackingError(
            f"tracking store {uri} cannot be written: {what} {folder} has "
            f"{free / 2**20:.1f} MiB free (a model version needs at least "
            f"{MIN_FREE_BYTES // 2**20} MiB)"
        )


def _check_sqlite(uri: str, path: Path, *, write: bool, missing_ok: bool = False) -> None:
    if not path.exists():
        if missing_ok and not write:
            return
        if not write:
            raise ModelNotFoundError(
                f"tracking store {uri} does not exist (no file {path}): nothing was trained "
                "there yet. Run `churnpredict train`, or check tracking.uri / "
                "MLFLOW_TRACKING_URI for a misspelt path (the file is not created here)"
            )
        if not path.parent.is_dir():
            raise TrackingError(
                f"tracking store {uri} cannot be created: folder {path.parent} does not exist"
            )
    else:
        try:
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=STORE_TIMEOUT)
            try:
                con.execute("SELECT count(*) FROM sqlite_master").fetchall()
            finally:
                con.close()
        except sqlite3.Error as err:
            raise TrackingError(f"tracking store {uri} cannot be read: {err}") from None
        if write and not os.access(path, os.W_OK):
            raise TrackingError(f"tracking store {uri} cannot be written: {path} is read-only")
    if write:
        _probe_dir_writable(path.parent, uri, "folder")
        artifacts = path.parent / "mlartifacts"
        if artifacts.exists():
            _probe_dir_writable(artifacts, uri, "artifact folder")


def _check_http(uri: str, experiment: str) -> None:
    query = urllib.parse.urlencode({"experiment_name": experiment})
    url = f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/get-by-name?{query}"
    headers = {}
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    user, password = (
        os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
    )
    if user and password:
        import base64

        cred = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {cred}"
    problem = ""
    for attempt in range(STORE_ATTEMPTS):
        if attempt:
            time.sleep(1.0)
        try:
            with urllib.request.urlopen(
                urllib.request.Request(url, headers=headers), timeout=STORE_TIMEOUT
            ):
                return
        except urllib.error.HTTPError as err:
            if err.code == 404 or (err.code == 400 and attempt == 0 and _is_mlflow(err)):
                return  # the server answers: the experiment just does not exist yet
            problem = f"HTTP {err.code} {err.reason}"
            if err.code in (401, 403):
                break
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            problem = str(getattr(reason, "strerror", None) or reason)
    raise TrackingError(
        f"tracking store {uri} cannot be reached ({problem}; {STORE_ATTEMPTS} attempts of "
        f"{STORE_TIMEOUT:.0f}s). Start the tracking server or fix tracking.uri / "
        "MLFLOW_TRACKING_URI"
    )


def _is_mlflow(err: urllib.error.HTTPError) -> bool:
    try:
        return b"error_code" in err.read(2048)
    except OSError:
        return False


def _require_sqlite_file(cfg: Config) -> bool:
    """Return False when the store is SQLite and its file does not exist (else True).

    Reading commands then say so instead of letting MLflow create an empty store.
    """
    path = _sqlite_path(tracking_uri(cfg))
    return path is None or path.exists()


def check_store(cfg: Config, *, write: bool = False, missing_ok: bool = False) -> str:
    """Check within seconds that the tracking store can be used; return its URI.

    Parameters
    ----------
    cfg : Config
        ``tracking.uri`` (else ``$MLFLOW_TRACKING_URI``, else ./mlflow.db).
    write : bool
        Also check that a new run and model version can be written (``train``,
        ``promote``); a SQLite store that does not exist yet may then be created.
    missing_ok : bool
        When reading, accept a SQLite store that does not exist (the command reports
        "no model" later, after checking its data); it is never created.

    Raises
    ------
    TrackingError
        The store cannot be reached, read or written (exit 6).
    ModelNotFoundError
        ``write`` is false and the SQLite store does not exist (exit 3).
    """
    uri = tracking_uri(cfg)
    scheme = urllib.parse.urlsplit(uri).scheme.lower()
    if scheme == "sqlite":
        path = _sqlite_path(uri)
        if path is None:
            raise TrackingError(
                f"tracking store {uri} is not supported: give a file, sqlite:///PATH"
            )
        _check_sqlite(uri, path, write=write, missing_ok=missing_ok)
    elif scheme in ("http", "https"):
        _check_http(uri, cfg.tracking.experiment)
    elif scheme in ("postgresql", "mysql", "mssql", "databricks", "databricks-uc", "uc"):
        pass  # no cheap probe without their drivers; MLflow's own errors map to exit 6
    elif scheme in ("", "file"):
        raise TrackingError(
            f"tracking store {uri} is a folder (MLflow's file store), which this MLflow "
            "version no longer serves: use a database such as sqlite:///PATH/mlflow.db "
            "or an http(s):// tracking server"
        )
    else:
        raise TrackingError(
            f"tracking store {uri} is not supported (scheme {scheme!r}): use "
            "sqlite:///PATH, http(s)://HOST or a database URI"
        )
    return uri


@contextlib.contextmanager
def _store_lock(cfg: Config, what: str) -> Iterator[None]:
    """Serialize ``what`` across processes for a SQLite store (no-op for servers).

    A server or database store serializes its own writes; two processes sharing one
    SQLite file need this lock around schema creation and the champion decision.
    """
    path = _sqlite_path(tracking_uri(cfg))
    if path is None or not path.parent.is_dir():
        yield
        return
    from filelock import FileLock, Timeout

    lock = FileLock(str(path.with_name(f".{path.name}.lock")), timeout=600)
    try:
        lock.acquire()
    except OSError as err:  # a read-only folder: nobody can write the store, no race
        log.debug("no store lock (%s): %s", what, err)
        yield
        return
    except Timeout:
        raise TrackingError(
            f"tracking store {tracking_uri(cfg)}: waited 10 minutes for another run's {what}"
        ) from None
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def _mlflow(cfg: Config) -> Iterator[Any]:
    """Import mlflow quietly, point it at the configured store and yield the module."""
    saved_env = {
        k: os.environ.get(k) for k in ("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", *HTTP_ENV_DEFAULTS)
    }
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    for key, value in HTTP_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
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
            try:
                if _sqlite_path(uri) is not None:
                    # open (and on first use create or migrate) both stores under the
                    # store lock: two processes doing it at once race on the schema
                    with _store_lock(cfg, "schema set-up"):
                        client = mlflow.MlflowClient()
                        _ = client._tracking_client.store
                        _ = client._get_registry_client().store
                yield mlflow
            except ChurnPredictError:
                raise
            except Exception as err:
                if not _is_store_failure(err):
                    raise
                first = (str(err).strip().splitlines() or [""])[0][:300]
                raise TrackingError(
                    f"tracking store {uri} failed: {type(err).__name__}: {first}"
                ) from err
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


def _close_dead_runs(client: Any, exp_id: str) -> list[str]:
    """Mark runs left RUNNING by a killed ``train`` on this host as KILLED; return their ids.

    A run records its host and process id (tags); one whose process no longer exists
    was killed (kill -9) and would stay RUNNING for ever.
    """
    host = socket.gethostname()
    closed = []
    runs = client.search_runs(
        [exp_id], filter_string=f"attributes.status = 'RUNNING' and tags.host = '{host}'"
    )
    for run in runs:
        pid = run.data.tags.get("pid", "")
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            client.set_terminated(run.info.run_id, status="KILLED")
            closed.append(run.info.run_id)
        except OSError:
            continue
    if closed:
        log.info("marked %d run(s) of killed train processes as KILLED", len(closed))
    return closed


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
    surv = getattr(result, "survival", None)
    if surv is not None:  # the time-to-freeze curve on its survival fold
        for scorer, row in surv.metrics.iterrows():
            for name, value in row.items():
                if value is not None and np.isfinite(value):
                    out[f"survival.{scorer}.{name}"] = float(value)
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


def _is_store_failure(err: BaseException) -> bool:
    """Return True for errors of the store itself (connection, database, files, registry)."""
    from mlflow.exceptions import MlflowException

    if isinstance(err, MlflowException | OSError):
        return True
    mod = type(err).__module__ or ""
    return mod.startswith(("sqlalchemy", "requests", "urllib3", "sqlite3", "alembic"))


def _is_missing(err: BaseException) -> bool:
    """Return True when MLflow says a model, version or alias does not exist."""
    return str(getattr(err, "error_code", "")) in _MISSING_CODES


def _version_by_alias(client: Any, name: str, alias: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as err:
        if _is_missing(err):
            return None
        raise


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
        _close_dead_runs(client, exp_id)
        tags.update(host=socket.gethostname(), pid=str(os.getpid()))
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

        with _store_lock(cfg, "champion decision"):
            move, reason, champion_pr, current, challenger_pr, y_test = _decide_champion(
                mlflow, client, name, version, challenger_scores, X_test, y_test, as_of
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


def _decide_champion(
    mlflow: Any,
    client: Any,
    name: str,
    version: str,
    challenger_scores: np.ndarray,
    X_test: pd.DataFrame,
    y_test: np.ndarray,
    as_of: np.ndarray | None,
) -> tuple[bool, str, float | None, Any, float, np.ndarray]:
    """Decide whether the new version becomes champion (run under the store lock).

    Returns (move, reason, champion PR AUC, current champion, challenger PR AUC, the
    test labels compared).
    """
    challenger_pr = _pr_auc(y_test, challenger_scores)
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
    return move, reason, champion_pr, current, challenger_pr, y_test


def load_champion(cfg: Config) -> tuple[ChurnModel, str]:
    """Return the champion :class:`ChurnModel` and its version.

    Raises
    ------
    ModelNotFoundError
        When no champion exists in the configured store.
    """
    name = cfg.tracking.model_name
    if not _require_sqlite_file(cfg):
        check_store(cfg)  # raises: the store does not exist (never created here)
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
    if not _require_sqlite_file(cfg):
        check_store(cfg)  # raises: the store does not exist (never created here)
    with _mlflow(cfg) as mlflow:
        from mlflow.exceptions import MlflowException

        client = mlflow.MlflowClient()
        try:
            if version.isdigit():
                mv = client.get_model_version(name, version)
            else:
                mv = client.get_model_version_by_alias(name, version)
        except MlflowException as err:
            if not _is_missing(err):
                raise
            raise ModelNotFoundError(
                f"model {name!r} has no version {version}: see `churnpredict models` "
                f"(store: {tracking_uri(cfg)})"
            ) from None
        return _download_model(mlflow, f"models:/{name}/{mv.version}"), str(mv.version)


def list_models(cfg: Config) -> pd.DataFrame:
    """Return one row per registered version: version, aliases, created, key metrics."""
    name = cfg.tracking.model_name
    cols = ["version", "aliases", "created", "trained_until", *KEY_METRICS, "run_id"]
    if not _require_sqlite_file(cfg):
        return pd.DataFrame(columns=cols)  # no store yet: nothing registered (not created)
    with _mlflow(cfg) as mlflow:
        client = mlflow.MlflowClient()
        from mlflow.exceptions import MlflowException

        versions = client.search_model_versions(f"name = '{name}'")
        alias_map: dict[str, list[str]] = {}
        try:
            for alias, v in (client.get_registered_model(name).aliases or {}).items():
                alias_map.setdefault(str(v), []).append(alias)
        except MlflowException as err:  # no registered model yet
            if not _is_missing(err):
                raise
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
    if not _require_sqlite_file(cfg):
        check_store(cfg)  # raises: the store does not exist (never created here)
    with _mlflow(cfg) as mlflow:
        from mlflow.exceptions import MlflowException

        client = mlflow.MlflowClient()
        try:
            client.get_model_version(name, version)
        except MlflowException as err:
            if not _is_missing(err):
                raise
            raise ModelNotFoundError(
                f"model {name!r} has no version {version}: see `churnpredict models`"
            ) from None
        client.set_registered_model_alias(name, CHAMPION, version)
    return version


__all__ = [
    "RegisteredVersion",
    "check_store",
    "git_commit",
    "list_models",
    "load_champion",
    "load_version",
    "log_training_run",
    "promote",
    "tracking_uri",
]
