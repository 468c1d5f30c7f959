"""Does the breadth of features pay? The model on the default simulated world trained
with every default feature against a basic set: the unsliced families at one window.

The basic set stands for a first-cut feature layer: per source the plain counts, sums
and states ("pauses in the last 30 days", "unpaid amount now", "days since the last
contact"), without the slices by initiator, reason, channel, topic or outcome, the
other windows, trends and ratios. Both models are fitted and evaluated on the same
rows (same folds, same test fold) with ``train_and_evaluate``.

    python -m benchmarks.ablation            # prints a table (about 2 minutes)
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from benchmarks.cases import _cfg
from benchmarks.pipeline_cases import _sim_world

WINDOW = 30
METRICS = ["pr_auc", "roc_auc", "precision_at_k", "ece"]


def basic_features(catalog: list) -> list:
    """The unsliced features with no window or the ``WINDOW``-day one, no trends."""
    return [
        f
        for f in catalog
        if not f.slice_values and f.window in (None, WINDOW) and f.kind not in ("trend", "ratio")
    ]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.parse_args(argv)
    from churnpredict.modeling.backtest import train_and_evaluate
    from churnpredict.pipeline import load, load_truth, training_table

    world = _sim_world()
    cfg = _cfg()
    ds = load(world, cfg)
    table, catalog, _ = training_table(ds, cfg)
    truth = load_truth(world)
    rows = {}
    for name, feats in (("all features", catalog), ("basic set", basic_features(catalog))):
        t0 = time.perf_counter()
        m = train_and_evaluate(table, feats, cfg, truth).metrics
        rows[name] = {"features": len(feats), **m.loc["model", METRICS].to_dict()}
        rows[name]["fit_evaluate_s"] = round(time.perf_counter() - t0, 1)
        if name == "all features":  # the same test rows in both runs: scorers once
            for scorer in ("p_true", "paused_rule", "rfm"):
                if scorer in m.index:
                    rows[scorer] = {"features": None, **m.loc[scorer, METRICS].to_dict()}
    out = pd.DataFrame(rows).T
    print(f"world {world.name}: {len(table):,} snapshot rows; test fold = latest as-of dates")
    print(out.to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()
