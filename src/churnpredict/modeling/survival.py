"""Time to freeze: a discrete-time hazard model and the survival curve S(t) per client.

Each snapshot ``(client, T)`` has a follow-up (:func:`churnpredict.labels.followup`): the
day of its first freeze (``freeze_day`` in ``1..followup_days``) or none within the
``followup_days`` the label source covers. The days ``1..max_horizon_days`` are cut into
a few bins ``(lo, hi]`` (e.g. 1-7, 8-14, 15-30, 31-60, 61-90). A snapshot gives one row
per bin it is still at risk in (no freeze up to ``lo``) and whose days its follow-up covers
to the end: target 1 when it freezes in the bin, else 0. A bin the follow-up ends inside
is left out, freeze or not (censored: it never counts as "no freeze", and keeping only its
freezes would inflate the hazard), and so are all later bins. LightGBM learns the bin's
hazard ``h_b`` from the snapshot's features plus the bin.

The curve: ``S(hi_b) = prod_{j <= b} (1 - h_j)``, with a constant daily hazard inside a
bin (the cumulative hazard ``H = -log S`` is linear between bin edges), so S is
non-increasing in t by construction.

Anchoring: the 30-day point of the curve is set to the calibrated classifier's risk —
up to the horizon ``H'(t) = H(t) * -log(1 - risk) / H(horizon)``, after it the hazard
model's own increments ``H(t) - H(horizon)`` are added — so ``1 - S'(horizon) = risk``
exactly and ``risk_7d <= risk <= risk_90d`` holds for every client; the hazard model
decides how much of the risk falls in the first week and how much more comes by day 90.

Two boosters: the days after the horizon get their own booster (``long_``, trained on the
bins after ``label.horizon_days`` only, with its own early stopping) when
``model.survival_long_booster`` is on. One booster for every bin stops where the many
short-bin rows stop improving, which over-fits the fewer, noisier rows of the bins after
the horizon, and its splits serve the first weeks; the long booster reads the same features.

Negative subsampling: the rows with target 0 are kept at ``model.survival_negative_rate``;
the booster's log-odds are shifted back by ``log(rate)`` (as in
:mod:`churnpredict.modeling.model`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from churnpredict.config import Config, ModelConfig
from churnpredict.errors import DataError
from churnpredict.modeling.model import lgb_params, to_matrix
from churnpredict.modeling.presample import keep_probability, weighted_count

BIN_FEATURE = "survival__bin"
EPS = 1e-12


def bin_edges(cfg: Config) -> np.ndarray:
    """Return the bin edges ``0 < e_1 < ... < max_horizon_days`` (days, as int).

    The edges are ``model.survival_bins`` below ``label.max_horizon_days``, plus 7 (risk_7d),
    ``label.horizon_days`` (risk) and ``label.max_horizon_days``.
    """
    H = int(cfg.label.max_horizon_days)
    inner = {int(e) for e in cfg.model.survival_bins if 0 < int(e) < H}
    inner |= {7, int(cfg.label.horizon_days)}
    return np.array([0, *sorted(e for e in inner if e < H), H], dtype=np.int64)


def expand(
    freeze_day: np.ndarray, followup: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the person-period rows: (snapshot index, bin index, target).

    Parameters
    ----------
    freeze_day : array of int
        Day of the first freeze (``1..followup``), 0 when none is seen in the follow-up.
    followup : array of int
        Days the follow-up covers.
    edges : array of int
        Bin edges from :func:`bin_edges`.

    Returns
    -------
    idx, bins, y : arrays
        One row per snapshot and bin ``(lo, hi]`` it is still at risk in (no freeze up to
        ``lo``) and that its follow-up covers to the end (``followup >= hi``): ``y`` = 1
        when the freeze falls in the bin. A bin the follow-up ends inside is left out
        whether or not a freeze was seen in it — keeping the freezes of such a bin but not
        its survivors would inflate the hazard.
    """
    fd = np.asarray(freeze_day, dtype=np.int64)
    fu = np.asarray(followup, dtype=np.int64)
    event = fd >= 1
    idx, bins, ys = [], [], []
    for b in range(len(edges) - 1):
        lo, hi = edges[b], edges[b + 1]
        at_risk = ~event | (fd > lo)
        rows = np.flatnonzero(at_risk & (fu >= hi))
        idx.append(rows)
        bins.append(np.full(len(rows), b, dtype=np.int64))
        ys.append((event[rows] & (fd[rows] <= hi)).astype(np.float64))
    return np.concatenate(idx), np.concatenate(bins), np.concatenate(ys)


def targets(
    table: pd.DataFrame, cutoff: pd.Timestamp | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(freeze_day, followup)`` of every row, censored at ``cutoff`` when given.

    ``cutoff`` (a date) cuts each follow-up to the days before it: a model used from
    ``cutoff`` on must not learn from freezes it could not have seen then.
    """
    fu = table["followup_days"].to_numpy(dtype=np.int64)
    fd = table["freeze_day"].to_numpy(dtype=np.int64)
    if cutoff is not None:
        d = pd.to_datetime(table["as_of"]).dt.normalize()
        room = (pd.Timestamp(cutoff).normalize() - d).dt.days.to_numpy(dtype=np.int64)
        fu = np.minimum(fu, np.maximum(room, 0))
    fd = np.where((fd >= 1) & (fd <= fu), fd, 0)
    return fd, fu


def cumhaz_at(Hb: np.ndarray, edges: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Return the cumulative hazard at day(s) ``t`` from its values at the bin ends.

    ``Hb`` has one column per bin (the cumulative hazard at ``edges[1:]``); between edges
    the cumulative hazard is linear (a constant daily hazard within a bin).
    """
    Hb = np.atleast_2d(Hb)
    full = np.concatenate([np.zeros((len(Hb), 1)), Hb], axis=1)
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))
    out = np.empty((len(Hb), len(t)))
    for j, tt in enumerate(t):
        tt = min(max(tt, 0.0), float(edges[-1]))
        b = min(int(np.searchsorted(edges, tt, side="right")) - 1, len(edges) - 2)
        lo, hi = edges[b], edges[b + 1]
        w = (tt - lo) / (hi - lo)
        out[:, j] = full[:, b] + w * (full[:, b + 1] - full[:, b])
    return out


def anchor(Hb: np.ndarray, edges: np.ndarray, horizon: int, risk: np.ndarray) -> np.ndarray:
    """Set each row's curve to ``risk`` at the horizon, keeping the hazard model's shape.

    Up to the horizon (an edge) the cumulative hazard is scaled,
    ``H'(t) = H(t) * -log(1 - risk) / H(horizon)``, so ``1 - S'(horizon) = risk`` and the
    share of it that falls in the first week is the hazard model's. After the horizon the
    hazard model's own increments are kept, ``H'(t) = H'(horizon) + H(t) - H(horizon)``:
    the classifier knows nothing about those days. A row whose hazard model gives
    (almost) no hazard by the horizon gets a constant daily hazard up to it.
    """
    risk = np.clip(np.asarray(risk, dtype=np.float64), 0.0, 1 - 1e-12)
    target = -np.log1p(-risk)
    h_at = cumhaz_at(Hb, edges, float(horizon))[:, 0]
    flat = h_at <= EPS
    scale = np.where(flat, 0.0, target / np.where(flat, 1.0, h_at))
    out = Hb * scale[:, None]
    if flat.any():  # no shape to keep: linear in t through the anchor
        out[flat] = target[flat, None] * (edges[1:][None, :] / float(horizon))
    after = edges[1:] > horizon
    out[:, after] = target[:, None] + np.maximum(Hb[:, after] - h_at[:, None], 0.0)
    return out


def long_first_bin(edges: np.ndarray, horizon: int) -> int | None:
    """Return the index of the first bin after ``horizon`` (None when no bin is after it)."""
    after = np.flatnonzero(np.asarray(edges)[:-1] >= horizon)
    return int(after[0]) if len(after) else None


def expected_days(Hb: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Return the restricted mean of S over ``[0, edges[-1]]`` days (exact per bin)."""
    Hb = np.atleast_2d(Hb)
    full = np.concatenate([np.zeros((len(Hb), 1)), Hb], axis=1)
    total = np.zeros(len(Hb))
    for b in range(len(edges) - 1):
        L = float(edges[b + 1] - edges[b])
        dH = np.maximum(full[:, b + 1] - full[:, b], 0.0)
        s_lo = np.exp(-full[:, b])
        small = dH < 1e-9
        part = np.where(small, L * (1 - dH / 2), -np.expm1(-dH) / np.where(small, 1.0, dH) * L)
        total += s_lo * part
    return total


def outputs(Hb: np.ndarray, edges: np.ndarray, horizon: int) -> pd.DataFrame:
    """Return ``risk_7d``, ``risk_14d``, ``risk`` (at the horizon), ``risk_90d``.

    ``risk_90d`` is the risk at the last edge (``label.max_horizon_days``), and
    ``expected_active_days`` the restricted mean of S over that many days.
    """
    H = cumhaz_at(Hb, edges, [7.0, 14.0, float(horizon), float(edges[-1])])
    risk = -np.expm1(-H)
    return pd.DataFrame(
        {
            "risk_7d": risk[:, 0],
            "risk_14d": risk[:, 1],
            "risk_h": risk[:, 2],
            "risk_90d": risk[:, 3],
            "expected_active_days": expected_days(Hb, edges),
        }
    )


def survival_curve(Hb: np.ndarray, edges: np.ndarray, days: Sequence[float]) -> np.ndarray:
    """Return S at each of ``days`` for every row (rows x days)."""
    return np.exp(-cumhaz_at(Hb, edges, np.asarray(days, dtype=np.float64)))


class HazardModel:
    """LightGBM discrete-time hazard model over a few day bins.

    Parameters
    ----------
    params : ModelConfig
        LightGBM parameters and ``survival_negative_rate``.
    edges : array of int
        Bin edges (:func:`bin_edges`).
    features : list of str
        The snapshot features the hazard uses (the bin index is added).
    first_bin : int
        Learn (and predict) only the bins from this index on; the earlier bins are NaN in
        :meth:`bin_hazards`. 0 = every bin.

    Attributes
    ----------
    booster_ : lightgbm.Booster
    best_iteration_ : int
    raw_offset_ : float
        ``log(negative rate)``, added to the booster's log-odds.
    metadata_ : dict
    long_ : HazardModel or None
        A booster for the bins after the horizon (``first_bin`` > 0); when set, its
        hazards replace this model's for those bins.
    """

    long_: HazardModel | None = None

    def __init__(
        self,
        params: ModelConfig,
        edges: np.ndarray,
        features: Sequence[str],
        first_bin: int = 0,
    ) -> None:
        self.params = params
        self.edges = np.asarray(edges, dtype=np.int64)
        self.features = list(features)
        self.first_bin = first_bin

    def _lgb_params(self) -> dict[str, Any]:
        p = self.params
        return lgb_params(
            p, metric="binary_logloss", feature_fraction=min(1.0, max(p.colsample_bytree, 0.8))
        )

    def _rows(
        self,
        X: pd.DataFrame,
        freeze_day: np.ndarray,
        followup: np.ndarray,
        *,
        sample: bool,
        weights: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        idx, bins, y = expand(freeze_day, followup, self.edges)
        if self.first_bin > 0:
            own = bins >= self.first_bin
            idx, bins, y = idx[own], bins[own], y[own]
        rate = self.params.survival_negative_rate
        if sample and weights is not None:  # a pre-sampled table: each row's rate is `rate`
            rng = np.random.default_rng(self.params.seed)
            prob = keep_probability(min(rate, 1.0), np.asarray(weights, dtype=float)[idx])
            keep = (y == 1) | (rng.random(len(y)) < prob)
            idx, bins, y = idx[keep], bins[keep], y[keep]
        elif sample and rate < 1:
            rng = np.random.default_rng(self.params.seed)
            keep = (y == 1) | (rng.random(len(y)) < rate)
            idx, bins, y = idx[keep], bins[keep], y[keep]
        base = to_matrix(X, self.features)
        M = np.empty((len(idx), len(self.features) + 1), dtype=np.float32)
        M[:, :-1] = base[idx]
        M[:, -1] = bins
        return M, y

    def _names(self) -> list[str]:
        return [f"f{i}" for i in range(len(self.features) + 1)]

    def fit(
        self,
        X: pd.DataFrame,
        freeze_day: np.ndarray,
        followup: np.ndarray,
        X_valid: pd.DataFrame | None = None,
        freeze_day_valid: np.ndarray | None = None,
        followup_valid: np.ndarray | None = None,
        *,
        n_trees: int | None = None,
        weights: np.ndarray | None = None,
    ) -> HazardModel:
        """Fit on the snapshots' follow-ups; stop early on a later fold or fit ``n_trees``.

        ``freeze_day`` and ``followup`` as returned by :func:`targets`. ``weights``: the
        pre-sampling weights of the fit snapshots (:mod:`churnpredict.modeling.presample`);
        a person-period row with target 0 is then kept with probability ``rate * weight``,
        so every original row's rate (and the offset) is as without pre-sampling.
        """
        p = self.params
        rate = p.survival_negative_rate
        M, y = self._rows(X, freeze_day, followup, sample=True, weights=weights)
        if len(np.unique(y)) < 2:
            raise DataError(
                "the time-to-freeze model has no freezes (or only freezes) to learn from",
                column="freeze_day",
            )
        self.raw_offset_ = float(math.log(rate)) if rate < 1 else 0.0
        params = self._lgb_params()
        dtrain = lgb.Dataset(M, label=y, feature_name=self._names(), params={"max_bin": p.max_bin})
        n_rows = len(y)
        del M
        if n_trees is None:
            if X_valid is None:
                raise ValueError("give a validation fold for early stopping, or n_trees")
            Mv, yv = self._rows(X_valid, freeze_day_valid, followup_valid, sample=False)
            if self.first_bin > 0 and len(np.unique(yv)) < 2:  # the long booster only
                raise DataError(
                    "the time-to-freeze model's validation rows hold no freeze (or no "
                    f"survivor) in bins {self.first_bin + 1}..{len(self.edges) - 1}: "
                    "nothing to stop early on",
                    column="freeze_day",
                )
            dvalid = lgb.Dataset(
                Mv, label=yv, reference=dtrain, init_score=np.full(len(yv), self.raw_offset_)
            )
            booster = lgb.train(
                params,
                dtrain,
                num_boost_round=p.n_estimators,
                valid_sets=[dvalid],
                valid_names=["valid"],
                callbacks=[lgb.early_stopping(p.early_stopping_rounds, verbose=False)],
            )
            best = int(booster.best_iteration or booster.current_iteration())
        else:
            booster = lgb.train(params, dtrain, num_boost_round=int(n_trees))
            best = int(n_trees)
        self.best_iteration_ = best
        self.booster_ = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
        self.metadata_ = {
            "n_rows": int(n_rows),
            "n_snapshots": weighted_count(len(followup), weights),
            "events": int((np.asarray(freeze_day) >= 1).sum()),
            "best_iteration": best,
            "edges": self.edges.tolist(),
            "first_bin": self.first_bin,
        }
        return self

    def bin_hazards(self, X: pd.DataFrame) -> np.ndarray:
        """Return each row's hazard per bin (rows x bins), in [0, 1).

        Bins before ``first_bin`` are NaN; with ``long_`` its hazards fill its bins.
        """
        base = to_matrix(X, self.features)
        B = len(self.edges) - 1
        out = np.full((len(base), B), np.nan)
        M = np.empty((len(base), len(self.features) + 1), dtype=np.float32)
        M[:, :-1] = base
        for b in range(self.first_bin, B):
            M[:, -1] = b
            raw = self.booster_.predict(M, raw_score=True) + self.raw_offset_
            out[:, b] = 1.0 / (1.0 + np.exp(-raw))
        if self.long_ is not None:
            lb = self.long_.first_bin
            out[:, lb:] = self.long_.bin_hazards(X)[:, lb:]
        return np.minimum(out, 1 - 1e-9)

    def cumhaz(self, X: pd.DataFrame) -> np.ndarray:
        """Return the cumulative hazard at each bin's end (rows x bins)."""
        return np.cumsum(-np.log1p(-self.bin_hazards(X)), axis=1)

    # ------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready description (the booster as text)."""
        return {
            "features": self.features,
            "edges": self.edges.tolist(),
            "first_bin": self.first_bin,
            "raw_offset": self.raw_offset_,
            "best_iteration": self.best_iteration_,
            "metadata": self.metadata_,
            "params": self.params.model_dump(mode="json"),
            "booster": self.booster_.model_to_string(),
            "long": None if self.long_ is None else self.long_.to_dict(),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> HazardModel:
        """Rebuild a model written by :meth:`to_dict`."""
        known = set(ModelConfig.model_fields)
        params = ModelConfig.model_validate({k: v for k, v in doc["params"].items() if k in known})
        m = cls(params, np.asarray(doc["edges"]), doc["features"], int(doc.get("first_bin", 0)))
        if doc.get("long"):  # models saved before the long booster have none
            m.long_ = cls.from_dict(doc["long"])
        m.raw_offset_ = float(doc["raw_offset"])
        m.best_iteration_ = int(doc["best_iteration"])
        m.metadata_ = doc.get("metadata", {})
        m.booster_ = lgb.Booster(model_str=doc["booster"])
        return m


def predict_outputs(
    hazard: HazardModel, X: pd.DataFrame, risk: np.ndarray, horizon: int
) -> tuple[pd.DataFrame, np.ndarray]:
    """Return the anchored outputs for every row and the anchored cumulative hazard.

    The outputs are ``risk_7d``, ``risk_14d``, ``risk_90d`` and ``expected_active_days``
    (see :func:`outputs`), consistent with ``risk`` at the horizon.
    """
    Hb = anchor(hazard.cumhaz(X), hazard.edges, horizon, risk)
    out = outputs(Hb, hazard.edges, horizon).drop(columns="risk_h")
    return out, Hb
