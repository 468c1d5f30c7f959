"""The churn model: a LightGBM booster plus a probability calibrator.

Class imbalance and speed: the fit fold keeps every positive and a share
(``model.negative_sample_rate``, further lowered to respect ``model.max_fit_rows``) of the
negatives. The booster then learns log-odds shifted by ``log(1 / rate)``; the model stores
that shift as ``raw_offset_`` and adds it back (it is also the validation fold's
``init_score``, so early stopping judges the log loss on the right scale). The calibrator
is fitted afterwards on the later, untouched calibration fold, so the final probabilities
are calibrated to the real base rate whatever the sampling or class weighting.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from churnpredict.config import ModelConfig
from churnpredict.drift import bin_shares, training_stats  # noqa: F401 (re-export)
from churnpredict.drift import psi as drift_psi
from churnpredict.drift import psi_value as psi  # noqa: F401 (re-export)
from churnpredict.errors import DataError, ModelNotFoundError
from churnpredict.features.catalog import Feature
from churnpredict.modeling.calibrate import Calibrator
from churnpredict.modeling.presample import fit_sample_rates, keep_probability, weighted_count

FORMAT_VERSION = 1
STATS_BINS = 10
STATS_MAX_ROWS = 100_000
MIN_TREES = 20


def to_matrix(X: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Return ``X[columns]`` as a C-contiguous float32 array (missing values as NaN)."""
    sub = X.loc[:, list(columns)]
    try:
        arr = sub.to_numpy(dtype=np.float32, na_value=np.nan)
    except (TypeError, ValueError) as err:
        bad = [c for c in columns if not pd.api.types.is_numeric_dtype(sub[c])]
        raise DataError(
            "feature columns must be numeric",
            column=", ".join(bad[:10]) or None,
            expected="float columns (NaN allowed)",
        ) from err
    return np.ascontiguousarray(arr)


def _feature_stats(X: np.ndarray, names: Sequence[str], seed: int) -> dict[str, dict]:
    """Return the drift statistics of the fit rows (a seeded sample when large)."""
    rng = np.random.default_rng(seed)
    if len(X) > STATS_MAX_ROWS:
        X = X[np.sort(rng.choice(len(X), STATS_MAX_ROWS, replace=False))]
    return training_stats(pd.DataFrame(X, columns=list(names)), n_bins=STATS_BINS)


def early_stopping_note(best: int, params: ModelConfig) -> str | None:
    """Return a warning when early stopping chose very few trees or hit the cap, else None."""
    if best < MIN_TREES:
        return (
            f"early stopping chose only {best} trees (< {MIN_TREES}): the validation fold "
            "may be too small or too different from the fit fold"
        )
    if best >= params.n_estimators:
        return (
            f"early stopping hit the cap of {params.n_estimators} trees: raise "
            "model.n_estimators or model.learning_rate"
        )
    return None


def lgb_params(
    p: ModelConfig, *, metric: str, feature_fraction: float | None = None
) -> dict[str, Any]:
    """Return LightGBM training parameters from the ``model`` config (binary objective).

    ``feature_fraction`` overrides ``colsample_bytree`` (the time-to-freeze model reads
    few features and keeps most of them per tree).
    """
    return {
        "objective": "binary",
        "metric": metric,
        "learning_rate": p.learning_rate,
        "num_leaves": p.num_leaves,
        "min_data_in_leaf": p.min_child_samples,
        "bagging_fraction": p.subsample,
        "bagging_freq": 1 if p.subsample < 1 else 0,
        "feature_fraction": p.colsample_bytree if feature_fraction is None else feature_fraction,
        "lambda_l2": p.reg_lambda,
        "max_bin": p.max_bin,
        "num_threads": p.n_jobs,
        "seed": p.seed,
        "bagging_seed": p.seed + 1,
        "feature_fraction_seed": p.seed + 2,
        "data_random_seed": p.seed + 3,
        "deterministic": True,
        "force_col_wise": True,
        "verbosity": -1,
    }


class ChurnModel:
    """LightGBM churn model with calibrated probabilities.

    Parameters
    ----------
    params : ModelConfig, optional
        The ``model`` section of the config (defaults when omitted).

    Attributes
    ----------
    booster_ : lightgbm.Booster
        Trimmed to the best iteration.
    calibrator_ : Calibrator
    feature_names_ : list of str
    catalog_ : list of Feature
    train_stats_ : dict
        Per feature: ``edges`` (decile edges on the fit rows), ``shares`` (row share per
        bin, see :func:`bin_shares`) and ``missing`` (NaN share), for a PSI drift check.
    best_iteration_ : int
    raw_offset_ : float
        Log-odds correction for negative subsampling / class weighting.
    metadata_ : dict
        Horizon, trained-until date, config hash, row counts, library versions, ...
    survival_ : HazardModel or None
        The time-to-freeze curve's shape (:mod:`churnpredict.modeling.survival`), set by
        training; None for a model without one (then no risk_7d / risk_90d).
    """

    survival_ = None

    def __init__(self, params: ModelConfig | None = None) -> None:
        self.params = params if params is not None else ModelConfig()

    # ------------------------------------------------------------------ fitting
    def _lgb_params(self) -> dict[str, Any]:
        return lgb_params(self.params, metric="none")

    def _sample_fit_rows(
        self, y: np.ndarray, weights: np.ndarray | None = None
    ) -> tuple[np.ndarray, float]:
        """Return the kept fit-row indices and the log-odds offset the sampling implies.

        ``weights`` (a pre-sampled table, :mod:`churnpredict.modeling.presample`): each
        row stands for that many original rows; negatives are kept with probability
        ``rate * weight`` and counted by their weights, so the rates and the offset are
        those of the table before pre-sampling.
        """
        p = self.params
        rng = np.random.default_rng(p.seed)
        pos = np.flatnonzero(y == 1)
        neg = np.flatnonzero(y != 1)
        n_neg = weighted_count(len(neg), None if weights is None else weights[neg])
        neg_rate, pos_rate = fit_sample_rates(len(pos), n_neg, p)
        if weights is None:
            keep_neg = neg[rng.random(len(neg)) < neg_rate] if neg_rate < 1 else neg
        else:
            keep_neg = neg[rng.random(len(neg)) < keep_probability(neg_rate, weights[neg])]
        keep_pos = pos[rng.random(len(pos)) < pos_rate] if pos_rate < 1 else pos
        idx = np.sort(np.concatenate([keep_pos, keep_neg]))
        return idx, math.log(neg_rate / pos_rate)

    def fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        X_valid: pd.DataFrame | None,
        y_valid: np.ndarray | None,
        X_calib: pd.DataFrame | None,
        y_calib: np.ndarray | None,
        *,
        catalog: Sequence[Feature] | None = None,
        metadata: dict[str, Any] | None = None,
        n_trees: int | None = None,
        calibrator: Calibrator | None = None,
        weights: np.ndarray | None = None,
    ) -> ChurnModel:
        """Train the booster on the fit fold, stop early on valid, calibrate on calib.

        Parameters
        ----------
        X, y : DataFrame, array
            Fit fold: feature columns only (every column is a feature) and labels 0/1.
        X_valid, y_valid : DataFrame, array, optional
            Later fold for early stopping on ``model.early_stopping_metric`` (a ranking
            metric by default: log loss would mix the folds' different base rates with
            ranking quality). Omit them together with ``n_trees`` given.
        X_calib, y_calib : DataFrame, array, optional
            Still later fold for the calibrator. Omit them when ``calibrator`` is given.
        catalog : sequence of Feature, optional
            Descriptions of the features (stored with the model for explanations).
        metadata : dict, optional
            Extra facts to store (horizon, trained_until, config_hash, ...).
        n_trees : int, optional
            Train exactly this many trees (no early stopping; ``X_valid`` is ignored).
        calibrator : Calibrator, optional
            A calibrator fitted elsewhere (on scores of a booster trained the same way on
            earlier rows), used instead of fitting one on ``X_calib``.
        weights : array, optional
            Pre-sampling weights of the fit rows (:mod:`churnpredict.modeling.presample`):
            the negative sampling then keeps each original row at the rate it would
            without pre-sampling, and the offset is unchanged.
        """
        p = self.params
        names = [str(c) for c in X.columns]
        if len(set(names)) != len(names):
            raise DataError("duplicate feature column names", expected="unique column names")
        if n_trees is None and X_valid is None:
            raise ValueError("give a validation fold for early stopping, or n_trees")
        if calibrator is None and X_calib is None:
            raise ValueError("give a calibration fold, or a fitted calibrator")
        self.feature_names_ = names
        by_name = {f.name: f for f in (catalog or [])}
        self.catalog_ = [by_name[n] for n in names if n in by_name]
        y = np.asarray(y, dtype=float)
        if len(np.unique(y)) < 2:
            raise DataError(
                "the fit fold has only one class: no freezes (or only freezes) to learn from",
                column="label",
            )

        idx, offset = self._sample_fit_rows(
            y, None if weights is None else np.asarray(weights, dtype=float)
        )
        X_fit = to_matrix(X.iloc[idx], names)
        y_fit = y[idx]
        self.train_stats_ = _feature_stats(X_fit, names, p.seed)
        params = self._lgb_params()
        if p.class_weight == "balanced":
            spw = float((y_fit == 0).sum() / max((y_fit == 1).sum(), 1))
            params["scale_pos_weight"] = spw
            offset -= math.log(spw)
        self.raw_offset_ = float(offset)

        lgb_names = [f"f{i}" for i in range(len(names))]
        dtrain = lgb.Dataset(
            X_fit, label=y_fit, feature_name=lgb_names, params={"max_bin": p.max_bin}
        )
        del X_fit
        if n_trees is None:
            y_valid = np.asarray(y_valid, dtype=float)
            dvalid = lgb.Dataset(
                to_matrix(X_valid, names),
                label=y_valid,
                reference=dtrain,
                init_score=np.full(len(y_valid), -self.raw_offset_),
            )
            params["metric"] = p.early_stopping_metric
            booster = lgb.train(
                params,
                dtrain,
                num_boost_round=p.n_estimators,
                valid_sets=[dvalid],
                valid_names=["valid"],
                callbacks=[lgb.early_stopping(p.early_stopping_rounds, verbose=False)],
            )
            best = booster.best_iteration or booster.current_iteration()
            self.early_stopping_note_ = early_stopping_note(int(best), p)
        else:
            booster = lgb.train(params, dtrain, num_boost_round=int(n_trees))
            best = int(n_trees)
            self.early_stopping_note_ = None
        self.best_iteration_ = int(best)
        self.booster_ = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
        if calibrator is not None:
            self.calibrator_ = calibrator
            n_calib = None
        else:
            self.calibrator_ = Calibrator(p.calibration).fit(
                self.predict_raw(X_calib), np.asarray(y_calib, dtype=float)
            )
            n_calib = int(len(y_calib))
        self.metadata_ = {
            **(metadata or {}),
            "n_fit_rows": int(len(idx)),
            "n_fit_rows_before_sampling": weighted_count(len(y), weights),
            "n_valid_rows": None if n_trees is not None else int(len(y_valid)),
            "n_calib_rows": n_calib,
            "fit_positives": int((y_fit == 1).sum()),
            "best_iteration": self.best_iteration_,
            "early_stopping": None if n_trees is not None else p.early_stopping_metric,
            "raw_offset": self.raw_offset_,
            "n_features": len(names),
            "lightgbm_version": lgb.__version__,
            "model_params": p.model_dump(mode="json"),
        }
        return self

    # --------------------------------------------------------------- predicting
    def _check_fitted(self) -> None:
        if not hasattr(self, "booster_"):
            raise ModelNotFoundError("this ChurnModel is not fitted yet: call fit() first")

    def _matrix(self, X: pd.DataFrame) -> np.ndarray:
        self._check_fitted()
        missing = [c for c in self.feature_names_ if c not in X.columns]
        if missing:
            raise DataError(
                f"{len(missing)} feature(s) the model expects are missing from the input: "
                + ", ".join(missing[:20])
                + (" ..." if len(missing) > 20 else ""),
                column=", ".join(missing[:20]),
                expected="the feature table built with the same feature config as training",
            )
        return to_matrix(X, self.feature_names_)

    def predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        """Return raw log-odds (booster output plus the sampling offset)."""
        arr = self._matrix(X)
        return self.booster_.predict(arr, raw_score=True) + self.raw_offset_

    def predict_risk(self, X: pd.DataFrame) -> np.ndarray:
        """Return the calibrated probability of a freeze within the horizon."""
        raw = self.predict_raw(X)
        return self.calibrator_.predict(raw)

    def predict_horizons(self, X: pd.DataFrame, risk: np.ndarray | None = None) -> pd.DataFrame:
        """Return ``risk_7d``, ``risk_14d``, ``risk_90d`` and ``expected_active_days``.

        The time-to-freeze curve anchored at the calibrated ``risk`` (computed when not
        given), so ``risk_7d <= risk <= risk_90d`` for every row. Empty (no columns)
        for a model trained without a curve.
        """
        if self.survival_ is None:
            return pd.DataFrame(index=X.index)
        from churnpredict.modeling.survival import predict_outputs

        risk = self.predict_risk(X) if risk is None else np.asarray(risk, dtype=float)
        horizon = int(
            self.metadata_.get("horizon_days") or self.survival_.metadata_["horizon_days"]
        )
        out, _ = predict_outputs(self.survival_, X, risk, horizon)
        out.index = X.index
        return out

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Return per-feature SHAP contributions in raw log-odds, plus a ``bias`` column.

        Each row sums to :meth:`predict_raw` for that row.
        """
        arr = self._matrix(X)
        arr = self.booster_.predict(arr, pred_contrib=True)
        out = pd.DataFrame(arr, columns=[*self.feature_names_, "bias"], index=X.index)
        out["bias"] = out["bias"] + self.raw_offset_
        return out

    def feature_importance(self) -> pd.DataFrame:
        """Return gain and split importance per feature, by gain descending."""
        self._check_fitted()
        return (
            pd.DataFrame(
                {
                    "feature": self.feature_names_,
                    "gain": self.booster_.feature_importance("gain"),
                    "splits": self.booster_.feature_importance("split"),
                }
            )
            .sort_values(["gain", "feature"], ascending=[False, True])
            .reset_index(drop=True)
        )

    def feature_psi(self, X: pd.DataFrame) -> pd.Series:
        """Return the PSI of every feature in ``X`` against the training distribution.

        The missing-value share is treated as one more bin (see :mod:`churnpredict.drift`).
        """
        frame = pd.DataFrame(self._matrix(X), columns=self.feature_names_)
        return drift_psi(self.train_stats_, frame).set_index("feature")["psi"]

    # ------------------------------------------------------------ persistence
    def save(self, directory: Path | str) -> Path:
        """Write the model to ``directory`` (``booster.txt`` + ``model.json``), atomically."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        doc = {
            "format_version": FORMAT_VERSION,
            "params": self.params.model_dump(mode="json"),
            "feature_names": self.feature_names_,
            "catalog": [f.to_dict() for f in self.catalog_],
            "calibrator": self.calibrator_.to_dict(),
            "train_stats": self.train_stats_,
            "best_iteration": self.best_iteration_,
            "raw_offset": self.raw_offset_,
            "metadata": self.metadata_,
        }
        files = {
            "booster.txt": self.booster_.model_to_string(),
            "model.json": json.dumps(doc, indent=1, sort_keys=True, default=str),
        }
        if self.survival_ is not None:
            files["survival.json"] = json.dumps(self.survival_.to_dict(), default=str)
        for name, text in files.items():
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, directory / name)
        return directory

    @classmethod
    def load(cls, directory: Path | str) -> ChurnModel:
        """Read a model written by :meth:`save`."""
        directory = Path(directory)
        if not (directory / "model.json").exists() or not (directory / "booster.txt").exists():
            raise ModelNotFoundError(f"no saved churn model in {directory}")
        doc = json.loads((directory / "model.json").read_text(encoding="utf-8"))
        if doc.get("format_version") != FORMAT_VERSION:
            raise ModelNotFoundError(
                f"model in {directory} has format {doc.get('format_version')}, "
                f"this churnpredict reads format {FORMAT_VERSION}: retrain"
            )
        known = set(ModelConfig.model_fields)
        model = cls(
            ModelConfig.model_validate({k: v for k, v in doc["params"].items() if k in known})
        )
        model.booster_ = lgb.Booster(
            model_str=(directory / "booster.txt").read_text(encoding="utf-8")
        )
        model.feature_names_ = list(doc["feature_names"])
        model.catalog_ = [Feature.from_dict(d) for d in doc["catalog"]]
        model.calibrator_ = Calibrator.from_dict(doc["calibrator"])
        model.train_stats_ = doc["train_stats"]
        model.best_iteration_ = int(doc["best_iteration"])
        model.raw_offset_ = float(doc["raw_offset"])
        model.metadata_ = doc["metadata"]
        if (directory / "survival.json").exists():
            from churnpredict.modeling.survival import HazardModel

            model.survival_ = HazardModel.from_dict(
                json.loads((directory / "survival.json").read_text(encoding="utf-8"))
            )
        return model
