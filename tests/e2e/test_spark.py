"""The Spark engine equals the local one: data checks, labels, every feature, the call list.

One Spark session (``local[2]``, 2 shuffle partitions) serves the whole module; the CLI
commands run in this process and reuse it. Skipped, saying why, where pyspark is not
installed (``pip install "churnpredict[spark]"``; ``make setup`` installs it).
"""

from __future__ import annotations

import io
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
from churnpredict.features.build import build_features, resolve_spec  # noqa: E402
from churnpredict.labels import build_spine, derive_freezes, snapshot_dates  # noqa: E402
from tests.bad_corpus import make_bad_cases  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("spark")]
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "default.yaml"
DATES = ["2024-06-03", "2024-10-07", "2025-01-20"]


def cfg(**spark):
    return override(load_config(CONFIG, environ={}), "spark", shuffle_partitions=2, **spark)


@pytest.fixture(scope="module")
def spark():
    from churnpredict import spark as sparkmod

    session = sparkmod.session(cfg())
    yield session
    session.stop()


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
        # row problems name example rows (file and values; Spark has no line numbers)
        assert bool(sp.value.examples) == bool(local.value.examples), name


def test_every_default_feature_equals_local(both):
    """The conformance check on data: all features, several as-of dates, rtol 1e-5."""
    local, sp = both
    c = cfg()
    spine = build_spine(local, c, [pd.Timestamp(d) for d in DATES], with_label=False)
    spec = resolve_spec(local, c)
    assert resolve_spec(sp, c) == spec  # slice values resolved on Spark
    tl, catalog, _ = build_features(local, spine, c, spec, backend="local")
    ts, _, _ = build_features(sp, spine, c, spec, backend="spark")
    assert len(catalog) > 300 and list(ts.columns) == list(tl.columns)
    pd.testing.assert_frame_equal(ts[["client_id", "as_of"]], tl[["client_id", "as_of"]])
    bad = []
    for f in catalog:
        a, b = tl[f.name].to_numpy(np.float64), ts[f.name].to_numpy(np.float64)
        assert ts[f.name].dtype == np.float32
        if not np.allclose(b, a, rtol=1e-5, atol=1e-6, equal_nan=True):
            bad.append(f.name)
    assert not bad, f"{len(bad)} features differ, e.g. {bad[:5]}"
    # the data is not degenerate: most features vary and are mostly known
    assert (tl[[f.name for f in catalog]].nunique() > 1).mean() > 0.8


def test_cli_engine_spark_features_and_call_list_equal_local(world, tmp_path, spark):
    store = tmp_path / "mlflow.db"
    outs = {}
    for engine in ("local", "spark"):
        out = tmp_path / f"features_{engine}.parquet"
        args = ["features", "build", "--data", str(world), "--out", str(out)]
        r = run(store, *args, "--as-of", DATES[0], "--as-of", DATES[2], "--engine", engine)
        assert r.exit_code == 0, r.output
        outs[engine] = pd.read_parquet(out)
    a, b = outs["local"], outs["spark"]
    assert list(a.columns) == list(b.columns) and len(a) > 400
    pd.testing.assert_frame_equal(b, a, check_exact=False, rtol=1e-5, atol=1e-6)

    r = run(store, "train", "--data", str(world), "--reports", str(tmp_path / "rep"))
    assert r.exit_code == 0, r.output
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
    assert len(la) > 200
    assert la["client_id"].tolist() == lb["client_id"].tolist()  # the same ranks
    np.testing.assert_allclose(lb["risk"], la["risk"], rtol=1e-6)
    assert lb["reasons"].tolist() == la["reasons"].tolist()
    # an unknown engine is a usage error (exit 2)
    assert run(store, "features", "build", "--data", str(world), "--as-of", DATES[0],
               "--out", str(tmp_path / "x.parquet"), "--engine", "dask").exit_code == 2  # fmt: skip
