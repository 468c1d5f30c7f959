"""Did the calls help? Past call lists joined with the freezes that followed.

For every past list (one per as-of day ``T``) a row's client *froze* when a freeze
starts in ``(T, T + horizon_days]`` (the label's window, DATA_CONTRACT.md §2). Lists
whose window is not yet over (``T + horizon > observed_until``) are pending and left
out.

- Realized precision at capacity, per day: the share of frozen clients among the
  first ``capacity`` non-held-out rows by rank.
- Called vs held-out: the freeze rate of called rows (``in_capacity`` and not
  ``hold_out``; resale calls, ``owner_role`` ``business_development``, are not
  retention calls and are left out) against held-out at-risk rows (``hold_out``), each with a Wilson
  interval, and the difference with Newcombe's hybrid Wilson interval. Because
  called rows are the top of the list while the control group is drawn from every
  at-risk row, the like-for-like comparison (the randomized one) is also given:
  at-risk rows not held out vs at-risk rows held out (intention to treat).

Rows are (client, day) pairs; a client on several lists counts several times, so
intervals are somewhat optimistic when lists overlap heavily.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from churnpredict.errors import DataError

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Return the Wilson score interval for ``k`` successes out of ``n``."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


def newcombe_diff(
    k1: int, n1: int, k2: int, n2: int, z: float = Z95
) -> tuple[float, float, float]:
    """Return ``p1 - p2`` and its Newcombe (hybrid Wilson) 95% interval."""
    if n1 == 0 or n2 == 0:
        return (float("nan"), float("nan"), float("nan"))
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, z)
    l2, u2 = wilson(k2, n2, z)
    d = p1 - p2
    lo = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    hi = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return (d, lo, hi)


@dataclass
class GroupComparison:
    """Freeze rates of two groups and their difference."""

    name_a: str
    name_b: str
    n_a: int
    frozen_a: int
    n_b: int
    frozen_b: int

    @property
    def rate_a(self) -> float:
        """Freeze rate of group A."""
        return self.frozen_a / self.n_a if self.n_a else float("nan")

    @property
    def rate_b(self) -> float:
        """Freeze rate of group B."""
        return self.frozen_b / self.n_b if self.n_b else float("nan")

    @property
    def diff(self) -> tuple[float, float, float]:
        """Return (rate A - rate B, lower, upper) with a 95% Newcombe interval."""
        return newcombe_diff(self.frozen_a, self.n_a, self.frozen_b, self.n_b)

    def text(self) -> str:
        """Render the comparison in a few lines."""
        if self.n_a == 0 or self.n_b == 0:
            return f"{self.name_a} vs {self.name_b}: not enough rows ({self.n_a} vs {self.n_b})."
        la, ua = wilson(self.frozen_a, self.n_a)
        lb, ub = wilson(self.frozen_b, self.n_b)
        d, lo, hi = self.diff
        verdict = "lower" if hi < 0 else "higher" if lo > 0 else "no clear difference"
        return (
            f"{self.name_a}: {self.frozen_a}/{self.n_a} froze = {self.rate_a:.1%} "
            f"[{la:.1%}, {ua:.1%}]\n"
            f"{self.name_b}: {self.frozen_b}/{self.n_b} froze = {self.rate_b:.1%} "
            f"[{lb:.1%}, {ub:.1%}]\n"
            f"difference: {d:+.1%} [{lo:+.1%}, {hi:+.1%}] (95%, Newcombe) — {verdict}"
        )


@dataclass
class OutcomesReport:
    """The outcome of :func:`evaluate_outcomes`.

    Attributes
    ----------
    per_day : DataFrame
        One row per evaluated list: ``as_of``, ``rows``, ``at_capacity``,
        ``frozen_at_capacity``, ``precision_at_capacity``, ``called``,
        ``called_frozen``, ``held_out``, ``held_out_frozen``, ``base_rate``.
    called_vs_held_out : GroupComparison
        Called rows vs held-out at-risk rows.
    at_risk_itt : GroupComparison
        At-risk rows not held out vs at-risk rows held out (randomized comparison).
    pending : list of str
        As-of dates whose horizon is not over yet.
    """

    per_day: pd.DataFrame
    called_vs_held_out: GroupComparison
    at_risk_itt: GroupComparison
    pending: list[str] = field(default_factory=list)
    horizon_days: int = 30
    capacity: int = 100

    def text(self) -> str:
        """Render the report for people."""
        lines = [f"Outcomes of past call lists (freeze within {self.horizon_days} days)"]
        if self.per_day.empty:
            lines.append("No list with a complete horizon yet.")
        else:
            pd_ = self.per_day
            tot_k = int(pd_["frozen_at_capacity"].sum())
            tot_n = int(pd_["at_capacity"].sum())
            lo, hi = wilson(tot_k, tot_n)
            lines.append(
                f"Lists evaluated: {len(pd_)} ({pd_['as_of'].min()} .. {pd_['as_of'].max()})"
            )
            lines.append(
                f"Realized precision at capacity {self.capacity}: {tot_k}/{tot_n} = "
                f"{tot_k / tot_n if tot_n else float('nan'):.1%} [{lo:.1%}, {hi:.1%}]; "
                f"base rate {pd_['frozen'].sum() / max(pd_['rows'].sum(), 1):.1%}"
            )
            lines.append("Per day:")
            for r in pd_.itertuples(index=False):
                lines.append(
                    f"  {r.as_of}: precision {r.precision_at_capacity:.1%} "
                    f"({r.frozen_at_capacity}/{r.at_capacity}), called {r.called} "
                    f"({r.called_frozen} froze), held out {r.held_out} "
                    f"({r.held_out_frozen} froze)"
                )
            lines.append("Called vs control group:")
            lines.append("  " + self.called_vs_held_out.text().replace("\n", "\n  "))
            lines.append("At-risk clients, offered a call vs control group (randomized):")
            lines.append("  " + self.at_risk_itt.text().replace("\n", "\n  "))
        if self.pending:
            lines.append(f"Pending (horizon not over): {', '.join(self.pending)}")
        return "\n".join(lines)

    __str__ = text


def _read_lists(lists_dir: Path) -> pd.DataFrame:
    from churnpredict.calls import _list_as_of, read_call_list

    frames = []
    seen: dict[str, Path] = {}
    for p in sorted(Path(lists_dir).glob("*.csv")):
        a = _list_as_of(p)
        if a is None:
            continue
        if a in seen:  # several files for one day: keep the newest file
            if p.stat().st_mtime <= seen[a].stat().st_mtime:
                continue
            frames = [f for f in frames if f["as_of"].iloc[0] != a]
        seen[a] = p
        df = read_call_list(p)
        df["as_of"] = df["as_of"].astype(str)
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["client_id", "as_of", "rank", "risk"])
    return pd.concat(frames, ignore_index=True)


def _bool(s: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(s):
        return s.to_numpy(dtype=bool)
    return s.astype(str).str.strip().str.lower().isin(["true", "1", "yes"]).to_numpy()


def evaluate_outcomes(
    lists_dir: Path,
    freezes: pd.DataFrame,
    horizon_days: int,
    capacity: int,
    *,
    observed_until: date | str | None = None,
    risk_bands_medium: float | None = None,
) -> OutcomesReport:
    """Join past call lists with later freezes and measure what happened.

    Parameters
    ----------
    lists_dir : Path
        Folder with past call lists (``*.csv`` directly in it; any separator, BOM).
    freezes : DataFrame
        ``client_id``, ``frozen_at`` (and optionally ``unfrozen_at``).
    horizon_days : int
        A freeze counts for list day ``T`` when ``frozen_at`` is in ``(T, T + horizon]``.
    capacity : int
        Calls per day for the realized precision (the first ``capacity``
        non-held-out rows by rank).
    observed_until : date, optional
        The last day the freezes are known for (default: the newest ``frozen_at``);
        lists with ``T + horizon`` after it are pending.
    risk_bands_medium : float, optional
        Risk threshold of "at risk" for lists without a ``risk_band`` column.
    """
    for col in ("client_id", "frozen_at"):
        if col not in freezes.columns:
            raise DataError("freezes table lacks a column", file="freezes", column=col)
    lists = _read_lists(Path(lists_dir))
    fr = pd.DataFrame(
        {
            "client_id": freezes["client_id"].astype(str),
            "frozen_at": (
                freezes["frozen_at"]
                if pd.api.types.is_datetime64_any_dtype(freezes["frozen_at"])
                else pd.to_datetime(freezes["frozen_at"], format="ISO8601")
            ),
        }
    ).dropna()
    if observed_until is None:
        until = fr["frozen_at"].max() if len(fr) else pd.Timestamp.min
    else:
        until = pd.Timestamp(observed_until) + pd.Timedelta(days=1)  # end of that day
    horizon = pd.Timedelta(days=horizon_days)
    empty = GroupComparison("called", "held out", 0, 0, 0, 0)
    if lists.empty:
        return OutcomesReport(pd.DataFrame(), empty, empty, [], horizon_days, capacity)

    lists["client_id"] = lists["client_id"].astype(str)
    t = pd.to_datetime(lists["as_of"])
    lists["_t"] = t
    done = (t + horizon) <= until
    pending = sorted(lists.loc[~done, "as_of"].unique().tolist())
    lists = lists.loc[done].copy()

    # frozen: any freeze of the client in (T, T + horizon]
    m = lists[["client_id", "_t"]].reset_index().merge(fr, on="client_id", how="inner")
    hit = (m["frozen_at"] > m["_t"]) & (m["frozen_at"] <= m["_t"] + horizon)
    frozen_idx = set(m.loc[hit, "index"].tolist())
    lists["frozen"] = lists.index.isin(list(frozen_idx))

    hold = _bool(lists["hold_out"]) if "hold_out" in lists.columns else np.zeros(len(lists), bool)
    lists["_hold"] = hold
    if "in_capacity" in lists.columns:
        lists["_called"] = _bool(lists["in_capacity"]) & ~hold
        if "owner_role" in lists.columns:  # resale calls to healthy clients: not retention
            lists["_called"] &= (
                lists["owner_role"].astype(str) != "business_development"
            ).to_numpy()
    else:
        lists["_called"] = False
    if "risk_band" in lists.columns:
        lists["_at_risk"] = lists["risk_band"].astype(str).isin(["high", "medium"]).to_numpy()
    else:
        thr = 0.1 if risk_bands_medium is None else risk_bands_medium
        lists["_at_risk"] = pd.to_numeric(lists["risk"], errors="coerce").to_numpy() >= thr
    lists["rank"] = pd.to_numeric(lists.get("rank", pd.Series(index=lists.index)), errors="coerce")

    rows = []
    for day, g in lists.sort_values(["as_of", "rank"]).groupby("as_of", sort=True):
        top = g.loc[~g["_hold"]].head(capacity)
        rows.append(
            {
                "as_of": day,
                "rows": len(g),
                "frozen": int(g["frozen"].sum()),
                "at_capacity": len(top),
                "frozen_at_capacity": int(top["frozen"].sum()),
                "precision_at_capacity": top["frozen"].mean() if len(top) else float("nan"),
                "called": int(g["_called"].sum()),
                "called_frozen": int((g["_called"] & g["frozen"]).sum()),
                "held_out": int(g["_hold"].sum()),
                "held_out_frozen": int((g["_hold"] & g["frozen"]).sum()),
                "base_rate": g["frozen"].mean(),
            }
        )
    per_day = pd.DataFrame(rows)
    c, h, f, ar = (
        lists["_called"],
        lists["_hold"] & lists["_at_risk"],
        lists["frozen"],
        lists["_at_risk"],
    )
    called_vs = GroupComparison(
        "called", "held out", int(c.sum()), int((c & f).sum()), int(h.sum()), int((h & f).sum())
    )
    treat = ar & ~lists["_hold"]
    itt = GroupComparison(
        "at risk, not held out",
        "at risk, held out",
        int(treat.sum()),
        int((treat & f).sum()),
        int(h.sum()),
        int((h & f).sum()),
    )
    return OutcomesReport(per_day, called_vs, itt, pending, horizon_days, capacity)
