"""Fixtures shared by every test directory.

``spark_session``: ONE Spark session (``local[2]``) for every Spark test of a pytest run
(the conformance suite and tests/e2e/test_spark.py run on one xdist worker, group
``spark``). Starting a JVM and a SparkContext costs seconds, and stopping one session
and starting the next costs as much again, so no test module starts or stops its own.
The settings cut Spark's fixed costs on tiny test data (:data:`SPARK_TEST_CONFIG`).
"""

from __future__ import annotations

import pytest

# One shuffle partition (test tables are a few thousand rows: more partitions are only
# more tasks), no UI, no adaptive re-planning (its extra stages cost more than they save
# on data this small), no whole-stage code generation (compiling the wide feature plans
# takes longer than running them on test data), local files read without splitting.
SPARK_TEST_CONFIG = {
    "master": "local[2]",
    "shuffle_partitions": 1,
    "driver_memory": "1g",
    "conf": {
        "spark.default.parallelism": "2",
        "spark.ui.enabled": "false",
        "spark.sql.adaptive.enabled": "false",
        "spark.sql.codegen.wholeStage": "false",
        "spark.sql.files.openCostInBytes": "134217728",
        "spark.sql.autoBroadcastJoinThreshold": "104857600",
        "spark.python.worker.reuse": "true",
    },
}


@pytest.fixture(scope="session")
def spark_session():
    """The one Spark session of the test run (skipped when pyspark is not installed)."""
    pytest.importorskip(
        "pyspark",
        reason='pyspark is not installed: pip install "churnpredict[spark]" to test Spark',
    )
    from churnpredict import spark as sparkmod
    from churnpredict.config import build_config

    session = sparkmod.session(build_config({"spark": SPARK_TEST_CONFIG}))
    yield session
    session.stop()
