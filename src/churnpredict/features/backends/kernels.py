"""Compiled loops for the local engine's hot NumPy passes (Numba).

Each kernel is one plain loop over rows or groups that NumPy would otherwise do in
several passes with temporary arrays (or with the slow ``ufunc.at``). They are
compiled once and cached on disk (``cache=True``: later processes load the machine
code instead of compiling), and release the GIL (``nogil=True``) so that the engine's
two workers run them side by side.

Conventions: NaN is "no value" (a sum skips it, a maximum ignores it); rows are
never reordered here, so sums add in the same order as the callers' NumPy code did.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_JIT = {"cache": True, "nogil": True}


@njit(**_JIT)
def bucket(day, table, lo, hi):
    """A day's bucket: ``table[min(max(day, lo), hi) - lo]`` (see ``engine._buckets``)."""
    return table[min(max(day, lo), hi) - lo]


@njit(**_JIT)
def run_keys(cidx, day, table, lo, hi, width):
    """Runs of equal ``(client, bucket)`` keys in the rows' order.

    ``bucket`` gives a day's bucket. Returns each run's key (``cidx * width + bucket``) and first row.
    """
    n = len(cidx)
    keys = np.empty(n, np.int64)
    starts = np.empty(n, np.int64)
    m = 0
    prev = -1
    for i in range(n):
        key = np.int64(cidx[i]) * width + bucket(day[i], table, lo, hi)
        if m == 0 or key != prev:
            keys[m] = key
            starts[m] = i
            m += 1
            prev = key
    # copies: a slice would keep the row-sized buffers alive as long as the result
    return keys[:m].copy(), starts[:m].copy()


@njit(**_JIT)
def run_sums(v, starts):
    """Sum of ``v`` over each run beginning at ``starts`` (NaN adds nothing)."""
    m = len(starts)
    out = np.zeros(m)
    for j in range(m):
        end = starts[j + 1] if j + 1 < m else len(v)
        s = 0.0
        for i in range(starts[j], end):
            x = v[i]
            if x == x:
                s += x
        out[j] = s
    return out


@njit(**_JIT)
def run_maxes(v, starts):
    """Maximum of ``v`` over each run (NaN is no value; NaN when a run has none)."""
    m = len(starts)
    out = np.full(m, np.nan)
    for j in range(m):
        end = starts[j + 1] if j + 1 < m else len(v)
        best = np.nan
        for i in range(starts[j], end):
            x = v[i]
            if x == x and not (best >= x):
                best = x
        out[j] = best
    return out


@njit(**_JIT)
def group_ids(cidx, day, table, lo, hi, n_bounds, width, n_keys):
    """Number the ``(client, bucket)`` groups of the rows by counting (keys below
    ``n_keys``): each row's group (-1: bucket ``n_bounds``, on or after the last
    boundary, never looked up) and each group's key, ascending."""
    n = len(cidx)
    g = np.empty(n, np.int64)
    gid = np.zeros(n_keys, np.int64)
    for i in range(n):
        k = bucket(day[i], table, lo, hi)
        if k >= n_bounds:
            g[i] = -1
        else:
            key = np.int64(cidx[i]) * width + k
            g[i] = key
            gid[key] = 1
    m = 0
    for key in range(n_keys):
        if gid[key]:
            gid[key] = m
            m += 1
        else:
            gid[key] = -1
    present = np.empty(m, np.int64)
    for key in range(n_keys):
        if gid[key] >= 0:
            present[gid[key]] = key
    for i in range(n):
        if g[i] >= 0:
            g[i] = gid[g[i]]
    return g, present


@njit(**_JIT)
def combo_order(combo, n_combos, g):
    """The rows that have a group (``g >= 0``) ordered by combination, in their given
    order within one (a counting sort; ``combo`` empty: every row is combination 0).
    Returns the order, each ordered row's group, and where each combination's rows
    start (``n_combos + 1`` positions)."""
    n = len(g)
    starts = np.zeros(n_combos + 1, np.int64)
    for i in range(n):
        if g[i] >= 0:
            starts[(combo[i] if len(combo) else 0) + 1] += 1
    for c in range(n_combos):
        starts[c + 1] += starts[c]
    at = starts[:-1].copy()
    order = np.empty(starts[n_combos], np.int64)
    group = np.empty(starts[n_combos], np.int64)
    for i in range(n):
        if g[i] >= 0:
            c = combo[i] if len(combo) else 0
            order[at[c]] = i
            group[at[c]] = g[i]
            at[c] += 1
    return order, group, starts


@njit(**_JIT)
def scatter(out, group, column, rows, kind, is_max, a, b):
    """Add ordered rows ``a:b`` to their groups ``group`` in ``out``: the value of
    ``column`` (``kind`` 0) or the day (1, given as ``column``) at row ``rows[i]``
    (``rows`` empty: at ``i``), or 1 (2, a count); with ``is_max``, keep the largest
    instead. NaN is no value."""
    for i in range(a, b):
        gi = group[i]
        if kind == 2:
            v = 1.0
        else:
            v = float(column[rows[i]] if len(rows) else column[i])
            if v != v:
                continue
        if is_max:
            if not (out[gi] >= v):
                out[gi] = v
        else:
            out[gi] += v


@njit(**_JIT)
def running_sum(row, first):
    """In place: running sum of ``row[:n]`` within each client's groups (``first``: the
    first group of each client, ascending; ``n = len(row) - 1``: the last cell stays).
    Returns the largest absolute running sum."""
    c = 0
    acc = peak = 0.0
    for i in range(len(row) - 1):
        if c < len(first) and i == first[c]:
            acc = 0.0
            c += 1
        acc += row[i]
        row[i] = acc
        peak = max(peak, abs(acc))
    return peak


@njit(**_JIT)
def running_max(v, first, out):
    """``out[i]``: the maximum of ``v`` over the client's groups up to ``i`` (NaN: none
    yet), for the groups ``i < len(v)`` (``first`` as in :func:`running_sum`)."""
    c = 0
    best = np.nan
    for i in range(len(v)):
        if c < len(first) and i == first[c]:
            best = np.nan
            c += 1
        x = v[i]
        if x == x and not (best >= x):
            best = x
        out[i] = best


@njit(**_JIT)
def oldest_open(cidx, start, end, start_day, t, n_clients):
    """The earliest ``start_day`` of the intervals open at each time ``t[j]`` (sorted),
    per client: ``start < t[j] <= end`` (``end`` past every ``t``: still open).
    Returns a ``(len(t), n_clients)`` matrix; no interval: the largest int64."""
    out = np.full((len(t), n_clients), np.iinfo(np.int64).max)
    for i in range(len(cidx)):
        j = np.searchsorted(t, start[i], side="right")  # first t after the start
        while j < len(t) and t[j] <= end[i]:
            if start_day[i] < out[j, cidx[i]]:
                out[j, cidx[i]] = start_day[i]
            j += 1
    return out


@njit(**_JIT)
def group_order(entity, n_entities, row):
    """The row order grouping each entity's rows (``entity``: numbers below
    ``n_entities``) and, within an entity, keeping the rows in ascending ``row`` (their
    row ids in the table; empty: in the given order). A counting sort: two passes over
    the rows, plus one over the row ids' range when the rows are not in row-id order
    already. Returns the order and whether it is the identity."""
    n = len(entity)
    seq = np.arange(n)
    ascending = True
    for i in range(1, len(row)):
        if row[i] < row[i - 1]:
            ascending = False
            break
    if not ascending:  # the rows in ascending row id (ids are distinct)
        lo, hi = row.min(), row.max()
        slot = np.full(hi - lo + 1, -1, np.int64)
        for i in range(n):
            slot[row[i] - lo] = i
        m = 0
        for r in range(len(slot)):
            if slot[r] >= 0:
                seq[m] = slot[r]
                m += 1
    start = np.zeros(n_entities + 1, np.int64)
    for i in range(n):
        start[entity[i] + 1] += 1
    for e in range(n_entities):
        start[e + 1] += start[e]
    perm = np.empty(n, np.int64)
    identity = True
    for j in range(n):
        i = seq[j]
        pos = start[entity[i]]
        start[entity[i]] = pos + 1
        perm[pos] = i
        identity = identity and pos == i
    return perm, identity


@njit(**_JIT)
def open_states(cp, vals, t, sets, opens, lo, hi):
    """The states of one level open at some time in ``[lo, hi)``: rows grouped by
    entity (``cp``), in time order (``t``). An event whose value code (``vals``, -1: a
    value not listed, the tables' last cell) is in ``sets`` sets the entity's state,
    which is open when ``opens`` says so, until the entity's next state-setting event
    (none: the largest int64). Returns the rows that open such states (ascending) and
    each one's end."""
    n = len(vals)
    last_cell = len(sets) - 1
    rows = np.empty(n, np.int64)
    ends = np.empty(n, np.int64)
    m = 0
    prev = -1  # the last state-setting row so far
    for i in range(n + 1):
        if i < n:
            v = vals[i] if vals[i] >= 0 else last_cell
            if not sets[v]:
                continue
        if prev >= 0:  # the previous state ends here (or never, for its entity)
            end = t[i] if i < n and cp[i] == cp[prev] else np.iinfo(np.int64).max
            pv = vals[prev] if vals[prev] >= 0 else last_cell
            if opens[pv] and t[prev] < hi and end >= lo:
                rows[m] = prev
                ends[m] = end
                m += 1
        prev = i
    return rows[:m].copy(), ends[:m].copy()  # (copies: see run_keys)


@njit(**_JIT)
def level_deltas(new, vals, w, day, changes, every, state, stat_def, stat_kind, d32, d64):
    """Each event's change of the levels' stats, per entity (rows grouped by entity,
    in time order; ``new`` marks an entity's first event).

    Level ``j``: an event whose value code (``vals``, -1: a value not listed, the
    tables' last cell) is in ``changes[j]`` (or any event when ``every[j]``) sets the
    state to its value, which is in the level when ``state[j]`` says so. The weight is
    the last non-missing ``w`` of the entity so far (0 before one; ``w`` empty: none).
    Stat ``s`` of level ``stat_def[s]`` writes, in order of kind, the change of being
    in the level (0, float32 ``d32``), the day the level was left (1, NaN otherwise)
    or the change of the weight held in the level (2, float64 ``d64``).
    """
    n_defs = len(every)
    last_cell = changes.shape[1] - 1
    cur = np.zeros(n_defs, np.int8)  # in the level after the entity's last event
    prev = np.zeros(n_defs, np.int8)
    last = np.full(n_defs, -1, np.int64)  # the last state-setting value (-1: none yet)
    weight = 0.0
    for i in range(len(vals)):
        v = vals[i] if vals[i] >= 0 else last_cell
        w_before = weight
        if new[i]:
            cur[:] = 0
            last[:] = -1
            w_before = 0.0
            weight = 0.0
        if len(w) and w[i] == w[i]:
            weight = w[i]
        for j in range(n_defs):
            prev[j] = cur[j]
            if every[j] or changes[j, v]:
                last[j] = v
            cur[j] = 1 if last[j] >= 0 and state[j, last[j]] else 0
        i32 = i64 = 0
        for s in range(len(stat_def)):
            j = stat_def[s]
            k = stat_kind[s]
            if k == 2:
                d = weight * np.float64(cur[j])
                d -= w_before * np.float64(prev[j])
                d64[i64, i] = d
                i64 += 1
            else:
                c = np.float32(cur[j] - prev[j])
                if k == 0:
                    d32[i32, i] = c
                else:
                    d32[i32, i] = np.float32(day[i]) if c < 0 else np.float32(np.nan)
                i32 += 1


# Numba loads most of its typing and lowering registries lazily, on the first call of
# any compiled function, importing modules such as scipy.linalg on the way: ~0.4 s,
# which would otherwise fall inside the first feature build (where the two workers then
# wait on Numba's compiler lock). One call on an empty row loads them with this module.
run_sums(np.zeros(0), np.zeros(0, np.int64))
