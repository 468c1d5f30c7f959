"""Pick, from the labelled spine alone, the snapshot rows training needs (``--engine spark``).

On Spark the driver first holds only the labelled spine (client, as-of date, label,
follow-up), which is small; the features are built, and collected to the driver, only for
the rows this module keeps. Every fit later draws its own seeded sample of negatives
(``model.negative_sample_rate`` and ``model.max_fit_rows`` in
:meth:`~churnpredict.modeling.model.ChurnModel._sample_fit_rows`,
``model.survival_negative_rate`` in :class:`~churnpredict.modeling.survival.HazardModel`),
so most negatives of the early as-of dates are never used; they are dropped here first.

What is kept:

- every row from the first as-of date of the validation fold on (validation, calibration
  and test folds of the evaluated model, the served model's validation and calibration
  folds, the survival fold, the drift reference dates): these are scored or counted whole;
- every row before it with a label of 1 or a freeze seen in its follow-up (a positive of
  the 30-day model or an event of the time-to-freeze model);
- of the other rows before it ("droppable" negatives), per as-of date ``ceil(r0 * n)`` of
  the ``n``, chosen by a seeded draw, each with the weight ``n / k`` (the number of
  negatives of its date it stands for; 1 for every other row).

``r0`` is the largest negative rate any fit can draw: the larger of
``model.survival_negative_rate`` and the 30-day model's rate on every date-prefix of the
rows that a fit can use (``model.max_fit_rows`` lowers that rate on large tables, never
raises it above ``model.negative_sample_rate``). A fit then keeps a negative of weight
``w`` with probability ``rate * w`` (:data:`WEIGHT` column), so each original negative is in
the fit with probability ``rate`` exactly as without pre-sampling, the log-odds offsets
are unchanged, and row counts (``max_fit_rows``, the trees' scaling, Kaplan-Meier) use the
weights, which add up, per as-of date, to the true number of negatives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnpredict.config import Config

WEIGHT = "presample_weight"


def fit_sample_rates(n_pos: int, n_neg: int, p) -> tuple[float, float]:
    """Return ``(negative rate, positive rate)`` of a fit on ``n_pos`` + ``n_neg`` rows.

    ``p`` is the ``model`` config: ``negative_sample_rate`` lowered to respect
    ``max_fit_rows`` (see :meth:`churnpredict.modeling.model.ChurnModel._sample_fit_rows`).
    """
    neg_rate = p.negative_sample_rate
    pos_rate = 1.0
    if p.max_fit_rows is not None and n_pos + neg_rate * n_neg > p.max_fit_rows:
        room = p.max_fit_rows - n_pos
        if room >= 0.2 * p.max_fit_rows:
            neg_rate = room / max(n_neg, 1)
        else:  # positives alone nearly fill the cap: sample both, keep 4:1 negatives
            pos_rate = min(1.0, 0.2 * p.max_fit_rows / max(n_pos, 1))
            neg_rate = min(neg_rate, 0.8 * p.max_fit_rows / max(n_neg, 1))
    return neg_rate, pos_rate


def weights_of(table: pd.DataFrame, rows: np.ndarray | None = None) -> np.ndarray | None:
    """Return the pre-sampling weights of ``table`` (of ``rows`` when given), or None."""
    if WEIGHT not in table.columns:
        return None
    w = table[WEIGHT].to_numpy(dtype=np.float64)
    return w if rows is None else w[rows]


def weighted_count(n: int, weights: np.ndarray | None) -> int:
    """Return ``n`` without weights, else the number of original rows the weights stand for."""
    return int(n) if weights is None else int(round(float(np.sum(weights))))


def keep_probability(rate: float, weights: np.ndarray) -> np.ndarray:
    """Return ``rate * weights``: the draw that makes each original row's rate ``rate``.

    Raises ValueError when a probability exceeds 1 (the table was pre-sampled at a rate
    below ``rate``: a fit would see fewer rows than without pre-sampling).
    """
    prob = rate * np.asarray(weights, dtype=np.float64)
    if len(prob) and prob.max() > 1 + 1e-9:
        raise ValueError(
            f"the table was pre-sampled at a rate below this fit's rate {rate:.4g} "
            f"(largest weight {np.max(weights):.4g}): pre-sample at a higher rate"
        )
    return prob


@dataclass
class Plan:
    """Which spine rows to build features for, and their weights.

    Attributes
    ----------
    keep : numpy.ndarray of bool
        Aligned with the spine.
    weights : numpy.ndarray of float
        Aligned with the spine (1 for rows kept whole, ``n / k`` for sampled negatives,
        0 for dropped rows).
    rate : float
        ``r0``, the share of droppable negatives kept.
    full_from : pandas.Timestamp
        First as-of date from which every row is kept.
    droppable : int
        Rows before ``full_from`` with label 0 and no freeze in their follow-up.
    """

    keep: np.ndarray
    weights: np.ndarray
    rate: float
    full_from: pd.Timestamp
    droppable: int

    @property
    def rows(self) -> int:
        """Rows kept."""
        return int(self.keep.sum())


def presample_rate(spine: pd.DataFrame, cfg: Config, fit_end: pd.Timestamp) -> float:
    """Return ``r0``: the largest negative rate a fit on the spine's rows can draw.

    Every fit of :func:`~churnpredict.modeling.backtest.train_and_evaluate` reads a
    date-prefix of the rows that contains the evaluated model's fit fold (as-of dates up
    to ``fit_end``), so the largest rate over those prefixes bounds them all.
    """
    p = cfg.model
    d = pd.to_datetime(spine["as_of"]).dt.normalize()
    pos = spine["label"].to_numpy(dtype=float) == 1
    per = pd.DataFrame({"d": d.to_numpy(), "pos": pos, "neg": ~pos}).groupby("d").sum()
    cum = per.cumsum()
    cum = cum[cum.index >= fit_end]
    model_rate = max(
        (
            fit_sample_rates(int(a), int(b), p)[0]
            for a, b in zip(cum["pos"], cum["neg"], strict=True)
        ),
        default=p.negative_sample_rate,
    )
    return float(min(1.0, max(model_rate, p.survival_negative_rate)))


def plan(spine: pd.DataFrame, cfg: Config, *, rate: float | None = None) -> Plan:
    """Decide from labels alone which spine rows training needs (see the module docstring).

    Parameters
    ----------
    spine : DataFrame
        ``client_id``, ``as_of``, ``label`` and, when the time-to-freeze model is
        trained, ``freeze_day`` (0 = no freeze seen in the follow-up).
    cfg : Config
    rate : float, optional
        Keep this share of the droppable negatives instead of :func:`presample_rate`
        (must not be below it).

    Returns
    -------
    Plan
    """
    from churnpredict.modeling.split import train_valid_calib_test

    d = pd.to_datetime(spine["as_of"]).dt.normalize()
    masks = train_valid_calib_test(spine["as_of"], cfg)
    full_from = d[masks["valid"]].min()
    fit_end = d[masks["fit"]].max()
    floor = presample_rate(spine, cfg, fit_end)
    r0 = floor if rate is None else float(rate)
    if r0 < floor - 1e-12:
        raise ValueError(f"pre-sampling rate {r0} is below the fits' rate {floor:.4g}")
    label = spine["label"].to_numpy(dtype=float)
    event = (
        spine["freeze_day"].to_numpy(dtype=np.int64) >= 1
        if "freeze_day" in spine.columns
        else np.zeros(len(spine), bool)
    )
    drop = ((d < full_from).to_numpy()) & (label != 1) & ~event
    keep = ~drop
    weights = np.where(keep, 1.0, 0.0)
    idx = np.flatnonzero(drop)
    if len(idx) and r0 < 1:
        rng = np.random.default_rng(cfg.model.seed)
        u = rng.random(len(idx))
        frame = pd.DataFrame({"i": idx, "d": d.to_numpy()[idx], "u": u})
        frame = frame.sort_values(["d", "u"], kind="stable")
        frame["rank"] = frame.groupby("d").cumcount()
        n = frame.groupby("d")["i"].transform("size").to_numpy()
        k = np.maximum(1, np.ceil(r0 * n - 1e-9)).astype(np.int64)
        chosen = frame["rank"].to_numpy() < k
        rows = frame["i"].to_numpy()[chosen]
        keep[rows] = True
        weights[rows] = n[chosen] / k[chosen]
    elif len(idx):
        keep[idx] = True
        weights[idx] = 1.0
    return Plan(keep=keep, weights=weights, rate=r0, full_from=full_from, droppable=len(idx))


def check_presampled(table: pd.DataFrame, valid: np.ndarray) -> None:
    """Raise ValueError unless every weighted row is a negative before the ``valid`` fold."""
    w = weights_of(table)
    if w is None:
        return
    d = pd.to_datetime(table["as_of"]).dt.normalize()
    lo = d[valid].min()
    bad = (w != 1) & (
        (d >= lo).to_numpy()
        | (table["label"].to_numpy(dtype=float) == 1)
        | (
            table["freeze_day"].to_numpy(dtype=np.int64) >= 1
            if "freeze_day" in table.columns
            else False
        )
    )
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} pre-sampled rows are positives or lie in the validation fold "
            f"or later (from {lo.date()}): the table was pre-sampled for other folds"
        )


def driver_bytes(rows: int, n_features: int) -> int:
    """Return the driver memory the collected table implies: rows x features x 8 bytes.

    The float32 table plus the fit's float32 copy of its rows (and Arrow batches while
    collecting): about twice the table's 4 bytes a value.
    """
    return int(rows) * int(n_features) * 8


def human_bytes(n: float) -> str:
    """Return ``n`` bytes as e.g. ``1.3 GB``."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover
