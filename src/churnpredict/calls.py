"""The morning call list: routing, actions, capacity, control group, changes, writing.

One row per scored (active) client, best call first. Columns: the 13 contract
columns (DATA_CONTRACT.md §3, docs/call_list.md) in order, then the helpers
``risk_7d``, ``risk_90d``, ``expected_active_days`` (when the scores have them),
``owner``, ``phone``, ``email``, ``segment``, ``monthly_revenue``, ``in_capacity``,
``hold_out``, ``change`` and ``note``.

Ordering
    Rows are ordered by risk band (high, medium, low), then clients *not* reached
    recently before those reached by an outbound call in the last
    ``calls.recently_reached_days`` days (they move to the end of their band, with a
    note), then by ``risk`` (``sort="risk"``) or ``value_at_risk`` (``sort="value"``,
    unknown value last, ties by risk), then ``client_id`` — deterministic.
    ``sort="urgency"`` orders by ``risk_7d`` (the risk of a freeze within 7 days) across
    bands, recently reached clients still last, ties by risk then ``client_id``.

Routing by evidence (the client's facts at the as-of date, :mod:`churnpredict.facts`)
    ``receivables`` only with money evidence: an overdue invoice, or a campaign the
    system paused for a money reason (``calls.money_reasons``) that is still paused;
    ``technical`` only with a technical request in the last ``calls.technical_days``;
    ``business_development`` (resale) only for low-risk clients with campaigns running,
    a narrow service (``calls.narrow_feature`` at most ``calls.narrow_max``) and no
    complaint in the last ``calls.complaint_days`` — they get resale reasons; everyone
    else: the account manager. Without facts, everyone goes to the account manager.

Capacity per person
    ``owner`` is the person who calls: the client's account manager for
    ``account_manager`` rows (``account_manager`` when unassigned); for a shared role,
    one of the people the ``staff`` table names for it (rows dealt in list order to
    whoever has the most calls left), else the role itself. Each owner's first rows in
    list order — not held out and with ``risk`` at least ``calls.min_risk`` (a floor for
    retention calls: resale rows, healthy by definition, are exempt) — up to the
    owner's calls per day (``staff.calls_per_day``; else ``calls.calls_per_owner_per_day``
    per account manager and ``calls.calls_per_day`` per shared role) are ``in_capacity``.

Control group
    At-risk clients (band high or medium) are held out (``hold_out``, not to be
    called, never in capacity) when a hash of ``client_id|as_of|hold_out_seed`` maps
    below ``hold_out_share`` — reproducible per client and day, independent of the
    other rows, so outcomes can compare called and held-out clients later.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from churnpredict.config import Config
from churnpredict.errors import DataError, UsageError
from churnpredict.explain import Reason
from churnpredict.facts import lookback_days, money_evidence
from churnpredict.io import (
    atomic_write_csv,
    atomic_write_set,
    csv_bytes,
    output_lock,
    read_csv_any,
)
from churnpredict.phrases import (
    FactPhrases,
    fmt_num,
    hold_out_note,
    reached_note,
    suggested_action,
)

CALL_LIST_COLUMNS = [
    "rank",
    "client_id",
    "client_name",
    "account_manager",
    "risk",
    "risk_band",
    "value_at_risk",
    "owner_role",
    "reasons",
    "suggested_action",
    "last_contact_at",
    "as_of",
    "model_version",
]
# helper columns, in the contract's order (DATA_CONTRACT.md §3); the first three are
# written when the scores carry them
RISK_HELPERS = ["risk_7d", "risk_90d", "expected_active_days"]
EXTRA_COLUMNS = [
    "owner",
    "phone",
    "email",
    "segment",
    "monthly_revenue",
    "in_capacity",
    "hold_out",
    "change",
    "note",
]
NUMERIC_COLUMNS = ("risk", "value_at_risk", "risk_7d", "risk_90d", "monthly_revenue")
ROLES = ("account_manager", "receivables", "business_development", "technical")
_BAND_ORDER = {"high": 0, "medium": 1, "low": 2}


# ---------------------------------------------------------------------- pieces
def risk_band(risk: pd.Series | np.ndarray, cfg: Config) -> np.ndarray:
    """Return ``high`` / ``medium`` / ``low`` per risk using ``calls.risk_bands``."""
    r = np.asarray(risk, dtype=np.float64)
    b = cfg.calls.risk_bands
    return np.where(r >= b.high, "high", np.where(r >= b.medium, "medium", "low")).astype(object)


def _num(df: pd.DataFrame | None, col: str, n: int) -> np.ndarray:
    if df is None or col not in df.columns:
        return np.full(n, np.nan)
    return pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def route_by_evidence(
    facts: pd.DataFrame | None,
    band: np.ndarray,
    cfg: Config,
    *,
    narrow: np.ndarray | None = None,
    technical_reason: np.ndarray | None = None,
) -> np.ndarray:
    """Return each client's ``owner_role`` from the evidence at the as-of date.

    Parameters
    ----------
    facts : DataFrame or None
        Row-aligned client facts (:func:`churnpredict.facts.client_facts`); None or
        missing columns mean no evidence.
    band : ndarray of str
        The risk bands.
    cfg : Config
        ``calls.technical_days``, ``calls.complaint_days``, ``calls.narrow_max``.
    narrow : ndarray of float, optional
        The breadth of service (``calls.narrow_feature``); default: the facts'
        ``n_campaigns``.
    technical_reason : ndarray of bool, optional
        True where the model lists a technical request among the client's reasons;
        when given, technical rows need it too (a ticket the model does not weigh
        is no reason to send the client to support).

    Returns
    -------
    ndarray of str
        ``receivables`` (money evidence), else ``technical`` (a recent technical
        request), else ``business_development`` (healthy, running, narrow, no recent
        complaint), else ``account_manager``.
    """
    c = cfg.calls
    n = len(band)
    money = money_evidence(facts) if facts is not None else np.zeros(n, dtype=bool)
    tech_d = _num(facts, "technical_days", n)
    tech = ~np.isnan(tech_d) & (tech_d <= c.technical_days)
    if technical_reason is not None:
        tech &= np.asarray(technical_reason, dtype=bool)
    compl_d = _num(facts, "complaint_days", n)
    complained = ~np.isnan(compl_d) & (compl_d <= c.complaint_days)
    running = np.nan_to_num(_num(facts, "running", n), nan=0.0) > 0
    breadth = narrow if narrow is not None else _num(facts, "n_campaigns", n)
    is_narrow = ~np.isnan(breadth) & (breadth <= c.narrow_max)
    resale = (np.asarray(band) == "low") & running & ~complained & is_narrow
    return np.select(
        [money, tech, resale],
        ["receivables", "technical", "business_development"],
        default="account_manager",
    ).astype(object)


def hold_out_draw(client_ids: pd.Series, as_of: date, seed: int) -> np.ndarray:
    """Return a reproducible uniform number in [0, 1) per client for this day and seed."""
    day = pd.Timestamp(as_of).strftime("%Y-%m-%d")
    out = np.empty(len(client_ids), dtype=np.float64)
    for i, cid in enumerate(client_ids.astype(str).tolist()):
        h = hashlib.blake2b(f"{cid}|{day}|{seed}".encode(), digest_size=8).digest()
        out[i] = int.from_bytes(h, "big") / 2.0**64
    return out


def _col(df: pd.DataFrame, *names: str) -> pd.Series | None:
    for n in names:
        if n in df.columns:
            return df[n]
    return None


def _fmt_ts(s: pd.Series | None, n: int) -> list[str]:
    if s is None:
        return [""] * n
    ts = pd.to_datetime(s, errors="coerce", utc=True).dt.tz_convert(None)
    return ["" if pd.isna(t) else (t.strftime("%Y-%m-%dT%H:%M:%S")) for t in ts.tolist()]


def _days_since_reached(df: pd.DataFrame, as_of: date, cfg: Config) -> np.ndarray:
    s = _col(df, "last_reached_at")
    if s is not None:
        ts = pd.to_datetime(s, errors="coerce", utc=True).dt.tz_convert(None)
        day = ts.dt.normalize()
        d = (pd.Timestamp(as_of) - day).dt.days
        return d.to_numpy(dtype=np.float64, na_value=np.nan)
    s = _col(df, cfg.calls.reached_feature)
    if s is not None:
        return pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.full(len(df), np.nan)


def _change(
    df: pd.DataFrame, previous: pd.DataFrame | None, cfg: Config
) -> tuple[list[str], np.ndarray]:
    if previous is None:
        return [""] * len(df), np.full(len(df), np.nan)
    if "client_id" not in previous.columns or "risk" not in previous.columns:
        raise DataError(
            "the previous call list has no client_id/risk columns",
            file="previous call list",
            expected="a call list written by churnpredict",
        )
    prev = (
        previous.assign(client_id=previous["client_id"].astype(str))
        .drop_duplicates("client_id")
        .set_index("client_id")["risk"]
    )
    prev = pd.to_numeric(prev, errors="coerce")
    p = df["client_id"].astype(str).map(prev).to_numpy(dtype=np.float64, na_value=np.nan)
    r = df["risk"].to_numpy(dtype=np.float64)
    delta = cfg.calls.change_min_delta
    known = df["client_id"].astype(str).isin(prev.index).to_numpy()
    out = np.where(
        ~known,
        "new",
        np.where(r - p >= delta, "up", np.where(p - r >= delta, "down", "same")),
    )
    return out.tolist(), p


# ------------------------------------------------------------------ the list
def build_call_list(
    scored: pd.DataFrame,
    reasons: list[list[Reason]] | None,
    cfg: Config,
    *,
    as_of: date | str | datetime,
    model_version: str,
    sort: str | None = None,
    top: int | None = None,
    previous: pd.DataFrame | None = None,
    facts: pd.DataFrame | None = None,
    staff: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Build the call list: one row per scored client, best call first.

    Parameters
    ----------
    scored : DataFrame
        One row per active client: ``client_id``, ``risk`` (calibrated, 0..1) and the
        ``clients`` columns (``name``, ``account_manager``, ``monthly_revenue``,
        ``phone``, ``email``, ``segment``), ``last_contact_at``; optionally
        ``last_reached_at`` (else the ``calls.reached_feature`` column), the
        ``calls.narrow_feature`` column and ``risk_7d`` / ``risk_90d`` /
        ``expected_active_days``.
    reasons : list of list of Reason, or None
        Row-aligned with ``scored`` (output of :func:`churnpredict.explain.top_reasons`).
    cfg : Config
        Uses the ``calls`` section.
    as_of : date
        The as-of date.
    model_version : str
        Written in every row.
    sort : {"risk", "value", "urgency"}, optional
        Order within a risk band (default ``calls.sort``); ``urgency``: by ``risk_7d``
        across bands (needs a ``risk_7d`` column).
    top : int, optional
        Keep only the first ``top`` rows.
    previous : DataFrame, optional
        The last call list (``client_id``, ``risk``) for the ``change`` column:
        ``new``, ``up``, ``down`` or ``same`` (empty without a previous list).
    facts : DataFrame, optional
        Row-aligned client facts (:func:`churnpredict.facts.client_facts`): the
        evidence routing needs. Without them every row goes to the account manager.
    staff : DataFrame, optional
        The ``staff`` table (``name``, ``role``, ``calls_per_day``).

    Returns
    -------
    DataFrame
        The contract columns in order, then the helper columns (module docstring).
    """
    c = cfg.calls
    sort = sort or c.sort
    if sort not in ("risk", "value", "urgency"):
        raise UsageError(f"--sort must be 'risk', 'value' or 'urgency', got {sort!r}")
    if sort == "urgency" and "risk_7d" not in scored.columns:
        raise UsageError(
            "--sort urgency needs risk_7d: the model has no time-to-freeze curve "
            "(retrain it with this version of churnpredict)"
        )
    if top is not None and top < 1:
        raise UsageError(f"--top must be a positive number, got {top}")
    for col in ("client_id", "risk"):
        if col not in scored.columns:
            raise DataError(f"scored clients lack the column {col!r}", column=col)
    df = scored.reset_index(drop=True)
    n = len(df)
    if reasons is None:
        reasons = [[] for _ in range(n)]
    if len(reasons) != n:
        raise ValueError(f"{len(reasons)} reason lists for {n} scored clients")
    if facts is not None:
        if len(facts) != n:
            raise ValueError(f"{len(facts)} fact rows for {n} scored clients")
        facts = facts.reset_index(drop=True)
    if df["client_id"].astype(str).duplicated().any():
        dup = df.loc[df["client_id"].astype(str).duplicated(), "client_id"].astype(str)
        raise DataError(
            "scored clients are not unique", column="client_id", examples=dup.head(5).tolist()
        )
    as_of_ts = pd.Timestamp(as_of).normalize()
    lang = c.language

    risk = pd.to_numeric(df["risk"], errors="coerce").to_numpy(dtype=np.float64)
    if np.isnan(risk).any() or (risk < 0).any() or (risk > 1).any():
        raise DataError("risk must be a probability in [0, 1] for every client", column="risk")
    band = risk_band(risk, cfg)
    narrow_s = _col(df, c.narrow_feature)
    narrow = (
        None
        if narrow_s is None or (facts is not None and "n_campaigns" in facts.columns)
        else pd.to_numeric(narrow_s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    )
    tech_reason = np.array([any(r.topic == "technical" for r in rs) for rs in reasons])
    roles = route_by_evidence(facts, band, cfg, narrow=narrow, technical_reason=tech_reason)
    fact_rows = facts.to_dict("records") if facts is not None else [{}] * n
    fp = FactPhrases(lang, lookback=lookback_days(cfg))
    texts: list[str] = []
    actions: list[str] = []
    for i, (ro, rs) in enumerate(zip(roles.tolist(), reasons, strict=True)):
        row = fact_rows[i]
        if ro == "business_development":
            own = fp.resale(row)
            texts.append("; ".join(own) if own else "; ".join(r.text for r in rs))
            actions.append(suggested_action(ro, None, lang))
            continue
        parts = [r.text for r in rs]
        if ro == "receivables" and not any(r.topic == "money" for r in rs):
            money = fp.money(row)  # the evidence the caller acts on, always shown
            if money:
                parts = [money, *parts[: max(c.top_reasons - 1, 0)]]
        texts.append("; ".join(parts))
        actions.append(suggested_action(ro, _action_topic(ro, rs, row), lang))
    revenue = _col(df, "monthly_revenue")
    rev = (
        np.full(n, np.nan)
        if revenue is None
        else pd.to_numeric(revenue, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    )
    var = rev * risk
    names = _col(df, "client_name", "name")
    am = _col(df, "account_manager")

    days_reached = _days_since_reached(df, as_of_ts.date(), cfg)
    recent = (
        ~np.isnan(days_reached) & (days_reached <= c.recently_reached_days)
        if c.recently_reached_days > 0
        else np.zeros(n, dtype=bool)
    )
    at_risk = band != "low"
    if c.hold_out_share > 0:
        draw = hold_out_draw(df["client_id"], as_of_ts.date(), c.hold_out_seed)
        hold = at_risk & (draw < c.hold_out_share)
    else:
        hold = np.zeros(n, dtype=bool)
    change, prev_risk = _change(df.assign(risk=risk), previous, cfg)

    cols: dict[str, object] = {
        "rank": np.zeros(n, dtype=np.int64),
        "client_id": df["client_id"].astype(str).to_numpy(dtype=object),
        "client_name": _text(names, n),
        "account_manager": _text(am, n),
        "risk": risk,
        "risk_band": band,
        "value_at_risk": np.round(var, 2),
        "owner_role": roles,
        "reasons": texts,
        "suggested_action": actions,
        "last_contact_at": _fmt_ts(_col(df, "last_contact_at"), n),
        "as_of": as_of_ts.strftime("%Y-%m-%d"),
        "model_version": str(model_version),
    }
    helpers = [h for h in RISK_HELPERS if h in df.columns]
    for h in helpers:
        cols[h] = pd.to_numeric(df[h], errors="coerce").to_numpy(dtype=np.float64)
    cols.update(
        {
            "owner": "",
            "phone": _text(_col(df, "phone"), n),
            "email": _text(_col(df, "email"), n),
            "segment": _text(_col(df, "segment"), n),
            "monthly_revenue": rev,
            "in_capacity": False,
            "hold_out": hold,
            "change": change,
            "note": "",
        }
    )
    out = pd.DataFrame(cols)
    notes: list[list[str]] = [[] for _ in range(n)]
    for i in np.flatnonzero(hold):
        notes[i].append(hold_out_note(lang))
    for i in np.flatnonzero(recent):
        notes[i].append(reached_note(days_reached[i], lang))
    for i, (ch, p) in enumerate(zip(change, prev_risk, strict=True)):
        if ch in ("up", "down"):
            was = fmt_num(p, lang, decimals=2)
            notes[i].append(("риск был " if lang == "ru" else "risk was ") + was)
    out["note"] = ["; ".join(x) for x in notes]

    # ordering: band, not-recently-reached first, primary key desc, client_id
    primary = var if sort == "value" else risk
    if sort == "urgency":
        primary = pd.to_numeric(df["risk_7d"], errors="coerce").to_numpy(dtype=np.float64)
    keys = pd.DataFrame(
        {
            "band": [_BAND_ORDER[b] for b in band] if sort != "urgency" else 0,
            "recent": recent.astype(np.int8),
            "primary": np.where(np.isnan(primary), -np.inf, primary),
            "risk": risk,
            "cid": out["client_id"],
        }
    )
    order = keys.sort_values(
        ["band", "recent", "primary", "risk", "cid"],
        ascending=[True, True, False, False, True],
        kind="stable",
    ).index.to_numpy()
    out = out.iloc[order].reset_index(drop=True)
    if top is not None:
        out = out.head(top).copy()
    out["rank"] = np.arange(1, len(out) + 1, dtype=np.int64)
    out["owner"], out["in_capacity"] = assign_owners(out, cfg, staff)
    out["hold_out"] = out["hold_out"].astype(bool)
    return out[CALL_LIST_COLUMNS + helpers + EXTRA_COLUMNS]


def _text(s: pd.Series | None, n: int) -> list[str]:
    if s is None:
        return [""] * n
    return ["" if (v is None or (not isinstance(v, str) and pd.isna(v))) else str(v) for v in s]


def _action_topic(role: str, reasons: list[Reason], row: dict) -> str | None:
    """Return the topic the suggested action speaks to."""
    if role == "receivables":
        n_over = row.get("overdue_n")
        try:
            overdue = float(n_over) > 0
        except (TypeError, ValueError):
            overdue = False
        return "overdue" if overdue else "money_halt"
    if role == "technical":
        return "technical"
    topic = reasons[0].topic if reasons else None
    # known to run nothing (zero, not unknown) and never stopped anything: never launched
    if topic == "state" and _is_zero(row.get("running")) and _is_nan(row.get("idle_days")):
        return "launch"
    return topic


def _is_zero(v) -> bool:
    try:
        return float(v) == 0
    except (TypeError, ValueError):
        return False


def _is_nan(v) -> bool:
    try:
        return bool(np.isnan(float(v)))
    except (TypeError, ValueError):
        return v is None


def _capacities(cfg: Config, staff: pd.DataFrame | None) -> tuple[dict[str, list], dict[str, int]]:
    """Return ``({shared role: [people]}, {owner: calls per day})`` from staff or config."""
    c = cfg.calls
    people: dict[str, list[str]] = {}
    cap: dict[str, int] = {}
    if staff is not None and len(staff):
        for rec in staff.to_dict("records"):
            name = str(rec.get("name") or "").strip()
            role = str(rec.get("role") or "").strip()
            if not name:
                continue
            v = pd.to_numeric(pd.Series([rec.get("calls_per_day")]), errors="coerce").iloc[0]
            cap[name] = (
                int(v)
                if not pd.isna(v)
                else (
                    c.calls_per_owner_per_day
                    if role == "account_manager"
                    else c.calls_per_day.get(role, c.calls_per_owner_per_day)
                )
            )
            if role != "account_manager":
                people.setdefault(role, []).append(name)
    return people, cap


def assign_owners(
    out: pd.DataFrame, cfg: Config, staff: pd.DataFrame | None = None
) -> tuple[list[str], np.ndarray]:
    """Return each row's ``owner`` (a person) and ``in_capacity``, in list order.

    Account-manager rows belong to their account manager (``account_manager`` when
    unassigned). Shared-role rows are dealt, in list order, to the role's person with
    the most calls left (ties: staff table order); without people for the role, to the
    role itself. A row is in capacity while its owner has calls left, it is not held
    out and its risk is at least ``calls.min_risk`` — except ``business_development``
    rows: resale goes to low-risk clients by definition, so the floor would leave that
    team's calls always unused.
    """
    c = cfg.calls
    people, cap = _capacities(cfg, staff)
    left: dict[str, int] = {}
    owners: list[str] = []
    inside = np.zeros(len(out), dtype=bool)
    roles = out["owner_role"].astype(str).tolist()
    ams = out["account_manager"].astype(str).tolist()
    holds = out["hold_out"].to_numpy(dtype=bool)
    risks = out["risk"].to_numpy(dtype=np.float64)
    dealt: dict[str, int] = {}
    for i, (role, am) in enumerate(zip(roles, ams, strict=True)):
        resale = role == "business_development"
        callable_ = not holds[i] and (resale or risks[i] >= c.min_risk)
        if role == "account_manager":
            who = am or "account_manager"
            default = c.calls_per_owner_per_day
        elif people.get(role):
            crew = people[role]
            if callable_:
                who = max(crew, key=lambda p: (left.get(p, cap[p]), -crew.index(p)))
            else:  # outside capacity anyway: deal round-robin so each row has a name
                who = crew[dealt.get(role, 0) % len(crew)]
                dealt[role] = dealt.get(role, 0) + 1
            default = cap[who]
        else:
            who = role
            default = c.calls_per_day.get(role, c.calls_per_owner_per_day)
        if who not in left:
            left[who] = cap.get(who, default)
        if callable_ and left[who] > 0:
            inside[i] = True
            left[who] -= 1
        owners.append(who)
    return owners, inside


# ------------------------------------------------------------------ writing
def _slug(name: str) -> str:
    s = re.sub(r"[^\w.-]+", "_", str(name), flags=re.UNICODE).strip("._")
    return s or "unassigned"


def write_call_list(
    df: pd.DataFrame,
    out: Path,
    cfg: Config,
    *,
    split_by: str | None = None,
    locked: bool = False,
) -> list[Path]:
    """Write the call list (and per-owner files) atomically under the output lock.

    Parameters
    ----------
    df : DataFrame
        Output of :func:`build_call_list`.
    out : Path
        The full list's file. Per-owner files go to ``<out stem>_by_<split_by>/`` next
        to it, one ``<owner>.csv`` each (files of owners no longer on the list are
        removed from that folder).
    cfg : Config
        ``calls.separator``, ``calls.decimal`` (both default by ``calls.language``:
        ``,`` and ``.`` in English, ``;`` and ``,`` in Russian) and ``calls.bom``.
    split_by : {"account_manager", "owner_role"}, optional
        Also write one file per value of this column (empty account manager ->
        ``unassigned``).
    locked : bool
        True when the caller already holds the output lock (e.g. for a whole scoring run).

    Returns
    -------
    list of Path
        The full list first, then the per-owner files.

    Raises
    ------
    LockedError
        When another run is writing the same list.
    """
    if split_by not in (None, "account_manager", "owner_role"):
        raise UsageError(f"--split-by must be 'account_manager' or 'owner_role', got {split_by!r}")
    out = Path(out)
    sep, bom = cfg.calls.sep, cfg.calls.bom
    cols = CALL_LIST_COLUMNS + [c for c in RISK_HELPERS + EXTRA_COLUMNS if c in df.columns]
    df = format_numbers(df, cfg.calls.decimal_mark)
    written: list[Path] = []
    with contextlib.nullcontext() if locked else output_lock(out):
        if not split_by:
            written.append(atomic_write_csv(df, out, sep=sep, bom=bom, columns=cols))
        else:  # the full list and its per-owner files are staged, then renamed as a set
            files = [(out, csv_bytes(df, sep=sep, bom=bom, columns=cols))]
            folder = out.parent / f"{out.stem}_by_{split_by}"
            keys = df[split_by].fillna("").astype(str).replace("", "unassigned")
            names: set[str] = set()
            for key, part in df.groupby(keys.to_numpy(), sort=True):
                fname = _slug(key) + (out.suffix or ".csv")
                if fname in names:  # two owners slugging to the same name
                    fname = (
                        _slug(key)
                        + "_"
                        + hashlib.md5(str(key).encode()).hexdigest()[:6]
                        + (out.suffix or ".csv")
                    )
                names.add(fname)
                files.append((folder / fname, csv_bytes(part, sep=sep, bom=bom, columns=cols)))
            written.extend(atomic_write_set(files))
            for stale in folder.glob("*" + (out.suffix or ".csv")):
                if stale.name not in names:
                    stale.unlink()
    return written


def risk_decimals(values: np.ndarray, *, least: int = 4, most: int = 17) -> int:
    """Return the fewest decimals (at least ``least``) that keep distinct values distinct."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    distinct = len(np.unique(v))
    for d in range(least, most + 1):
        if len(np.unique(np.round(v, d))) == distinct:
            return d
    return most


def _fmt_fixed(values: np.ndarray, decimals: int, mark: str) -> list[str]:
    out = []
    for v in np.asarray(values, dtype=np.float64).tolist():
        if np.isnan(v):
            out.append("")
            continue
        t = f"{v:.{decimals}f}"
        out.append(t.replace(".", mark) if mark != "." else t)
    return out


def format_numbers(df: pd.DataFrame, mark: str = ".") -> pd.DataFrame:
    """Return a copy with the numeric columns as text, ready for the CSV.

    ``risk``, ``risk_7d`` and ``risk_90d`` share the fewest decimals (at least 4)
    that keep every distinct value of each distinct, so the file keeps the model's
    strict order and ``risk_7d <= risk <= risk_90d`` on every written row; money
    columns get 2 decimals. ``mark`` is the decimal mark (``,`` for
    spreadsheets in locales that expect it; the separator must then not be ``,``).
    """
    out = df.copy()
    risks = [c for c in ("risk", "risk_7d", "risk_90d") if c in out.columns]
    values = {c: pd.to_numeric(out[c], errors="coerce").to_numpy(dtype=np.float64) for c in risks}
    decimals = max((risk_decimals(v) for v in values.values()), default=4)
    for col, v in values.items():
        out[col] = _fmt_fixed(v, decimals, mark)
    for col in ("value_at_risk", "monthly_revenue", "expected_active_days"):
        if col in out.columns:
            v = pd.to_numeric(out[col], errors="coerce").to_numpy(dtype=np.float64)
            out[col] = _fmt_fixed(v, 1 if col == "expected_active_days" else 2, mark)
    return out


def read_call_list(path: Path) -> pd.DataFrame:
    """Read a call list back (any separator and decimal mark, with or without BOM)."""
    df = read_csv_any(path, dtype={"client_id": str, "account_manager": str})
    for col in NUMERIC_COLUMNS:
        if col in df.columns and not pd.api.types.is_numeric_dtype(df[col]):
            df[col] = pd.to_numeric(
                df[col].astype(str).str.replace(",", ".", regex=False), errors="coerce"
            )
    missing = [c for c in ("client_id", "risk", "as_of") if c not in df.columns]
    if missing:
        raise DataError(
            "not a call list",
            file=str(path),
            column=missing[0],
            expected=", ".join(CALL_LIST_COLUMNS),
        )
    return df


def _list_as_of(path: Path) -> str | None:
    """Return the as_of of a call-list file from its first data row (None if not a list)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            header = fh.readline()
            first = fh.readline()
    except (OSError, UnicodeDecodeError):
        return None
    from churnpredict.io import sniff_separator

    sep = sniff_separator(header)
    cols = [h.strip().strip('"') for h in header.rstrip("\r\n").split(sep)]
    if "as_of" not in cols or "client_id" not in cols or not first:
        return None
    import csv

    row = next(csv.reader([first], delimiter=sep), [])
    i = cols.index("as_of")
    return row[i] if i < len(row) else None


def find_previous_list(out: Path, as_of: date | str) -> pd.DataFrame | None:
    """Return the latest call list in ``out``'s folder dated before ``as_of`` (or None).

    Looks at ``out`` itself and the other ``*.csv`` files directly in its folder
    (per-owner subfolders are not searched).
    """
    out = Path(out)
    day = pd.Timestamp(as_of).strftime("%Y-%m-%d")
    best: tuple[str, Path] | None = None
    if not out.parent.exists():
        return None
    for p in sorted(out.parent.glob("*" + (out.suffix or ".csv"))):
        a = _list_as_of(p)
        if a is None or a >= day:
            continue
        if best is None or a > best[0]:
            best = (a, p)
    return None if best is None else read_call_list(best[1])


def read_staff(ds) -> pd.DataFrame | None:
    """Return the ``staff`` table of a loaded dataset (None when it has none)."""
    if "staff" not in ds.present:
        return None
    df = ds.con.execute("SELECT name, role, calls_per_day FROM staff").df()
    return df if len(df) else None


# ---------------------------------------------------------------- list quality
_PAUSE_WORDS = re.compile(r"paused|stopped|пауз|останов", re.IGNORECASE)
_WHEN_WORDS = re.compile(r"\bago\b|yesterday|назад|вчера", re.IGNORECASE)
_NO_DATA = re.compile(r"\b(no data|nan|none|нет данных)\b", re.IGNORECASE)
_AGE = re.compile(
    r"(\d{1,3}(?:[\u00a0 ,]\d{3})+|\d+)\s*(days?|weeks?|months?|years?|день|дня|дней|недел\w*|месяц\w*|"
    r"год\w*|лет)\s*(ago|назад)?",
    re.IGNORECASE,
)
_UNIT_DAYS = {"d": 1, "w": 7, "m": 30.4, "y": 365, "д": 1, "н": 7, "м": 30.4, "г": 365, "л": 365}


def reason_age_days(text: str) -> float:
    """Return the largest age in days that a reasons text cites (0 when none).

    Reads "N days ago", "for N days", "N months ago", «N дней назад», … — any number
    followed by a unit of time.
    """
    worst = 0.0
    for m in _AGE.finditer(text or ""):
        digits = re.sub(r"[^\d]", "", m.group(1))
        if not digits:
            continue
        worst = max(worst, float(digits) * _UNIT_DAYS[m.group(2)[0].lower()])
    return worst


def names_pause(text: str) -> bool:
    """Return True when a reasons text names a pause (or stop) and when it happened."""
    return bool(text) and any(
        _PAUSE_WORDS.search(part) and _WHEN_WORDS.search(part) for part in text.split("; ")
    )


@dataclass(frozen=True)
class ListQuality:
    """Three checks of a call list against its clients' facts (issue 14's "done when").

    Attributes
    ----------
    pause_named : float
        Among the top ``top_pause`` rows whose client paused a campaign in the last
        ``pause_days`` days, the share whose reasons name the pause and when.
    pause_rows : int
        How many such rows there were.
    money_evidence : float
        Among receivables rows in the top ``top`` rows, the share with money evidence.
    receivables_rows : int
        How many receivables rows there were.
    stale : float
        Among the top ``top`` rows, the share citing something older than
        ``stale_days`` days, or "no data" / NaN / None.
    rows : int
        How many rows that was.
    """

    pause_named: float
    pause_rows: int
    money_evidence: float
    receivables_rows: int
    stale: float
    rows: int

    def text(self) -> str:
        """One line for people."""

        def pct(v: float) -> str:
            return "n/a" if np.isnan(v) else f"{100 * v:.1f}%"

        return (
            f"List quality: {pct(self.pause_named)} of {self.pause_rows} top-100 clients who "
            f"paused in the last 14 days have a reason naming the pause; "
            f"{pct(self.money_evidence)} of {self.receivables_rows} receivables rows in the "
            f"top 300 have money evidence; {pct(self.stale)} of the top {self.rows} rows cite "
            "something older than 180 days or no data."
        )


def list_quality(
    calls: pd.DataFrame,
    facts: pd.DataFrame,
    cfg: Config | None = None,
    *,
    top_pause: int = 100,
    top: int = 300,
    pause_days: int = 14,
    stale_days: int = 180,
) -> ListQuality:
    """Measure a call list: pauses named, receivables with evidence, stale reasons.

    Parameters
    ----------
    calls : DataFrame
        The call list (rank order), at least ``reasons`` and ``owner_role``.
    facts : DataFrame
        The clients' facts, row-aligned with ``calls``: ``halt_days`` (days since the
        latest pause or stop) and the money evidence columns.
    cfg : Config, optional
        Unused; kept for symmetry with the other call-list functions.
    """
    if len(facts) != len(calls):
        raise ValueError(f"{len(facts)} fact rows for {len(calls)} call-list rows")
    reasons = calls["reasons"].fillna("").astype(str).tolist()
    n = len(calls)
    halt = _num(facts.reset_index(drop=True), "halt_days", n)
    k = min(top_pause, n)
    paused = np.flatnonzero(~np.isnan(halt[:k]) & (halt[:k] <= pause_days))
    named = [names_pause(reasons[i]) for i in paused]
    kk = min(top, n)
    money = money_evidence(facts.reset_index(drop=True))[:kk]
    recv = calls["owner_role"].astype(str).to_numpy()[:kk] == "receivables"
    stale = [reason_age_days(t) > stale_days or bool(_NO_DATA.search(t)) for t in reasons[:kk]]
    return ListQuality(
        pause_named=float(np.mean(named)) if named else float("nan"),
        pause_rows=len(named),
        money_evidence=float(money[recv].mean()) if recv.any() else float("nan"),
        receivables_rows=int(recv.sum()),
        stale=float(np.mean(stale)) if kk else float("nan"),
        rows=kk,
    )
