"""End to end: the CLI on a small simulated world, in tmp_path, with its own MLflow store."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churnpredict.cli import app
from churnpredict.config import load_config
from churnpredict.io import output_lock

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "default.yaml"
CONTRACT_COLUMNS = [
    "rank",
    "client_id",
    "client_name",
    "account_manager",
    "risk",
    "risk_band",
    "value_at_risk",
    "owner_role",
    "reasons",
    "suggested_action",
    "last_contact_at",
    "as_of",
    "model_version",
]
pytestmark = pytest.mark.slow


def run(*args: str, env: dict | None = None):
    result = CliRunner().invoke(app, [*args], env=env, catch_exceptions=False)
    return result


def cp(store: Path, *args: str):
    """Run a command with the test's own config and MLflow store."""
    return run(*args, "--config", str(CONFIG), env={"MLFLOW_TRACKING_URI": f"sqlite:///{store}"})


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world") / "data"
    r = cp(
        out.parent / "unused.db",
        "simulate",
        "--out",
        str(out),
        "--clients",
        "800",
        "--days",
        "420",
        "--seed",
        "3",
    )
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory) -> Path:
    store = tmp_path_factory.mktemp("store") / "mlflow.db"
    r = cp(store, "train", "--data", str(world), "--reports", str(store.parent / "reports"))
    assert r.exit_code == 0, r.output
    assert "pr_auc" in r.output and "p_true" in r.output and "paused_rule" in r.output
    assert "version 1" in r.output
    assert (store.parent / "reports" / "report.html").exists()
    return store


def read_list(path: Path) -> tuple[list[str], pd.DataFrame, bytes]:
    raw = path.read_bytes()
    text = raw.decode("utf-8-sig")
    header = next(csv.reader(io.StringIO(text)))
    return header, pd.read_csv(io.StringIO(text), dtype={"client_id": str}), raw


def test_simulate_is_deterministic(world, tmp_path):
    again = tmp_path / "again"
    r = cp(
        tmp_path / "x.db",
        "simulate",
        "--out",
        str(again),
        "--clients",
        "800",
        "--days",
        "420",
        "--seed",
        "3",
    )
    assert r.exit_code == 0, r.output
    for name in ("clients", "campaign_events", "invoices", "contacts", "truth"):
        pd.testing.assert_frame_equal(
            pd.read_parquet(world / f"{name}.parquet"), pd.read_parquet(again / f"{name}.parquet")
        )


def test_validate_accepts_the_simulated_world(world, tmp_path):
    r = cp(tmp_path / "x.db", "validate", "--data", str(world))
    assert r.exit_code == 0, r.output


def test_score_writes_the_contract_call_list(world, trained, tmp_path):
    out = tmp_path / "lists" / "call_list.csv"
    r = cp(trained, "score", "--data", str(world), "--as-of", "2025-01-20", "--out", str(out))
    assert r.exit_code == 0, r.output
    header, df, raw = read_list(out)
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM
    assert header[:13] == CONTRACT_COLUMNS
    assert list(df["rank"]) == list(range(1, len(df) + 1))
    assert df["risk"].between(0, 1).all()
    assert set(df["risk_band"]) <= {"high", "medium", "low"}
    assert set(df["owner_role"]) <= {
        "account_manager",
        "receivables",
        "business_development",
        "technical",
    }
    assert (df["as_of"] == "2025-01-20").all() and (df["model_version"] == "churnpredict/1").all()
    assert df["client_id"].is_unique
    # one row per active client at the as-of date
    truth = pd.read_parquet(world / "truth.parquet")
    active = truth[pd.to_datetime(truth["as_of"]) == pd.Timestamp("2025-01-20")]
    assert set(df["client_id"]) == set(active["client_id"].astype(str))
    # the model's risk ranks clearly better than the paused-campaign rule against the truth
    assert df["reasons"].notna().mean() > 0.9
    # the list keeps the model's strict order: as many distinct written risks as the
    # champion has distinct raw scores for these clients (no ties from calibration or
    # from rounding in the file)
    feats = tmp_path / "f.parquet"
    r = cp(trained, "features", "build", "--data", str(world), "--as-of", "2025-01-20",
           "--out", str(feats))  # fmt: skip
    assert r.exit_code == 0, r.output
    from churnpredict.config import build_config
    from churnpredict.tracking import load_champion

    model, _ = load_champion(build_config({"tracking": {"uri": f"sqlite:///{trained}"}}))
    table = pd.read_parquet(feats).set_index("client_id").loc[df["client_id"]]
    raw_scores = model.predict_raw(table)
    written = pd.read_csv(io.StringIO(raw.decode("utf-8-sig")), dtype=str)["risk"]
    assert written.nunique() == len(np.unique(raw_scores))


def test_the_list_carries_the_time_to_freeze_in_contract_order(world, trained, tmp_path):
    out = tmp_path / "t" / "call_list.csv"
    r = cp(trained, "score", "--data", str(world), "--as-of", "2025-01-20", "--out", str(out))
    assert r.exit_code == 0, r.output
    text = out.read_bytes().decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0]
    assert header[:13] == CONTRACT_COLUMNS
    assert header[13:16] == ["risk_7d", "risk_90d", "expected_active_days"]
    assert len(rows) > 100
    for row in rows[1:]:
        rec = dict(zip(header, row, strict=True))
        r7, r, r90 = float(rec["risk_7d"]), float(rec["risk"]), float(rec["risk_90d"])
        assert 0 <= r7 <= r <= r90 <= 1, rec["client_id"]
        assert 0 <= float(rec["expected_active_days"]) <= 90
    # a client likelier to freeze within 90 days expects fewer active days
    df = pd.read_csv(io.StringIO(text))
    assert df["risk_90d"].corr(df["expected_active_days"], method="spearman") < -0.9


def test_sort_urgency_and_segment_new_through_the_cli(world, trained, tmp_path):
    out = tmp_path / "u" / "urgent.csv"
    r = cp(trained, "score", "--data", str(world), "--as-of", "2025-01-20", "--out", str(out),
           "--sort", "urgency")  # fmt: skip
    assert r.exit_code == 0, r.output
    _, df, _ = read_list(out)
    fresh = ~df["note"].fillna("").str.contains("reached")  # reached recently: moved down
    first = df[fresh]
    assert first["risk_7d"].is_monotonic_decreasing
    assert fresh.iloc[: int(fresh.sum())].all()  # recently reached clients come last
    new = tmp_path / "n" / "new.csv"
    r = cp(trained, "score", "--data", str(world), "--as-of", "2025-01-20", "--out", str(new),
           "--segment", "new")  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "new clients (first 30 days)" in r.output
    _, nd, _ = read_list(new)
    clients = pd.read_parquet(world / "clients.parquet").set_index("client_id")
    T = pd.Timestamp("2025-01-20")
    tenure = (T - pd.to_datetime(clients["signup_date"])).dt.days
    _, full, _ = read_list(out)
    want = {c for c in full["client_id"].astype(str) if tenure[c] <= 30}
    assert want and set(nd["client_id"].astype(str)) == want
    assert list(nd["rank"]) == list(range(1, len(nd) + 1))
    assert run("score", "--help").exit_code == 0
    assert "new_client_days" in run("score", "--help").output


def test_same_seed_same_call_list(world, trained, tmp_path):
    store2 = tmp_path / "second.db"
    r = cp(store2, "train", "--data", str(world), "--reports", str(tmp_path / "rep"))
    assert r.exit_code == 0, r.output
    a, b = tmp_path / "a" / "list.csv", tmp_path / "b" / "list.csv"
    assert (
        cp(
            trained, "score", "--data", str(world), "--as-of", "2025-01-20", "--out", str(a)
        ).exit_code
        == 0
    )
    assert (
        cp(
            store2, "score", "--data", str(world), "--as-of", "2025-01-20", "--out", str(b)
        ).exit_code
        == 0
    )
    assert a.read_bytes() == b.read_bytes()


def test_score_without_a_champion_says_what_to_do(world, tmp_path):
    r = cp(
        tmp_path / "empty.db",
        "score",
        "--data",
        str(world),
        "--as-of",
        "2025-01-20",
        "--out",
        str(tmp_path / "l.csv"),
    )
    assert r.exit_code == 3
    assert "churnpredict train" in r.output
    assert not (tmp_path / "l.csv").exists()


def test_second_run_on_the_same_output_is_refused(world, trained, tmp_path):
    out = tmp_path / "locked.csv"
    with output_lock(out):
        r = cp(trained, "score", "--data", str(world), "--as-of", "2025-01-20", "--out", str(out))
    assert r.exit_code == 4
    assert "lock" in r.output.lower()
    assert not out.exists()


def test_bad_usage_and_bad_config_exit_2(world, tmp_path):
    assert run("score", "--data", str(world)).exit_code == 2  # --out missing
    assert run("train", "--data", str(tmp_path / "nope"), "--config", str(CONFIG)).exit_code == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("label:\n  horizon_dayz: 30\n")
    r = run("train", "--data", str(world), "--config", str(bad))
    assert r.exit_code == 2 and "horizon_dayz" in r.output and "Traceback" not in r.output
    bad.write_text("label:\n  horizon_days: -3\n")
    r = run("train", "--data", str(world), "--config", str(bad))
    assert r.exit_code == 2 and "horizon_days" in r.output
    r = run(
        "score",
        "--data",
        str(world),
        "--as-of",
        "10/02/2025",
        "--out",
        str(tmp_path / "x"),
        "--config",
        str(CONFIG),
    )
    assert r.exit_code == 2 and "--as-of" in r.output


def test_models_promote_and_features(world, trained, tmp_path):
    r = cp(trained, "models")
    assert r.exit_code == 0 and "champion" in r.output
    assert cp(trained, "promote", "--version", "1").exit_code == 0
    assert cp(trained, "promote", "--version", "99").exit_code == 3
    r = cp(trained, "features", "list")
    assert r.exit_code == 0 and len(r.output.strip().splitlines()) >= 200
    out = tmp_path / "f.parquet"
    r = cp(
        trained,
        "features",
        "build",
        "--data",
        str(world),
        "--as-of",
        "2024-12-02",
        "--as-of",
        "2025-01-06",
        "--out",
        str(out),
    )
    assert r.exit_code == 0, r.output
    table = pd.read_parquet(out)
    assert set(table["as_of"].dt.strftime("%Y-%m-%d")) == {"2024-12-02", "2025-01-06"}


def test_outcomes_of_past_lists(world, trained, tmp_path):
    lists = tmp_path / "history"
    for day in ("2024-12-02", "2024-12-09", "2024-12-16"):
        r = cp(
            trained,
            "score",
            "--data",
            str(world),
            "--as-of",
            day,
            "--out",
            str(lists / f"call_list_{day}.csv"),
        )
        assert r.exit_code == 0, r.output
    r = cp(trained, "outcomes", "--lists", str(lists), "--data", str(world))
    assert r.exit_code == 0, r.output
    assert "precision" in r.output.lower()


def test_config_loads():
    cfg = load_config(CONFIG)
    assert cfg.label.horizon_days == 30


def test_docs_feature_list_is_current(tmp_path):
    """docs/features.md is generated (`make docs`); it must match the default config."""
    fresh = tmp_path / "features.md"
    assert (
        run("features", "list", "--config", str(CONFIG), "--markdown", str(fresh)).exit_code == 0
    )
    committed = CONFIG.parents[1] / "docs" / "features.md"
    assert committed.read_text(encoding="utf-8") == fresh.read_text(encoding="utf-8"), (
        "docs/features.md is stale: run `make docs`"
    )


def test_segment_new_without_new_clients_writes_an_empty_list(world, trained, tmp_path):
    # a nightly job: no client signed up in the last calls.new_client_days days -> exit 0,
    # a header-only list (the same header as a full list) and one clear line
    clients = pd.read_parquet(world / "clients.parquet")
    signup = pd.to_datetime(clients["signup_date"]).dt.normalize()
    days = pd.date_range("2025-01-01", "2025-02-20")
    quiet = [T for T in days if not ((signup >= T - pd.Timedelta(days=2)) & (signup < T)).any()]
    assert quiet, "the seeded world has no day without a signup in the two days before"
    T = str(quiet[-1].date())
    full = tmp_path / "f" / "all.csv"
    assert (
        cp(trained, "score", "--data", str(world), "--as-of", T, "--out", str(full)).exit_code == 0
    )
    out = tmp_path / "e" / "new.csv"
    env = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{trained}",
        "CHURNPREDICT_CALLS__NEW_CLIENT_DAYS": "1",
    }
    args = ["score", "--data", str(world), "--as-of", T, "--out", str(out), "--segment", "new"]
    r = run(*args, "--config", str(CONFIG), env=env)
    assert r.exit_code == 0, r.output
    assert f"No new clients at {T}" in r.output and "header only" in r.output
    header, df, _ = read_list(out)
    assert len(df) == 0
    assert header == read_list(full)[0]
    assert "risk_7d" in header
    assert not list(out.parent.glob("*.tmp*"))


def test_score_refuses_a_model_trained_for_another_label(world, trained, tmp_path):
    """A config whose label section differs from the model's: exit 2, no list."""
    out = tmp_path / "other_label.csv"
    args = ["score", "--data", str(world), "--as-of", "2025-01-20", "--out", str(out)]
    db = f"sqlite:///{trained}"
    env = {"MLFLOW_TRACKING_URI": db, "CHURNPREDICT_LABEL__HORIZON_DAYS": "21"}
    r = run(*args, "--config", str(CONFIG), env=env)
    assert r.exit_code == 2, r.output
    assert "label.horizon_days: trained 30, now 21" in r.output
    assert not out.exists() and not out.with_suffix(".html").exists()
    # another freeze definition (who is active, what a freeze is): refused the same way
    env = {"MLFLOW_TRACKING_URI": db, "CHURNPREDICT_LABEL__IDLE_DAYS": "21"}
    r = run(*args, "--config", str(CONFIG), env=env)
    assert r.exit_code == 2, r.output
    assert "label.idle_days: trained 14, now 21" in r.output
    assert not out.exists() and not out.with_suffix(".html").exists()
