"""Probability calibration of raw booster scores (log-odds), fitted on a later time fold.

Two methods, both stored as plain numbers (JSON), never pickled:

- ``isotonic``: a monotone step function of the raw score (scikit-learn's
  ``IsotonicRegression``), evaluated by linear interpolation between its thresholds.
  Steps would tie many clients at the same risk and blur the call order, so the output is
  ``(1 - eps) * isotonic(raw) + eps * sigmoid(raw)`` with ``eps = 1e-6``: strictly
  increasing in the raw score (the ranking is exactly the booster's), probabilities moved
  by at most one in a million.
- ``sigmoid`` (Platt): ``1 / (1 + exp(-(a * raw + b)))`` fitted by logistic regression.
  With negative subsampling this is the textbook correction (a shifted intercept).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

TIE_EPS = 1e-6


class Calibrator:
    """Map raw scores to calibrated probabilities.

    Parameters
    ----------
    method : {"isotonic", "sigmoid"}
        The calibration map.
    """

    def __init__(self, method: Literal["isotonic", "sigmoid"] = "isotonic") -> None:
        self.method = method

    def fit(self, raw: np.ndarray, y: np.ndarray) -> Calibrator:
        """Fit the map on raw scores ``raw`` and labels ``y`` (both 1-d)."""
        raw = np.asarray(raw, dtype=float).ravel()
        y = np.asarray(y, dtype=float).ravel()
        if len(raw) != len(y) or len(raw) == 0:
            raise ValueError("calibration needs equally long, non-empty raw and y")
        if self.method == "isotonic":
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            iso.fit(raw, y)
            self.x_ = np.asarray(iso.X_thresholds_, dtype=float)
            self.y_ = np.asarray(iso.y_thresholds_, dtype=float)
        elif self.method == "sigmoid":
            if y.min() == y.max():
                # One class only: a constant at the observed rate.
                self.a_, self.b_ = 0.0, float(np.log((y.mean() + 1e-6) / (1 - y.mean() + 1e-6)))
            else:
                lr = LogisticRegression(C=1e6, max_iter=1000)
                lr.fit(raw.reshape(-1, 1), y)
                self.a_, self.b_ = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        else:
            raise ValueError(f"unknown calibration method {self.method!r}")
        return self

    def predict(self, raw: np.ndarray) -> np.ndarray:
        """Return calibrated probabilities for raw scores."""
        raw = np.asarray(raw, dtype=float).ravel()
        if self.method == "isotonic":
            iso = np.interp(raw, self.x_, self.y_)
            return (1.0 - TIE_EPS) * iso + TIE_EPS * expit(raw)
        return expit(self.a_ * raw + self.b_)

    def to_dict(self) -> dict:
        """Return a JSON-ready description of the fitted map."""
        if self.method == "isotonic":
            return {"method": "isotonic", "x": self.x_.tolist(), "y": self.y_.tolist()}
        return {"method": "sigmoid", "a": self.a_, "b": self.b_}

    @classmethod
    def from_dict(cls, d: dict) -> Calibrator:
        """Rebuild a fitted calibrator from :meth:`to_dict` output."""
        cal = cls(d["method"])
        if cal.method == "isotonic":
            cal.x_ = np.asarray(d["x"], dtype=float)
            cal.y_ = np.asarray(d["y"], dtype=float)
        else:
            cal.a_, cal.b_ = float(d["a"]), float(d["b"])
        return cal
