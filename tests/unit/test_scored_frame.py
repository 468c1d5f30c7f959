"""The scored frame carries the feature columns the routing reads, as the config names them."""

from __future__ import annotations

import pandas as pd

from churnpredict.config import build_config, load_config
from churnpredict.pipeline import _scored_frame

from .test_features import tiny


def test_scored_frame_copies_the_configured_routing_columns():
    raw = load_config().model_dump(mode="json")
    raw["calls"]["narrow_feature"] = "campaigns__live__now"  # renamed in a config
    raw["calls"]["reached_feature"] = "contacts__reached__days_since"
    cfg = build_config(raw)
    table = pd.DataFrame(
        {
            "client_id": ["a", "b"],
            "campaigns__live__now": [2.0, 0.0],
            "contacts__reached__days_since": [3.0, float("nan")],
            "campaigns__n_campaigns__now": [9.0, 9.0],  # the default name: not read
        }
    )
    scored = _scored_frame(tiny(), table, [0.4, 0.2], pd.Timestamp("2024-02-01"), cfg)
    assert scored["campaigns__live__now"].tolist() == [2.0, 0.0]
    assert scored["contacts__reached__days_since"].iloc[0] == 3.0
    assert "campaigns__n_campaigns__now" not in scored.columns
