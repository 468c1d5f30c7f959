"""Backends: evaluate feature declarations (``features.declarations``) on data.

A backend turns ``(data, spine, declarations)`` into the feature table: ``client_id``,
``as_of`` and one float32 column per declaration, rows in spine order. The
point-in-time rule (only rows with time strictly before ``as_of``) is enforced here,
inside each backend, never in the declarations.

- ``local``: DuckDB + NumPy on one machine (``backends/local.py``).
- ``spark``: PySpark (``backends/spark.py``, optional extra ``churnpredict[spark]``).
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

import pandas as pd

from churnpredict.features.declarations import FeatureDecl

BACKENDS = {
    "local": "churnpredict.features.backends.local",
    "spark": "churnpredict.features.backends.spark",
}


class Backend(Protocol):
    """What every backend module provides."""

    def compute(
        self, data: Any, spine: pd.DataFrame, declarations: list[FeatureDecl]
    ) -> pd.DataFrame:
        """Every declared feature for each ``(client_id, as_of)`` row of ``spine``.

        Parameters
        ----------
        data
            The backend's handle on the contract tables (the local backend: a
            ``contract.Dataset`` or a DuckDB connection).
        spine : DataFrame
            ``client_id`` (str) and ``as_of`` (dates); other columns are ignored.
        declarations : list of FeatureDecl
            In catalog order; a feature reading others (``Feat``) comes after them.

        Returns
        -------
        DataFrame
            ``client_id``, ``as_of`` and one float32 column per declaration (named as
            it), in spine order.
        """
        ...


def get_backend(name: str = "local") -> Backend:
    """Return the backend module called ``name`` (``local`` or ``spark``)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown feature backend {name!r}; expected one of {sorted(BACKENDS)}")
    return importlib.import_module(BACKENDS[name])  # type: ignore[return-value]
