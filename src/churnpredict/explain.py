"""Per-client contributions -> the top reasons, in plain words.

The model's own contributions (LightGBM ``pred_contrib``: SHAP values in raw
log-odds) decide *which* reasons a client gets. Features are grouped into
*topics*, one level finer than the feature family and read from the catalog's
structured fields (family, kind, column, slice values), never from literal names:
the campaigns' state ("nothing has run for 9 days") and the pause event ("3 of 4
campaigns paused by the client 9 days ago — reason: not effective") are separate
topics, and so are money, technical requests, complaints, other contacts, results,
the manager and the profile (see :func:`topic_of`). A topic's weight is the sum of
its features' *positive* contributions (what pushes the risk up).

The top ``k`` topics whose weight reaches ``min_contribution`` become the reasons.
When the client's facts (:func:`churnpredict.facts.client_facts`) are given, a
topic is phrased from them — the event, who, why, how long ago, compared with the
client's own past; otherwise (or when the facts hold nothing) from the topic's
strongest feature with the client's value. A reason with nothing to say, an event
older than the look-back window, "no data", NaN or None is dropped, never printed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnpredict.features.catalog import Feature
from churnpredict.phrases import FactPhrases, PhraseBook

BIAS_COLUMNS = ("bias", "BiasTerm", "expected_value")


@dataclass(frozen=True)
class Reason:
    """One reason a client is at risk.

    Attributes
    ----------
    family : str
        Feature family (source) the reason comes from, e.g. ``invoices``.
    feature : str
        The feature phrased for it (the family's strongest positive contributor).
    contribution : float
        The family's summed positive contribution, in raw log-odds.
    text : str
        The reason in plain words, with the client's numbers.
    topic : str
        The topic it speaks for (:func:`topic_of`), e.g. ``pause`` or ``money``.
    """

    family: str
    feature: str
    contribution: float
    text: str
    topic: str = ""


def _family_of(name: str, catalog: dict[str, Feature]) -> str:
    f = catalog.get(name)
    return f.family if f is not None else name.split("__", 1)[0]


# topics whose reason the client's facts can phrase (FactPhrases method names)
FACT_TOPICS = ("pause", "state", "money", "technical", "complaint", "results")
_BAD_TEXT = re.compile(r"\b(nan|none|no data|нет данных)\b", re.IGNORECASE)


def topic_of(feature: Feature, contact_topics: dict[str, Sequence[str]] | None = None) -> str:
    """Return the reason topic of a feature from its catalog fields.

    ``pause`` (campaign pauses and stops, paused-now), ``state`` (what runs now and
    how that changed), ``campaign_activity`` (other campaign events), ``money``
    (invoices), ``technical`` / ``complaint`` / ``contact`` (contacts by topic),
    ``results`` (spend), ``manager`` and ``profile`` (profile), and the family's own
    name for any other family (``activity``, a declared table).

    ``contact_topics`` maps ``technical`` and ``complaint`` to the ``contacts.topic``
    values that mean them (``calls.technical_topics``, ``calls.complaint_topics``);
    by default the values ``technical`` and ``complaint`` themselves.
    """
    ct = contact_topics or {}
    fam = feature.family
    sv = set(feature.slice_values)
    col = feature.column or ""
    if fam == "campaigns":
        if sv & {"paused", "stopped"} or col in ("paused", "longest_pause"):
            return "pause"
        if feature.kind in ("state", "ratio", "amount", "days_since") and not sv:
            return "state"
        if feature.kind == "trend" and not sv:
            return "state"
        return "campaign_activity"
    if fam == "invoices":
        return "money"
    if fam == "contacts":
        if sv & set(ct.get("technical", ("technical",))):
            return "technical"
        if sv & set(ct.get("complaint", ("complaint",))):
            return "complaint"
        return "contact"
    if fam == "spend":
        return "results"
    if fam == "profile":
        return "manager" if "manager" in col else "profile"
    return fam


def top_reasons(
    contrib: pd.DataFrame | np.ndarray,
    X: pd.DataFrame,
    catalog: Iterable[Feature],
    *,
    language: str = "en",
    k: int = 3,
    feature_names: list[str] | None = None,
    facts: pd.DataFrame | None = None,
    min_contribution: float = 0.0,
    lookback: int = 90,
    nouns: dict | None = None,
    contact_topics: dict[str, Sequence[str]] | None = None,
) -> list[list[Reason]]:
    """Return each client's top ``k`` reasons, strongest first.

    Parameters
    ----------
    contrib : DataFrame or ndarray of shape (n_clients, n_features [+ 1])
        Contributions per feature (LightGBM ``pred_contrib``), one column per feature
        plus an optional ``bias`` column (ignored). A bare array needs
        ``feature_names`` (its last column is taken as the bias when it has one
        column more than the names).
    X : DataFrame
        The clients' feature values, row-aligned with ``contrib``; must hold every
        feature column of ``contrib`` (extra columns such as ``client_id`` are fine).
    catalog : iterable of Feature
        The feature catalog (families, kinds, windows, slices, columns).
    language : {"en", "ru"}
        Language of the reason texts.
    k : int
        Number of reasons per client at most; topics with no positive contribution
        (or less than ``min_contribution``) are never listed, so a client may get fewer.
    feature_names : list of str, optional
        Column names for an ndarray ``contrib``.
    facts : DataFrame, optional
        The clients' facts (:func:`churnpredict.facts.client_facts`), row-aligned
        with ``contrib``: reasons of fact topics are phrased from them.
    min_contribution : float
        A topic needs at least this summed positive contribution (log-odds).
    lookback : int
        Events older than this many days are never cited.
    nouns : dict, optional
        ``{family: ((en one, en many), (ru 1, ru 2, ru 5) or None[, ru label])}`` for
        declared tables (``calls.nouns``).
    contact_topics : dict, optional
        ``{"technical": [...], "complaint": [...]}``: the ``contacts.topic`` values of
        each (``calls.technical_topics``, ``calls.complaint_topics``; :func:`topic_of`).

    Returns
    -------
    list of list of Reason
        One list per row of ``contrib``, in row order.
    """
    cat = {f.name: f for f in catalog}
    if isinstance(contrib, pd.DataFrame):
        names = [c for c in contrib.columns if c not in BIAS_COLUMNS]
        C = contrib[names].to_numpy(dtype=np.float64, copy=False)
    else:
        if feature_names is None:
            raise ValueError("feature_names is required when contrib is an array")
        arr = np.asarray(contrib, dtype=np.float64)
        names = list(feature_names)
        if arr.shape[1] == len(names) + 1:
            arr = arr[:, :-1]
        if arr.shape[1] != len(names):
            raise ValueError(
                f"contrib has {arr.shape[1]} columns but {len(names)} feature names were given"
            )
        C = arr
    n = C.shape[0]
    if len(X) != n:
        raise ValueError(f"X has {len(X)} rows but contrib has {n}")
    if facts is not None and len(facts) != n:
        raise ValueError(f"facts has {len(facts)} rows but contrib has {n}")
    if n == 0 or not names:
        return [[] for _ in range(n)]

    feats_meta = [
        cat.get(c) or Feature(c, c.split("__", 1)[0], c, "state", None, (), None) for c in names
    ]
    top_of = [topic_of(f, contact_topics) for f in feats_meta]
    topics = list(dict.fromkeys(top_of))
    t_idx = np.array([topics.index(t) for t in top_of])
    n_t = len(topics)

    pos = np.where(C > 0, C, 0.0)
    W = np.zeros((n, n_t))
    best = np.zeros((n, n_t), dtype=np.int64)
    for j in range(n_t):
        cols = np.flatnonzero(t_idx == j)
        sub = pos[:, cols]
        W[:, j] = sub.sum(axis=1)
        best[:, j] = cols[np.argmax(sub, axis=1)]
    order = np.argsort(-W, axis=1, kind="stable")
    thresh = max(float(min_contribution), 1e-12)

    ru_nouns = {  # the label form: «покупки» (given, else the form for 2)
        fam: (tuple(v[0]), (v[2] if len(v) > 2 and v[2] else (v[1][1] if v[1] else v[0][1])))
        for fam, v in (nouns or {}).items()
    }
    book = PhraseBook(
        [f for f in feats_meta if f.name in cat], language, lookback=lookback, nouns=ru_nouns
    )
    fp = FactPhrases(
        language, lookback=lookback, nouns={f: (v[0], v[1]) for f, v in (nouns or {}).items()}
    )
    fact_rows = facts.to_dict("records") if facts is not None else None
    declared = set()
    if facts is not None:
        declared = {c[: -len("__days")] for c in facts.columns if c.endswith("__days")}
    # per feature, once: its phrase, its values and its companions' values
    prepared: dict[int, tuple] = {}
    cols: dict[str, np.ndarray] = {}

    def column(name: str) -> np.ndarray:
        if name not in cols:
            cols[name] = _column(X, name)
        return cols[name]

    def prepare(fi: int) -> tuple:
        prep = prepared.get(fi)
        if prep is None:
            phrase = book.phrase(names[fi])
            comps = (
                [column(c) for c in phrase.companions]
                if all(c in X.columns for c in phrase.companions)
                else []
            )
            prep = prepared[fi] = (phrase.render, column(names[fi]), comps)
        return prep

    def feature_text(fi: int, i: int) -> str | None:
        render, vals, comps = prepare(fi)
        return render(float(vals[i]), [float(c[i]) for c in comps])

    # Render, column-wise per feature, the feature phrases of each row's first k topics
    # that the facts do not phrase (most rows need no other); the loop below renders
    # any further one lazily, when a reason is dropped.
    kk = min(k, n_t)
    first = order[:, :kk]
    rows_k = np.repeat(np.arange(n), kk)
    t_first = first.ravel()
    by_feature = np.ones(len(t_first), dtype=bool)
    if facts is not None:
        fact_like = np.array([t in FACT_TOPICS or t in declared for t in topics])
        by_feature = ~fact_like[t_first]
    by_feature &= W[rows_k, t_first] >= thresh
    pre = np.full(n * kk, None, dtype=object)  # (row, slot) -> text, row-major
    f_first = best[rows_k, t_first]
    for fi in np.unique(f_first[by_feature]).tolist():
        sel = np.flatnonzero(by_feature & (f_first == fi))
        render, vals, comps = prepare(fi)
        r = rows_k[sel]
        v = vals[r].tolist()
        if comps:
            cv = np.column_stack([c[r] for c in comps]).tolist()
            pre[sel] = [render(a, b) for a, b in zip(v, cv, strict=True)]
        else:
            pre[sel] = [render(a, ()) for a in v]
    pre_rows = pre.reshape(n, kk).tolist()
    done_m = by_feature.reshape(n, kk)
    done = done_m.tolist()
    # rows whose first k topics are all phrased above: no loop over the topics needed
    quick = done_m.all(axis=1).tolist() if kk == k else [False] * n
    w_first = W[rows_k, t_first].reshape(n, kk).tolist()
    f_rows = f_first.reshape(n, kk).tolist()
    t_rows = first.tolist()
    fam_of_f = [f.family for f in feats_meta]

    out: list[list[Reason]] = [[] for _ in range(n)]
    for i in range(n):
        if quick[i]:
            texts = pre_rows[i]
            if all(texts) and len(set(texts)) == kk and not any(_bad(t) for t in texts):
                fs, ws, ts = f_rows[i], w_first[i], t_rows[i]
                out[i] = [
                    Reason(fam_of_f[fs[m]], names[fs[m]], ws[m], texts[m], topics[ts[m]])
                    for m in range(kk)
                ]
                continue
        row = fact_rows[i] if fact_rows is not None else None
        got: list[Reason] = []
        seen: set[str] = set()
        w_i, b_i = W[i].tolist(), best[i].tolist()
        pause_named = False
        for slot, j in enumerate(order[i].tolist()):
            if len(got) >= k or w_i[j] < thresh:
                break  # topics are in decreasing weight
            topic = topics[j]
            fi = b_i[j]
            if slot < kk and done[i][slot]:
                text = pre_rows[i][slot]
                if not text or text in seen or _bad(text):
                    continue
                seen.add(text)
                got.append(Reason(feats_meta[fi].family, names[fi], w_i[j], text, topic))
                continue
            text = None
            if row is not None:
                if topic in FACT_TOPICS:
                    if topic == "pause" and pause_named:
                        continue
                    text = getattr(fp, topic)(row)
                    if topic == "state" and text and _f_num(row.get("running")) == 0:
                        cause = fp.pause(row)  # the event behind the state, named with it
                        if cause:
                            text, pause_named = f"{text}: {cause}", True
                    if topic == "pause" and text:
                        pause_named = True
                    if topic != "state" and text is None:
                        continue  # no evidence at the as-of date: nothing to say
                elif topic in declared:
                    text = fp.declared(topic, row)
            if text is None:
                text = feature_text(fi, i)
            if not text or text in seen or _bad(text):
                continue
            seen.add(text)
            got.append(Reason(feats_meta[fi].family, names[fi], w_i[j], text, topic))
        out[i] = got
    return out


def _bad(text: str) -> bool:
    """Return True for a text that would print "no data", NaN or None."""
    if "an" in text or "aN" in text or "one" in text or "data" in text or "данных" in text:
        return bool(_BAD_TEXT.search(text))  # the cheap test above rules most texts out
    return False


def _f_num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _column(X: pd.DataFrame, name: str) -> np.ndarray:
    """Return a feature column as float64 (non-numeric values become NaN)."""
    s = X[name]
    if not pd.api.types.is_numeric_dtype(s):
        s = pd.to_numeric(s, errors="coerce")
    return s.to_numpy(dtype=np.float64, na_value=np.nan)


def reasons_text(reasons: list[Reason], sep: str = "; ") -> str:
    """Join a client's reasons into the call list's ``reasons`` cell."""
    return sep.join(r.text for r in reasons)
