"""The call list: columns, routing, actions, capacity, recency, hold-out, change, writing."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from churnpredict.calls import (
    CALL_LIST_COLUMNS,
    EXTRA_COLUMNS,
    build_call_list,
    find_previous_list,
    read_call_list,
    route,
    write_call_list,
)
from churnpredict.config import Config, build_config, override
from churnpredict.errors import LockedError, UsageError
from churnpredict.explain import Reason
from churnpredict.io import output_lock

AS_OF = date(2025, 3, 10)


def R(feature: str, text: str = "why", c: float = 1.0) -> Reason:
    return Reason(feature.split("__")[0], feature, c, text)


def _scored(n: int = 6, **cols) -> pd.DataFrame:
    base = {
        "client_id": [f"c{i}" for i in range(n)],
        "risk": np.linspace(0.9, 0.05, n),
        "name": [f"Client {i}" for i in range(n)],
        "account_manager": ["anna"] * n,
        "monthly_revenue": [1000.0] * n,
        "last_contact_at": pd.Timestamp("2025-03-01 10:00"),
    }
    base.update(cols)
    return pd.DataFrame(base)


def test_columns_order_and_values():
    df = _scored(3, monthly_revenue=[1000.0, None, 10.0])
    out = build_call_list(
        df,
        [[R("campaigns__paused_client__7d", "2 of 3 paused")], [], []],
        Config(),
        as_of=AS_OF,
        model_version="7",
    )
    assert list(out.columns) == CALL_LIST_COLUMNS + EXTRA_COLUMNS
    assert len(CALL_LIST_COLUMNS) == 13
    assert out["rank"].tolist() == [1, 2, 3]
    assert out["value_at_risk"].iloc[0] == pytest.approx(900.0)
    assert pd.isna(out["value_at_risk"].iloc[1])
    assert out["risk_band"].tolist() == ["high", "high", "low"]
    assert out["as_of"].unique().tolist() == ["2025-03-10"]
    assert out["model_version"].unique().tolist() == ["7"]
    assert out["client_name"].iloc[0] == "Client 0"
    assert out["reasons"].iloc[0] == "2 of 3 paused"
    assert out["last_contact_at"].iloc[0] == "2025-03-01T10:00:00"


def test_overdue_invoice_goes_to_receivables():
    df = _scored(3)
    out = build_call_list(
        df,
        [
            [R("invoices__days_overdue__now", "invoice 12 days overdue")],
            [R("campaigns__running__now"), R("invoices__overdue_amount__now")],
            [R("contacts__technical__30d"), R("campaigns__running__now")],
        ],
        Config(),
        as_of=AS_OF,
        model_version="1",
    )
    row = out.set_index("client_id")
    assert row.loc["c0", "owner_role"] == "receivables"
    assert "overdue" in row.loc["c0", "suggested_action"]
    # rules are priorities over all top reasons: money anywhere -> receivables
    assert row.loc["c1", "owner_role"] == "receivables"
    assert row.loc["c2", "owner_role"] == "technical"


def test_routing_rules_first_match_and_config():
    cfg = Config()
    assert route("invoices__paid_late__90d", cfg) == "receivables"
    assert route("campaigns__paused_low_balance__7d", cfg) == "receivables"
    assert route("contacts__ticket_inbound_technical__30d", cfg) == "technical"
    assert route("campaigns__paused_client__7d", cfg) == "account_manager"
    assert route(None, cfg) == "account_manager"
    custom = build_config(
        {
            "calls": {
                "routing": [
                    {"role": "technical", "features": ["spend__*"]},
                    {"role": "receivables", "features": ["spend__ctr*"]},
                ]
            }
        }
    )
    assert route("spend__ctr__30d", custom) == "technical"  # first rule wins
    assert route("profile__tenure_days", custom) == "account_manager"  # no rule: default


def test_low_risk_narrow_goes_to_business_development():
    df = _scored(3, risk=[0.5, 0.02, 0.02], campaigns__n_campaigns__now=[1.0, 1.0, 4.0])
    out = build_call_list(
        df, [[R("campaigns__paused_client__7d")]] * 3, Config(), as_of=AS_OF, model_version="1"
    ).set_index("client_id")
    assert out.loc["c0", "owner_role"] == "account_manager"  # at risk: keep the manager
    assert out.loc["c1", "owner_role"] == "business_development"
    assert "resale" in out.loc["c1", "suggested_action"]
    assert out.loc["c2", "owner_role"] == "account_manager"  # broad service


def test_capacity_per_owner():
    cfg = override(Config(), "calls", calls_per_owner_per_day=2)
    df = _scored(
        7,
        account_manager=["anna", "anna", "anna", "boris", "", "", "anna"],
        risk=[0.9, 0.8, 0.7, 0.6, 0.5, 0.45, 0.4],
    )
    reasons = [[R("campaigns__paused_client__7d")]] * 6 + [[R("invoices__overdue__now")]]
    out = build_call_list(df, reasons, cfg, as_of=AS_OF, model_version="1").set_index("client_id")
    assert out["in_capacity"].to_dict() == {
        "c0": True,
        "c1": True,
        "c2": False,  # anna: 2 calls a day
        "c3": True,  # boris
        "c4": True,
        "c5": True,  # unassigned -> the account_manager queue
        "c6": True,  # receivables queue, not anna's
    }


def test_recently_reached_move_down_with_note():
    df = _scored(
        4,
        risk=[0.9, 0.8, 0.7, 0.05],
        last_reached_at=[pd.Timestamp("2025-03-08 12:00"), None, pd.Timestamp("2025-01-01"), None],
    )
    out = build_call_list(df, None, Config(), as_of=AS_OF, model_version="1")
    assert out["client_id"].tolist() == ["c1", "c2", "c0", "c3"]  # end of its band
    note = out.set_index("client_id")["note"]
    assert "reached 2 days ago" in note["c0"] and note["c1"] == ""


def test_recently_reached_from_feature_column():
    df = _scored(2, risk=[0.9, 0.8], contacts__call_outbound_reached__days_since=[3.0, np.nan])
    out = build_call_list(df, None, Config(), as_of=AS_OF, model_version="1")
    assert out["client_id"].tolist() == ["c1", "c0"]


def test_sort_by_value_and_top():
    df = _scored(3, risk=[0.5, 0.4, 0.35], monthly_revenue=[100.0, 10000.0, None])
    out = build_call_list(df, None, Config(), as_of=AS_OF, model_version="1", sort="value")
    assert out["client_id"].tolist() == ["c1", "c0", "c2"]
    top = build_call_list(df, None, Config(), as_of=AS_OF, model_version="1", top=2)
    assert top["client_id"].tolist() == ["c0", "c1"] and top["rank"].tolist() == [1, 2]
    with pytest.raises(UsageError):
        build_call_list(df, None, Config(), as_of=AS_OF, model_version="1", sort="name")


def test_hold_out_reproducible_and_share():
    cfg = override(Config(), "calls", hold_out_share=0.2, hold_out_seed=3)
    n = 5000
    rng = np.random.default_rng(0)
    df = _scored(n, risk=rng.uniform(0, 1, n), account_manager=[f"m{i % 50}" for i in range(n)])
    a = build_call_list(df, None, cfg, as_of=AS_OF, model_version="1")
    b = build_call_list(
        df.sample(frac=1, random_state=1), None, cfg, as_of=AS_OF, model_version="1"
    )
    pd.testing.assert_frame_equal(a, b)  # reproducible, independent of row order
    at_risk = a["risk_band"] != "low"
    assert not a.loc[~at_risk, "hold_out"].any()
    share = a.loc[at_risk, "hold_out"].mean()
    assert 0.17 < share < 0.23
    assert not (a["hold_out"] & a["in_capacity"]).any()
    assert (a.loc[a["hold_out"], "note"].str.contains("control group")).all()
    other_day = build_call_list(df, None, cfg, as_of=date(2025, 3, 11), model_version="1")
    assert (
        other_day.set_index("client_id")["hold_out"] != a.set_index("client_id")["hold_out"]
    ).any()
    off = build_call_list(df, None, Config(), as_of=AS_OF, model_version="1")
    assert not off["hold_out"].any()


def test_change_against_previous_list():
    prev = pd.DataFrame({"client_id": ["c0", "c1", "c2"], "risk": [0.5, 0.9, 0.3]})
    df = _scored(4, risk=[0.8, 0.6, 0.31, 0.2])
    out = build_call_list(df, None, Config(), as_of=AS_OF, model_version="1", previous=prev)
    ch = out.set_index("client_id")["change"].to_dict()
    assert ch == {"c0": "up", "c1": "down", "c2": "same", "c3": "new"}
    first = build_call_list(df, None, Config(), as_of=AS_OF, model_version="1")
    assert set(first["change"]) == {""}


def test_russian_actions_and_notes():
    cfg = override(Config(), "calls", language="ru", hold_out_share=0.99)
    out = build_call_list(
        _scored(1), [[R("invoices__days_overdue__now")]], cfg, as_of=AS_OF, model_version="1"
    )
    assert "счёт" in out["suggested_action"].iloc[0]
    assert "контрольная группа" in out["note"].iloc[0]


def test_write_split_and_previous(tmp_path):
    cfg = override(Config(), "calls", separator=";")
    df = _scored(
        4,
        account_manager=["anna", "борис", "", "anna"],
        name=["=cmd|' /C calc'!A0", "b", "c", "d"],
    )
    reasons = [[R("invoices__days_overdue__now")], [], [], [R("contacts__technical__30d")]]
    lst = build_call_list(df, reasons, cfg, as_of=AS_OF, model_version="1")
    out = tmp_path / "calls_2025-03-10.csv"
    paths = write_call_list(lst, out, cfg, split_by="account_manager")
    assert paths[0] == out
    assert sorted(p.name for p in paths[1:]) == ["anna.csv", "unassigned.csv", "борис.csv"]
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    assert raw.decode("utf-8-sig").splitlines()[0].split(";") == CALL_LIST_COLUMNS + EXTRA_COLUMNS
    assert "'=cmd" in raw.decode("utf-8-sig")
    back = read_call_list(out)
    assert back["client_id"].tolist() == lst["client_id"].tolist()
    assert (
        len(read_call_list(paths[1]))
        + len(read_call_list(paths[2]))
        + len(read_call_list(paths[3]))
        == 4
    )
    roles = write_call_list(lst, out, cfg, split_by="owner_role")
    assert {p.name for p in roles[1:]} == {
        "receivables.csv",
        "account_manager.csv",
        "technical.csv",
    }
    # the next day finds this list as the previous one, not the per-owner files
    prev = find_previous_list(tmp_path / "calls_2025-03-11.csv", date(2025, 3, 11))
    assert prev is not None and len(prev) == 4
    assert find_previous_list(out, AS_OF) is None  # same day: not "previous"


def test_write_refuses_while_locked(tmp_path):
    out = tmp_path / "calls.csv"
    lst = build_call_list(_scored(2), None, Config(), as_of=AS_OF, model_version="1")
    write_call_list(lst, out, Config())
    before = out.read_bytes()
    with output_lock(out), pytest.raises(LockedError):
        write_call_list(lst.head(1), out, Config())
    assert out.read_bytes() == before
