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
BACKENDS = {"local": None, "spark": "pyspark"}


# Property tests (hypothesis) draw this many worlds per backend at most: one Spark build
# is several Spark jobs (seconds each on 2 cores), so Spark checks one drawn world per
# property; the local backend runs the examples the test asks for.
MAX_EXAMPLES = {"spark": 1}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request):
    """The name of the backend under test."""
    needs = BACKENDS[request.param]
    if needs and importlib.util.find_spec(needs) is None:
        pytest.skip(f"backend {request.param!r} needs {needs}, which is not installed")
    if request.param == "spark":
        request.getfixturevalue("spark_session")  # the run's one session (tests/conftest.py)
    fn = request.node.obj
    cap = MAX_EXAMPLES.get(request.param)
    own = getattr(fn, "_hypothesis_internal_use_settings", None)
    if cap is None or own is None:
        yield request.param
        return
    from hypothesis import settings

    fn._hypothesis_internal_use_settings = settings(own, max_examples=min(cap, own.max_examples))
    try:
        yield request.param
    finally:
        fn._hypothesis_internal_use_settings = own


def data_for(backend: str, con: duckdb.DuckDBPyConnection):
    """The backend's data handle for the tables of ``con``."""
    if backend == "local":
        return con
    if backend == "spark":
        return _spark_data(con)
    raise NotImplementedError(f"conformance: no data hand-over for backend {backend!r}")


def _spark_data(con: duckdb.DuckDBPyConnection):
    """The tables of ``con`` as Spark DataFrames, on the run's one session (the
    ``spark_session`` fixture of tests/conftest.py, which the ``backend`` fixture starts)."""
    from types import SimpleNamespace

    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    assert spark is not None, "the spark_session fixture starts the session"
    frames = {}
    for (name,) in con.execute("SHOW TABLES").fetchall():
        arrow = con.sql(f'SELECT * FROM "{name}"').to_arrow_table()
        frames[name] = spark.createDataFrame(arrow)
    return SimpleNamespace(spark=spark, tables=frames)


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


def pytest_collection_modifyitems(items) -> None:
    """Run every Spark case on one xdist worker (``--dist loadgroup``): one JVM."""
    for item in items:
        spec = getattr(item, "callspec", None)
        if spec is not None and spec.params.get("backend") == "spark":
            item.add_marker(pytest.mark.xdist_group("spark"))
