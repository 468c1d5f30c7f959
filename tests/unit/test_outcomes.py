"""Outcomes: past lists joined with later freezes, precision at capacity, called vs control."""

from __future__ import annotations

import pandas as pd
import pytest

from churnpredict.calls import build_call_list, write_call_list
from churnpredict.config import Config, override
from churnpredict.outcomes import evaluate_outcomes, newcombe_diff, wilson


def _list(day: str, rows: list[tuple[str, float, bool, bool]]) -> pd.DataFrame:
    # (client_id, risk, in_capacity, hold_out), already in rank order
    return pd.DataFrame(
        {
            "rank": range(1, len(rows) + 1),
            "client_id": [r[0] for r in rows],
            "risk": [r[1] for r in rows],
            "risk_band": [
                "high" if r[1] >= 0.3 else "medium" if r[1] >= 0.1 else "low" for r in rows
            ],
            "as_of": day,
            "in_capacity": [r[2] for r in rows],
            "hold_out": [r[3] for r in rows],
        }
    )


@pytest.fixture
def history(tmp_path):
    d1 = _list(
        "2025-01-06",
        [
            ("a", 0.9, True, False),
            ("b", 0.8, False, True),
            ("c", 0.5, True, False),
            ("d", 0.2, False, True),
            ("e", 0.05, False, False),
        ],
    )
    d2 = _list(
        "2025-01-13",
        [
            ("b", 0.9, True, False),
            ("a", 0.7, True, False),
            ("c", 0.4, False, True),
            ("e", 0.05, False, False),
        ],
    )
    d3 = _list("2025-03-01", [("a", 0.9, True, False)])  # horizon not over yet
    d1.to_csv(tmp_path / "calls_2025-01-06.csv", index=False, encoding="utf-8-sig")
    d2.to_csv(tmp_path / "calls_2025-01-13.csv", index=False, sep=";")
    d3.to_csv(tmp_path / "calls_2025-03-01.csv", index=False)
    (tmp_path / "notes.csv").write_text("something,else\n1,2\n")  # not a list: skipped
    freezes = pd.DataFrame(
        {
            "client_id": ["b", "d", "a", "c", "e"],
            "frozen_at": pd.to_datetime(
                ["2025-01-20", "2025-02-01", "2025-01-06", "2025-03-01", "2025-02-20"]
            ),
            "unfrozen_at": pd.NaT,
        }
    )
    return tmp_path, freezes


def test_hand_made_history(history):
    folder, freezes = history
    rep = evaluate_outcomes(
        folder, freezes, horizon_days=30, capacity=2, observed_until="2025-02-28"
    )
    assert rep.pending == ["2025-03-01"]
    day = rep.per_day.set_index("as_of")
    # 2025-01-06, window (Jan 6, Feb 5]: b and d froze; a's freeze is at T itself (not after)
    assert day.loc["2025-01-06", "frozen"] == 2
    assert day.loc["2025-01-06", "at_capacity"] == 2  # a and c (b is held out)
    assert day.loc["2025-01-06", "frozen_at_capacity"] == 0
    assert day.loc["2025-01-06", "held_out_frozen"] == 2
    # 2025-01-13, window (Jan 13, Feb 12]: b froze; a did not; c is held out, froze Mar 1 (no)
    assert day.loc["2025-01-13", "frozen_at_capacity"] == 1
    assert day.loc["2025-01-13", "precision_at_capacity"] == pytest.approx(0.5)
    cv = rep.called_vs_held_out
    assert (cv.n_a, cv.frozen_a, cv.n_b, cv.frozen_b) == (4, 1, 3, 2)
    itt = rep.at_risk_itt
    assert (itt.n_a, itt.frozen_a) == (4, 1)
    text = rep.text()
    assert "precision at capacity 2" in text and "Pending" in text and "Newcombe" in text


def test_without_hold_out_columns(tmp_path):
    pd.DataFrame(
        {"rank": [1, 2], "client_id": ["x", "y"], "risk": [0.5, 0.4], "as_of": "2025-01-01"}
    ).to_csv(tmp_path / "l.csv", index=False)
    fr = pd.DataFrame({"client_id": ["y"], "frozen_at": [pd.Timestamp("2025-01-10")]})
    rep = evaluate_outcomes(tmp_path, fr, 30, 1, observed_until="2025-06-01")
    assert rep.per_day["frozen_at_capacity"].tolist() == [0]
    assert rep.called_vs_held_out.n_b == 0
    assert "not enough rows" in rep.text()


def test_reads_lists_written_by_calls(tmp_path):
    cfg = override(Config(), "calls", separator=";", hold_out_share=0.5)
    scored = pd.DataFrame(
        {"client_id": [f"c{i}" for i in range(40)], "risk": [0.5] * 40, "account_manager": "m"}
    )
    lst = build_call_list(scored, None, cfg, as_of="2025-01-01", model_version="1")
    write_call_list(lst, tmp_path / "calls.csv", cfg, split_by="owner_role")
    fr = pd.DataFrame(
        {
            "client_id": lst.loc[lst["hold_out"], "client_id"],
            "frozen_at": pd.Timestamp("2025-01-05"),
        }
    )
    rep = evaluate_outcomes(tmp_path, fr, 30, 10, observed_until="2025-03-01")
    assert rep.called_vs_held_out.rate_b == 1.0
    assert rep.called_vs_held_out.n_b == int(lst["hold_out"].sum())
    assert rep.called_vs_held_out.frozen_a == 0
    d, lo, hi = rep.called_vs_held_out.diff
    assert d == -1.0 and hi < 0


def test_wilson_and_newcombe_known_values():
    lo, hi = wilson(10, 100)
    assert lo == pytest.approx(0.0552, abs=1e-3) and hi == pytest.approx(0.1744, abs=1e-3)
    d, lo, hi = newcombe_diff(56, 70, 48, 80)  # Newcombe (1998), example: 0.2 [0.0524, 0.3339]
    assert d == pytest.approx(0.2)
    assert lo == pytest.approx(0.0524, abs=1e-3) and hi == pytest.approx(0.3339, abs=1e-3)


def test_resale_calls_are_not_counted_as_retention_calls(history):
    folder, freezes = history
    d = pd.read_csv(folder / "calls_2025-01-06.csv", encoding="utf-8-sig")
    d["owner_role"] = "account_manager"
    d.loc[d["client_id"] == "e", ["owner_role", "in_capacity"]] = ["business_development", True]
    d.to_csv(folder / "calls_2025-01-06.csv", index=False)
    rep = evaluate_outcomes(
        folder, freezes, horizon_days=30, capacity=2, observed_until="2025-02-28"
    )
    cv = rep.called_vs_held_out
    assert (cv.n_a, cv.frozen_a) == (4, 1)  # as without the resale row (e is not counted)
    assert rep.per_day.set_index("as_of").loc["2025-01-06", "called"] == 2
