"""``train --engine spark`` collects only the snapshot rows the fits need and trains as well.

The driver holds the labelled spine, picks every row of the later folds, every positive
and a seeded share of the other negatives (modeling/presample.py); Spark builds the
features of those rows only. The test-fold PR AUC must stay close to the local engine's,
which builds and fits on every row. Uses the test run's one Spark session
(``spark_session`` in tests/conftest.py); skipped, saying why, without pyspark.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytest.importorskip(
    "pyspark",
    reason='pyspark is not installed: pip install "churnpredict[spark]" to test --engine spark',
)

from churnpredict.cli import app  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("spark")]
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "default.yaml"


def run(store: Path, *args: str):
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{store}"}
    return CliRunner().invoke(app, [*args, "--config", str(CONFIG)], env=env)


def model_pr_auc(output: str) -> float:
    """Return the model's test-fold PR AUC from ``train``'s output."""
    m = re.search(r"^Test fold.*\n.*\n^model\s+([0-9.]+)", output, re.M)
    assert m, output
    return float(m.group(1))


def test_train_engine_spark_collects_fewer_rows_and_trains_as_well(spark_session, tmp_path):
    world = tmp_path / "data"
    r = run(tmp_path / "unused.db", "simulate", "--out", str(world), "--clients", "400",
            "--days", "400", "--seed", "3")  # fmt: skip
    assert r.exit_code == 0, r.output
    out = {}
    for engine in ("local", "spark"):
        r = run(tmp_path / f"{engine}.db", "train", "--data", str(world),
                "--reports", str(tmp_path / f"rep_{engine}"), "--engine", engine)  # fmt: skip
        assert r.exit_code == 0, r.output
        out[engine] = r.output
    # the same snapshot table described, fewer rows collected
    head = {e: out[e].splitlines()[0].split(" in ")[0] for e in out}
    assert head["spark"] == head["local"]
    total = int(re.search(r"Trained on ([0-9,]+) snapshots", out["local"])[1].replace(",", ""))
    m = re.search(r"Collected ([0-9,]+) of ([0-9,]+) snapshot rows", out["spark"])
    assert m, out["spark"]
    collected, of = (int(g.replace(",", "")) for g in m.groups())
    assert of == total and 0 < collected < 0.95 * total
    assert "Collected" not in out["local"]
    # the same test rows; the model trained on the collected rows ranks about as well
    rows = {e: re.search(r"^all\s+(\d+)\s+(\d+)\s", out[e], re.M).groups() for e in out}
    assert rows["spark"] == rows["local"] and int(rows["local"][1]) > 20, rows
    ap = {e: model_pr_auc(out[e]) for e in out}
    assert abs(ap["spark"] - ap["local"]) < 0.06, ap
    assert ap["spark"] > 0.35, ap
