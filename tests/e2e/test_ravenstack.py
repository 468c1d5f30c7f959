"""Bring-your-own data: the RavenStack SaaS tables with the shipped configs/ravenstack.yaml.

Run as a user's cron job would: the installed ``churnpredict`` script, from another
directory (its own MLflow store lands there), ``--config`` pointing at the shipped file.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from .test_cli import CONTRACT_COLUMNS  # the contract's 13 columns, written out once

ROOT = Path(__file__).resolve().parents[2]
RAVEN = ROOT.parent / "shared" / "data" / "ravenstack"
CONFIG = ROOT / "configs" / "ravenstack.yaml"
CLI = Path(sys.executable).parent / "churnpredict"
AS_OF = "2025-01-01"  # the day after the data's last day: the morning list
pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("ravenstack"),  # one worker: train once for the three tests
    pytest.mark.skipif(
        not RAVEN.exists(), reason="../shared/data/ravenstack is not beside the repo"
    ),
]


def churnpredict(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the installed CLI in ``cwd`` with the shipped RavenStack config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CHURNPREDICT_"))}
    return subprocess.run(
        [str(CLI), *args, "--data", str(RAVEN), "--config", str(CONFIG)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> tuple[subprocess.CompletedProcess, pd.DataFrame]:
    """Validate, train and score from a fresh directory; return train's run and the list."""
    cwd = tmp_path_factory.mktemp("cron")
    v = churnpredict(cwd, "validate")
    assert v.returncode == 0, v.stdout + v.stderr
    t = churnpredict(cwd, "train")
    assert t.returncode == 0, t.stdout + t.stderr
    s = churnpredict(cwd, "score", "--as-of", AS_OF, "--out", "lists/call_list.csv")
    assert s.returncode == 0, s.stdout + s.stderr
    assert (cwd / "mlflow.db").exists()  # the default store of the directory it ran in
    raw = (cwd / "lists" / "call_list.csv").read_bytes().decode("utf-8-sig")
    return t, pd.read_csv(io.StringIO(raw), dtype=str, keep_default_na=False)


def test_train_prints_a_test_fold_metric(scored):
    train, _ = scored
    out = train.stdout
    assert "Test fold" in out
    header = next(line.split() for line in out.splitlines() if line.split()[:1] == ["pr_auc"])
    model = next(line.split() for line in out.splitlines() if line.split()[:1] == ["model"])
    pr_auc = float(model[1 + header.index("pr_auc")])
    assert 0.0 < pr_auc <= 1.0
    assert "Registered churnpredict-ravenstack version 1" in out


def test_call_list_has_the_contract_columns_and_plain_reasons(scored):
    _, df = scored
    assert list(df.columns[: len(CONTRACT_COLUMNS)]) == CONTRACT_COLUMNS
    assert len(df) > 100
    assert df["client_id"].str.match(r"^A-[0-9a-f]{6}$").all()
    assert (df["as_of"] == AS_OF).all()
    assert df["rank"].astype(int).tolist() == list(range(1, len(df) + 1))
    risk = df["risk"].astype(float)
    assert risk.between(0, 1).all() and risk.is_monotonic_decreasing
    for text in df["reasons"]:
        assert text.strip(), "an empty reasons cell"
        for bad in ("nan", "None", "events event", "support_tickets", "churn_events"):
            assert not re.search(rf"\b{re.escape(bad)}\b", text), text
        # the nouns speak, not table names: never "subscriptions event", "accounts event"
        assert not re.search(r"\b(accounts|subscriptions|tickets) events?\b", text), text
        parts = text.split("; ")
        # top_reasons is 3: more parts would mean a "; " inside one reason
        assert 1 <= len(parts) <= 3, text
        assert all(p and p == p.strip() and not p.endswith((";", ",")) for p in parts), text


def test_reasons_match_the_raw_rows_before_the_as_of_date(scored):
    _, df = scored
    t = pd.Timestamp(AS_OF)
    subs = pd.read_parquet(RAVEN / "subscriptions.parquet")
    subs = subs[pd.to_datetime(subs["start_date"]) < t]
    days = (t - pd.to_datetime(subs.groupby("account_id")["start_date"].max())).dt.days
    checked = 0
    for cid, text in zip(df["client_id"], df["reasons"], strict=True):
        m = re.search(r"last subscription (\d+) days? ago", text)
        if m:
            assert int(m.group(1)) == days[cid], (cid, text)
            checked += 1
        m = re.search(r"no activity of any kind for (\d+) days", text)
        if m:  # the idle rule freezes at 90 days: an active account is idle for less
            assert int(m.group(1)) <= 90 and days[cid] >= int(m.group(1)), (cid, text)
    assert checked >= 5
    # the idle rule's population: an account with a subscription start in the 89 days
    # before the as-of date is active, so on the list
    recent = subs[pd.to_datetime(subs["start_date"]) > t - pd.Timedelta(days=90)]
    assert set(df["client_id"]) >= set(recent["account_id"])
