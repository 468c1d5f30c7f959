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


# ---------------------------------------------------------------------- scoring
def score_on_executors(ds, spine, cfg: Any, spec: dict, model: Any, facts_of, keep_rows=None):
    """Build the features, score them and phrase the reasons on Spark's executors.

    The feature DataFrame never comes to the driver: the model (its saved files), the
    coverage inputs, the reasons' settings and the clients' facts are broadcast, and each
    executor masks uncovered features, runs the booster (risk, the time-to-freeze
    outputs, contributions) and phrases the reasons of its rows (``mapInPandas``). The
    driver collects one small row per scored client and the drift counts.

    Parameters
    ----------
    ds : churnpredict.data.SparkDataset
    spine : DataFrame
        ``client_id`` and ``as_of`` (one as-of date) of the active clients.
    cfg : Config
    spec : dict
        The model's resolved feature spec.
    model : ChurnModel
    facts_of : callable
        ``facts_of(client_ids) -> DataFrame``: the facts of the scored clients
        (:func:`churnpredict.facts.client_facts`), in that order.
    keep_rows : callable, optional
        ``keep_rows(table) -> table``: the rows (of ``client_id``, ``as_of``) to score;
        the drift check still counts every row.

    Returns
    -------
    table : DataFrame
        ``client_id``, ``as_of`` and the routing feature columns (``calls.*_feature``) of
        the scored rows, sorted by client_id (the local engine's order).
    risk : ndarray
    horizons : DataFrame
        ``risk_7d`` ... (empty without a time-to-freeze curve), row-aligned.
    reasons : list of list of Reason
    facts : DataFrame
    drift_counts : churnpredict.drift.FeatureCounts
        Today's features counted for the drift check.
    """
    import json
    import pickle
    import tempfile
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from churnpredict.contract import table_coverage
    from churnpredict.drift import FeatureCounts, drift_reference
    from churnpredict.explain import Reason
    from churnpredict.facts import contact_topics, lookback_days
    from churnpredict.features.backends.spark import compute_frame
    from churnpredict.features.declarations import declare
    from churnpredict.labels import covered_from

    _quiet()
    spark = ds.spark
    decls = declare(spec)
    catalog = [d.feature() for d in decls]
    names = [d.name for d in decls]
    spine = spine.assign(client_id=spine["client_id"].astype(str))
    spine = spine.sort_values(["client_id", "as_of"], kind="stable").reset_index(drop=True)
    head = pd.DataFrame(
        {
            "_rid": np.arange(len(spine), dtype=np.int64),
            "client_id": spine["client_id"].to_numpy(),
            "as_of": pd.to_datetime(spine["as_of"]).dt.normalize().dt.date.to_numpy(),
        }
    )
    kept = keep_rows(spine[["client_id", "as_of"]]) if keep_rows is not None else spine
    keep_ids = set(kept["client_id"].astype(str))
    kept_rids = head.loc[head["client_id"].isin(keep_ids), ["_rid"]]
    facts = facts_of(kept["client_id"].astype(str).to_numpy())
    # what the executors need, once per executor (broadcast), not once per task
    signup = ds.con.execute("SELECT client_id, signup_date FROM clients").df()
    signup = signup[signup["client_id"].astype(str).isin(set(head["client_id"]))]  # active
    routing = [
        c
        for c in dict.fromkeys((cfg.calls.narrow_feature, cfg.calls.reached_feature))
        if c in names
    ]
    stats = drift_reference(model)
    stats = stats["stats"] if isinstance(stats.get("stats"), dict) else stats
    with tempfile.TemporaryDirectory() as tmp:
        model.save(tmp)
        files = {p.name: p.read_text(encoding="utf-8") for p in Path(tmp).iterdir()}
    payload = {
        "model": files,
        "catalog": catalog,
        "spec": spec,
        "names": names,
        "firsts": {t: lo for t, (lo, _) in table_coverage(ds, cfg).items()},
        "starts": covered_from(ds, cfg),
        "signup": signup.set_index(signup["client_id"].astype(str))["signup_date"],
        "facts": facts.set_index(facts["client_id"].astype(str)),
        "stats": {f: stats[f] for f in model.feature_names_ if f in stats},
        "routing": routing,
        "reasons": {
            "language": cfg.calls.language,
            "k": cfg.calls.top_reasons,
            "min_contribution": cfg.calls.min_contribution,
            "lookback": lookback_days(cfg),
            "nouns": {k: (v.en, v.ru, v.ru_plural) for k, v in cfg.calls.nouns.items()},
            "contact_topics": contact_topics(cfg),
        },
    }
    bc = spark.sparkContext.broadcast(pickle.dumps(payload))

    sdf = spark.createDataFrame(head, schema="_rid long, client_id string, as_of date")
    feats = compute_frame(ds.tables, sdf, decls).persist()
    try:
        counts = feats.mapInPandas(lambda it: _drift_parts(bc, it), "part binary").collect()
        drift_counts = FeatureCounts(
            {f: np.asarray(s["edges"]) for f, s in payload["stats"].items()}
        )
        drift_counts.names = ["client_id", "as_of", *names]
        for (part,) in counts:
            drift_counts.add(pickle.loads(part))
        horizons = ["risk_7d", "risk_14d", "risk_90d", "expected_active_days"]
        schema = (
            "_rid long, risk double, "
            + "".join(f"{h} double, " for h in horizons)
            + "reasons string"
            + "".join(f", `{c}` float" for c in routing)
        )
        rows = feats.join(spark.createDataFrame(kept_rids, "_rid long"), "_rid")
        out = rows.mapInPandas(lambda it: _score_parts(bc, it), schema).toPandas()
    finally:
        feats.unpersist()
        bc.unpersist()
    out = out.sort_values("_rid").reset_index(drop=True)
    table = head.set_index("_rid").loc[out["_rid"]].reset_index(drop=True)
    table = table.assign(as_of=pd.to_datetime(table["as_of"]).astype("datetime64[ns]"))
    for c in routing:
        table[c] = out[c].to_numpy(np.float32)
    has_curve = model.survival_ is not None
    hz = out[horizons] if has_curve else pd.DataFrame(index=out.index)
    reasons = [[Reason(*r) for r in json.loads(text)] for text in out["reasons"]]
    facts = facts.set_index(facts["client_id"].astype(str)).loc[table["client_id"]]
    return table, out["risk"].to_numpy(), hz, reasons, facts.reset_index(drop=True), drift_counts


def _executor_state(bc) -> dict:
    """The broadcast payload with the model loaded (once per Python worker)."""
    import pickle
    import tempfile
    from pathlib import Path

    from churnpredict.modeling.model import ChurnModel

    value = bc.value  # loaded once per Python worker by Spark
    state = _EXECUTOR_CACHE.get(id(value))
    if state is None or state["_value"] is not value:
        state = pickle.loads(value)
        with tempfile.TemporaryDirectory() as tmp:
            for name, text in state["model"].items():
                Path(tmp, name).write_text(text, encoding="utf-8")
            state["loaded"] = ChurnModel.load(tmp)
        state["_value"] = value  # kept alive, so its id names it while cached
        _EXECUTOR_CACHE.clear()
        _EXECUTOR_CACHE[id(value)] = state
    return state


_EXECUTOR_CACHE: dict[int, dict] = {}


def _masked(state: dict, pdf):
    """The batch's features with the uncovered ones set to missing (as build_features)."""
    import numpy as np
    import pandas as pd

    from churnpredict.features.coverage import mask_uncovered

    pdf = pdf.assign(
        client_id=pdf["client_id"].astype(str),
        as_of=pd.to_datetime(pdf["as_of"]).astype("datetime64[ns]"),
    )
    for c in state["names"]:
        pdf[c] = pdf[c].astype(np.float32)
    out, _ = mask_uncovered(
        pdf, state["catalog"], state["spec"], state["firsts"], state["starts"], state["signup"]
    )
    return out


def _drift_parts(bc, batches):
    """Executor: the drift counts of a partition's rows (one pickled row per batch)."""
    import pickle

    import pandas as pd

    from churnpredict.drift import FeatureCounts

    state = _executor_state(bc)
    for pdf in batches:
        if len(pdf):
            counts = FeatureCounts.of(state["stats"], _masked(state, pdf))
            yield pd.DataFrame({"part": [pickle.dumps(counts)]})


def _score_parts(bc, batches):
    """Executor: risk, the time-to-freeze outputs and the reasons of a batch of rows."""
    import json

    import numpy as np
    import pandas as pd

    from churnpredict.explain import top_reasons

    state = _executor_state(bc)
    model = state["loaded"]
    r = state["reasons"]
    for pdf in batches:
        if not len(pdf):
            continue
        table = _masked(state, pdf)
        X = table[model.feature_names_]
        risk = model.predict_risk(X)
        horizons = model.predict_horizons(X, risk)
        contrib = model.contributions(X)
        facts = state["facts"].loc[table["client_id"]].reset_index(drop=True)
        reasons = top_reasons(contrib, X, model.catalog_, facts=facts, **r)
        out = pd.DataFrame({"_rid": table["_rid"].to_numpy(np.int64), "risk": risk})
        for h in ("risk_7d", "risk_14d", "risk_90d", "expected_active_days"):
            out[h] = horizons[h].to_numpy() if h in horizons else np.nan
        out["reasons"] = [
            json.dumps([[x.family, x.feature, x.contribution, x.text, x.topic] for x in rs])
            for rs in reasons
        ]
        for c in state["routing"]:
            out[c] = table[c].to_numpy(np.float32)
        yield out
