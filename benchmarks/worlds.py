"""Generate big synthetic worlds in the data contract's shape, fast and in little memory.

The worlds have realistic *volume and shape* (daily spend rows while a campaign
runs, pause/resume cycles with initiators and reasons, monthly invoices, contacts,
activity, manager changes) but no meaningful churn signal: they exist to time the
pipeline, not to train it. Clients are generated in chunks (vectorised numpy per
chunk, one loop over days vectorised over campaigns) and each table is streamed to
one Parquet file, one row group per chunk.

Usage::

    from benchmarks.worlds import ensure_world
    path = ensure_world("world-100k")      # bench-data/world-100k/, cached
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

GENERATOR_VERSION = 1
ROOT = Path(__file__).resolve().parent.parent
BENCH_DATA = ROOT / "bench-data"


@dataclass(frozen=True)
class WorldParams:
    """Size and rates of a benchmark world (rates are per client or campaign per day)."""

    clients: int = 100_000
    days: int = 365
    start: str = "2025-01-01"
    seed: int = 7
    chunk: int = 10_000
    presignup_share: float = 0.6  # clients who signed up (up to a year) before the start
    p_pause: float = 1 / 45  # running campaign -> paused
    p_resume: float = 1 / 6  # paused campaign -> running
    p_stop: float = 1 / 400  # any live campaign -> stopped
    p_budget: float = 1 / 60  # running campaign changes its budget
    p_new_campaign: float = 1 / 200  # client launches another campaign
    contact_rate: float = 0.02
    activity_rate: float = 0.06
    manager_change_share: float = 0.25


WORLDS = {
    "world-100k": WorldParams(),
    "world-10k": WorldParams(clients=10_000, chunk=10_000),
    "world-1k": WorldParams(clients=1_000, chunk=1_000),
}

# ------------------------------------------------------------------ vocabularies
SEGMENTS = np.array(["low-cost", "smb", "key"], dtype=object)
SEG_P = [0.55, 0.35, 0.10]
SEG_CAMPAIGNS = np.array([0.3, 1.2, 3.0])
SEG_BUDGET = np.array([15.0, 60.0, 250.0])
SEG_REVENUE = np.array([400.0, 1800.0, 9000.0])
EVENTS = np.array(
    ["created", "started", "paused", "resumed", "stopped", "budget_changed"], dtype=object
)
EV = {e: i for i, e in enumerate(EVENTS)}
INITIATORS = np.array(["client", "system", "manager"], dtype=object)
REASONS = np.array(["low_balance", "season", "budget", "results", "moderation"], dtype=object)
CHANNELS = np.array(["call", "email", "ticket", "chat", "meeting", "other"], dtype=object)
CHANNEL_P = [0.40, 0.30, 0.12, 0.10, 0.05, 0.03]
OUTBOUND_P = np.array([0.7, 0.5, 0.0, 0.0, 1.0, 0.5])  # per channel
DIRECTIONS = np.array(["inbound", "outbound"], dtype=object)
TOPICS = np.array(["billing", "complaint", "technical", "results", "sales"], dtype=object)
TOPIC_P = [0.3, 0.1, 0.25, 0.2, 0.15]
OUTCOMES = np.array(["reached", "no_answer"], dtype=object)
ACTIVITY = np.array(["login", "report_view", "settings_change"], dtype=object)
ACTIVITY_P = [0.6, 0.3, 0.1]
N_MANAGERS = 150
N_STAFF = 60

SCHEMAS = {
    "clients": pa.schema(
        [
            ("client_id", pa.string()),
            ("signup_date", pa.date32()),
            ("name", pa.string()),
            ("segment", pa.string()),
            ("account_manager", pa.string()),
            ("monthly_revenue", pa.float64()),
            ("phone", pa.string()),
            ("email", pa.string()),
        ]
    ),
    "campaign_events": pa.schema(
        [
            ("client_id", pa.string()),
            ("campaign_id", pa.string()),
            ("ts", pa.timestamp("us")),
            ("event", pa.string()),
            ("initiator", pa.string()),
            ("reason", pa.string()),
            ("daily_budget", pa.float64()),
        ]
    ),
    "invoices": pa.schema(
        [
            ("client_id", pa.string()),
            ("invoice_id", pa.string()),
            ("issued_at", pa.timestamp("us")),
            ("due_at", pa.date32()),
            ("amount", pa.float64()),
            ("paid_at", pa.timestamp("us")),
        ]
    ),
    "contacts": pa.schema(
        [
            ("client_id", pa.string()),
            ("ts", pa.timestamp("us")),
            ("channel", pa.string()),
            ("direction", pa.string()),
            ("topic", pa.string()),
            ("outcome", pa.string()),
            ("staff", pa.string()),
        ]
    ),
    "spend": pa.schema(
        [
            ("client_id", pa.string()),
            ("date", pa.date32()),
            ("spend", pa.float64()),
            ("impressions", pa.float64()),
            ("clicks", pa.float64()),
            ("conversions", pa.float64()),
        ]
    ),
    "assignments": pa.schema(
        [("client_id", pa.string()), ("account_manager", pa.string()), ("from_date", pa.date32())]
    ),
    "activity": pa.schema(
        [
            ("client_id", pa.string()),
            ("ts", pa.timestamp("us")),
            ("event", pa.string()),
            ("value", pa.float64()),
        ]
    ),
}
TABLES = tuple(SCHEMAS)
DAY_US = 86_400_000_000


# ------------------------------------------------------------------ helpers
def _strings(vocab: np.ndarray, codes: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    """Return ``vocab[codes]`` as an Arrow string array (null where ``mask`` is False)."""
    arr = pa.array(vocab.tolist(), pa.string()).take(pa.array(codes.astype(np.int64)))
    if mask is not None:
        arr = pa.compute.if_else(pa.array(mask), arr, pa.nulls(len(arr), pa.string()))
    return arr


def _ts(start_us: int, day: np.ndarray, rng: np.random.Generator) -> pa.Array:
    """Return timestamps on ``day`` (days from the start) at a random time of day."""
    us = start_us + day.astype(np.int64) * DAY_US + rng.integers(0, DAY_US, len(day))
    return pa.array(us, pa.timestamp("us"))


def _dates(start_day: int, day: np.ndarray) -> pa.Array:
    return pa.array((start_day + day).astype(np.int32), pa.date32())


def _float(x: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    return pa.array(x.astype(np.float64), pa.float64(), mask=None if mask is None else ~mask)


# ------------------------------------------------------------------ one chunk
def _chunk(p: WorldParams, first: int, n: int, index: int) -> dict[str, pa.Table]:
    """Generate every table for clients ``first .. first + n - 1``."""
    rng = np.random.default_rng([p.seed, index])
    start_day = int(np.datetime64(p.start, "D").astype(np.int64))
    start_us = start_day * DAY_US
    D = p.days
    ids_vocab = np.array([f"c{i:07d}" for i in range(first, first + n)], dtype=object)
    cl = np.arange(n)

    # clients ------------------------------------------------------------------
    pre = rng.random(n) < p.presignup_share
    signup = np.where(pre, -rng.integers(1, 366, n), rng.integers(0, max(D - 30, 1), n))
    seg = rng.choice(3, n, p=SEG_P)
    revenue = SEG_REVENUE[seg] * rng.lognormal(0.0, 0.5, n)
    mgr = rng.integers(0, N_MANAGERS, n)
    managed = rng.random(n) < 0.9
    mgr_vocab = np.array([f"manager_{i:03d}" for i in range(N_MANAGERS)], dtype=object)
    clients = pa.table(
        {
            "client_id": pa.array(ids_vocab.tolist(), pa.string()),
            "signup_date": _dates(start_day, signup),
            "name": pa.array([f"Client {i}" for i in range(first, first + n)], pa.string()),
            "segment": _strings(SEGMENTS, seg),
            "account_manager": _strings(mgr_vocab, mgr, managed),
            "monthly_revenue": _float(revenue),
            "phone": pa.array([f"+7900{i:07d}" for i in range(first, first + n)], pa.string()),
            "email": pa.array([f"c{i}@example.com" for i in range(first, first + n)]),
        },
        schema=SCHEMAS["clients"],
    )

    # campaigns: initial ones at signup, more launched over the year -------------
    n_init = 1 + rng.poisson(SEG_CAMPAIGNS[seg])
    c_client = np.repeat(cl, n_init)
    c_create = signup[c_client] + rng.integers(0, 3, len(c_client))
    lo = np.maximum(signup, 0)
    n_new = rng.poisson(p.p_new_campaign * (D - lo))
    new_client = np.repeat(cl, n_new)
    new_create = lo[new_client] + (rng.random(len(new_client)) * (D - lo[new_client])).astype(
        np.int64
    )
    c_client = np.concatenate([c_client, new_client])
    c_create = np.concatenate([c_create, new_create])
    nc = len(c_client)
    c_budget = SEG_BUDGET[seg[c_client]] * rng.lognormal(0.0, 0.6, nc)
    # client-level temperament: some clients pause far more often
    pause_mult = rng.lognormal(0.0, 0.7, n)[c_client]
    stop_mult = rng.lognormal(0.0, 1.0, n)[c_client]

    ev_c: list[np.ndarray] = []  # campaign index
    ev_d: list[np.ndarray] = []  # day
    ev_e: list[np.ndarray] = []  # event code
    ev_b: list[np.ndarray] = []  # budget after the event
    # creation (and start) events; pre-existing campaigns start before day 0
    ev_c += [np.arange(nc), np.arange(nc)]
    ev_d += [c_create, c_create]
    ev_e += [np.full(nc, EV["created"]), np.full(nc, EV["started"])]
    ev_b += [c_budget, c_budget]
    # state: 0 = not yet created, 1 running, 2 paused, 3 stopped
    state = np.where(c_create < 0, 1, 0).astype(np.int8)
    pre_paused = (c_create < -1) & (rng.random(nc) < 0.15)
    if pre_paused.any():
        idx = np.flatnonzero(pre_paused)
        pd_day = c_create[idx] + 1 + (rng.random(len(idx)) * (-1 - c_create[idx])).astype(np.int64)
        ev_c.append(idx)
        ev_d.append(pd_day)
        ev_e.append(np.full(len(idx), EV["paused"]))
        ev_b.append(c_budget[idx])
        state[idx] = 2
    sp_c: list[np.ndarray] = []
    sp_d: list[np.ndarray] = []
    sp_b: list[np.ndarray] = []
    pp = np.minimum(p.p_pause * pause_mult, 0.5)
    ps = np.minimum(p.p_stop * stop_mult, 0.2)
    for d in range(D):
        new = np.flatnonzero(c_create == d)
        state[new] = 1
        u = rng.random(nc)
        run = state == 1
        paused = state == 2
        to_pause = run & (u < pp)
        to_stop = (run | paused) & (u >= 0.5) & (u < 0.5 + ps)
        to_resume = paused & (u < p.p_resume)
        to_budget = run & ~to_pause & ~to_stop & (u > 1 - p.p_budget)
        for mask, code in (
            (to_pause, EV["paused"]),
            (to_resume, EV["resumed"]),
            (to_stop, EV["stopped"]),
            (to_budget, EV["budget_changed"]),
        ):
            idx = np.flatnonzero(mask)
            if len(idx):
                if code == EV["budget_changed"]:
                    c_budget[idx] *= rng.lognormal(0.0, 0.3, len(idx))
                ev_c.append(idx)
                ev_d.append(np.full(len(idx), d))
                ev_e.append(np.full(len(idx), code))
                ev_b.append(c_budget[idx])
        # spend accrues on days a campaign runs (state at the start of the day)
        idx = np.flatnonzero(run)
        if len(idx):
            cc = c_client[idx]
            tot = np.bincount(cc, weights=c_budget[idx], minlength=n)
            who = np.flatnonzero(tot > 0)
            sp_c.append(who)
            sp_d.append(np.full(len(who), d))
            sp_b.append(tot[who])
        state[to_pause] = 2
        state[to_resume] = 1
        state[to_stop] = 3

    e_c = np.concatenate(ev_c)
    e_d = np.concatenate(ev_d)
    e_e = np.concatenate(ev_e)
    e_b = np.concatenate(ev_b)
    keep = e_d >= signup[c_client[e_c]]
    e_c, e_d, e_e, e_b = e_c[keep], e_d[keep], e_e[keep], e_b[keep]
    ne = len(e_c)
    # a time of day per event, ordered within a campaign's day: created < started < ...
    tod = rng.integers(0, DAY_US // 2, ne) + np.where(e_e == EV["started"], DAY_US // 2, 0)
    is_pause = e_e == EV["paused"]
    init = rng.choice(3, ne, p=[0.5, 0.3, 0.2])
    init = np.where(e_e == EV["created"], 0, init)
    init = np.where(np.isin(e_e, [EV["stopped"], EV["budget_changed"]]), init % 2 * 2, init)
    reason = np.where(init == 1, 0, rng.choice(np.arange(1, 5), ne))
    camp_vocab = np.array([f"{ids_vocab[c]}-k{j}" for j, c in enumerate(c_client)], dtype=object)
    order = np.lexsort((tod, e_d, c_client[e_c]))
    e_c, e_d, e_e, e_b, tod, init, reason, is_pause = (
        a[order] for a in (e_c, e_d, e_e, e_b, tod, init, reason, is_pause)
    )
    has_init = e_e != EV["created"]
    campaign_events = pa.table(
        {
            "client_id": _strings(ids_vocab, c_client[e_c]),
            "campaign_id": _strings(camp_vocab, e_c),
            "ts": pa.array(start_us + e_d * DAY_US + tod, pa.timestamp("us")),
            "event": _strings(EVENTS, e_e),
            "initiator": _strings(INITIATORS, init, has_init),
            "reason": _strings(REASONS, reason, is_pause),
            "daily_budget": _float(np.round(e_b, 2)),
        },
        schema=SCHEMAS["campaign_events"],
    )

    # spend ------------------------------------------------------------------
    s_c = np.concatenate(sp_c) if sp_c else np.zeros(0, np.int64)
    s_d = np.concatenate(sp_d) if sp_d else np.zeros(0, np.int64)
    s_b = np.concatenate(sp_b) if sp_b else np.zeros(0)
    order = np.lexsort((s_d, s_c))
    s_c, s_d, s_b = s_c[order], s_d[order], s_b[order]
    ns = len(s_c)
    spend_v = s_b * rng.uniform(0.6, 1.05, ns)
    impressions = np.floor(spend_v * rng.gamma(4.0, 25.0, ns))
    clicks = rng.binomial(impressions.astype(np.int64), 0.02).astype(np.float64)
    conversions = rng.binomial(clicks.astype(np.int64), 0.05).astype(np.float64)
    spend = pa.table(
        {
            "client_id": _strings(ids_vocab, s_c),
            "date": _dates(start_day, s_d),
            "spend": _float(np.round(spend_v, 2)),
            "impressions": _float(impressions),
            "clicks": _float(clicks),
            "conversions": _float(conversions, rng.random(ns) > 0.05),
        },
        schema=SCHEMAS["spend"],
    )

    # invoices: monthly from the first day in the window ------------------------
    first_inv = lo + rng.integers(0, 30, n)
    n_inv = np.maximum((D - 1 - first_inv) // 30 + 1, 0)
    i_c = np.repeat(cl, n_inv)
    k = np.arange(len(i_c)) - np.repeat(np.cumsum(n_inv) - n_inv, n_inv)
    i_d = first_inv[i_c] + 30 * k
    ni = len(i_c)
    issued = start_us + i_d * DAY_US + rng.integers(0, DAY_US, ni)
    pay_delay = (rng.exponential(5.0, ni) * DAY_US).astype(np.int64)
    paid = issued + pay_delay
    paid_ok = (rng.random(ni) > 0.04) & (paid < start_us + D * DAY_US)
    invoices = pa.table(
        {
            "client_id": _strings(ids_vocab, i_c),
            "invoice_id": pa.array([f"inv-{first + c}-{j}" for c, j in zip(i_c, k, strict=True)]),
            "issued_at": pa.array(issued, pa.timestamp("us")),
            "due_at": _dates(start_day, i_d + 14),
            "amount": _float(np.round(revenue[i_c] * rng.uniform(0.7, 1.3, ni), 2)),
            "paid_at": pa.array(paid, pa.timestamp("us"), mask=~paid_ok),
        },
        schema=SCHEMAS["invoices"],
    )

    # contacts -------------------------------------------------------------------
    def poisson_days(rate: float, shape: float) -> tuple[np.ndarray, np.ndarray]:
        lam = rng.gamma(shape, rate / shape, n) * (D - lo)
        cnt = rng.poisson(lam)
        cc = np.repeat(cl, cnt)
        dd = lo[cc] + (rng.random(len(cc)) * (D - lo[cc])).astype(np.int64)
        order = np.lexsort((dd, cc))
        return cc[order], dd[order]

    k_c, k_d = poisson_days(p.contact_rate, 1.5)
    nk = len(k_c)
    ch = rng.choice(len(CHANNELS), nk, p=CHANNEL_P)
    out = rng.random(nk) < OUTBOUND_P[ch]
    is_call = ch == 0
    reached = np.where(out, rng.random(nk) < 0.6, True)
    staff_vocab = np.array([f"staff_{i:02d}" for i in range(N_STAFF)], dtype=object)
    contacts = pa.table(
        {
            "client_id": _strings(ids_vocab, k_c),
            "ts": _ts(start_us, k_d, rng),
            "channel": _strings(CHANNELS, ch),
            "direction": _strings(DIRECTIONS, out.astype(np.int64)),
            "topic": _strings(TOPICS, rng.choice(5, nk, p=TOPIC_P), rng.random(nk) > 0.1),
            "outcome": _strings(OUTCOMES, (~reached).astype(np.int64), is_call),
            "staff": _strings(staff_vocab, rng.integers(0, N_STAFF, nk)),
        },
        schema=SCHEMAS["contacts"],
    )

    # activity -------------------------------------------------------------------
    a_c, a_d = poisson_days(p.activity_rate, 1.0)
    na = len(a_c)
    a_e = rng.choice(3, na, p=ACTIVITY_P)
    activity = pa.table(
        {
            "client_id": _strings(ids_vocab, a_c),
            "ts": _ts(start_us, a_d, rng),
            "event": _strings(ACTIVITY, a_e),
            "value": _float(np.round(rng.exponential(60.0, na), 1), a_e == 1),
        },
        schema=SCHEMAS["activity"],
    )

    # assignments: the first owner at signup, some change hands in the window ----
    m_c = np.flatnonzero(managed)
    ch_c = m_c[rng.random(len(m_c)) < p.manager_change_share]
    ch_d = lo[ch_c] + 1 + (rng.random(len(ch_c)) * (D - 1 - lo[ch_c])).astype(np.int64)
    a_client = np.concatenate([m_c, ch_c])
    a_day = np.concatenate([signup[m_c], ch_d])
    a_mgr = np.concatenate([mgr[m_c], rng.integers(0, N_MANAGERS, len(ch_c))])
    order = np.lexsort((a_day, a_client))
    assignments = pa.table(
        {
            "client_id": _strings(ids_vocab, a_client[order]),
            "account_manager": _strings(mgr_vocab, a_mgr[order]),
            "from_date": _dates(start_day, a_day[order]),
        },
        schema=SCHEMAS["assignments"],
    )
    return {
        "clients": clients,
        "campaign_events": campaign_events,
        "invoices": invoices,
        "contacts": contacts,
        "spend": spend,
        "assignments": assignments,
        "activity": activity,
    }


# ------------------------------------------------------------------ writing and caching
def generate(out: Path, params: WorldParams, *, log=print) -> dict[str, int]:
    """Write a world's tables as ``<table>.parquet`` files under ``out``; return row counts.

    The directory is written under a temporary name and renamed at the end, so a
    reader never sees half a world. ``_meta.json`` records the generator version,
    the parameters and the row counts.
    """
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    writers = {t: pq.ParquetWriter(tmp / f"{t}.parquet", SCHEMAS[t]) for t in TABLES}
    rows = dict.fromkeys(TABLES, 0)
    t0 = time.perf_counter()
    try:
        for index, first in enumerate(range(0, params.clients, params.chunk)):
            n = min(params.chunk, params.clients - first)
            for t, tbl in _chunk(params, first, n, index).items():
                writers[t].write_table(tbl, row_group_size=1_000_000)
                rows[t] += tbl.num_rows
            log(
                f"  world chunk {index + 1}/{-(-params.clients // params.chunk)}: "
                f"{sum(rows.values()):,} rows, {time.perf_counter() - t0:.1f} s"
            )
    finally:
        for w in writers.values():
            w.close()
    meta = {
        "generator_version": GENERATOR_VERSION,
        "params": asdict(params),
        "rows": rows,
        "total_rows": sum(rows.values()),
        "event_rows": sum(v for t, v in rows.items() if t != "clients"),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (tmp / "_meta.json").write_text(json.dumps(meta, indent=2))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return rows


def world_meta(path: Path) -> dict | None:
    """Return a world directory's ``_meta.json`` (None when missing or unreadable)."""
    try:
        return json.loads((Path(path) / "_meta.json").read_text())
    except (OSError, ValueError):
        return None


def ensure_world(name: str = "world-100k", root: Path = BENCH_DATA, *, log=print) -> Path:
    """Return the directory of world ``name``, generating it if missing or outdated."""
    params = WORLDS[name]
    path = Path(root) / name
    meta = world_meta(path)
    if (
        meta is None
        or meta.get("generator_version") != GENERATOR_VERSION
        or meta.get("params") != asdict(params)
    ):
        log(f"generating {path} ({params.clients:,} clients x {params.days} days)")
        generate(path, params, log=log)
    return path


if __name__ == "__main__":  # pragma: no cover - manual use
    import sys

    for world in sys.argv[1:] or ["world-100k"]:
        print(ensure_world(world), world_meta(BENCH_DATA / world))
