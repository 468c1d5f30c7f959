"""The Spark engine equals the local one: data checks, labels, every feature, the call list.

One Spark session (``local[2]``, the ``spark_session`` fixture of tests/conftest.py)
serves every Spark test of the run; the CLI commands run in this process and reuse it. Skipped, saying why, where pyspark is not
installed (``pip install "churnpredict[spark]"``; ``make setup`` installs it).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

pytest.importorskip(
    "pyspark",
    reason='pyspark is not installed: pip install "churnpredict[spark]" to test --engine spark',
)

from churnpredict import data  # noqa: E402
from churnpredict.cli import app  # noqa: E402
from churnpredict.config import load_config, override  # noqa: E402
from churnpredict.errors import DataError  # noqa: E402
from churnpredict.features.build import catalog_of, resolve_spec  # noqa: E402
from churnpredict.labels import build_spine, derive_freezes, snapshot_dates  # noqa: E402
from tests.bad_corpus import make_bad_cases  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("spark")]
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "default.yaml"
DATES = ["2024-06-03", "2024-10-07", "2025-01-20"]


def cfg(**spark):
    return override(load_config(CONFIG, environ={}), "spark", shuffle_partitions=2, **spark)


@pytest.fixture(scope="module")
def spark(spark_session):
    """The test run's one Spark session (tests/conftest.py); the CLI commands reuse it."""
    return spark_session


def run(store: Path, *args: str):
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{store}"}
    return CliRunner().invoke(app, [*args, "--config", str(CONFIG)], env=env)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("spark_world") / "data"
    r = run(out.parent / "unused.db", "simulate", "--out", str(out), "--clients", "400",
            "--days", "400", "--seed", "3")  # fmt: skip
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory) -> tuple[Path, str]:
    """A model trained by the local engine on ``world``: its MLflow store and ``train``'s output."""
    tmp = tmp_path_factory.mktemp("spark_trained")
    store = tmp / "mlflow.db"
    r = run(store, "train", "--data", str(world), "--reports", str(tmp / "rep"))
    assert r.exit_code == 0, r.output
    return store, r.output


@pytest.fixture(scope="module")
def both(world, spark):
    c = cfg()
    return data.load(world, c, engine="local"), data.load(world, c, engine="spark")


def test_load_labels_and_spine_equal_local(both):
    local, sp = both
    assert sp.present == local.present
    assert sp.coverage == local.coverage
    assert (sp.data_start, sp.data_end) == (local.data_start, local.data_end)
    for name in local.present:
        a, b = local.report.tables[name], sp.report.tables[name]
        assert (a.rows_read, a.rows_accepted, a.rows_duplicate) == (
            b.rows_read,
            b.rows_accepted,
            b.rows_duplicate,
        ), name
    for c in (cfg(), override(cfg(), "label", rule="idle")):
        fl, fs = derive_freezes(local, c), derive_freezes(sp, c)
        assert len(fl) > 50
        pd.testing.assert_frame_equal(fs, fl, check_dtype=False)
        dates = snapshot_dates(local, c)
        assert dates == snapshot_dates(sp, c) and len(dates) > 10
        sl = build_spine(local, c, dates, freezes=fl)
        ss = build_spine(sp, c, dates)  # derives its own freezes on Spark
        assert sl["label"].sum() > 20
        pd.testing.assert_frame_equal(ss, sl, check_dtype=False)


CASES = (
    "clients_missing_table",
    "clients_missing_signup_date",
    "clients_empty_client_id",
    "clients_duplicate_client_id",
    "clients_client_id_differs_only_in_case_and_spaces",
    "invoices_duplicate_id",
    "invoices_negative_amount",
    "invoices_bad_due_at",
    "contacts_bad_channel",
    "contacts_bad_ts",
    "spend_bad_date",
    "freezes_missing_frozen_at",
)


def test_spark_checks_raise_the_local_errors(tmp_path, spark):
    """Whole-table checks run on Spark and raise the local engine's DataError."""
    cases = {name: (d, file, col) for name, d, file, col in make_bad_cases(tmp_path)}
    assert set(CASES) <= set(cases)
    c = cfg()
    for name in CASES:
        d, file, col = cases[name]
        with pytest.raises(DataError) as local:
            data.load(d, c, engine="local")
        with pytest.raises(DataError) as sp:
            data.load(d, c, engine="spark")
        first = str(sp.value).splitlines()[0]
        assert first == str(local.value).splitlines()[0], name
        assert file in first and (col is None or col in first), name
        assert sp.value.exit_code == 2
        assert sp.value.column == local.value.column == col, name
        # row problems name the same example rows: file, line (CSV) or row (Parquet), values
        assert sp.value.examples == local.value.examples, name


def test_cli_engine_spark_features_and_call_list_equal_local(both, world, trained, tmp_path):
    """``features build --engine spark`` equals local on every default feature at several
    as-of dates (rtol 1e-5), slices resolved on Spark; ``score --engine spark`` (model
    and reasons on the executors) writes the local engine's call list, byte for byte."""
    local, sp = both
    c = cfg()
    assert resolve_spec(sp, c) == resolve_spec(local, c)  # slice values resolved on Spark
    catalog = catalog_of(resolve_spec(local, c))
    store, _ = trained  # the local engine's model, scored by both engines below
    outs = {}
    for engine in ("local", "spark"):
        out = tmp_path / f"features_{engine}.parquet"
        args = ["features", "build", "--data", str(world), "--out", str(out)]
        dates = [x for d in DATES for x in ("--as-of", d)]
        r = run(store, *args, *dates, "--engine", engine)
        assert r.exit_code == 0, r.output
        outs[engine] = pd.read_parquet(out)
    a, b = outs["local"], outs["spark"]
    names = [f.name for f in catalog]
    assert len(catalog) > 300 and list(a.columns) == list(b.columns)
    assert set(names) <= set(a.columns) and len(a) > 600
    assert sorted(a["as_of"].astype(str).str[:10].unique()) == DATES
    pd.testing.assert_frame_equal(b[["client_id", "as_of"]], a[["client_id", "as_of"]])
    bad = []
    for name in names:
        x, y = a[name].to_numpy(np.float64), b[name].to_numpy(np.float64)
        assert b[name].dtype == np.float32
        if not np.allclose(y, x, rtol=1e-5, atol=1e-6, equal_nan=True):
            bad.append(name)
    assert not bad, f"{len(bad)} features differ, e.g. {bad[:5]}"
    pd.testing.assert_frame_equal(b, a, check_exact=False, rtol=1e-5, atol=1e-6)
    # the data is not degenerate: most features vary
    assert (a[names].nunique() > 1).mean() > 0.8

    lists = {}
    for engine in ("local", "spark"):
        out = tmp_path / engine / "call_list.csv"
        args = ["score", "--data", str(world), "--as-of", DATES[2], "--out", str(out)]
        r = run(store, *args, "--engine", engine)
        assert r.exit_code == 0, r.output
        lists[engine] = out.read_bytes()
    la, lb = (
        pd.read_csv(io.BytesIO(lists[e]), dtype={"client_id": str}) for e in ("local", "spark")
    )
    assert len(la) > 200 and la["reasons"].str.len().gt(0).mean() > 0.5
    assert la["client_id"].tolist() == lb["client_id"].tolist()  # the same ranks
    np.testing.assert_allclose(lb["risk"], la["risk"], rtol=1e-6)
    assert lb["reasons"].tolist() == la["reasons"].tolist()
    assert lists["spark"] == lists["local"]  # the same file, byte for byte
    # --segment new: the same rows kept (after the drift check of every active client)
    new = {}
    for engine in ("local", "spark"):
        out = tmp_path / f"new_{engine}" / "call_list.csv"
        args = ["score", "--data", str(world), "--as-of", DATES[2], "--out", str(out)]
        r = run(store, *args, "--engine", engine, "--segment", "new")
        assert r.exit_code == 0, r.output
        new[engine] = out.read_bytes()
    assert new["spark"] == new["local"]
    assert 0 < len(pd.read_csv(io.BytesIO(new["local"]))) < len(la)
    # an unknown engine is a usage error (exit 2)
    assert run(store, "features", "build", "--data", str(world), "--as-of", DATES[0],
               "--out", str(tmp_path / "x.parquet"), "--engine", "dask").exit_code == 2  # fmt: skip


def model_pr_auc(output: str) -> float:
    """Return the model's test-fold PR AUC from ``train``'s output."""
    m = re.search(r"^Test fold.*\n.*\n^model\s+([0-9.]+)", output, re.M)
    assert m, output
    return float(m.group(1))


def test_train_engine_spark_collects_fewer_rows_and_trains_as_well(world, trained, tmp_path):
    """``train --engine spark`` collects only the snapshot rows the fits need and trains as well.

    The driver holds the labelled spine, picks every row of the later folds, every positive
    and a seeded share of the other negatives (modeling/presample.py); Spark builds the
    features of those rows only. The test-fold PR AUC must stay close to the local engine's
    (the module's ``trained`` model), which builds and fits on every row.
    """
    r = run(tmp_path / "spark.db", "train", "--data", str(world),
            "--reports", str(tmp_path / "rep"), "--engine", "spark")  # fmt: skip
    assert r.exit_code == 0, r.output
    out = {"local": trained[1], "spark": r.output}
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
