"""A small synthetic training table with a known signal, for the modeling tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnpredict.config import build_config
from churnpredict.features.catalog import Feature

FEATURES = [
    Feature(
        "campaigns__paused__7d", "campaigns", "campaign pauses in the last 7 days", "count", 7
    ),
    Feature("profile__rfm_recency", "profile", "days since the last event", "days_since"),
    Feature("profile__rfm_frequency__90d", "profile", "events in the last 90 days", "count", 90),
    Feature("profile__rfm_monetary__90d", "profile", "spend in the last 90 days", "sum", 90),
    Feature("profile__rfm_score", "profile", "RFM score (3..15)", "state"),
    Feature("invoices__overdue_days", "invoices", "days the oldest invoice is overdue", "state"),
    Feature("contacts__complaint__30d", "contacts", "complaints in the last 30 days", "count", 30),
    Feature("noise__a", "activity", "noise a", "count", 30),
    Feature("noise__b", "activity", "noise b", "mean", 30),
]


def small_config(**model):
    """Return a config whose folds fit a 20-week table (horizon 7 days)."""
    m = {
        "validation_days": 14,
        "calibration_days": 21,
        "test_days": 21,
        "n_estimators": 200,
        "min_child_samples": 20,
        "learning_rate": 0.1,
        "early_stopping_rounds": 20,
        "negative_sample_rate": 1.0,
        **model,
    }
    return build_config(
        {
            "label": {"horizon_days": 7},
            "model": m,
            "backtest": {"cuts": 2, "cut_every_days": 21, "test_days": 21},
            "evaluation": {"calls_per_day": 30, "logistic_max_rows": 5000},
            "tracking": {"uri": None},
        }
    )


def make_table(n_clients: int = 400, n_dates: int = 20, seed: int = 0):
    """Return ``(table, catalog, truth)``: weekly snapshots with a logistic signal.

    The hidden risk ``z`` drives pauses, recency, overdue days and complaints, plus an
    interaction (overdue × complaints) that a linear model misses.
    """
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-03-04", periods=n_dates, freq="7D")
    cid = np.repeat([f"c{i:04d}" for i in range(n_clients)], n_dates)
    as_of = np.tile(dates.values, n_clients)
    n = len(cid)
    base = np.repeat(rng.normal(0, 1, n_clients), n_dates)
    z = base + rng.normal(0, 0.7, n)
    paused = rng.poisson(np.exp(0.6 * z - 1.5))
    recency = np.round(rng.gamma(2.0, np.exp(0.5 * z) * 3.0))
    freq = rng.poisson(np.exp(3 - 0.4 * z))
    monetary = np.round(rng.gamma(2, 200 * np.exp(-0.3 * z)), 2)
    overdue = np.where(rng.random(n) < 0.3 + 0.1 * np.tanh(z), rng.integers(0, 40, n), 0)
    complaints = rng.poisson(np.exp(0.5 * z - 1.0))
    score = (
        np.clip(5 - np.digitize(recency, [3, 7, 14, 30]), 1, 5)
        + np.clip(np.digitize(freq, [5, 10, 20, 40]) + 1, 1, 5)
        + np.clip(np.digitize(monetary, [100, 300, 600, 1000]) + 1, 1, 5)
    ).astype(float)
    noise_a = rng.poisson(3, n).astype(float)
    noise_b = rng.normal(0, 1, n)
    noise_b[rng.random(n) < 0.2] = np.nan
    logit = (
        -3.2 + 0.9 * z + 0.4 * paused + 0.03 * overdue + 0.8 * ((overdue > 20) & (complaints > 0))
    )
    p_true = 1 / (1 + np.exp(-logit))
    label = (rng.random(n) < p_true).astype(int)
    table = pd.DataFrame(
        {
            "client_id": cid,
            "as_of": pd.to_datetime(as_of),
            "label": label,
            "campaigns__paused__7d": paused.astype(float),
            "profile__rfm_recency": recency,
            "profile__rfm_frequency__90d": freq.astype(float),
            "profile__rfm_monetary__90d": monetary,
            "profile__rfm_score": score,
            "invoices__overdue_days": overdue.astype(float),
            "contacts__complaint__30d": complaints.astype(float),
            "noise__a": noise_a,
            "noise__b": noise_b,
        }
    )
    truth = table[["client_id", "as_of"]].assign(p_true=p_true, label=label)
    return table, list(FEATURES), truth
