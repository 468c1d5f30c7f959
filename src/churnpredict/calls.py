"""The morning call list: routing, actions, capacity, control group, changes, writing.

One row per scored (active) client, best call first. Columns: the 13 contract
columns (DATA_CONTRACT.md §3) in order, then ``in_capacity``, ``hold_out``,
``change`` and ``note``.

Ordering
    Rows are ordered by risk band (high, medium, low), then clients *not* reached
    recently before those reached by an outbound call in the last
    ``calls.recently_reached_days`` days (they move to the end of their band, with a
    note), then by ``risk`` (``sort="risk"``) or ``value_at_risk`` (``sort="value"``,
    unknown value last, ties by risk), then ``client_id`` — deterministic.

Routing
    The first ``calls.routing`` rule (rules are priorities, in config order) with a
    shell pattern matching the feature behind any of the client's top reasons picks
    ``owner_role``; no reason -> ``account_manager``.
    A low-risk client with a narrow service (``calls.narrow_feature`` at most
    ``calls.narrow_max``, e.g. one campaign) routed to the account manager goes to
    ``business_development`` instead: the best retention is resale.

Capacity
    The owner of a row is its account manager for ``account_manager`` rows (the
    ``account_manager`` queue when unassigned), else the role's queue. The first
    ``calls.calls_per_owner_per_day`` rows of each owner that are not held out are
    ``in_capacity``.

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
from datetime import date, datetime
from fnmatch import fnmatchcase
from pathlib import Path

import numpy as np
import pandas as pd

from churnpredict.config import Config
from churnpredict.errors import DataError, UsageError
from churnpredict.explain import Reason
from churnpredict.io import (
    atomic_write_csv,
    atomic_write_set,
    csv_bytes,
    output_lock,
    read_csv_any,
)
from churnpredict.phrases import hold_out_note, reached_note, suggested_action

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
EXTRA_COLUMNS = ["in_capacity", "hold_out", "change", "note"]
ROLES = ("account_manager", "receivables", "business_development", "technical")
_BAND_ORDER = {"high": 0, "medium": 1, "low": 2}


# ---------------------------------------------------------------------- pieces
def risk_band(risk: pd.Series | np.ndarray, cfg: Config) -> np.ndarray:
    """Return ``high`` / ``medium`` / ``low`` per risk using ``calls.risk_bands``."""
    r = np.asarray(risk, dtype=np.float64)
    b = cfg.calls.risk_bands
    return np.where(r >= b.high, "high", np.where(r >= b.medium, "medium", "low")).astype(object)


def route(feature: str | None, cfg: Config) -> str:
    """Return the role of the first routing rule matching ``feature`` (else account_manager)."""
    return route_reasons([feature], cfg)[0]


def route_reasons(features: list[str | None], cfg: Config) -> tuple[str, str | None]:
    """Return ``(role, feature)``: the first rule, in config order, matching any reason.

    Rules are priorities: a money reason anywhere in a client's top reasons sends the
    client to receivables even when "no campaign running" (often the system's pause
    for an unpaid invoice) ranks above it. The feature returned is the one the rule
    matched, so the suggested action fits the role.
    """
    feats = [f for f in features if f]
    for rule in cfg.calls.routing:
        for feat in feats:
            if any(fnmatchcase(feat, pat) for pat in rule.features):
                return rule.role, feat
    return "account_manager", (feats[0] if feats else None)


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
) -> pd.DataFrame:
    """Build the call list: one row per scored client, best call first.

    Parameters
    ----------
    scored : DataFrame
        One row per active client: ``client_id``, ``risk`` (calibrated, 0..1) and the
        ``clients`` columns (``name``, ``account_manager``, ``monthly_revenue``, ...),
        ``last_contact_at``; optionally ``last_reached_at`` (else the
        ``calls.reached_feature`` column) and the ``calls.narrow_feature`` column.
    reasons : list of list of Reason, or None
        Row-aligned with ``scored`` (output of :func:`churnpredict.explain.top_reasons`).
    cfg : Config
        Uses the ``calls`` section.
    as_of : date
        The as-of date.
    model_version : str
        Written in every row.
    sort : {"risk", "value"}, optional
        Order within a risk band (default ``calls.sort``).
    top : int, optional
        Keep only the first ``top`` rows.
    previous : DataFrame, optional
        The last call list (``client_id``, ``risk``) for the ``change`` column:
        ``new``, ``up``, ``down`` or ``same`` (empty without a previous list).

    Returns
    -------
    DataFrame
        The contract columns in order, then ``in_capacity``, ``hold_out``, ``change``,
        ``note``.
    """
    c = cfg.calls
    sort = sort or c.sort
    if sort not in ("risk", "value"):
        raise UsageError(f"--sort must be 'risk' or 'value', got {sort!r}")
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
    role_cache: dict[tuple, tuple[str, str | None]] = {}
    routed = [
        role_cache.setdefault(key, route_reasons(list(key), cfg))
        for key in (tuple(x.feature for x in r) for r in reasons)
    ]
    roles = np.array([ro for ro, _ in routed], dtype=object)
    top_feat = [f for _, f in routed]
    narrow_s = _col(df, c.narrow_feature)
    if narrow_s is not None:
        nv = pd.to_numeric(narrow_s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        narrow = ~np.isnan(nv) & (nv <= c.narrow_max)
        roles = np.where(
            (band == "low") & narrow & (roles == "account_manager"), "business_development", roles
        ).astype(object)
    act_cache: dict[tuple[str, str | None], str] = {}
    actions = [
        act_cache.setdefault((ro, f), suggested_action(ro, f, lang))
        for ro, f in zip(roles.tolist(), top_feat, strict=True)
    ]
    revenue = _col(df, "monthly_revenue")
    if revenue is None:
        var = np.full(n, np.nan)
    else:
        var = pd.to_numeric(revenue, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        var = var * risk
    names = _col(df, "client_name", "name")
    am = _col(df, "account_manager")
    am_vals = (
        [""] * n
        if am is None
        else ["" if (v is None or pd.isna(v)) else str(v) for v in am.tolist()]
    )

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

    out = pd.DataFrame(
        {
            "rank": np.zeros(n, dtype=np.int64),
            "client_id": df["client_id"].astype(str).to_numpy(dtype=object),
            "client_name": (
                [""] * n
                if names is None
                else ["" if (v is None or pd.isna(v)) else str(v) for v in names.tolist()]
            ),
            "account_manager": am_vals,
            "risk": np.round(risk, 4),
            "risk_band": band,
            "value_at_risk": np.round(var, 2),
            "owner_role": roles,
            "reasons": ["; ".join(r.text for r in rs) for rs in reasons],
            "suggested_action": actions,
            "last_contact_at": _fmt_ts(_col(df, "last_contact_at"), n),
            "as_of": as_of_ts.strftime("%Y-%m-%d"),
            "model_version": str(model_version),
            "in_capacity": False,
            "hold_out": hold,
            "change": change,
            "note": "",
        }
    )
    notes: list[list[str]] = [[] for _ in range(n)]
    for i in np.flatnonzero(hold):
        notes[i].append(hold_out_note(lang))
    for i in np.flatnonzero(recent):
        notes[i].append(reached_note(days_reached[i], lang))
    for i, (ch, p) in enumerate(zip(change, prev_risk, strict=True)):
        if ch in ("up", "down"):
            notes[i].append(("риск был " if lang == "ru" else "risk was ") + f"{p:.2f}")
    out["note"] = ["; ".join(x) for x in notes]

    # ordering: band, not-recently-reached first, primary key desc, client_id
    primary = var if sort == "value" else risk
    keys = pd.DataFrame(
        {
            "band": [_BAND_ORDER[b] for b in band],
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

    owner = np.where(
        out["owner_role"].to_numpy() == "account_manager",
        np.where(
            out["account_manager"].to_numpy() == "",
            "account_manager",
            "am:" + out["account_manager"].astype(str).to_numpy(),
        ),
        out["owner_role"].to_numpy(),
    )
    callable_ = ~out["hold_out"].to_numpy(dtype=bool)
    pos = pd.Series(callable_.astype(np.int64)).groupby(owner).cumsum().to_numpy()
    out["in_capacity"] = callable_ & (pos <= c.calls_per_owner_per_day)
    out["hold_out"] = out["hold_out"].astype(bool)
    return out[CALL_LIST_COLUMNS + EXTRA_COLUMNS]


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
        ``calls.separator`` and ``calls.bom``.
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
    sep, bom = cfg.calls.separator, cfg.calls.bom
    cols = CALL_LIST_COLUMNS + [c for c in EXTRA_COLUMNS if c in df.columns]
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


def read_call_list(path: Path) -> pd.DataFrame:
    """Read a call list back (any separator, with or without BOM)."""
    df = read_csv_any(path, dtype={"client_id": str, "account_manager": str})
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
