"""The synthetic ad-platform world and its truth.

:func:`simulate` writes a data directory in the shape of DATA_CONTRACT.md (``clients``,
``campaign_events``, ``invoices``, ``contacts``, ``spend``, ``assignments``, ``activity``,
``freezes``) plus ``truth.parquet``. The world follows the seeds: most pauses are
harmless (season, budget) and only about one client pause episode in five ends in a
freeze (Rookee's "Vanga"); unpaid prepaid invoices make the system pause campaigns
(receivables collect); broader service is stickier; clients leave with a departing
manager; reached calls help and can rescue a client who is about to leave.

Mechanisms, one parameter group each in :class:`churnpredict.config.SimulateConfig`:

* **signup** - clients arrive (a share on day 0, the rest uniformly over the period) in
  segments with their own budgets, revenue and number of campaigns (1..max_campaigns).
  Campaigns are created on the signup day and started within a few days; a few
  clients never start.
* **managers** - one seat per ``clients_per_manager`` clients; a seat's manager leaves
  at random (Poisson) dates and a new manager takes over all its clients
  (``assignments`` rows). The change costs satisfaction and raises the leave hazard
  for a while. Each manager has a call rate (diligence).
* **satisfaction** - hidden, per client, an AR(1) walk
  ``s[t+1] = s[t] + reversion * (level - s[t]) + noise + jumps``, with
  ``level = segment part + results_weight * results + breadth_weight * log(campaigns)``;
  jumps: +gain for a reached manager call, -loss for an incident, -drop for a manager
  change. ``results`` is a hidden per-client quality that also sets the conversion rate
  in ``spend``.
* **churn** - daily hazard of deciding to leave
  ``h = exp(base + segment offset - sat_slope * s + newcomer bump + manager bump)``.
  A client who decides pauses every running campaign (initiator ``client``, reason
  ``results``/``budget``) and never pays the open invoice. While idle, a reached
  outbound call rescues it with ``rescue_prob`` (it resumes). Frozen clients come back
  with a small daily chance (campaigns resume; the freeze gets ``unfrozen_at``).
* **pauses** - harmless pauses by the client or the manager (reasons ``season``,
  seasonally modulated, and ``budget``) of all campaigns or of one of several; they
  last ``min_days .. idle_days - 1`` days, so they never trigger the idle rule alone.
  Also ``budget_changed`` and an occasional ``stopped`` campaign (while others run).
* **billing** - a prepaid invoice every ``every_days``; on time, late (geometric days
  after due) or never, more often for "bad payers". An invoice unpaid ``grace_days``
  after due makes the system pause everything (``system``/``low_balance``); payment
  resumes (``system``/``payment``); ``idle_days`` without payment is a freeze.
  Receivables staff email and call about overdue invoices.
* **contacts** - manager calls (``reached``/``no_answer``) and emails, extra calls to
  paused clients, technical tickets (after incidents and otherwise), complaints (more
  when unhappy), business-development sales calls that sometimes add a campaign
  (resale), meetings with key clients.
* **usage** - daily ``spend`` rows while something runs; ``activity`` (login,
  report_view, settings_change with a value) scaled by engagement.

The idle rule (the ``freezes`` table is exactly this rule applied to the written
``campaign_events``; see :func:`freezes_from_events`)
----------------------------------------------------------------------------------
A campaign is running after a ``started`` or ``resumed`` event and not running after
``paused`` or ``stopped`` (``created`` and ``budget_changed`` keep its state; it is not
running before its first event). The client's running count is evaluated after all
events that share one timestamp. An *idle span* starts at the client's signup date
00:00 UTC (when nothing runs then) or at the timestamp of the event that brings the
running count to 0, and ends at the timestamp of the event that brings it above 0.
A span longer than ``idle_days`` (exact timedelta; a span ending exactly at
``start + idle_days`` is no freeze) is a freeze with
``frozen_at = span start + idle_days`` and ``unfrozen_at = span end``; a span still
open at the end of the data is a freeze when ``frozen_at < data_end`` (``data_end`` =
``start_date + days`` 00:00 UTC, after every written row), with ``unfrozen_at`` null.
A client is frozen on ``[frozen_at, unfrozen_at)``.

Truth
-----
For every as-of date ``T`` (00:00 UTC, ``start_date + 28 + 7k`` days, while
``T + horizon <= data_end``) and every client active at ``T`` per the contract
(``signup_date < T`` and not frozen at ``T``), ``truth.parquet`` holds
``client_id, as_of, p_true, label``. ``label`` = 1 when the ``freezes`` table has a
``frozen_at`` in ``(T, T + horizon]``. ``p_true`` is computed *analytically* from the
hidden state at ``T`` (no Monte Carlo): pending outcomes are exact (a client already
leaving freezes unless a reached call rescues it on one of its remaining idle days;
an open invoice's hidden payment day decides a money freeze; a never-starting
newcomer freezes ``idle_days`` after signup); future decisions to leave use the exact
expected daily hazard ``E[h]`` under the satisfaction walk (Gaussian noise and
Bernoulli jumps have closed-form moment generating functions; known manager
departures are included), combined as ``1 - prod(1 - E[h])`` over the decision days
whose freeze falls in the window, times the chance of no rescue; the next invoice
adds ``P(never) + P(late >= grace + idle)``. Approximations, all second order: the
survival uses ``E[h]`` instead of the path-wise product, future harmless pauses, stops,
resales and the next manager's call rate are ignored, and a rescued client is not
followed further.

The same hidden state gives ``p_true_7d`` and ``p_true_90d`` (``label.max_horizon_days``):
the probability of a freeze in ``(T, T + 7 days]`` and ``(T, T + 90 days]``, computed the
same way with that window (clipped so that ``p_true_7d <= p_true <= p_true_90d``), and
``days_to_freeze`` is the day ``d`` (``(T + d - 1, T + d]``) of the client's next freeze,
empty when none happens before the data's end.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from churnpredict.config import LabelConfig, SimulateConfig

__all__ = ["simulate", "freezes_from_events", "TABLES"]

DAY = 86_400
BIG = 1 << 40
TABLES = (
    "clients",
    "campaign_events",
    "invoices",
    "contacts",
    "spend",
    "assignments",
    "activity",
    "freezes",
    "truth",
)

# client modes
NOTYET, PENDING, NORMAL, HPAUSE, MONEY, LEAVING, FROZEN = range(7)

EVENTS = ["created", "started", "paused", "resumed", "stopped", "budget_changed"]
EV_CREATED, EV_STARTED, EV_PAUSED, EV_RESUMED, EV_STOPPED, EV_BUDGET = range(6)
INITIATORS = ["client", "manager", "system"]
IN_CLIENT, IN_MANAGER, IN_SYSTEM = range(3)
REASONS = [
    "season",
    "budget",
    "results",
    "low_balance",
    "payment",
    "call",
    "return",
    "new_service",
]
RS_SEASON, RS_BUDGET, RS_RESULTS, RS_LOW_BALANCE, RS_PAYMENT, RS_CALL, RS_RETURN, RS_NEW = range(8)
CHANNELS = ["call", "email", "chat", "ticket", "meeting"]
CH_CALL, CH_EMAIL, CH_CHAT, CH_TICKET, CH_MEETING = range(5)
DIRECTIONS = ["inbound", "outbound"]
DIR_IN, DIR_OUT = range(2)
TOPICS = ["billing", "complaint", "technical", "results", "sales"]
TP_BILLING, TP_COMPLAINT, TP_TECHNICAL, TP_RESULTS, TP_SALES = range(5)
OUTCOMES = ["reached", "no_answer"]
ACT_EVENTS = ["login", "report_view", "settings_change"]

# Processing steps of a day; each emits its timestamps inside its own slice of the day,
# so timestamps order events exactly as they were processed.
_N_STEPS = 16
(
    ST_SIGNUP,
    ST_PAYMENT,
    ST_START,
    ST_COMEBACK,
    ST_RESUME,
    ST_SYSTEM,
    ST_LEAVE,
    ST_CALLS,
    ST_RESCUE,
    ST_PAUSE,
    ST_BUDGET,
    ST_STOP,
    ST_SALES,
    ST_INVOICE,
    ST_OTHER,
) = range(1, 16)

_CYR_WORDS = [
    "Ромашка",
    "Вектор",
    "Север",
    "Гранит",
    "Капитал",
    "Альфа",
    "Восход",
    "Меридиан",
    "Сфера",
    "Берёзка",
    "Интеграл",
    "Садовник",
    "Пекарня №1",
    "Ёлка",
    "Уют",
]
_CYR_FORMS = ["ООО", "ИП", "АО"]
_LAT_WORDS = [
    "Acme",
    "Nordic",
    "Bluebird",
    "Summit",
    "Harbor",
    "Pixel",
    "Evergreen",
    "Lumen",
    "Orbit",
    "Maple",
    "Atlas",
    "Quartz",
    "Cedar",
    "Nova",
    "Sterling",
]
_LAT_FORMS = ["LLC", "Ltd", "GmbH", "Inc."]
_FIRST = [
    "Анна",
    "Иван",
    "Мария",
    "Олег",
    "Елена",
    "Дмитрий",
    "Ольга",
    "Сергей",
    "Anna",
    "John",
    "Maria",
    "Peter",
    "Laura",
    "David",
    "Sofia",
    "Mark",
]
_LAST = [
    "Иванова",
    "Петров",
    "Смирнова",
    "Кузнецов",
    "Соколова",
    "Попов",
    "Лебедева",
    "Новиков",
    "Miller",
    "Smith",
    "Garcia",
    "Brown",
    "Novak",
    "Weber",
    "Rossi",
    "Moreau",
]


# ----------------------------------------------------------------------------- buffers
@dataclass
class _Buffer:
    """Column chunks appended day by day and concatenated once."""

    cols: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, **columns: np.ndarray) -> None:
        for name, values in columns.items():
            self.cols.setdefault(name, []).append(np.asarray(values))

    def frame(self, spec: dict[str, type]) -> dict[str, np.ndarray]:
        out = {}
        for name, dtype in spec.items():
            chunks = self.cols.get(name, [])
            out[name] = np.concatenate(chunks).astype(dtype) if chunks else np.empty(0, dtype)
        return out


class _World:
    """The simulation state and its day step (private; use :func:`simulate`)."""

    def __init__(
        self, cfg: SimulateConfig, idle_days: int, horizon_days: int, max_horizon: int = 90
    ) -> None:
        self.cfg = cfg
        self.idle = idle_days
        self.horizon = horizon_days
        self.max_horizon = max_horizon
        self.days = cfg.days
        self.rng = np.random.default_rng(cfg.seed)
        self.ev = _Buffer()
        self.con = _Buffer()
        self.spend = _Buffer()
        self.act = _Buffer()
        self.asg = _Buffer()
        self.truth = _Buffer()
        self.freeze_log = _Buffer()
        self.unfreeze_log = _Buffer()
        self._setup()

    # ------------------------------------------------------------------ setup
    def _setup(self) -> None:
        cfg, rng = self.cfg, self.rng
        n, days = cfg.clients, cfg.days
        sg = cfg.signup
        seg_names = list(sg.segments)
        segs = [sg.segments[s] for s in seg_names]
        shares = np.array([s.share for s in segs], float)
        self.seg_names = seg_names
        self.seg = rng.choice(len(segs), size=n, p=shares / shares.sum())
        initial = rng.random(n) < sg.initial_share
        self.signup_day = np.where(initial, 0, rng.integers(1, max(days, 2), size=n))
        C = sg.max_campaigns
        self.C = C
        n0 = 1 + rng.poisson(np.array([s.campaigns_mean for s in segs])[self.seg])
        self.n0 = np.minimum(n0, C)
        self.results = rng.normal(0.0, cfg.satisfaction.results_sd, n)
        self.bad_payer = rng.random(n) < cfg.billing.bad_payer_share
        delay = rng.integers(0, sg.max_start_delay_days + 1, n)
        delay = np.minimum(delay, self.idle - 1)
        never = rng.random(n) < sg.never_start_share
        self.start_day = np.where(never, BIG, self.signup_day + delay)
        self.seg_budget = np.array([s.daily_budget for s in segs])[self.seg]
        rev = np.array([s.monthly_revenue for s in segs])[self.seg]
        self.revenue = np.round(
            rev
            * np.exp(rng.normal(0, 0.4, n))
            * (self.n0 / (1 + np.array([s.campaigns_mean for s in segs])[self.seg])),
            2,
        )
        self.hz_off = np.array([s.hazard_offset for s in segs])[self.seg]
        self.call_factor = np.array([s.call_factor for s in segs])[self.seg]
        self.is_key = np.array([name == "key" for name in seg_names])[self.seg]

        # managers: seats, departures, diligence per (seat, generation)
        mg = cfg.managers
        self.n_seats = max(1, math.ceil(n / mg.clients_per_manager))
        self.seat = rng.integers(0, self.n_seats, n)
        p_dep = mg.departures_per_year / 365.0
        self.depart = rng.random((days, self.n_seats)) < p_dep
        gens = self.depart.sum(axis=0).max() + 1
        self.G = int(gens)
        self.diligence = (
            mg.calls_per_client_month
            / 30.0
            * np.exp(
                rng.normal(-0.5 * mg.diligence_sd**2, mg.diligence_sd, (self.n_seats, self.G))
            )
        )
        self.gen = np.zeros(self.n_seats, np.int64)
        # next departure day >= t per seat (BIG if none)
        nxt = np.full((days + 1, self.n_seats), BIG, np.int64)
        for t in range(days - 1, -1, -1):
            nxt[t] = np.where(self.depart[t], t, nxt[t + 1])
        self.next_dep = nxt

        # satisfaction
        st = cfg.satisfaction
        self.n_alive = self.n0.astype(np.int64)
        self.sat = self._level() + rng.normal(0, st.init_sd, n)

        # slots
        self.exists = np.arange(C)[None, :] < self.n0[:, None]
        self.alive = self.exists.copy()
        self.running = np.zeros((n, C), bool)
        self.started = np.zeros((n, C), bool)
        self.budget = np.round(self.seg_budget[:, None] * np.exp(rng.normal(0, 0.5, (n, C))), 2)
        self.pend = np.full((n, C), -1, np.int64)

        # client state
        self.mode = np.full(n, NOTYET, np.int8)
        self.idle_sec = np.zeros(n, np.int64)
        self.freeze_day = np.full(n, BIG, np.int64)
        self.hp_end = np.full(n, -1, np.int64)
        self.hp_init = np.zeros(n, np.int64)
        self.hp_reason = np.zeros(n, np.int64)
        self.money_frozen = np.zeros(n, bool)
        self.chg_day = np.full(n, -BIG, np.int64)

        # invoices (preallocated: at most one open invoice per client per every_days)
        bl = cfg.billing
        cap = n * (days // bl.every_days + 2) + 16
        self.inv_client = np.zeros(cap, np.int64)
        self.inv_issue = np.zeros(cap, np.int64)
        self.inv_due_day = np.zeros(cap, np.int64)
        self.inv_amount = np.zeros(cap, float)
        self.inv_paid = np.full(cap, -1, np.int64)
        self.n_inv = 0
        self.out = np.zeros(n, bool)
        self.out_idx = np.zeros(n, np.int64)
        self.out_due = np.zeros(n, np.int64)
        self.out_pay = np.full(n, BIG, np.int64)
        self.next_inv = np.where(never, BIG, self.start_day)

    def _level(self) -> np.ndarray:
        st = self.cfg.satisfaction
        return st.results_weight * self.results + st.breadth_weight * np.log(self.n_alive)

    # ------------------------------------------------------------------ helpers
    def _sec(self, t: int, step: int, size: int) -> np.ndarray:
        width = DAY // _N_STEPS
        return t * DAY + step * width + self.rng.integers(1, width - 1, size)

    def _emit(self, cl, slot, sec, event, init, reason) -> None:
        k = len(cl)
        if k == 0:
            return
        self.ev.add(
            client=cl,
            slot=slot,
            sec=sec,
            event=np.broadcast_to(np.asarray(event, np.int64), (k,)),
            init=np.broadcast_to(np.asarray(init, np.int64), (k,)),
            reason=np.broadcast_to(np.asarray(reason, np.int64), (k,)),
            budget=self.budget[cl, slot],
        )

    def _contact(self, cl, sec, channel, direction, topic, outcome, staff) -> None:
        k = len(cl)
        if k == 0:
            return

        def b(v):
            return np.broadcast_to(np.asarray(v, np.int64), (k,))

        self.con.add(
            client=cl,
            sec=sec,
            channel=b(channel),
            direction=b(direction),
            topic=b(topic),
            outcome=b(outcome),
            staff=b(staff),
        )

    def _pause_all(self, idx, sec, init, reason) -> None:
        r, c = np.nonzero(self.running[idx])
        self._emit(idx[r], c, sec[r], EV_PAUSED, init, reason)
        self.running[idx] = False
        self.pend[idx] = -1
        self.idle_sec[idx] = sec
        self.freeze_day[idx] = sec // DAY + self.idle

    def _resume_all(self, idx, sec, init, reason) -> None:
        sub = self.alive[idx] & ~self.running[idx]
        r, c = np.nonzero(sub)
        cl = idx[r]
        ev = np.where(self.started[cl, c], EV_RESUMED, EV_STARTED)
        self._emit(cl, c, sec[r], ev, init, reason)
        self.running[cl, c] = True
        self.started[cl, c] = True
        self.pend[idx] = -1
        self.freeze_day[idx] = BIG
        self.mode[idx] = NORMAL

    def _pay(self, idx, sec) -> None:
        m = self.out[idx]
        j = idx[m]
        self.inv_paid[self.out_idx[j]] = sec[m]
        self.out[j] = False
        self.out_pay[j] = BIG

    def _staff_manager(self, idx) -> np.ndarray:
        return self.seat[idx] * self.G + self.gen[self.seat[idx]]

    def _call_rate(self, idx=None) -> np.ndarray:
        sl = slice(None) if idx is None else idx
        seat = self.seat[sl]
        return np.minimum(self.diligence[seat, self.gen[seat]] * self.call_factor[sl], 1.0)

    def _rescue_daily(self, idx) -> np.ndarray:
        rho = self.cfg.contacts.reach_prob
        c = self._call_rate(idx)
        p_reach = 1 - (1 - c * rho) * (1 - self.cfg.churn.paused_call_rate * rho)
        return self.cfg.churn.rescue_prob * p_reach

    def _log_hazard_base(self, t, idx, chg) -> np.ndarray:
        ch, mg = self.cfg.churn, self.cfg.managers
        tenure = t - self.start_day[idx]
        lb = ch.base_log_hazard + self.hz_off[idx]
        lb = lb + ch.newcomer_boost * ((tenure >= 0) & (tenure < ch.newcomer_days))
        since = t - chg - 1
        lb = lb + np.where(
            since >= 0, mg.hazard_boost * np.exp(-np.maximum(since, 0) / mg.boost_days), 0.0
        )
        return lb

    # ------------------------------------------------------------------ truth
    def _truth(self, T: int) -> None:
        idx = np.nonzero((self.signup_day < T) & (self.mode != FROZEN) & (self.mode != NOTYET))[0]
        if len(idx) == 0:
            return
        p = self._truth_p(T, idx, self.horizon, self._p_leave(T, idx))
        # the same hidden state at 7 and max_horizon days (p_leave summed day by day in
        # one pass); clipped to p_true so rounding never breaks p_7d <= p_true <= p_90d
        short, long = sorted((7, self.horizon)), max(self.max_horizon, self.horizon)
        leave = self._p_leave_days(T, idx, (short[0], long))
        p7 = np.minimum(self._truth_p(T, idx, short[0], leave[short[0]]), p)
        p90 = np.maximum(self._truth_p(T, idx, long, leave[long]), p)
        self.truth.add(client=idx, day=np.full(len(idx), T), p=p, p7=p7, p90=p90)

    def _truth_p(self, T: int, idx: np.ndarray, H: int, p_leave_raw: np.ndarray) -> np.ndarray:
        """Return the probability of a freeze in ``(T, T + H]`` (see the module docstring)."""
        cfg = self.cfg
        L = self.idle
        m = self.mode[idx]
        r = self._rescue_daily(idx)
        fixed = np.zeros(len(idx))
        # already leaving: freezes unless rescued on one of the remaining idle days
        lv = m == LEAVING
        rem = self.freeze_day[idx] - np.maximum(T, self.idle_sec[idx] // DAY + 1)
        lv_in = lv & (self.freeze_day[idx] <= T + H - 1)  # always so when H >= idle_days
        fixed = np.where(lv_in, (1 - r) ** np.maximum(rem, 0), fixed)
        # never-starting newcomers: frozen_at = signup + L at 00:00
        fz = self.signup_day[idx] + L
        never = (m == PENDING) & (self.start_day[idx] >= BIG)
        fixed = np.where(never & (fz <= T + H) & (fz < self.days), 1.0, fixed)
        # open invoice with a known (hidden) payment day
        bl = cfg.billing
        pay = self.out_pay[idx]
        a = self.out_due[idx] + bl.grace_days
        f_money = np.full(len(idx), BIG, np.int64)
        idle_day = self.idle_sec[idx] // DAY
        f_money = np.where(m == MONEY, idle_day + L, f_money)
        f_money = np.where((m == NORMAL) & self.out[idx], np.maximum(a, T) + L, f_money)
        hp = (m == HPAUSE) & self.out[idx]
        f_money = np.where(hp & (a < self.hp_end[idx]), idle_day + L, f_money)
        f_money = np.where(hp & (a >= self.hp_end[idx]), a + L, f_money)
        doomed = (f_money < BIG) & (pay >= f_money) & (f_money <= T + H - 1)
        fixed = np.where(doomed & ~lv, 1.0, fixed)
        # the next invoice, when none is open
        g = 1.0 / bl.late_mean_days
        p_late = np.where(self.bad_payer[idx], bl.late_prob_bad, bl.late_prob_good)
        p_never = np.where(self.bad_payer[idx], bl.never_prob_bad, bl.never_prob_good)
        p_inv = p_never + p_late * (1 - g) ** (bl.grace_days + L - 1)
        issue = np.maximum(self.next_inv[idx], T)
        fut = (~self.out[idx]) & np.isin(m, (NORMAL, HPAUSE, PENDING)) & ~never
        fut &= issue + bl.due_days + bl.grace_days + L <= T + H - 1
        p_money = np.where(fut, p_inv, 0.0)
        # future decisions to leave
        p_leave = p_leave_raw * (1 - r) ** (L - 1)
        p_leave = np.where(lv | never, 0.0, p_leave)
        p = 1 - (1 - fixed) * (1 - p_money) * (1 - p_leave)
        p = np.where(lv, fixed, p)
        return np.clip(p, 0.0, 1.0)

    def _p_leave(self, T: int, idx: np.ndarray) -> np.ndarray:
        cfg = self.cfg
        st, mg, ch = cfg.satisfaction, cfg.managers, cfg.churn
        K = self.horizon - 1 - self.idle
        if K < 0:
            return np.zeros(len(idx))
        a = 1 - st.reversion
        beta = ch.sat_slope
        s0 = self.sat[idx]
        mu = self._level()[idx]
        pc = self._call_rate(idx) * cfg.contacts.reach_prob
        pi = st.incident_rate
        nc = self.next_dep[min(T, self.days), self.seat[idx]]
        surv = np.ones(len(idx))
        total = np.zeros(len(idx))
        for k in range(K + 1):
            t = T + k
            chg = np.where(nc < t, nc, self.chg_day[idx])
            lb = self._log_hazard_base(t, idx, chg)
            lm = -beta * a**k * s0
            for j in range(k):
                w = beta * a ** (k - 1 - j)
                lm = lm - w * st.reversion * mu + 0.5 * (w * st.noise_sd) ** 2
                lm = lm + np.log1p(pc * np.expm1(-w * st.reached_call_gain))
                lm = lm + math.log1p(pi * math.expm1(w * st.incident_loss))
                lm = lm + np.where(nc == T + j, w * mg.sat_drop, 0.0)
            h = np.minimum(np.exp(lb + lm), 1.0)
            h = np.where(t >= self.start_day[idx], h, 0.0)
            total += surv * h
            surv *= 1 - h
        return total

    def _p_leave_days(self, T: int, idx: np.ndarray, horizons: tuple[int, ...]) -> dict:
        """Return :meth:`_p_leave` for each horizon in one pass over the decision days.

        The same sum as :meth:`_p_leave` (which loops over every earlier day for each
        decision day, O(K^2)): the satisfaction terms depend only on ``k - 1 - j``, so
        their sum over ``j < k`` grows by one term per day, and a known manager departure
        on day ``T + j`` adds ``w(k - 1 - j) * sat_drop`` once ``k > j``.
        """
        cfg = self.cfg
        st, mg, ch = cfg.satisfaction, cfg.managers, cfg.churn
        a = 1 - st.reversion
        beta = ch.sat_slope
        s0 = self.sat[idx]
        mu = self._level()[idx]
        pc = self._call_rate(idx) * cfg.contacts.reach_prob
        pi = st.incident_rate
        nc = self.next_dep[min(T, self.days), self.seat[idx]]
        dj = nc - T  # the departure's day offset (hits when 0 <= dj < k)
        want = {h: h - 1 - self.idle for h in horizons}
        K = max(want.values())
        surv = np.ones(len(idx))
        total = np.zeros(len(idx))
        acc = np.zeros(len(idx))  # sum over m < k of the terms with w = beta * a**m
        out = {h: np.zeros(len(idx)) for h in horizons}
        for k in range(K + 1):
            if k > 0:
                w = beta * a ** (k - 1)
                acc = acc - w * st.reversion * mu + 0.5 * (w * st.noise_sd) ** 2
                acc = acc + np.log1p(pc * np.expm1(-w * st.reached_call_gain))
                acc = acc + math.log1p(pi * math.expm1(w * st.incident_loss))
            t = T + k
            chg = np.where(nc < t, nc, self.chg_day[idx])
            lb = self._log_hazard_base(t, idx, chg)
            dep = np.where((dj >= 0) & (dj < k), beta * a ** np.maximum(k - 1 - dj, 0), 0.0)
            lm = -beta * a**k * s0 + acc + dep * mg.sat_drop
            h = np.minimum(np.exp(lb + lm), 1.0)
            h = np.where(t >= self.start_day[idx], h, 0.0)
            total += surv * h
            surv *= 1 - h
            for hz, kk in want.items():
                if kk == k:
                    out[hz] = total.copy()
        return out

    # ------------------------------------------------------------------ the day
    def step(self, t: int, as_of: bool) -> None:  # noqa: C901 - one place for the day
        cfg, rng = self.cfg, self.rng
        n = cfg.clients
        L = self.idle
        ch, pz, bl, cn, st, mg, us = (
            cfg.churn,
            cfg.pauses,
            cfg.billing,
            cfg.contacts,
            cfg.satisfaction,
            cfg.managers,
            cfg.usage,
        )
        if as_of:
            self._truth(t)
        mode = self.mode

        # signups: campaigns created, idle from signup 00:00
        new = np.nonzero(self.signup_day == t)[0]
        if len(new):
            mode[new] = PENDING
            self.idle_sec[new] = t * DAY
            self.freeze_day[new] = t + L
            sec = self._sec(t, ST_SIGNUP, len(new))
            r, c = np.nonzero(self.exists[new])
            self._emit(new[r], c, sec[r], EV_CREATED, IN_CLIENT, -1)
            self.asg.add(client=new, staff=self._staff_manager(new), day=np.full(len(new), t))

        # freezes: the idle span reaches idle_days during this day
        fr = np.nonzero((self.freeze_day == t) & np.isin(mode, (PENDING, HPAUSE, MONEY, LEAVING)))[
            0
        ]
        if len(fr):
            if np.any(mode[fr] == HPAUSE):
                raise RuntimeError("internal: a harmless pause reached the idle rule")
            self.money_frozen[fr] = (mode[fr] == MONEY) | self.out[fr]
            mode[fr] = FROZEN
            self.freeze_log.add(client=fr, sec=self.idle_sec[fr] + L * DAY)

        # payments
        pidx = np.nonzero(self.out & (self.out_pay == t))[0]
        if len(pidx):
            sec = self._sec(t, ST_PAYMENT, len(pidx))
            self.inv_paid[self.out_idx[pidx]] = sec
            self.out[pidx] = False
            self.out_pay[pidx] = BIG
            mon = mode[pidx] == MONEY
            self._resume_all(pidx[mon], sec[mon], IN_SYSTEM, RS_PAYMENT)

        # first starts
        sidx = np.nonzero((mode == PENDING) & (self.start_day == t))[0]
        if len(sidx):
            self._resume_all(sidx, self._sec(t, ST_START, len(sidx)), IN_CLIENT, -1)

        # comebacks of frozen clients (never on the freeze day itself)
        fz = np.nonzero((mode == FROZEN) & (self.freeze_day < t))[0]
        if len(fz):
            paid_back = self.money_frozen[fz] & ~self.out[fz] & (self.start_day[fz] < BIG)
            ret = rng.random(len(fz)) < ch.comeback_rate
            back = fz[paid_back | ret]
            if len(back):
                sec = self._sec(t, ST_COMEBACK, len(back))
                self._pay(back, sec)
                self.unfreeze_log.add(client=back, sec=sec)
                sysb = paid_back[paid_back | ret]
                self._resume_all(back[sysb], sec[sysb], IN_SYSTEM, RS_PAYMENT)
                self._resume_all(back[~sysb], sec[~sysb], IN_CLIENT, RS_RETURN)
                self.sat[back] = np.maximum(self.sat[back], self._level()[back])
                self.money_frozen[back] = False
                self.start_day[back] = np.minimum(self.start_day[back], t)
                self.next_inv[back] = np.where(
                    self.next_inv[back] >= BIG, t, np.maximum(self.next_inv[back], t)
                )

        # harmless pauses end; partial pauses end
        he = np.nonzero((mode == HPAUSE) & (self.hp_end == t))[0]
        if len(he):
            overdue = self.out[he] & (t >= self.out_due[he] + bl.grace_days)
            mode[he[overdue]] = MONEY
            ok = he[~overdue]
            if len(ok):
                sec = self._sec(t, ST_RESUME, len(ok))
                for init in (IN_CLIENT, IN_MANAGER):
                    for rs in (RS_SEASON, RS_BUDGET):
                        sel = (self.hp_init[ok] == init) & (self.hp_reason[ok] == rs)
                        self._resume_all(ok[sel], sec[sel], init, rs)
        r, c = np.nonzero(self.pend == t)
        if len(r):
            keep = mode[r] == NORMAL
            r, c = r[keep], c[keep]
            sec = self._sec(t, ST_RESUME, len(r))
            for init in (IN_CLIENT, IN_MANAGER):
                for rs in (RS_SEASON, RS_BUDGET):
                    sel = (self.hp_init[r] == init) & (self.hp_reason[r] == rs)
                    self._emit(r[sel], c[sel], sec[sel], EV_RESUMED, init, rs)
            self.running[r, c] = True
            self.pend[r, c] = -1

        # system pause for an overdue invoice
        sp = np.nonzero(
            self.out & (t >= self.out_due + bl.grace_days) & np.isin(mode, (NORMAL, HPAUSE))
        )[0]
        if len(sp):
            nm = sp[mode[sp] == NORMAL]
            sec = self._sec(t, ST_SYSTEM, len(nm))
            self._pause_all(nm, sec, IN_SYSTEM, RS_LOW_BALANCE)
            mode[sp] = MONEY
            reached = rng.random(len(sp)) < cn.reach_prob
            self._contact(
                sp,
                self._sec(t, ST_SYSTEM, len(sp)),
                CH_CALL,
                DIR_OUT,
                TP_BILLING,
                np.where(reached, 0, 1),
                self.staff_recv0 + sp % bl.receivables_staff,
            )

        # decisions to leave
        el = np.nonzero(np.isin(mode, (NORMAL, HPAUSE, MONEY)))[0]
        if len(el):
            lh = self._log_hazard_base(t, el, self.chg_day[el]) - ch.sat_slope * self.sat[el]
            dec = el[rng.random(len(el)) < np.exp(lh)]
            if len(dec):
                nm = dec[mode[dec] == NORMAL]
                sec = self._sec(t, ST_LEAVE, len(nm))
                res = rng.random(len(nm)) < ch.results_reason_share
                self._pause_all(nm[res], sec[res], IN_CLIENT, RS_RESULTS)
                self._pause_all(nm[~res], sec[~res], IN_CLIENT, RS_BUDGET)
                mode[dec] = LEAVING
                self.out_pay[dec] = BIG

        # manager calls (all signed-up clients) and incidents
        live = np.nonzero(mode != NOTYET)[0]
        called = live[rng.random(len(live)) < self._call_rate(live)]
        reached_c = rng.random(len(called)) < cn.reach_prob
        staff = self._staff_manager(called)
        topic = np.where(rng.random(len(called)) < 0.85, TP_RESULTS, TP_SALES)
        self._contact(
            called,
            self._sec(t, ST_CALLS, len(called)),
            CH_CALL,
            DIR_OUT,
            topic,
            np.where(reached_c, 0, 1),
            staff,
        )
        paused = np.nonzero(np.isin(mode, (HPAUSE, MONEY, LEAVING)))[0]
        xc = paused[rng.random(len(paused)) < ch.paused_call_rate]
        reached_x = rng.random(len(xc)) < cn.reach_prob
        self._contact(
            xc,
            self._sec(t, ST_CALLS, len(xc)),
            CH_CALL,
            DIR_OUT,
            TP_RESULTS,
            np.where(reached_x, 0, 1),
            self._staff_manager(xc),
        )
        gain = np.zeros(n)
        gain[called[reached_c]] = st.reached_call_gain
        incident = np.zeros(n, bool)
        incident[live[rng.random(len(live)) < st.incident_rate]] = True

        # rescue: a reached call on a later idle day makes a leaving client resume
        reached_any = np.zeros(n, bool)
        reached_any[called[reached_c]] = True
        reached_any[xc[reached_x]] = True
        rc = np.nonzero((mode == LEAVING) & reached_any & (self.idle_sec // DAY < t))[0]
        rc = rc[rng.random(len(rc)) < ch.rescue_prob]
        if len(rc):
            sec = self._sec(t, ST_RESCUE, len(rc))
            self._pay(rc, sec)
            self._resume_all(rc, sec, IN_CLIENT, RS_CALL)
            self.sat[rc] = np.maximum(self.sat[rc], self._level()[rc])

        # harmless pauses start
        nm = np.nonzero(mode == NORMAL)[0]
        if len(nm):
            doy = (self.start_doy + t) % 365
            season = 1 + pz.season_amplitude * math.cos(
                2 * math.pi * (doy - pz.season_peak_doy) / 365
            )
            rates = np.array(
                [
                    pz.client_rate * pz.season_share * season,
                    pz.client_rate * (1 - pz.season_share),
                    pz.manager_rate * pz.season_share * season,
                    pz.manager_rate * (1 - pz.season_share),
                ]
            )
            u = rng.random(len(nm))
            kind = np.searchsorted(np.cumsum(rates), u, side="right")
            hit = kind < 4
            pi_, kind = nm[hit], kind[hit]
            if len(pi_):
                init = np.where(kind < 2, IN_CLIENT, IN_MANAGER)
                reason = np.where(kind % 2 == 0, RS_SEASON, RS_BUDGET)
                dur = rng.integers(
                    max(1, min(pz.min_days, L - 1)), max(L, 2), len(pi_)
                )  # <= idle_days - 1
                nrun = self.running[pi_].sum(axis=1)
                no_pend = (self.pend[pi_] < 0).all(axis=1)
                partial = (rng.random(len(pi_)) < pz.partial_share) & (nrun >= 2) & no_pend
                self.hp_init[pi_] = init
                self.hp_reason[pi_] = reason
                sec = self._sec(t, ST_PAUSE, len(pi_))
                # partial: one random running campaign
                pp = pi_[partial]
                slot = np.argmax(self.running[pp] * rng.random((len(pp), self.C)), axis=1)
                self._emit(pp, slot, sec[partial], EV_PAUSED, init[partial], reason[partial])
                self.running[pp, slot] = False
                self.pend[pp, slot] = t + dur[partial]
                # full
                fp = ~partial
                for i0 in (IN_CLIENT, IN_MANAGER):
                    for r0 in (RS_SEASON, RS_BUDGET):
                        sel = fp & (init == i0) & (reason == r0)
                        self._pause_all(pi_[sel], sec[sel], i0, r0)
                mode[pi_[fp]] = HPAUSE
                self.hp_end[pi_[fp]] = t + dur[fp]

        # budget changes, stops, resales (normal clients only)
        nm = np.nonzero(mode == NORMAL)[0]
        bc = nm[rng.random(len(nm)) < pz.budget_change_rate]
        if len(bc):
            slot = np.argmax(self.running[bc] * rng.random((len(bc), self.C)), axis=1)
            self.budget[bc, slot] = np.round(
                self.budget[bc, slot] * np.exp(rng.normal(0, 0.25, len(bc))), 2
            )
            init = np.where(rng.random(len(bc)) < 0.7, IN_CLIENT, IN_MANAGER)
            self._emit(bc, slot, self._sec(t, ST_BUDGET, len(bc)), EV_BUDGET, init, -1)
        nrun = self.running[nm].sum(axis=1)
        sc = nm[(nrun >= 2) & (rng.random(len(nm)) < pz.stop_rate)]
        if len(sc):
            slot = np.argmax(self.running[sc] * rng.random((len(sc), self.C)), axis=1)
            self._emit(sc, slot, self._sec(t, ST_STOP, len(sc)), EV_STOPPED, IN_CLIENT, RS_RESULTS)
            self.running[sc, slot] = False
            self.alive[sc, slot] = False
            self.pend[sc, slot] = -1
            self.n_alive[sc] -= 1
        sales_p = cn.sales_rate * np.where(self.sat[nm] > 0, 1.0, 0.3)
        sl = nm[rng.random(len(nm)) < sales_p]
        if len(sl):
            reached = rng.random(len(sl)) < cn.reach_prob
            sec = self._sec(t, ST_SALES, len(sl))
            self._contact(
                sl,
                sec,
                CH_CALL,
                DIR_OUT,
                TP_SALES,
                np.where(reached, 0, 1),
                self.staff_biz0 + sl % 2,
            )
            room = ~self.exists[sl].all(axis=1)
            buy = sl[reached & room & (rng.random(len(sl)) < cn.resale_prob)]
            if len(buy):
                slot = np.argmin(self.exists[buy], axis=1)
                self.exists[buy, slot] = True
                self.alive[buy, slot] = True
                s2 = self._sec(t, ST_SALES, len(buy))
                self._emit(buy, slot, s2, EV_CREATED, IN_CLIENT, RS_NEW)
                self._emit(buy, slot, s2 + 1, EV_STARTED, IN_CLIENT, RS_NEW)
                self.running[buy, slot] = True
                self.started[buy, slot] = True
                self.n_alive[buy] += 1

        # manager departures: the seat's clients move to the new manager
        dep = np.nonzero(self.depart[t])[0]
        changed = np.zeros(n, bool)
        if len(dep):
            self.gen[dep] += 1
            moved = np.nonzero(np.isin(self.seat, dep) & (mode != NOTYET))[0]
            changed[moved] = True
            self.chg_day[moved] = t
            self.asg.add(
                client=moved, staff=self._staff_manager(moved), day=np.full(len(moved), t)
            )

        # satisfaction walk
        lvl = self._level()
        eps = rng.normal(0, st.noise_sd, n)
        self.sat += (
            st.reversion * (lvl - self.sat)
            + eps
            + gain
            - st.incident_loss * incident
            - mg.sat_drop * changed
        )

        # invoices
        iv = np.nonzero(~self.out & (t >= self.next_inv) & np.isin(mode, (NORMAL, HPAUSE)))[0]
        if len(iv):
            k = len(iv)
            j = np.arange(self.n_inv, self.n_inv + k)
            self.n_inv += k
            self.inv_client[j] = iv
            self.inv_issue[j] = self._sec(t, ST_INVOICE, k)
            self.inv_due_day[j] = t + bl.due_days
            self.inv_amount[j] = np.round(self.revenue[iv] * rng.uniform(0.9, 1.1, k), 2) + 0.01
            p_late = np.where(self.bad_payer[iv], bl.late_prob_bad, bl.late_prob_good)
            p_never = np.where(self.bad_payer[iv], bl.never_prob_bad, bl.never_prob_good)
            u = rng.random(k)
            late_days = rng.geometric(1.0 / bl.late_mean_days, k)
            ontime = t + 1 + rng.integers(0, max(bl.due_days, 1), k)
            pay = np.where(
                u < p_never,
                BIG,
                np.where(u < p_never + p_late, t + bl.due_days + late_days, ontime),
            )
            self.out[iv] = True
            self.out_idx[iv] = j
            self.out_due[iv] = t + bl.due_days
            self.out_pay[iv] = pay
            self.next_inv[iv] = t + bl.every_days
        rem = np.nonzero(self.out & (t == self.out_due + 1))[0]
        self._contact(
            rem,
            self._sec(t, ST_OTHER, len(rem)),
            CH_EMAIL,
            DIR_OUT,
            TP_BILLING,
            -1,
            self.staff_recv0 + rem % bl.receivables_staff,
        )

        # other contacts: emails, tickets, complaints, meetings
        sat_l = self.sat[live]
        em = live[rng.random(len(live)) < mg.emails_per_client_month / 30.0]
        self._contact(
            em,
            self._sec(t, ST_OTHER, len(em)),
            CH_EMAIL,
            DIR_OUT,
            TP_RESULTS,
            -1,
            self._staff_manager(em),
        )
        inc = np.nonzero(incident)[0]
        tk = np.union1d(
            inc[rng.random(len(inc)) < cn.ticket_prob],
            live[rng.random(len(live)) < cn.ticket_rate],
        )
        self._contact(
            tk,
            self._sec(t, ST_OTHER, len(tk)),
            CH_TICKET,
            DIR_IN,
            TP_TECHNICAL,
            -1,
            self.staff_support,
        )
        p_comp = cn.complaint_rate * np.exp(-cn.complaint_sat_slope * sat_l)
        p_comp = p_comp + incident[live] * 0.3 / (1 + np.exp(2 * sat_l))
        cp = live[rng.random(len(live)) < p_comp]
        chan = np.array([CH_CALL, CH_EMAIL, CH_CHAT])[rng.integers(0, 3, len(cp))]
        self._contact(
            cp,
            self._sec(t, ST_OTHER, len(cp)),
            chan,
            DIR_IN,
            TP_COMPLAINT,
            -1,
            self._staff_manager(cp),
        )
        kk = live[self.is_key[live] & (mode[live] != FROZEN)]
        mt = kk[rng.random(len(kk)) < cn.meeting_rate_key]
        self._contact(
            mt,
            self._sec(t, ST_OTHER, len(mt)),
            CH_MEETING,
            DIR_OUT,
            TP_RESULTS,
            -1,
            self._staff_manager(mt),
        )

        # spend while something runs
        run = np.nonzero(self.running.any(axis=1))[0]
        if len(run):
            k = len(run)
            sp_ = (self.running[run] * self.budget[run]).sum(axis=1) * rng.uniform(0.75, 1.0, k)
            impr = rng.poisson(sp_ / us.cpm * 1000.0)
            clicks = rng.binomial(impr, us.ctr)
            cr = np.minimum(us.conversion_rate * np.exp(0.5 * self.results[run]), 0.9)
            conv = rng.binomial(clicks, cr)
            self.spend.add(
                client=run,
                day=np.full(k, t),
                spend=np.round(sp_, 2),
                impressions=impr,
                clicks=clicks,
                conversions=conv,
            )

        # activity
        eng = np.select([mode[live] == NORMAL, mode[live] == FROZEN], [1.0, 0.1], 0.5)
        eng = eng * np.exp(0.5 * np.clip(sat_l, -3, 3))
        for code, rate in enumerate((us.login_rate, us.report_rate, us.settings_rate)):
            cnt = rng.poisson(rate * eng)
            who = np.repeat(live, cnt)
            if len(who):
                val = (
                    np.round(rng.lognormal(3, 1, len(who)), 2)
                    if code == 2
                    else np.full(len(who), np.nan)
                )
                self.act.add(
                    client=who,
                    sec=self._sec(t, ST_OTHER, len(who)),
                    event=np.full(len(who), code),
                    value=val,
                )


# --------------------------------------------------------------------------- the rule
def freezes_from_events(
    events: pd.DataFrame,
    clients: pd.DataFrame,
    idle_days: int,
    data_end: pd.Timestamp,
) -> pd.DataFrame:
    """Apply the idle rule to campaign events (see the module docstring).

    Parameters
    ----------
    events : DataFrame
        ``client_id, campaign_id, ts, event`` (``ts`` comparable with ``data_end``).
    clients : DataFrame
        ``client_id, signup_date``.
    idle_days : int
        Length of an idle span that makes a freeze.
    data_end : Timestamp
        End of the data; an open span freezes only when ``frozen_at < data_end``.

    Returns
    -------
    DataFrame
        ``client_id, frozen_at, unfrozen_at`` sorted by client and time.
    """
    idle = pd.Timedelta(days=idle_days)
    ev = events[["client_id", "campaign_id", "ts", "event"]].copy()
    ev["client_id"] = ev["client_id"].astype(str)
    ev["_seq"] = np.arange(len(ev))
    ev = ev.sort_values(["client_id", "campaign_id", "ts", "_seq"], kind="stable")
    state = ev["event"].map({"started": 1.0, "resumed": 1.0, "paused": 0.0, "stopped": 0.0})
    state = state.groupby([ev["client_id"], ev["campaign_id"]], sort=False).ffill().fillna(0.0)
    prev = state.groupby([ev["client_id"], ev["campaign_id"]], sort=False).shift(1).fillna(0.0)
    ev["delta"] = (state - prev).to_numpy()
    per_ts = ev.groupby(["client_id", "ts"], sort=True)["delta"].sum().reset_index()
    per_ts["n"] = per_ts.groupby("client_id")["delta"].cumsum()
    per_ts["prev_n"] = per_ts.groupby("client_id")["n"].shift(1).fillna(0.0)
    starts_ev = per_ts.loc[(per_ts["prev_n"] > 0) & (per_ts["n"] <= 0), ["client_id", "ts"]]
    ends = per_ts.loc[(per_ts["prev_n"] <= 0) & (per_ts["n"] > 0), ["client_id", "ts"]]
    cl = clients[["client_id", "signup_date"]].copy()
    cl["client_id"] = cl["client_id"].astype(str)
    signup_ts = pd.to_datetime(cl["signup_date"])
    if getattr(data_end, "tzinfo", None) is not None:
        signup_ts = signup_ts.dt.tz_localize("UTC")
    starts = pd.concat(
        [pd.DataFrame({"client_id": cl["client_id"], "ts": signup_ts}), starts_ev],
        ignore_index=True,
    )
    starts["ts"] = starts["ts"].astype(ends["ts"].dtype) if len(ends) else starts["ts"]
    starts = starts.sort_values(["client_id", "ts"], kind="stable")
    ends = ends.sort_values(["client_id", "ts"], kind="stable")
    starts["k"] = starts.groupby("client_id").cumcount()
    ends = ends.assign(k=ends.groupby("client_id").cumcount())
    spans = starts.merge(ends, on=["client_id", "k"], how="left", suffixes=("_start", "_end"))
    frozen_at = spans["ts_start"] + idle
    closed = spans["ts_end"].notna()
    is_freeze = np.where(closed, spans["ts_end"] - spans["ts_start"] > idle, frozen_at < data_end)
    out = pd.DataFrame(
        {
            "client_id": spans["client_id"].to_numpy(),
            "frozen_at": frozen_at.to_numpy(),
            "unfrozen_at": spans["ts_end"].to_numpy(),
        }
    )[np.asarray(is_freeze, bool)]
    return out.sort_values(["client_id", "frozen_at"], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- output
def _write(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _codes(codes: np.ndarray, labels: list[str]) -> pa.Array:
    codes = np.asarray(codes, np.int64)
    idx = pa.array(codes, mask=codes < 0)
    return pa.array(labels, pa.string()).take(idx)


def _ts(sec: np.ndarray, epoch_s: int) -> pa.Array:
    sec = np.asarray(sec, np.int64)
    return pa.array((sec + epoch_s) * 1_000_000, pa.timestamp("us", tz="UTC"), mask=sec < 0)


def _dates(day: np.ndarray, epoch_day: int) -> pa.Array:
    return pa.array((np.asarray(day, np.int64) + epoch_day).astype(np.int32), pa.date32())


def _manager_names(rng: np.random.Generator, n: int) -> list[str]:
    """Return ``n`` manager names "First Last #i": one script and one gender per name."""
    fi = rng.integers(0, len(_FIRST), n)
    # both lists alternate female/male within each script's block of 8
    la = fi // 8 * 8 + rng.integers(0, 8, n) // 2 * 2 + fi % 2
    return [f"{_FIRST[fi[i]]} {_LAST[la[i]]} #{i + 1}" for i in range(n)]


def _names(rng: np.random.Generator, n: int, cyr_share: float) -> list[str]:
    cyr = rng.random(n) < cyr_share
    w = rng.integers(0, len(_CYR_WORDS), n)
    f = rng.integers(0, 3, n)
    num = rng.integers(1, 1000, n)
    out = []
    for i in range(n):
        if cyr[i]:
            out.append(f"{_CYR_FORMS[f[i]]} «{_CYR_WORDS[w[i]]}-{num[i]}»")
        else:
            out.append(f"{_LAT_WORDS[w[i]]} {num[i]} {_LAT_FORMS[f[i] % 4]}")
    return out


def simulate(cfg: SimulateConfig, out_dir: Path, *, label_cfg: LabelConfig) -> dict:
    """Simulate the world and write its tables and truth into ``out_dir``.

    Parameters
    ----------
    cfg : SimulateConfig
        Size, seed, start date and the parameters of every mechanism.
    out_dir : Path
        Directory to write ``<table>.parquet`` files into (created if missing).
    label_cfg : LabelConfig
        ``idle_days`` (the freeze rule) and ``horizon_days`` (the truth window).

    Returns
    -------
    dict
        ``rows`` per table, ``freeze_rate`` (mean truth label), ``mean_p_true``,
        ``freezes``, ``pause_episodes``, ``pause_episode_freeze_share`` and ``seconds``.
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    L, H = label_cfg.idle_days, label_cfg.horizon_days
    world = _World(cfg, L, H, int(getattr(label_cfg, "max_horizon_days", 90)))
    start = pd.Timestamp(cfg.start_date)
    world.start_doy = start.dayofyear - 1
    epoch_day = (cfg.start_date - date(1970, 1, 1)).days
    epoch_s = epoch_day * DAY
    n, C = cfg.clients, world.C
    as_of_days = set(range(28, cfg.days - H + 1, 7))

    # staff: managers (seat × generation), receivables, business development, support
    rng_names = np.random.default_rng([cfg.seed, 1])
    n_mgr = world.n_seats * world.G
    staff = _manager_names(rng_names, n_mgr)
    world.staff_recv0 = len(staff)
    staff += [f"Receivables {i + 1}" for i in range(cfg.billing.receivables_staff)]
    world.staff_biz0 = len(staff)
    staff += ["Business development 1", "Business development 2"]
    world.staff_support = len(staff)
    staff += ["Support"]

    for t in range(cfg.days):
        world.step(t, t in as_of_days)

    ids = [f"C{i + 1:06d}" for i in range(n)]
    ids_pa = pa.array(ids, pa.string())
    camp_pa = pa.array([f"{ids[i]}-{s + 1}" for i in range(n) for s in range(C)], pa.string())
    staff_pa = pa.array(staff, pa.string())
    rows: dict[str, int] = {}

    def cid(idx: np.ndarray) -> pa.Array:
        return ids_pa.take(pa.array(np.asarray(idx, np.int64)))

    # clients (only those who signed up within the period)
    signed = np.nonzero(world.signup_day < cfg.days)[0]
    names = _names(rng_names, n, cfg.signup.cyrillic_share)
    phones = rng_names.integers(0, 10**10, n)
    cur_mgr = world.seat * world.G + world.gen[world.seat]
    clients = pa.table(
        {
            "client_id": cid(signed),
            "signup_date": _dates(world.signup_day[signed], epoch_day),
            "name": pa.array([names[i] for i in signed], pa.string()),
            "segment": _codes(world.seg[signed], world.seg_names),
            "account_manager": staff_pa.take(pa.array(cur_mgr[signed])),
            "monthly_revenue": pa.array(world.revenue[signed], pa.float64()),
            "phone": pa.array(
                [
                    f"+7 9{p // 10**8 % 100:02d} {p // 10**5 % 1000:03d}-"
                    f"{p // 1000 % 100:02d}-{p % 100:02d}"
                    for p in phones[signed]
                ]
            ),
            "email": pa.array([f"info@{ids[i].lower()}.example.com" for i in signed]),
        }
    )

    e = world.ev.frame(
        {
            "client": np.int64,
            "slot": np.int64,
            "sec": np.int64,
            "event": np.int64,
            "init": np.int64,
            "reason": np.int64,
            "budget": float,
        }
    )
    order = np.lexsort((np.arange(len(e["sec"])), e["sec"], e["client"]))
    e = {k: v[order] for k, v in e.items()}
    events = pa.table(
        {
            "client_id": cid(e["client"]),
            "campaign_id": camp_pa.take(pa.array(e["client"] * C + e["slot"])),
            "ts": _ts(e["sec"], epoch_s),
            "event": _codes(e["event"], EVENTS),
            "initiator": _codes(e["init"], INITIATORS),
            "reason": _codes(e["reason"], REASONS),
            "daily_budget": pa.array(e["budget"], pa.float64()),
        }
    )

    k = world.n_inv
    invoices = pa.table(
        {
            "client_id": cid(world.inv_client[:k]),
            "invoice_id": pa.array([f"INV{i + 1:08d}" for i in range(k)], pa.string()),
            "issued_at": _ts(world.inv_issue[:k], epoch_s),
            "due_at": _dates(world.inv_due_day[:k], epoch_day),
            "amount": pa.array(world.inv_amount[:k], pa.float64()),
            "paid_at": _ts(world.inv_paid[:k], epoch_s),
        }
    )

    c = world.con.frame(
        {
            "client": np.int64,
            "sec": np.int64,
            "channel": np.int64,
            "direction": np.int64,
            "topic": np.int64,
            "outcome": np.int64,
            "staff": np.int64,
        }
    )
    order = np.lexsort((np.arange(len(c["sec"])), c["sec"], c["client"]))
    c = {k2: v[order] for k2, v in c.items()}
    contacts = pa.table(
        {
            "client_id": cid(c["client"]),
            "ts": _ts(c["sec"], epoch_s),
            "channel": _codes(c["channel"], CHANNELS),
            "direction": _codes(c["direction"], DIRECTIONS),
            "topic": _codes(c["topic"], TOPICS),
            "outcome": _codes(c["outcome"], OUTCOMES),
            "staff": staff_pa.take(pa.array(c["staff"])),
        }
    )

    s = world.spend.frame(
        {
            "client": np.int64,
            "day": np.int64,
            "spend": float,
            "impressions": float,
            "clicks": float,
            "conversions": float,
        }
    )
    order = np.lexsort((s["day"], s["client"]))
    spend = pa.table(
        {
            "client_id": cid(s["client"][order]),
            "date": _dates(s["day"][order], epoch_day),
            **{
                k2: pa.array(s[k2][order], pa.float64())
                for k2 in ("spend", "impressions", "clicks", "conversions")
            },
        }
    )

    a = world.asg.frame({"client": np.int64, "staff": np.int64, "day": np.int64})
    order = np.lexsort((a["day"], a["client"]))
    assignments = pa.table(
        {
            "client_id": cid(a["client"][order]),
            "account_manager": staff_pa.take(pa.array(a["staff"][order])),
            "from_date": _dates(a["day"][order], epoch_day),
        }
    )

    ac = world.act.frame({"client": np.int64, "sec": np.int64, "event": np.int64, "value": float})
    order = np.lexsort((np.arange(len(ac["sec"])), ac["sec"], ac["client"]))
    activity = pa.table(
        {
            "client_id": cid(ac["client"][order]),
            "ts": _ts(ac["sec"][order], epoch_s),
            "event": _codes(ac["event"][order], ACT_EVENTS),
            "value": pa.array(ac["value"][order], pa.float64(), from_pandas=True),
        }
    )

    # freezes: the idle rule on the written events, checked against the simulator's log
    ev_df = pd.DataFrame(
        {
            "client_id": np.asarray(ids, object)[e["client"]],
            "campaign_id": e["client"] * C + e["slot"],
            "ts": e["sec"],
            "event": np.asarray(EVENTS, object)[e["event"]],
        }
    )
    cl_df = pd.DataFrame(
        {
            "client_id": np.asarray(ids, object)[signed],
            "signup_date": world.signup_day[signed] * DAY,
        }
    )
    fz = _freezes_sec(ev_df, cl_df, L, cfg.days * DAY)
    _check_freezes(world, fz, ids)
    freezes = pa.table(
        {
            "client_id": pa.array(fz["client_id"].to_numpy(object), pa.string()),
            "frozen_at": _ts(fz["frozen_sec"].to_numpy(np.int64), epoch_s),
            "unfrozen_at": _ts(fz["unfrozen_sec"].to_numpy(np.int64), epoch_s),
        }
    )

    truth_df = _truth_frame(world, fz, ids, L, H)
    truth = pa.table(
        {
            "client_id": pa.array(truth_df["client_id"].to_numpy(object), pa.string()),
            "as_of": _dates(truth_df["day"].to_numpy(np.int64), epoch_day),
            "p_true": pa.array(truth_df["p_true"].to_numpy(float), pa.float64()),
            "label": pa.array(truth_df["label"].to_numpy(np.int64), pa.int64()),
            "p_true_7d": pa.array(truth_df["p_true_7d"].to_numpy(float), pa.float64()),
            "p_true_90d": pa.array(truth_df["p_true_90d"].to_numpy(float), pa.float64()),
            "days_to_freeze": pa.array(
                truth_df["days_to_freeze"].to_numpy(float), pa.float64(), from_pandas=True
            ),
        }
    )

    tables = {
        "clients": clients,
        "campaign_events": events,
        "invoices": invoices,
        "contacts": contacts,
        "spend": spend,
        "assignments": assignments,
        "activity": activity,
        "freezes": freezes,
        "truth": truth,
    }
    for name, tab in tables.items():
        _write(tab, out_dir / f"{name}.parquet")
        rows[name] = tab.num_rows

    episodes, share = _pause_episode_share(ev_df, e, fz, L)
    return {
        "rows": rows,
        "freeze_rate": float(truth_df["label"].mean()) if len(truth_df) else float("nan"),
        "mean_p_true": float(truth_df["p_true"].mean()) if len(truth_df) else float("nan"),
        "freezes": int(len(fz)),
        "pause_episodes": int(episodes),
        "pause_episode_freeze_share": share,
        "seconds": round(time.perf_counter() - t0, 2),
    }


def _freezes_sec(ev_df, cl_df, L: int, end_sec: int) -> pd.DataFrame:
    """Run :func:`freezes_from_events` on integer seconds (exact, fast)."""
    ev = ev_df.assign(ts=pd.to_datetime(ev_df["ts"], unit="s"))
    cl = cl_df.assign(signup_date=pd.to_datetime(cl_df["signup_date"], unit="s"))
    out = freezes_from_events(ev, cl, L, pd.Timestamp(end_sec, unit="s"))
    base = pd.Timestamp(0, unit="s")
    fsec = ((out["frozen_at"] - base) // pd.Timedelta(seconds=1)).astype(np.int64)
    un = out["unfrozen_at"]
    usec = np.where(un.notna(), ((un.fillna(base) - base) // pd.Timedelta(seconds=1)), -1)
    return pd.DataFrame(
        {
            "client_id": out["client_id"].astype(object).to_numpy(),
            "frozen_sec": fsec.to_numpy(np.int64),
            "unfrozen_sec": np.asarray(usec, np.int64),
        }
    )


def _check_freezes(world: _World, fz: pd.DataFrame, ids: list[str]) -> None:
    log = world.freeze_log.frame({"client": np.int64, "sec": np.int64})
    mine = sorted(
        zip(np.asarray(ids, object)[log["client"]].tolist(), log["sec"].tolist(), strict=True)
    )
    rule = sorted(zip(fz["client_id"].tolist(), fz["frozen_sec"].tolist(), strict=True))
    if mine != rule:
        diff = sorted(set(mine) ^ set(rule))[:5]
        raise RuntimeError(f"internal: simulated freezes differ from the idle rule, e.g. {diff}")


def _truth_frame(world: _World, fz: pd.DataFrame, ids, L: int, H: int) -> pd.DataFrame:
    tr = world.truth.frame(
        {"client": np.int64, "day": np.int64, "p": float, "p7": float, "p90": float}
    )
    tr_df = pd.DataFrame(
        {
            "client_id": np.asarray(ids, object)[tr["client"]],
            "day": tr["day"],
            "p_true": tr["p"],
            "p_true_7d": tr["p7"],
            "p_true_90d": tr["p90"],
        }
    )
    if len(tr_df) == 0:
        return tr_df.assign(label=np.zeros(0, np.int64), days_to_freeze=np.zeros(0, float))
    as_of = np.unique(tr["day"])
    lab = set()
    frozen_at_t = set()
    for cid, fs, us in zip(fz["client_id"], fz["frozen_sec"], fz["unfrozen_sec"], strict=True):
        for T in as_of[(as_of * DAY < fs) & (fs <= (as_of + H) * DAY)]:
            lab.add((cid, int(T)))
        hit = (fs <= as_of * DAY) & ((us < 0) | (as_of * DAY < us))
        for T in as_of[hit]:
            frozen_at_t.add((cid, int(T)))
    keys = list(zip(tr_df["client_id"], tr_df["day"].astype(int), strict=True))
    active = np.array([k not in frozen_at_t for k in keys], bool)
    label = np.array([k in lab for k in keys], np.int64)
    out = tr_df.assign(label=label)[active]
    out = out.sort_values(["day", "client_id"], kind="stable").reset_index(drop=True)
    return out.assign(days_to_freeze=_days_to_freeze(out, fz))[
        ["client_id", "day", "p_true", "label", "p_true_7d", "p_true_90d", "days_to_freeze"]
    ]


def _days_to_freeze(rows: pd.DataFrame, fz: pd.DataFrame) -> np.ndarray:
    """Return the day ``d`` (``(T + d - 1, T + d]``) of each row's next freeze, NaN if none.

    Every freeze the data holds is observed, so NaN means no freeze up to the data's end.
    """
    left = pd.DataFrame(
        {"client_id": rows["client_id"].astype(str), "sec": rows["day"].to_numpy(np.int64) * DAY}
    ).reset_index()
    right = pd.DataFrame(
        {"client_id": fz["client_id"].astype(str), "frozen": fz["frozen_sec"].to_numpy(np.int64)}
    )
    right = right.assign(sec=right["frozen"]).sort_values("sec", kind="stable")
    m = pd.merge_asof(
        left.sort_values("sec", kind="stable"),
        right,
        on="sec",
        by="client_id",
        direction="forward",
        allow_exact_matches=False,
    ).sort_values("index")
    gap = (m["frozen"] - m["sec"]).to_numpy(dtype=float)
    return np.ceil(gap / DAY)


def _pause_episode_share(ev_df, e, fz: pd.DataFrame, L: int) -> tuple[int, float]:
    sel = (e["event"] == EV_PAUSED) & (e["init"] == IN_CLIENT)
    ep = pd.DataFrame(
        {"client_id": ev_df["client_id"].to_numpy()[sel], "sec": e["sec"][sel]}
    ).drop_duplicates()
    if len(ep) == 0:
        return 0, float("nan")
    ep = ep.sort_values("sec", kind="stable")
    f = fz[["client_id", "frozen_sec"]].sort_values("frozen_sec", kind="stable")
    m = pd.merge_asof(
        ep,
        f,
        left_on="sec",
        right_on="frozen_sec",
        by="client_id",
        direction="forward",
        allow_exact_matches=False,
    )
    ends = m["frozen_sec"].notna() & (m["frozen_sec"] <= m["sec"] + (L + 1) * DAY)
    return len(ep), float(ends.mean())
