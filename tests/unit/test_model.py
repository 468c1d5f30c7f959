"""ChurnModel: fit, determinism, calibration with negative sampling, persistence, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnpredict.errors import DataError, ModelNotFoundError
from churnpredict.modeling.evaluate import expected_calibration_error
from churnpredict.modeling.model import ChurnModel, bin_shares, psi
from churnpredict.modeling.split import train_valid_calib_test

from .synthetic_table import FEATURES, make_table, small_config

NAMES = [f.name for f in FEATURES]


@pytest.fixture(scope="module")
def data():
    table, catalog, _ = make_table(n_clients=1000, seed=3)
    cfg = small_config()
    m = train_valid_calib_test(table["as_of"], cfg)
    folds = {
        k: (table.loc[v, NAMES].reset_index(drop=True), table.loc[v, "label"].to_numpy())
        for k, v in m.items()
    }
    return cfg, catalog, folds


def _fit(cfg, catalog, folds):
    return ChurnModel(cfg.model).fit(
        *folds["fit"], *folds["valid"], *folds["calib"], catalog=catalog,
        metadata={"horizon_days": 7},
    )  # fmt: skip


@pytest.fixture(scope="module")
def model(data):
    return _fit(*data)


def test_learned_attributes(model, data):
    assert model.feature_names_ == NAMES
    assert [f.name for f in model.catalog_] == NAMES
    assert 1 <= model.best_iteration_ <= 200
    assert model.booster_.num_trees() == model.best_iteration_
    assert set(model.train_stats_) == set(NAMES)
    st = model.train_stats_["noise__b"]
    assert len(st["shares"]) == len(st["edges"]) + 1
    assert sum(st["shares"]) == pytest.approx(1)
    assert st["missing"] == pytest.approx(0.2, abs=0.03)
    assert model.metadata_["horizon_days"] == 7
    assert model.metadata_["n_fit_rows"] == len(data[2]["fit"][1])


def test_predictions_are_probabilities_that_rank(model, data):
    X, y = data[2]["test"]
    risk = model.predict_risk(X)
    assert risk.shape == (len(X),) and (risk >= 0).all() and (risk <= 1).all()
    # ranking equals the raw score's ranking (calibration is strictly increasing)
    raw = model.predict_raw(X)
    assert (np.argsort(raw, kind="stable") == np.argsort(risk, kind="stable")).all()
    assert risk[y == 1].mean() > 2 * risk[y == 0].mean()


def test_fit_is_deterministic(model, data):
    again = _fit(*data)
    X, _ = data[2]["test"]
    np.testing.assert_array_equal(model.predict_risk(X), again.predict_risk(X))
    assert model.booster_.model_to_string() == again.booster_.model_to_string()


@pytest.mark.parametrize("extra", [{"class_weight": "balanced"}, {"calibration": "sigmoid"}])
def test_negative_sampling_and_weights_stay_calibrated(data, extra):
    cfg, catalog, folds = data
    cfg = cfg.model_copy(
        update={"model": cfg.model.model_copy(update={"negative_sample_rate": 0.3, **extra})}
    )
    m = _fit(cfg, catalog, folds)
    assert m.metadata_["n_fit_rows"] < 0.5 * len(folds["fit"][1])
    assert m.raw_offset_ < 0
    X, y = folds["test"]
    risk = m.predict_risk(X)
    assert abs(risk.mean() - y.mean()) < 0.03
    assert expected_calibration_error(y, risk) < 0.04


def test_max_fit_rows_caps_the_fit_fold(data):
    cfg, catalog, folds = data
    cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"max_fit_rows": 3000})})
    m = _fit(cfg, catalog, folds)
    assert m.metadata_["n_fit_rows"] <= 3300
    assert m.metadata_["fit_positives"] == int(folds["fit"][1].sum())


def test_contributions_sum_to_raw_score(model, data):
    X, _ = data[2]["test"]
    c = model.contributions(X.head(50))
    assert list(c.columns) == [*NAMES, "bias"]
    np.testing.assert_allclose(c.sum(axis=1), model.predict_raw(X.head(50)), atol=1e-6)


def test_missing_feature_raises_data_error_naming_it(model, data):
    X, _ = data[2]["test"]
    with pytest.raises(DataError, match="profile__rfm_score.*noise__a|noise__a"):
        model.predict_risk(X.drop(columns=["noise__a", "profile__rfm_score"]))
    # column order and extra columns do not matter
    shuffled = X[NAMES[::-1]].assign(extra=1.0)
    np.testing.assert_array_equal(model.predict_risk(shuffled), model.predict_risk(X))


def test_save_load_round_trip(model, data, tmp_path):
    X, _ = data[2]["test"]
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["booster.txt", "model.json"]
    back = ChurnModel.load(tmp_path / "m")
    np.testing.assert_array_equal(back.predict_risk(X), model.predict_risk(X))
    pd.testing.assert_frame_equal(back.contributions(X.head(5)), model.contributions(X.head(5)))
    assert back.catalog_ == model.catalog_
    assert back.train_stats_ == model.train_stats_
    assert back.metadata_["horizon_days"] == 7


def test_load_missing_and_unfitted(tmp_path):
    with pytest.raises(ModelNotFoundError):
        ChurnModel.load(tmp_path)
    with pytest.raises(ModelNotFoundError):
        ChurnModel().predict_risk(pd.DataFrame({"a": [1.0]}))


def test_one_class_fit_fold_is_a_data_error(data):
    cfg, catalog, folds = data
    X, y = folds["fit"]
    with pytest.raises(DataError, match="one class"):
        ChurnModel(cfg.model).fit(X, np.zeros_like(y), *folds["valid"], *folds["calib"])


def test_psi_is_small_on_training_like_data_and_large_after_a_shift(model, data):
    X, _ = data[2]["test"]
    p = model.feature_psi(X)
    assert p.max() < 0.1
    shifted = X.assign(invoices__overdue_days=X["invoices__overdue_days"] + 100)
    assert model.feature_psi(shifted)["invoices__overdue_days"] > 1


def test_bin_shares_and_psi_by_hand():
    shares, miss = bin_shares(np.array([1.0, 2.0, 3.0, np.nan]), [1.5, 2.5])
    assert shares.tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3]) and miss == 0.25
    assert psi([0.5, 0.5], [0.5, 0.5]) == 0
    assert psi([0.5, 0.5], [0.25, 0.75]) == pytest.approx(
        (0.25 - 0.5) * np.log(0.5) + (0.75 - 0.5) * np.log(1.5)
    )


def test_early_stopping_uses_a_ranking_metric_and_warns_on_tiny_or_capped(data):
    cfg, catalog, folds = data
    from churnpredict.modeling.model import early_stopping_note

    m = _fit(cfg, catalog, folds)
    assert m.metadata_["early_stopping"] == "average_precision"
    assert early_stopping_note(5, cfg.model) and "only 5 trees" in early_stopping_note(
        5, cfg.model
    )
    assert "cap" in early_stopping_note(cfg.model.n_estimators, cfg.model)
    assert early_stopping_note(50, cfg.model) is None


def test_fixed_trees_and_a_given_calibrator(model, data):
    cfg, catalog, folds = data
    m = ChurnModel(cfg.model).fit(
        *folds["fit"], None, None, None, None, catalog=catalog, n_trees=7,
        calibrator=model.calibrator_,
    )  # fmt: skip
    assert m.best_iteration_ == 7 and m.booster_.num_trees() == 7
    assert m.calibrator_ is model.calibrator_
    with pytest.raises(ValueError, match="validation fold"):
        ChurnModel(cfg.model).fit(*folds["fit"], None, None, *folds["calib"])
    with pytest.raises(ValueError, match="calibration fold"):
        ChurnModel(cfg.model).fit(*folds["fit"], *folds["valid"], None, None)
