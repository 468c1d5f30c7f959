"""The Spark session of ``--engine spark``: one per process, built from the ``spark`` config.

Nothing here runs at import time, and pyspark is imported only when a session is asked
for: the local engine never needs it (``pip install "churnpredict[spark]"`` brings it).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import warnings
from typing import Any

from churnpredict.errors import UsageError

log = logging.getLogger("churnpredict.spark")

INSTALL_HINT = 'pip install "churnpredict[spark]" (pyspark 4 and Java 17 or newer)'


def available() -> bool:
    """Return whether pyspark can be imported."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return False
    return True


def _quiet() -> None:
    # pyspark 4 warns that pandas 3 is "not yet fully supported"; the conversions we use
    # (Arrow, mapInPandas) are covered by the conformance tests on pandas 3
    warnings.filterwarnings("ignore", message=".*PySpark does not yet fully support pandas.*")


def session(cfg: Any = None):
    """Return the process's Spark session, starting it from ``cfg.spark`` if needed.

    Parameters
    ----------
    cfg : Config, optional
        ``spark.master`` (default ``local[2]``; null keeps what ``spark-submit`` set),
        ``spark.driver_memory`` and ``spark.executor_memory``,
        ``spark.shuffle_partitions`` and any other ``spark.conf`` setting. Ignored when a
        session is already active (e.g. on Databricks or under ``spark-submit``): its
        settings stay, except the session time zone, which is always UTC.

    Raises
    ------
    UsageError
        pyspark is not installed, or no Java runtime is found (exit 2).
    """
    _quiet()
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise UsageError(f"--engine spark needs pyspark: {INSTALL_HINT}") from None
    active = SparkSession.getActiveSession()
    if active is not None:
        active.conf.set("spark.sql.session.timeZone", "UTC")
        return active
    if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
        raise UsageError(f"--engine spark needs a Java runtime (none on PATH): {INSTALL_HINT}")
    # executors' Python workers must use this interpreter (the one with our packages)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    sc = cfg.spark if cfg is not None else None
    builder = SparkSession.builder.appName(sc.app_name if sc else "churnpredict")
    master = sc.master if sc else "local[2]"
    if master:
        builder = builder.master(master)
    conf = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.shuffle.partitions": str(sc.shuffle_partitions if sc else 4),
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    }
    if master and master.startswith("local"):
        conf["spark.ui.enabled"] = "false"
    if sc is not None:
        if sc.driver_memory:
            conf["spark.driver.memory"] = sc.driver_memory
        if sc.executor_memory:
            conf["spark.executor.memory"] = sc.executor_memory
        conf.update(sc.conf)
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    log.info(
        "spark: %s (Spark %s, %s shuffle partitions)",
        spark.sparkContext.master,
        spark.version,
        spark.conf.get("spark.sql.shuffle.partitions"),
    )
    return spark


def stop() -> None:
    """Stop the process's Spark session, if one runs."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        return
    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()
