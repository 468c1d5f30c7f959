"""The morning digest: summary, changes, one section per owner, safe HTML, a real browser."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date

import numpy as np
import pandas as pd
import pytest

from churnpredict.calls import build_call_list
from churnpredict.config import Config, override
from churnpredict.digest import digest_context, render_digest, write_digest
from churnpredict.explain import Reason

AS_OF = date(2025, 3, 10)


def _list(cfg: Config | None = None) -> pd.DataFrame:
    cfg = cfg or Config()
    n = 6
    scored = pd.DataFrame(
        {
            "client_id": [f"c{i}" for i in range(n)],
            "risk": [0.9, 0.8, 0.5, 0.2, 0.12, 0.01],
            "name": ["<script>alert(1)</script>", "Бета", "Gamma", "Delta", "Eps", "Zeta"],
            "account_manager": ["Анна Иванова", "Анна Иванова", "Tom", "Tom", "", "Tom"],
            "monthly_revenue": [1000.0, 2000.0, None, 500.0, 100.0, 100.0],
            "phone": ["+7 900 000-00-01", "", "", "", "", ""],
            "email": ["a@example.com", "", "", "", "", ""],
            "last_contact_at": pd.Timestamp("2025-03-01 10:00"),
        }
    )
    facts = pd.DataFrame(
        {
            "client_id": scored["client_id"],
            "overdue_n": [0, 1, 0, 0, 0, 0],
            "overdue_days": [np.nan, 5, np.nan, np.nan, np.nan, np.nan],
            "running": [0, 0, 1, 1, 1, 1],
            "n_campaigns": [2, 1, 3, 3, 3, 1],
        }
    )
    reasons = [
        [Reason("campaigns", "x", 1.0, "nothing has run for 9 days; a second reason", "state")]
    ] + [[] for _ in range(n - 1)]
    prev = pd.DataFrame(
        {
            "client_id": ["c0", "c2", "c5"],
            "risk": [0.5, 0.7, 0.4],
            "risk_band": ["high", "high", "high"],
            "as_of": ["2025-03-09"] * 3,
        }
    )
    lst = build_call_list(
        scored, reasons, cfg, as_of=AS_OF, model_version="m/1", facts=facts, previous=prev
    )
    return lst, prev


def test_context_summary_changes_and_sections():
    lst, prev = _list()
    ctx = digest_context(lst, Config(), prev)
    teams = {r["name"]: r for r in ctx["teams"]}
    assert teams["receivables"]["high"] == 1 and teams["receivables"]["in_capacity"] == 1
    assert teams["account managers"]["high"] == 2 and teams["account managers"]["medium"] == 2
    assert teams["all teams"]["revenue"] == "2,612"  # 0.9*1000 + 0.8*2000 + 0.2*500 + 0.12*100
    assert any("newly at risk" in c and c.startswith("3 ") for c in ctx["changes"])
    assert any("higher risk" in c and c.startswith("1 ") for c in ctx["changes"])
    owners = [s["owner"] for s in ctx["sections"]]
    assert owners == [
        "Анна Иванова",
        "receivables",
        "Tom",
        "account_manager",
        "business_development",
    ]
    first = ctx["sections"][0]["rows"][0]
    assert first["risk"] == "90.0%" and first["band"] == "high"
    assert first["reasons"] == ["nothing has run for 9 days", "a second reason"]
    # only in-capacity rows; Zeta (risk 0.01 < min_risk) is a resale row (running, one
    # campaign), which needs no minimum risk: business development calls healthy clients
    assert teams["business development"]["in_capacity"] == 1
    shown = {r["client_id"] for s in ctx["sections"] for r in s["rows"]}
    assert "c5" in shown and len(shown) == 6
    ctx = digest_context(lst.assign(in_capacity=lst["client_id"] != "c5"), Config(), prev)
    shown = {r["client_id"] for s in ctx["sections"] for r in s["rows"]}
    assert "c5" not in shown and len(shown) == 5


def test_html_is_self_contained_and_escaped(tmp_path):
    lst, prev = _list()
    html = render_digest(lst, Config(), prev)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "http://" not in html and "https://" not in html  # no network
    assert "+7 900 000-00-01" in html
    out = write_digest(lst, tmp_path / "list.html", Config(), previous=prev)
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    off = override(Config(), "calls", digest=False)
    assert write_digest(lst, tmp_path / "off.html", off) is None


def test_russian_digest():
    cfg = override(Config(), "calls", language="ru", currency="₽")
    lst, prev = _list(cfg)
    html = render_digest(lst, cfg, prev)
    assert "Список звонков" in html and "дебиторка" in html and "90,0%" in html
    assert "2 звонка" in html and "1 звонок" in html  # Анна Иванова: 2, дебиторка: 1
    assert "2\u00a0612 ₽" in html


def test_digest_renders_in_headless_chromium(tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium): browser check skipped")
    lst, prev = _list()
    page = write_digest(lst, tmp_path / "list.html", Config(), previous=prev)
    shot = tmp_path / "shot.png"
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--screenshot={shot}",
        "--window-size=1200,900",
        page.as_uri(),
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    dom = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
        text=True,
    ).stdout
    assert "Анна Иванова" in dom and "nothing has run for 9 days" in dom


def test_likely_within_two_weeks_only_where_the_14_day_risk_says_so():
    lst, prev = _list()
    # the curve's 14-day risk: a freeze by day 14 more likely than not for c0 only
    soon = {"c0": 0.62, "c1": 0.49, "c2": 0.05}
    lst = lst.assign(risk_14d=lst["client_id"].map(soon))
    ctx = digest_context(lst, Config(), prev)
    rows = {r["client_id"]: r for s in ctx["sections"] for r in s["rows"]}
    assert rows["c0"]["soon"] == "likely within 2 weeks (62.0%)"
    assert rows["c1"]["soon"] == "" and rows["c2"]["soon"] == ""
    assert "likely within 2 weeks (62.0%)" in render_digest(lst, Config(), prev)
    ru = override(Config(), "calls", language="ru")
    lst_ru, _ = _list(ru)
    lst_ru = lst_ru.assign(risk_14d=lst_ru["client_id"].map(soon))
    ctx = digest_context(lst_ru, ru, prev)
    rows = {r["client_id"]: r for s in ctx["sections"] for r in s["rows"]}
    assert rows["c0"]["soon"] == "вероятно, в ближайшие 2 недели (62,0%)"
    # a list without the curve (an older model) says nothing of the kind
    lst, prev = _list()
    assert all(r["soon"] == "" for s in digest_context(lst, Config(), prev)["sections"]
               for r in s["rows"])  # fmt: skip
