"""The feature catalog: every feature's stable name, family and human description."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Kind = Literal[
    "count", "sum", "mean", "days_since", "state", "ratio", "trend", "flag", "category", "amount"
]


@dataclass(frozen=True)
class Feature:
    """One feature column.

    Attributes
    ----------
    name : str
        Stable column name ``<source>__<what>__<window>``, e.g. ``campaigns__paused_client__7d``.
    family : str
        The source it comes from (``campaigns``, ``invoices``, ``contacts``, ``spend``,
        ``activity``, ``profile`` or a declared table); reasons are grouped by it.
    description : str
        One line a person understands, e.g. "campaign pauses by the client in the last
        7 days". Reasons render it with the client's value.
    kind : str
        What sort of number it is (count, sum, days_since, state, ...).
    window : int or None
        The window in days, when the feature has one.
    slice_values : tuple of str
        For slice features, the category values it counts (e.g. ``("paused", "client")``),
        so reasons can be phrased in any language from a vocabulary.
    column : str or None
        For numeric features, the source column (e.g. ``spend``); for state features, the
        state's short name (e.g. ``running``, ``overdue_amount``).
    """

    name: str
    family: str
    description: str
    kind: Kind
    window: int | None = None
    slice_values: tuple[str, ...] = ()
    column: str | None = None

    def to_dict(self) -> dict:
        """Return a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Feature:
        """Build from :meth:`to_dict` output."""
        d = dict(d)
        d["slice_values"] = tuple(d.get("slice_values") or ())
        return cls(**d)
