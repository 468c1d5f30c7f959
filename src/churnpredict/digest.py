"""The morning digest: the call list as one self-contained HTML page for people.

Next to the CSV (``<list>.html``): a summary on top — per team, high and medium
clients, calls that fit today's capacity, at-risk clients that did not fit and the
monthly revenue at risk — then what changed since the previous list, then one
section per owner (the person who calls) with only their in-capacity rows: risk as
a percentage on a colour band, the reasons as a wrapped list, the action, the phone
and email. No script, no web font, no network: it opens from a mail attachment.
The page is a Jinja2 template (``templates/digest.html.j2``) with autoescaping, so
client names and reasons are shown as text, never run as markup.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from churnpredict.config import Config
from churnpredict.io import atomic_write_text
from churnpredict.phrases import fmt_num, plural_en, plural_ru

_TEXT = {
    "en": {
        "title": "Call list",
        "model": "model",
        "clients": "active clients",
        "generated": "generated",
        "team": "team",
        "high": "high risk",
        "medium": "medium risk",
        "in_capacity": "calls today",
        "not_fit": "at risk, did not fit",
        "revenue_at_risk": "revenue at risk / month",
        "changes": "Since the last list",
        "no_previous": "No previous list in this folder.",
        "owners": "Calls per person",
        "client": "client",
        "risk": "risk",
        "why": "why, and what to do",
        "contact": "contact",
        "last_contact": "last contact",
        "new": "new on the list",
        "soon": "likely within 2 weeks ({p})",
        "total": "all teams",
        "roles": {
            "account_manager": "account managers",
            "receivables": "receivables",
            "technical": "technical support",
            "business_development": "business development",
        },
        "role_one": {
            "account_manager": "account manager",
            "receivables": "receivables",
            "technical": "technical support",
            "business_development": "business development",
        },
        "ch_new": "{n} clients newly at risk (high or medium)",
        "ch_up": "{n} at-risk clients with a higher risk than on {prev}",
        "ch_down": "{n} at-risk clients with a lower risk than on {prev}",
        "ch_gone": "{n} clients at risk on {prev} are not at risk any more (or left the list)",
        "ch_top": "new among today's high-risk calls: {names}",
    },
    "ru": {
        "title": "Список звонков",
        "model": "модель",
        "clients": "активных клиентов",
        "generated": "сформирован",
        "team": "команда",
        "high": "высокий риск",
        "medium": "средний риск",
        "in_capacity": "звонков сегодня",
        "not_fit": "в риске, не вошли",
        "revenue_at_risk": "выручка под риском в месяц",
        "changes": "С прошлого списка",
        "no_previous": "В этой папке нет предыдущего списка.",
        "owners": "Звонки по сотрудникам",
        "client": "клиент",
        "risk": "риск",
        "why": "почему и что сделать",
        "contact": "контакты",
        "last_contact": "последний контакт",
        "new": "новый в списке",
        "soon": "вероятно, в ближайшие 2 недели ({p})",
        "total": "все команды",
        "roles": {
            "account_manager": "аккаунт-менеджеры",
            "receivables": "дебиторка",
            "technical": "техподдержка",
            "business_development": "развитие бизнеса",
        },
        "role_one": {
            "account_manager": "аккаунт-менеджер",
            "receivables": "дебиторка",
            "technical": "техподдержка",
            "business_development": "развитие бизнеса",
        },
        "ch_new": "новых клиентов в риске (высокий или средний): {n}",
        "ch_up": "клиентов в риске, чей риск вырос с {prev}: {n}",
        "ch_down": "клиентов в риске, чей риск снизился с {prev}: {n}",
        "ch_gone": "были в риске {prev}, теперь нет (или ушли из списка): {n}",
        "ch_top": "новые среди сегодняшних звонков с высоким риском: {names}",
    },
}
_ROLE_ORDER = ["receivables", "technical", "account_manager", "business_development"]


def _money(v: float, lang: str, currency: str) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    s = fmt_num(float(v), lang, decimals=0)
    return f"{s} {currency}".strip()


def _pct(v: float, lang: str) -> str:
    p = 100 * float(v)
    s = f"{p:.1f}%" if p < 99.95 else ">99.9%"
    return s.replace(".", ",") if lang == "ru" else s


def digest_context(calls: pd.DataFrame, cfg: Config, previous: pd.DataFrame | None = None) -> dict:
    """Return the template's context: teams summary, changes and per-owner sections."""
    lang = cfg.calls.language
    t = _TEXT[lang]
    cur = cfg.calls.currency
    df = calls.copy()
    df["risk"] = pd.to_numeric(df["risk"], errors="coerce")
    var = pd.to_numeric(df["value_at_risk"], errors="coerce")
    at_risk = df["risk_band"].isin(["high", "medium"])
    hold = df["hold_out"].astype(bool) if "hold_out" in df else pd.Series(False, index=df.index)
    inside = df["in_capacity"].astype(bool)

    teams = []
    for role in _ROLE_ORDER + sorted(set(df["owner_role"]) - set(_ROLE_ORDER)):
        m = df["owner_role"] == role
        if not m.any():
            continue
        teams.append(_team_row(t["roles"].get(role, role), df, m, at_risk, hold, inside, var))
    teams.append(_team_row(t["total"], df, df.index == df.index, at_risk, hold, inside, var))
    for r in teams:
        r["revenue"] = _money(r["revenue"], lang, cur)

    changes: list[str] = []
    if previous is not None and "client_id" in previous.columns and len(previous):
        prev_as_of = str(previous["as_of"].iloc[0]) if "as_of" in previous else "?"
        ch = df.get("change", pd.Series("", index=df.index)).astype(str)
        prev_band = (
            previous.set_index(previous["client_id"].astype(str))["risk_band"]
            if "risk_band" in previous
            else pd.Series(dtype=object)
        )
        was_at_risk = df["client_id"].astype(str).map(prev_band).isin(["high", "medium"])
        newly = at_risk & ~was_at_risk.to_numpy()
        changes.append(t["ch_new"].format(n=int(newly.sum())))
        changes.append(t["ch_up"].format(n=int((at_risk & (ch == "up")).sum()), prev=prev_as_of))
        changes.append(
            t["ch_down"].format(n=int((at_risk & (ch == "down")).sum()), prev=prev_as_of)
        )
        prev_risk = set(prev_band[prev_band.isin(["high", "medium"])].index)
        now_risk = set(df.loc[at_risk, "client_id"].astype(str))
        changes.append(t["ch_gone"].format(n=len(prev_risk - now_risk), prev=prev_as_of))
        top_new = df[newly & (df["risk_band"] == "high") & inside].head(5)
        if len(top_new):
            names = ", ".join(
                (n or c) for n, c in zip(top_new["client_name"], top_new["client_id"], strict=True)
            )
            changes.append(t["ch_top"].format(names=names))

    sections = []
    rows = df[inside]
    owners = rows["owner"].astype(str) if "owner" in rows else rows["owner_role"].astype(str)
    for owner in pd.unique(owners):  # list order: the owner with the top call first
        part = rows[owners == owner]
        role = str(part["owner_role"].iloc[0])
        k = len(part)
        calls_word = (
            plural_ru(k, ("звонок", "звонка", "звонков"))
            if lang == "ru"
            else plural_en(k, ("call", "calls"))
        )
        sections.append(
            {
                "owner": owner,
                "role": t["role_one"].get(role, role),
                "n_calls": f"{k} {calls_word}",
                "rows": [_row(r, lang, cur) for r in part.to_dict("records")],
            }
        )
    return {
        "lang": lang,
        "t": t,
        "as_of": str(df["as_of"].iloc[0]) if len(df) else "",
        "model_version": str(df["model_version"].iloc[0]) if len(df) else "",
        "n_clients": fmt_num(len(df), lang, decimals=0),
        "teams": teams,
        "changes": changes,
        "sections": sections,
    }


def _team_row(name, df, m, at_risk, hold, inside, var) -> dict:
    m = np.asarray(m, dtype=bool)
    ar = at_risk.to_numpy() & m
    return {
        "name": name,
        "high": int(((df["risk_band"] == "high").to_numpy() & m).sum()),
        "medium": int(((df["risk_band"] == "medium").to_numpy() & m).sum()),
        "in_capacity": int((inside.to_numpy() & m).sum()),
        "not_fit": int((ar & ~hold.to_numpy() & ~inside.to_numpy()).sum()),
        "revenue": float(np.nansum(var.to_numpy()[ar])),
    }


SOON_RISK = 0.5  # "likely within 2 weeks": a freeze by day 14 is more likely than not


def _soon(r: dict, lang: str) -> str:
    """Return "likely within 2 weeks (62%)" when the 14-day risk is at least SOON_RISK."""
    v = pd.to_numeric(pd.Series([r.get("risk_14d")]), errors="coerce").iloc[0]
    if pd.isna(v) or v < SOON_RISK:
        return ""
    return _TEXT[lang]["soon"].format(p=_pct(v, lang))


def _row(r: dict, lang: str, cur: str) -> dict:
    def s(k: str) -> str:
        v = r.get(k)
        return "" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)

    rev = pd.to_numeric(pd.Series([r.get("monthly_revenue")]), errors="coerce").iloc[0]
    return {
        "rank": r["rank"],
        "client_id": s("client_id"),
        "name": s("client_name") or s("client_id"),
        "segment": s("segment"),
        "revenue": _money(rev, lang, cur) + ("/мес." if lang == "ru" else "/month")
        if not pd.isna(rev)
        else "",
        "risk": _pct(r["risk"], lang),
        "soon": _soon(r, lang),
        "band": s("risk_band"),
        "reasons": [x for x in s("reasons").split("; ") if x],
        "action": s("suggested_action"),
        "note": s("note"),
        "phone": s("phone"),
        "email": s("email"),
        "last_contact": s("last_contact_at")[:10],
        "change": s("change"),
    }


def render_digest(calls: pd.DataFrame, cfg: Config, previous: pd.DataFrame | None = None) -> str:
    """Return the digest page of a call list as HTML text."""
    env = Environment(
        loader=PackageLoader("churnpredict", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    ctx = digest_context(calls, cfg, previous)
    ctx["t"] = dict(ctx["t"])
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    ctx["t"]["generated"] = f"{ctx['t']['generated']} {stamp}"
    return env.get_template("digest.html.j2").render(**ctx)


def write_digest(
    calls: pd.DataFrame, path: Path, cfg: Config, *, previous: pd.DataFrame | None = None
) -> Path | None:
    """Write the digest atomically to ``path`` (None when ``calls.digest`` is off)."""
    if not cfg.calls.digest:
        return None
    return atomic_write_text(Path(path), render_digest(calls, cfg, previous), bom=False)
