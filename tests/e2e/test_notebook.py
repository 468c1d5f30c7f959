"""The exploration notebook: saved clean, and runs top to bottom on a small simulated world."""

from __future__ import annotations

import re
import shutil
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "01-explore-and-evaluate.ipynb"
CONFIG = ROOT / "configs" / "default.yaml"
CELL_TIMEOUT = 300  # seconds per cell; the whole notebook takes ~40-60 s on 2 cores


def _text(cell) -> str:
    """Return a code cell's stream and text/plain outputs as one string."""
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif out["output_type"] in ("execute_result", "display_data"):
            parts.append(out["data"].get("text/plain", ""))
    return "\n".join(parts)


def _tagged(nb, tag: str):
    cells = [c for c in nb.cells if tag in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"expected one cell tagged {tag!r}, found {len(cells)}"
    return cells[0]


def test_notebook_is_saved_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 10
    dirty = [i for i, c in enumerate(code) if c.outputs or c.execution_count is not None]
    assert not dirty, f"code cells {dirty} carry outputs: clear them before committing"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    first = code[0]
    assert "parameters" in first.metadata.get("tags", [])
    for var in ("CHURNPREDICT_NB_DATA", "CHURNPREDICT_NB_CLIENTS"):
        assert var in first.source
    for tag in ("metrics", "backtest", "reasons"):
        _tagged(nb, tag)


@pytest.fixture(scope="module")
def small_world(tmp_path_factory) -> Path:
    from churnpredict.config import load_config, override
    from churnpredict.simulate import simulate

    cfg = load_config(CONFIG, environ={})
    sim = override(cfg, "simulate", clients=1500, days=450, seed=7).simulate
    out = tmp_path_factory.mktemp("nbworld") / "data"
    simulate(sim, out, label_cfg=cfg.label)
    return out


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(small_world, tmp_path, monkeypatch):
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient

    # "python3" runs `python -m ipykernel_launcher`; jupyter_client swaps a bare "python"
    # for sys.executable, so the kernel is the interpreter running the tests (the venv's).
    argv = KernelSpecManager().get_kernel_spec("python3").argv
    assert argv[0] in ("python", "python3", sys.executable), argv

    work = tmp_path / "notebooks"
    work.mkdir()
    copy = work / NOTEBOOK.name
    shutil.copy(NOTEBOOK, copy)
    nb = nbformat.read(copy, as_version=4)
    monkeypatch.setenv("CHURNPREDICT_NB_DATA", str(small_world))
    monkeypatch.setenv("CHURNPREDICT_NB_CONFIG", str(CONFIG))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'must-not-exist.db'}")
    monkeypatch.delenv("MPLBACKEND", raising=False)

    t0 = time.perf_counter()
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        startup_timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(work)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    seconds = time.perf_counter() - t0
    print(f"notebook executed in {seconds:.0f}s")

    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o["output_type"] == "error"]  # fmt: skip
    assert not errors
    setup = _text(nb.cells[2])
    assert f"kernel: {sys.executable}" in setup
    assert str(small_world.resolve()) in setup

    metrics = _text(_tagged(nb, "metrics"))
    for word in ("model", "p_true", "paused_rule", "logistic", "precision_at_k", "recall_at_k"):
        assert word in metrics, word
    assert "the model catches" in metrics

    backtest = _text(_tagged(nb, "backtest"))
    assert "2 cuts" in backtest and "Pooled" in backtest and "p_true" in backtest

    reasons = _text(_tagged(nb, "reasons"))
    assert len(re.findall(r"^\d\. ", reasons, flags=re.M)) == 5
    en = re.findall(r"^   EN: (.+)$", reasons, flags=re.M)
    ru = re.findall(r"^   RU: (.+)$", reasons, flags=re.M)
    assert len(en) == len(ru) == 5
    assert all(re.search("[а-яА-Я]", line) for line in ru)

    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]  # fmt: skip
    assert len(images) >= 4

    # in memory only: nothing written beside the notebook, no MLflow store
    assert sorted(p.name for p in work.iterdir()) == [NOTEBOOK.name]
    assert not (tmp_path / "must-not-exist.db").exists()


def _run_setup(work: Path) -> nbformat.NotebookNode:
    """Execute only the parameters and setup cells of a copy of the notebook in ``work``."""
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells = nb.cells[:3]
    NotebookClient(
        nb, timeout=CELL_TIMEOUT, startup_timeout=120, kernel_name="python3",
        resources={"metadata": {"path": str(work)}},
    ).execute()  # fmt: skip
    return nb


@pytest.mark.slow
def test_notebook_simulates_a_world_without_demo_data(tmp_path, monkeypatch):
    work = tmp_path / "notebooks"
    work.mkdir()  # no ../data/demo beside it
    monkeypatch.delenv("CHURNPREDICT_NB_DATA", raising=False)
    monkeypatch.setenv("CHURNPREDICT_NB_CONFIG", str(CONFIG))
    monkeypatch.setenv("CHURNPREDICT_NB_CLIENTS", "300")
    monkeypatch.setenv("CHURNPREDICT_NB_DAYS", "120")
    setup = _text(_run_setup(work).cells[2])
    assert "No demo data: simulating 300 clients × 120 days" in setup
    data = Path(re.search(r"^data:\s+(.+)$", setup, flags=re.M).group(1).strip())
    assert data.is_dir() and (data / "clients.parquet").exists()
    assert not data.is_relative_to(tmp_path)  # a temp folder, not the working copy
    shutil.rmtree(data.parent, ignore_errors=True)


@pytest.mark.slow
def test_notebook_stops_on_a_missing_data_dir(tmp_path, monkeypatch):
    from nbclient.exceptions import CellExecutionError

    monkeypatch.setenv("CHURNPREDICT_NB_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("CHURNPREDICT_NB_CONFIG", str(CONFIG))
    with pytest.raises(CellExecutionError, match="FileNotFoundError"):
        _run_setup(tmp_path)
