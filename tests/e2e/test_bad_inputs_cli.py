"""Every defect of the bad-input corpus: validate, train and score exit 2, name the file
and column, and write nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from churnpredict.cli import app
from tests.bad_corpus import make_bad_cases

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return make_bad_cases(tmp_path_factory.mktemp("bad"))


def test_corpus_has_at_least_40_cases(cases):
    assert len(cases) >= 40


def _outputs(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".lock")]


def test_every_bad_case_exits_2_names_file_and_column_and_writes_nothing(cases, tmp_path):
    runner = CliRunner()
    env = {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    failures = []
    for name, data, file, column in cases:
        out = tmp_path / name
        out.mkdir()
        before = {p: p.stat().st_mtime_ns for p in data.rglob("*") if p.is_file()}
        commands = {
            "validate": ["validate", "--data", str(data)],
            "train": ["train", "--data", str(data), "--reports", str(out / "reports")],
            "score": [
                "score",
                "--data",
                str(data),
                "--as-of",
                "2024-03-01",
                "--out",
                str(out / "call_list.csv"),
            ],
        }
        for cmd, args in commands.items():
            r = runner.invoke(app, args, env=env)
            text = r.output
            problems = []
            if r.exit_code != 2:
                problems.append(f"exit {r.exit_code}")
            if file not in text:
                problems.append(f"file {file!r} not named")
            if column and column not in text:
                problems.append(f"column {column!r} not named")
            if "Traceback" in text:
                problems.append("traceback")
            if problems:
                failures.append(f"{name} / {cmd}: {', '.join(problems)}\n{text[-600:]}")
        if _outputs(out):
            failures.append(f"{name}: wrote {_outputs(out)}")
        after = {p: p.stat().st_mtime_ns for p in data.rglob("*") if p.is_file()}
        if before != after:
            failures.append(f"{name}: the input directory was changed")
    assert not failures, "\n\n".join(failures[:10])
