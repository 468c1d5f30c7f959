"""The conformance suite runs once per feature backend.

To add a backend: append its name to ``BACKENDS`` and teach :func:`data_for` how to hand
it the tables of a DuckDB connection (the suite builds every data set in DuckDB, the
local backend's native form, and compares every backend on the same rows).
"""

from __future__ import annotations

import importlib.util

import duckdb
import pandas as pd
import pytest

from churnpredict.features.backends import get_backend

# backend name -> module it needs (skipped with a clear message when that is missing)
BACKENDS = {"local": None}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request) -> str:
    """The name of the backend under test."""
    needs = BACKENDS[request.param]
    if needs and importlib.util.find_spec(needs) is None:
        pytest.skip(f"backend {request.param!r} needs {needs}, which is not installed")
    return request.param


def data_for(backend: str, con: duckdb.DuckDBPyConnection):
    """The backend's data handle for the tables of ``con``."""
    if backend == "local":
        return con
    raise NotImplementedError(f"conformance: no data hand-over for backend {backend!r}")


def run(backend: str, con, spine: pd.DataFrame, decls) -> pd.DataFrame:
    """Evaluate ``decls`` on ``backend`` for ``spine`` (client_id, as_of), indexed by them."""
    spine = spine.assign(
        client_id=spine["client_id"].astype(str), as_of=pd.to_datetime(spine["as_of"])
    )
    out = get_backend(backend).compute(data_for(backend, con), spine, decls)
    assert list(out.columns) == ["client_id", "as_of", *(d.name for d in decls)]
    assert len(out) == len(spine)
    assert (out["client_id"].to_numpy() == spine["client_id"].to_numpy()).all()  # spine order
    assert all(out[d.name].dtype == "float32" for d in decls)
    return out.set_index(["client_id", "as_of"])


def tables(**frames: pd.DataFrame) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection holding each DataFrame as a table of that name."""
    con = duckdb.connect()
    for name, df in frames.items():
        con.register(f"_{name}_df", df)
        con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM "_{name}_df"')
        con.unregister(f"_{name}_df")
    return con
