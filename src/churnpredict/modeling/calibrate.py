"""Probability calibration of raw booster scores (log-odds), fitted on a later time fold.

Two methods, both stored as plain numbers (JSON), never pickled:

- ``isotonic``: centered isotonic regression (Oron & Flournoy 2017): scikit-learn's
  ``IsotonicRegression`` pools the raw scores into blocks of equal calibrated risk; each
  block becomes one knot at its mean raw score, and the risk is interpolated linearly
  between knots. Plain isotonic steps tie every client of a block at one risk (a list
  with ten rows of "1.0" on top); between the knots the risk keeps the booster's order
  with real gaps. A block of only freezes (or none) gets ``(k + 1/2) / (n + 1)``, not a
  certainty; beyond the outer knots the risk goes on towards 1 (or 0) along the sigmoid
  of the raw score. Where two knots share a value the map would be flat, so the output
  is ``(1 - eps) * map(raw) + eps * sigmoid(raw)`` with ``eps = 1e-6``: strictly
  increasing everywhere (the ranking is exactly the booster's).
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
            order = np.argsort(raw, kind="stable")
            xs, fitted = raw[order], iso.fit_transform(raw[order], y[order])
            # one knot per block of equal fitted risk, at the block's mean raw score
            starts = np.flatnonzero(np.r_[True, np.diff(fitted) != 0])
            sizes = np.diff(np.r_[starts, len(xs)])
            self.x_ = np.add.reduceat(xs, starts) / sizes
            value = fitted[starts].astype(float)
            # a block of only freezes (or none) is not a certainty: (k + 1/2) / (n + 1)
            pure = (value <= 0) | (value >= 1)
            value[pure] = (value[pure] * sizes[pure] + 0.5) / (sizes[pure] + 1)
            self.y_ = np.maximum.accumulate(value)
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
            x, y = self.x_, self.y_
            iso = np.interp(raw, x, y)
            # beyond the outer knots: on towards 0 and 1 along the sigmoid of the raw score
            hi, lo = raw > x[-1], raw < x[0]
            top = expit(x[-1])
            iso[hi] = y[-1] + (1 - y[-1]) * (expit(raw[hi]) - top) / max(1 - top, 1e-300)
            iso[lo] = y[0] * expit(raw[lo]) / max(expit(x[0]), 1e-300)
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
