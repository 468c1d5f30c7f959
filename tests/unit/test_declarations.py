"""Feature declarations: the catalog they give and their structure."""

from __future__ import annotations

import json
from pathlib import Path

from churnpredict.config import load_config
from churnpredict.features.build import resolve_spec
from churnpredict.features.catalog import Feature
from churnpredict.features.declarations import (
    At,
    FeatureDecl,
    Quintile,
    declare,
    features_of,
    has_quintile,
    measures_of,
)

from .test_features import tiny

CFG = load_config()


def test_declarations_give_the_catalog_of_the_feature_table():
    """The catalog (names, descriptions, kinds, ...) is the one the engine had before the
    declarations (golden/catalog_tiny.json, written by the old make_plan), so stored
    models, reasons and docs keep working."""
    golden = Path(__file__).parent / "golden" / "catalog_tiny.json"
    before = [Feature.from_dict(f) for f in json.loads(golden.read_text())]
    decls = declare(resolve_spec(tiny(), CFG))
    assert [d.feature() for d in decls] == before
    assert all(isinstance(d, FeatureDecl) and hash(d) for d in decls)


def test_features_read_only_features_declared_before_them():
    decls = declare(resolve_spec(tiny(), CFG))
    seen: set[str] = set()
    for d in decls:
        assert set(features_of(d.value)) <= seen, d.name
        if not features_of(d.value):
            assert measures_of(d.value), d.name  # reads the data
        seen.add(d.name)
    score = next(d for d in decls if d.name == "profile__rfm_score")
    assert has_quintile(score.value) and not has_quintile(decls[0].value)
    assert isinstance(score.value.left.left, Quintile)


def test_a_measure_shared_by_features_is_one_equal_object():
    decls = {d.name: d for d in declare(resolve_spec(tiny(), CFG))}
    w7 = measures_of(decls["campaigns__paused__7d"].value)
    w30 = measures_of(decls["campaigns__paused__30d"].value)
    assert w7[0][0] == w30[0][0] and {o for _, o in w7} == {0, 7}
    assert isinstance(decls["campaigns__paused__now"].value, At)


def test_feature_modules_only_declare():
    """The feature modules hold declarations: no SQL, no NumPy, no engine (backends/)."""
    import re

    from churnpredict.features import campaigns, events, invoices, profile, spend, static

    for module in (campaigns, events, invoices, profile, spend, static):
        text = Path(module.__file__).read_text()
        assert not re.search(r"import (numpy|duckdb|pyarrow|pandas)", text), module.__name__
        assert not re.search(r"\b(SELECT|FROM|JOIN|GROUP BY)\b", text), module.__name__
        assert "backends" not in text, module.__name__
