"""Neutral data access (churnpredict.data): the local engine's queries, paths, transpiling."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import duckdb
import pandas as pd
import pytest

from churnpredict import data
from churnpredict.errors import UsageError


def _ds():
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES ('a', 1), ('b', 2)) v(k, x)")
    return SimpleNamespace(con=con)


def test_frame_runs_after_an_unfinished_result():
    """A caller's execute().fetchone() left unfinished must not break the next stage."""
    ds = _ds()
    ds.con.execute("SELECT * FROM t").fetchone()
    assert data.frame(ds, "SELECT sum(x) AS s FROM t").to_pydict() == {"s": [3]}


def test_views_exist_only_for_their_query():
    ds = _ds()
    extra = pd.DataFrame({"k": ["a"], "y": [10]})
    out = data.query(ds, "SELECT k, x + y AS z FROM t JOIN _extra USING (k)", {"_extra": extra})
    assert out.to_dict("records") == [{"k": "a", "z": 11}]
    with pytest.raises(duckdb.CatalogException):
        ds.con.execute("SELECT * FROM _extra")
    assert data.columns(ds, "t") == ["k", "x"]


def test_spark_paths_keep_their_double_slash():
    assert data.spark_path(Path("s3a://bucket/export")) == "s3a://bucket/export"
    assert data.spark_path(Path("abfss://c@acct.dfs.core.windows.net/x")).startswith("abfss://c@")
    assert data.spark_path(Path("hdfs:///exports/crm")) == "hdfs:/exports/crm"  # same path
    assert data.spark_path("dbfs:/mnt/crm") == "dbfs:/mnt/crm"
    assert data.spark_path(Path("/data/x")) == "/data/x"


def test_unknown_engine_is_a_usage_error():
    with pytest.raises(UsageError, match="--engine"):
        data.check_engine("dask")


def test_transpile_maps_tables_but_not_ctes():
    pytest.importorskip("sqlglot", reason='sqlglot comes with pip install "churnpredict[spark]"')
    sql = (
        "WITH ev AS (SELECT client_id, ts FROM clients) "
        "SELECT client_id, (count(*) > 0)::INT AS n FROM ev JOIN _x USING (client_id) "
        "WHERE ts < TIMESTAMP '2024-01-01' + INTERVAL 3 DAY GROUP BY ALL"
    )
    out = data._transpile(sql, {"clients": "v1_clients", "_x": "v2_x", "ev": "nope"})
    assert "v1_clients" in out and "v2_x" in out and "nope" not in out
    assert "::" not in out and "CAST(" in out


@pytest.mark.parametrize("given", ["lenient", None])
def test_lenient_on_spark_is_refused_saying_so(tmp_path, given):
    """--lenient (or data.policy: lenient) with --engine spark: a usage error (exit 2)
    that says it is not supported, before any Spark session starts."""
    from churnpredict.config import load_config, override

    cfg = override(load_config(None, environ={}), "data", policy="lenient")
    with pytest.raises(UsageError) as err:
        data.load(tmp_path, cfg, engine="spark", policy=given)
    text = str(err.value)
    assert "not supported with --engine spark" in text and "local only" in text
    assert ("--lenient" if given else "data.policy: lenient") in text.splitlines()[0]
    assert err.value.exit_code == 2
