"""One default config: the shipped default.yaml applies wherever the command runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from churnpredict.config import DEFAULT_CONFIG, Config, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_repository_copy_is_the_shipped_file():
    """configs/default.yaml (what people read and edit) equals the package data file."""
    assert DEFAULT_CONFIG.name == "default.yaml"
    assert DEFAULT_CONFIG.parent == Path(sys.modules["churnpredict"].__file__).parent
    assert (ROOT / "configs" / "default.yaml").read_bytes() == DEFAULT_CONFIG.read_bytes()


def test_without_config_the_shipped_default_applies_anywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ here
    cfg = load_config(None, environ={})
    assert cfg == load_config(ROOT / "configs" / "default.yaml", environ={})
    assert cfg != Config()  # not the smaller built-in pydantic defaults


def test_a_configs_folder_in_the_working_directory_is_not_picked_up(tmp_path, monkeypatch):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "default.yaml").write_text("label:\n  horizon_days: 7\n")
    monkeypatch.chdir(tmp_path)
    assert load_config(None, environ={}).label.horizon_days == 30


def test_feature_list_outside_the_repository_is_the_full_one(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "churnpredict", "features", "list"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    inside = subprocess.run(
        [sys.executable, "-m", "churnpredict", "features", "list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    from churnpredict.pipeline import feature_catalog

    assert out.stdout == inside.stdout
    smaller = len(feature_catalog(Config()))  # what ran outside the repository before
    assert len(out.stdout.splitlines()) == len(feature_catalog(load_config(None, environ={})))
    assert len(out.stdout.splitlines()) > 2 * smaller
    assert "the shipped default" in out.stderr


def test_event_table_path_must_stay_inside_the_data_directory():
    import pytest

    from churnpredict.config import build_config
    from churnpredict.errors import ConfigError

    for bad in ("/etc/passwd", "../other/events.csv", "a/../../b.csv"):
        raw = {"data": {"event_tables": {"logins": {"path": bad}}}}
        with pytest.raises(ConfigError, match="event_tables.*path|inside the data directory"):
            build_config(raw)
    ok = build_config({"data": {"event_tables": {"logins": {"path": "logs/logins.csv"}}}})
    assert ok.data.event_tables["logins"].path == "logs/logins.csv"


def test_a_short_config_file_keeps_the_shipped_feature_sources(tmp_path):
    """A file that only changes the windows still builds the shipped event features."""
    from churnpredict.pipeline import feature_catalog

    shipped = load_config(None, environ={})
    short = tmp_path / "short.yaml"
    short.write_text("features:\n  windows: [14, 45]\nlabel:\n  horizon_days: 21\n")
    cfg = load_config(short, environ={})
    assert cfg.features.windows == [14, 45]
    assert cfg.features.sources == shipped.features.sources
    families = {f.family for f in feature_catalog(cfg)}
    assert {"contacts", "spend", "activity"} <= families
    no_features = tmp_path / "no_features.yaml"
    no_features.write_text("label:\n  horizon_days: 21\n")
    assert load_config(no_features, environ={}).features.sources == shipped.features.sources
    # a file that names its sources keeps exactly those (configs/cdnow.yaml: none)
    none = tmp_path / "none.yaml"
    none.write_text("features:\n  sources: {}\n")
    assert load_config(none, environ={}).features.sources == {}
    assert load_config(ROOT / "configs" / "cdnow.yaml", environ={}).features.sources == {}
