"""The call list: columns, routing by evidence, actions, capacity per person, recency,
hold-out, change, number formats, writing, and the list-quality measures."""

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
    list_quality,
    names_pause,
    read_call_list,
    reason_age_days,
    risk_decimals,
    route_by_evidence,
    write_call_list,
)
from churnpredict.config import Config, override
from churnpredict.errors import DataError, LockedError, UsageError
from churnpredict.explain import Reason
from churnpredict.io import output_lock

AS_OF = date(2025, 3, 10)


def R(feature: str, text: str = "why", c: float = 1.0, topic: str = "") -> Reason:
    return Reason(feature.split("__")[0], feature, c, text, topic)


def _facts(n: int, **cols) -> pd.DataFrame:
    """Facts for clients c0..c(n-1): nothing known unless given."""
    base = {"client_id": [f"c{i}" for i in range(n)]}
    for col in (
        "running",
        "n_campaigns",
        "overdue_n",
        "overdue_days",
        "overdue_amount",
        "money_halt_days",
        "technical_days",
        "complaint_days",
        "halt_days",
    ):
        base[col] = [np.nan] * n
    base.update(cols)
    return pd.DataFrame(base)


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


def test_routing_by_evidence_rules():
    cfg = Config()
    f = _facts(
        7,
        overdue_n=[1, 0, 0, 0, 0, 0, 0],
        money_halt_days=[np.nan, 3, np.nan, np.nan, np.nan, np.nan, np.nan],
        technical_days=[2, np.nan, 5, 40, np.nan, np.nan, np.nan],
        running=[0, 0, 1, 1, 1, 1, 0],
        n_campaigns=[1, 1, 1, 1, 1, 1, 1],
        complaint_days=[np.nan, np.nan, np.nan, np.nan, np.nan, 6, np.nan],
    )
    band = np.array(["high", "high", "high", "low", "low", "low", "low"], dtype=object)
    roles = route_by_evidence(f, band, cfg).tolist()
    assert roles[0] == "receivables"  # overdue invoice wins over a technical request
    assert roles[1] == "receivables"  # the system paused for money, still paused
    assert roles[2] == "technical"  # a technical request 5 days ago
    assert roles[3] == "business_development"  # ticket 40 days ago is not recent
    assert roles[4] == "business_development"  # healthy, running, narrow
    assert roles[5] == "account_manager"  # complaint 6 days ago: no resale
    assert roles[6] == "account_manager"  # nothing running: no resale


def test_no_payment_without_debt_is_not_receivables():
    # paid every invoice, nothing overdue, paused over results: the account manager
    f = _facts(1, overdue_n=[0], running=[0], n_campaigns=[1], halt_days=[9])
    roles = route_by_evidence(f, np.array(["high"], dtype=object), Config())
    assert roles.tolist() == ["account_manager"]
    # without facts nobody is sent anywhere but the account manager
    assert route_by_evidence(None, np.array(["high", "low"], dtype=object), Config()).tolist() == [
        "account_manager",
        "account_manager",
    ]


def test_technical_needs_the_model_to_weigh_the_request():
    f = _facts(2, technical_days=[3, 3], running=[1, 1], n_campaigns=[3, 3])
    band = np.array(["high", "high"], dtype=object)
    roles = route_by_evidence(f, band, Config(), technical_reason=np.array([True, False]))
    assert roles.tolist() == ["technical", "account_manager"]


def test_technical_days_and_narrow_from_config():
    f = _facts(2, technical_days=[20, np.nan], running=[1, 1], n_campaigns=[1, 3])
    band = np.array(["high", "low"], dtype=object)
    assert route_by_evidence(f, band, Config()).tolist() == ["account_manager", "account_manager"]
    cfg = override(Config(), "calls", technical_days=30, narrow_max=3)
    assert route_by_evidence(f, band, cfg).tolist() == ["technical", "business_development"]


def test_receivables_rows_show_the_money_evidence_and_action():
    df = _scored(2)
    f = _facts(
        2,
        overdue_n=[1, 0],
        overdue_days=[12, np.nan],
        overdue_amount=[300.0, np.nan],
        money_halt_days=[np.nan, 4],
        halt_reason=[None, "low_balance"],
    )
    out = build_call_list(
        df,
        [[R("campaigns__running__now", "nothing has run for 9 days", topic="state")]] * 2,
        Config(),
        as_of=AS_OF,
        model_version="1",
        facts=f,
    ).set_index("client_id")
    assert out.loc["c0", "owner_role"] == "receivables"
    assert out.loc["c0", "reasons"].startswith("invoice 12 days overdue, 300 outstanding")
    assert "overdue" in out.loc["c0", "suggested_action"]
    assert out.loc["c1", "reasons"].startswith("campaigns paused by the system 4 days ago")
    assert "low balance" in out.loc["c1", "suggested_action"]


def test_low_risk_narrow_goes_to_business_development():
    df = _scored(3, risk=[0.5, 0.02, 0.02])
    f = _facts(3, running=[1, 1, 4], n_campaigns=[1, 1, 4], conv_now=[50.0] * 3)
    out = build_call_list(
        df,
        [[R("campaigns__paused_client__7d")]] * 3,
        Config(),
        as_of=AS_OF,
        model_version="1",
        facts=f,
    ).set_index("client_id")
    assert out.loc["c0", "owner_role"] == "account_manager"  # at risk: keep the manager
    assert out.loc["c1", "owner_role"] == "business_development"
    assert "resale" in out.loc["c1", "suggested_action"]
    assert out.loc["c1", "reasons"] == (
        "one campaign running: room to grow; 50 conversions in the last 30 days"
    )
    assert out.loc["c2", "owner_role"] == "account_manager"  # broad service


def test_capacity_per_owner():
    cfg = override(Config(), "calls", calls_per_owner_per_day=2)
    df = _scored(
        7,
        account_manager=["anna", "anna", "anna", "boris", "", "", "anna"],
        risk=[0.9, 0.8, 0.7, 0.6, 0.5, 0.45, 0.4],
    )
    reasons = [[R("campaigns__paused_client__7d")]] * 7
    f = _facts(7, overdue_n=[0, 0, 0, 0, 0, 0, 1])
    out = build_call_list(df, reasons, cfg, as_of=AS_OF, model_version="1", facts=f)
    out = out.set_index("client_id")
    assert out["owner"].to_dict() == {
        "c0": "anna",
        "c1": "anna",
        "c2": "anna",
        "c3": "boris",
        "c4": "account_manager",
        "c5": "account_manager",
        "c6": "receivables",
    }
    assert out["in_capacity"].to_dict() == {
        "c0": True,
        "c1": True,
        "c2": False,  # anna: 2 calls a day
        "c3": True,  # boris
        "c4": True,
        "c5": True,  # unassigned -> the account_manager queue
        "c6": True,  # receivables queue, not anna's
    }


def test_capacity_never_below_min_risk_and_summary_counts():
    cfg = override(Config(), "calls", calls_per_owner_per_day=10, min_risk=0.2)
    df = _scored(4, risk=[0.5, 0.3, 0.19, 0.01])
    out = build_call_list(df, None, cfg, as_of=AS_OF, model_version="1")
    assert out["in_capacity"].tolist() == [True, True, False, False]


def test_resale_rows_fill_business_development_calls_below_min_risk():
    # resale goes to healthy clients, all below min_risk: the floor must not leave the
    # business development team's calls unused (account-manager rows keep the floor)
    cfg = override(Config(), "calls", min_risk=0.05, calls_per_day={"business_development": 2})
    df = _scored(4, risk=[0.03, 0.02, 0.01, 0.01])
    f = _facts(4, running=[1, 1, 1, 0], n_campaigns=[1, 1, 1, 1])
    out = build_call_list(df, None, cfg, as_of=AS_OF, model_version="1", facts=f)
    out = out.set_index("client_id")
    resale = out["owner_role"] == "business_development"
    assert resale.tolist() == [True, True, True, False]  # c3: nothing running
    assert out["in_capacity"].tolist() == [True, True, False, False]  # 2 calls; c3 < floor


def test_staff_table_splits_shared_roles_among_people():
    cfg = Config()
    n = 7
    df = _scored(n, risk=np.linspace(0.9, 0.3, n), account_manager=["anna"] * n)
    f = _facts(n, overdue_n=[1] * 6 + [0])
    staff = pd.DataFrame(
        {
            "name": ["Rita", "Roman", "anna"],
            "role": ["receivables", "receivables", "account_manager"],
            "calls_per_day": [2, 3, 0],
        }
    )
    out = build_call_list(df, None, cfg, as_of=AS_OF, model_version="1", facts=f, staff=staff)
    recv = out[out["owner_role"] == "receivables"]
    assert set(recv["owner"]) == {"Rita", "Roman"}
    inside = recv[recv["in_capacity"]]
    assert inside["owner"].value_counts().to_dict() == {"Roman": 3, "Rita": 2}
    assert not recv["in_capacity"].iloc[-1]  # 6 rows, 5 calls
    am = out[out["owner_role"] == "account_manager"]
    assert am["owner"].tolist() == ["anna"] and not am["in_capacity"].any()  # anna: 0 calls


def test_shared_role_capacity_from_config_without_staff():
    cfg = override(Config(), "calls", calls_per_day={"receivables": 2})
    df = _scored(3, risk=[0.9, 0.8, 0.7])
    f = _facts(3, overdue_n=[1, 1, 1])
    out = build_call_list(df, None, cfg, as_of=AS_OF, model_version="1", facts=f)
    assert out["owner"].tolist() == ["receivables"] * 3
    assert out["in_capacity"].tolist() == [True, True, False]


def test_helper_columns_and_risk_helpers():
    df = _scored(2, phone=["+7 900", None], email=["a@b.c", ""], segment=["key", "smb"])
    df["risk_7d"] = [0.1, 0.01]
    df["risk_90d"] = [0.95, 0.2]
    out = build_call_list(df, None, Config(), as_of=AS_OF, model_version="1")
    assert list(out.columns) == CALL_LIST_COLUMNS + ["risk_7d", "risk_90d"] + EXTRA_COLUMNS
    assert out["phone"].tolist() == ["+7 900", ""]
    assert out["segment"].tolist() == ["key", "smb"]
    assert out["monthly_revenue"].tolist() == [1000.0, 1000.0]


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
        _scored(1),
        [[R("invoices__days_overdue__now")]],
        cfg,
        as_of=AS_OF,
        model_version="1",
        facts=_facts(1, overdue_n=[1], overdue_days=[2]),
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
    reasons = [
        [R("invoices__days_overdue__now")],
        [],
        [],
        [R("contacts__technical__30d", topic="technical")],
    ]
    f = _facts(4, overdue_n=[1, 0, 0, 0], technical_days=[np.nan, np.nan, np.nan, 2])
    lst = build_call_list(df, reasons, cfg, as_of=AS_OF, model_version="1", facts=f)
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


def test_risk_written_with_enough_decimals_to_stay_distinct(tmp_path):
    risk = np.array([0.5, 0.50000001, 0.5000000100004, 0.1])
    assert risk_decimals(risk) == 13
    assert risk_decimals(np.array([0.5, 0.25])) == 4
    df = _scored(4, risk=risk)
    lst = build_call_list(df, None, Config(), as_of=AS_OF, model_version="1")
    out = tmp_path / "l.csv"
    write_call_list(lst, out, Config())
    back = read_call_list(out)
    assert back["risk"].nunique() == 4
    assert back["risk"].is_monotonic_decreasing


def test_russian_list_uses_semicolons_and_decimal_commas(tmp_path):
    cfg = override(Config(), "calls", language="ru")
    df = _scored(2, risk=[0.1234567, 0.05])
    lst = build_call_list(df, None, cfg, as_of=AS_OF, model_version="1")
    out = tmp_path / "l.csv"
    write_call_list(lst, out, cfg)
    lines = out.read_text(encoding="utf-8-sig").splitlines()
    assert lines[0].split(";") == CALL_LIST_COLUMNS + EXTRA_COLUMNS  # names stay machine names
    first = lines[1].split(";")
    assert first[CALL_LIST_COLUMNS.index("risk")] == "0,1235"
    assert first[CALL_LIST_COLUMNS.index("risk_band")] == "medium"  # enum values unchanged
    assert first[CALL_LIST_COLUMNS.index("value_at_risk")] == "123,46"
    back = read_call_list(out)
    assert back["risk"].tolist() == pytest.approx([0.1235, 0.05])
    # an explicit separator and decimal mark win over the language's defaults
    en = override(cfg, "calls", separator=",", decimal=".")
    assert (en.calls.sep, en.calls.decimal_mark) == (",", ".")


def test_list_quality_measures():
    calls = pd.DataFrame(
        {
            "reasons": [
                "nothing has run for 9 days: the only campaign paused by the client 9 days ago",
                "conversions down 40% on their previous 30 days (12 vs 20)",
                "last inbound email 441 days ago",
                "average payment delay: no data",
            ],
            "owner_role": ["account_manager", "receivables", "receivables", "account_manager"],
        }
    )
    facts = _facts(4, halt_days=[9, 3, np.nan, 30], overdue_n=[0, 1, 0, 0])
    q = list_quality(calls, facts)
    assert (q.pause_rows, q.pause_named) == (2, 0.5)
    assert (q.receivables_rows, q.money_evidence) == (2, 0.5)
    assert q.stale == 0.5 and q.rows == 4
    assert "50.0%" in q.text()


def test_reason_age_and_pause_parsing():
    assert reason_age_days("invoice 12 days overdue; manager changed 7 months ago") > 180
    assert reason_age_days("последний раз 2 года назад") == 730
    assert reason_age_days("conversions down 40%") == 0
    # numbers side by side are not one number with a thousands separator
    assert reason_age_days("на паузу 2 кампании из 2 13 дней назад") == 13
    assert reason_age_days("no activity for 1 200 days") == 1200
    assert names_pause("система поставила на паузу 2 кампании из 3 вчера")
    assert not names_pause("2 campaign pauses in the last 30 days")


def test_action_follows_the_top_reason_topic():
    df = _scored(3, risk=[0.9, 0.8, 0.7])
    f = _facts(3, running=[0, 0, 1], idle_days=[np.nan, 5, np.nan], n_campaigns=[1, 1, 3])
    reasons = [
        [R("campaigns__running__now", "no campaign has run yet", topic="state")],
        [R("campaigns__running__now", "nothing has run for 5 days", topic="state")],
        [R("spend__conversions__30d", "conversions down", topic="results")],
    ]
    out = build_call_list(df, reasons, Config(), as_of=AS_OF, model_version="1", facts=f)
    act = out.set_index("client_id")["suggested_action"]
    assert "first campaign" in act["c0"]
    assert "paused" in act["c1"]
    assert "results" in act["c2"]


def test_staff_table_is_read_from_the_data_directory(tmp_path):
    from churnpredict.calls import read_staff
    from churnpredict.contract import load_dataset
    from tests.bad_corpus import make_valid_dir, valid_frames

    ds = load_dataset(make_valid_dir(tmp_path / "v"), Config())
    staff = read_staff(ds)
    assert staff["name"].tolist() == ["ann", "Рита", "Tom"]
    assert staff["calls_per_day"].tolist()[:2] == [20.0, 40.0]
    frames = valid_frames()
    frames["staff"].loc[0, "role"] = "cashier"
    d = tmp_path / "bad"
    d.mkdir()
    for name, df in frames.items():
        df.to_csv(d / f"{name}.csv", index=False)
    with pytest.raises(DataError, match="role"):
        load_dataset(d, Config())


def test_complaint_and_technical_topics_in_codes_route_like_the_words():
    """An export whose contact topics are codes: the configured codes are complaints and
    technical requests in the facts, so a client who complained gets no resale call."""
    from churnpredict.facts import client_facts
    from tests.unit.world import make_ds

    contacts = [
        ("c0", "2025-03-05 10:00", "email", "inbound", "T-COMPL", None, None),  # 5 days ago
        ("c0", "2024-10-01 10:00", "email", "inbound", "T-COMPL", None, None),  # > 90 d
        ("c1", "2025-03-08 10:00", "ticket", "inbound", "T-TECH", None, None),  # 2 days ago
        ("c1", "2025-03-10 09:00", "ticket", "inbound", "T-TECH", None, None),  # on T: unseen
        ("c2", "2025-03-08 10:00", "email", "inbound", "T-SALES", None, None),
    ]
    ds = make_ds({"contacts": contacts})
    T = pd.Timestamp(AS_OF)
    ids = ["c0", "c1", "c2"]
    plain = client_facts(ds, T, ids, Config()).set_index("client_id")
    assert plain["complaint_days"].isna().all() and plain["technical_days"].isna().all()

    cfg = override(Config(), "calls", complaint_topics=["T-COMPL"], technical_topics=["T-TECH"])
    f = client_facts(ds, T, ids, cfg)
    got = f.set_index("client_id")
    assert got.loc["c0", "complaint_days"] == 5 and got.loc["c0", "complaint_n"] == 1
    assert got.loc["c1", "technical_days"] == 2 and got.loc["c1", "technical_n"] == 1
    assert pd.isna(got.loc["c2", "complaint_days"]) and pd.isna(got.loc["c2", "technical_days"])

    f["running"] = 1
    f["n_campaigns"] = 1
    band = np.array(["low", "high", "low"], dtype=object)
    tech = np.array([False, True, False])
    assert route_by_evidence(f, band, cfg, technical_reason=tech).tolist() == [
        "account_manager",  # complained 5 days ago: no resale
        "technical",
        "business_development",
    ]
