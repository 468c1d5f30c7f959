"""Featuretools DFS with cutoff times on a benchmark world (runs in its own virtualenv).

Featuretools 1.31 needs pandas < 3, so the harness runs this script with
``bench-data/ft-venv/bin/python``; it imports nothing from churnpredict.

Usage: ``python ft_case.py WORLD_DIR AS_OF WINDOWS OUT.parquet``

For every client signed up before ``AS_OF`` and every window ``w`` in ``WINDOWS``
(comma-separated days) it computes, with ``training_window = w days`` and
``include_cutoff_time=False`` (rows with ``AS_OF - w <= time < AS_OF``, the engine's
window), the depth-1 aggregations COUNT, SUM, MEAN and TIME_SINCE_LAST over each
event table, and COUNT ``WHERE <column> = <value>`` for the category values the
engine counts. Columns get the suffix ``__w<w>``. Prints one line
``FT_RESULT {json}`` with the phase timings, the peak RSS and the versions.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import warnings
from pathlib import Path

import featuretools as ft
import pandas as pd
import pyarrow.parquet as pq
from woodwork.logical_types import Categorical, Datetime, Double

EVENT_TABLES = {
    # table: (time index, category columns, numeric columns)
    "campaign_events": ("ts", ["event", "initiator", "reason"], []),
    "contacts": ("ts", ["channel", "direction", "topic", "outcome"], []),
    "spend": ("date", [], ["spend", "impressions", "clicks", "conversions"]),
    "activity": ("ts", ["event"], ["value"]),
}
INTERESTING = {
    "campaign_events": {
        "event": ["created", "started", "paused", "resumed", "stopped", "budget_changed"],
        "initiator": ["client", "system", "manager"],
        "reason": ["low_balance", "season", "budget", "results", "moderation"],
    },
    "contacts": {
        "direction": ["inbound", "outbound"],
        "topic": ["billing", "complaint", "technical", "results", "sales"],
    },
    "activity": {"event": ["login", "report_view", "settings_change"]},
}


def build_entityset(world: Path) -> ft.EntitySet:
    """Read the world's tables into a Featuretools EntitySet (clients + event tables)."""
    es = ft.EntitySet(id="world")
    clients = pq.read_table(world / "clients.parquet", columns=["client_id", "signup_date"])
    clients = clients.to_pandas(date_as_object=False)
    es.add_dataframe(dataframe_name="clients", dataframe=clients, index="client_id")
    for table, (ts, cats, nums) in EVENT_TABLES.items():
        df = pq.read_table(world / f"{table}.parquet", columns=["client_id", ts, *cats, *nums])
        df = df.to_pandas(date_as_object=False)
        types = {c: Categorical for c in cats} | {c: Double for c in nums} | {ts: Datetime}
        es.add_dataframe(
            dataframe_name=table,
            dataframe=df,
            index=f"{table}_row",
            make_index=True,
            time_index=ts,
            logical_types=types,
        )
        es.add_relationship("clients", "client_id", table, "client_id")
    for table, values in INTERESTING.items():
        es.add_interesting_values(dataframe_name=table, values=values)
    return es


def main(argv: list[str]) -> None:
    """Run DFS per window and write the feature matrix; print timings as JSON."""
    world, as_of, windows, out = Path(argv[0]), pd.Timestamp(argv[1]), argv[2], Path(argv[3])
    warnings.filterwarnings("ignore")
    phases = {}
    t0 = time.perf_counter()
    es = build_entityset(world)
    phases["build_entityset"] = time.perf_counter() - t0
    ids = es["clients"].loc[es["clients"]["signup_date"] < as_of, "client_id"]
    cutoff = pd.DataFrame({"client_id": ids.to_numpy(), "time": as_of})
    t0 = time.perf_counter()
    features = ft.dfs(
        entityset=es,
        target_dataframe_name="clients",
        agg_primitives=["count", "sum", "mean", "time_since_last"],
        where_primitives=["count"],
        trans_primitives=[],
        max_depth=1,
        features_only=True,
    )
    phases["dfs_definitions"] = time.perf_counter() - t0
    parts = []
    t0 = time.perf_counter()
    for w in (int(x) for x in windows.split(",")):
        fm = ft.calculate_feature_matrix(
            features,
            entityset=es,
            cutoff_time=cutoff,
            training_window=f"{w} days",
            include_cutoff_time=False,
            n_jobs=1,
            verbose=False,
        )
        parts.append(fm.add_suffix(f"__w{w}"))
    phases["dfs"] = time.perf_counter() - t0
    fm = pd.concat(parts, axis=1)
    fm.index = fm.index.astype(str)
    fm.index.name = "client_id"
    fm = fm.reset_index()
    for c in fm.columns[1:]:
        fm[c] = pd.to_numeric(fm[c], errors="coerce").astype("float64")
    fm.to_parquet(out)
    result = {
        "phases": phases,
        "instances": len(cutoff),
        "features": len(features) * len(parts),
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "versions": {"featuretools": ft.__version__, "pandas": pd.__version__},
    }
    print("FT_RESULT " + json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
