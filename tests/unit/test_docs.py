"""The contract and the call-list reference ship with the project, and stay true."""

from __future__ import annotations

from pathlib import Path

import pytest

from churnpredict.calls import CALL_LIST_COLUMNS, EXTRA_COLUMNS, RISK_HELPERS

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "DATA_CONTRACT.md"


def test_docs_contract_equals_the_shared_contract():
    if not SHARED.exists():
        pytest.skip("../shared/DATA_CONTRACT.md is not beside the repo")
    assert (ROOT / "docs" / "DATA_CONTRACT.md").read_text(encoding="utf-8") == SHARED.read_text(
        encoding="utf-8"
    ), "docs/DATA_CONTRACT.md differs from ../shared/DATA_CONTRACT.md: copy it over"


def test_call_list_reference_names_every_column_in_order():
    text = (ROOT / "docs" / "call_list.md").read_text(encoding="utf-8")
    contract = (ROOT / "docs" / "DATA_CONTRACT.md").read_text(encoding="utf-8")
    pos = [text.index(f"`{c}`") for c in CALL_LIST_COLUMNS + RISK_HELPERS + EXTRA_COLUMNS]
    assert pos == sorted(pos)
    for c in CALL_LIST_COLUMNS + RISK_HELPERS + EXTRA_COLUMNS:
        assert c in contract, c


def test_readme_points_to_the_shipped_docs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/DATA_CONTRACT.md" in readme and "docs/call_list.md" in readme
    assert "../shared/DATA_CONTRACT.md" not in readme
