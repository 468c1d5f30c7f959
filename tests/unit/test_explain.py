"""Reasons: grouping by topic, phrasing with the client's numbers and facts, both languages."""

from __future__ import annotations

import itertools
import re

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from churnpredict.explain import Reason, top_reasons, topic_of
from churnpredict.features.catalog import Feature
from churnpredict.phrases import FactPhrases, PhraseBook, ago, days_ru, plural_ru

CATALOG = [
    Feature(
        "invoices__days_overdue__now",
        "invoices",
        "days overdue",
        "state",
        None,
        (),
        "days_overdue",
    ),
    Feature(
        "invoices__overdue_amount__now",
        "invoices",
        "overdue amount",
        "amount",
        None,
        (),
        "overdue_amount",
    ),
    Feature(
        "campaigns__paused_client__7d",
        "campaigns",
        "pauses by client",
        "count",
        7,
        ("paused", "client"),
    ),
    Feature(
        "campaigns__n_campaigns__now", "campaigns", "campaigns", "state", None, (), "n_campaigns"
    ),
    Feature("contacts__technical__30d", "contacts", "technical", "count", 30, ("technical",)),
    Feature(
        "spend__conversions__30d__trend", "spend", "conv trend", "trend", 30, (), "conversions"
    ),
]
NAMES = [f.name for f in CATALOG]


def _world(n: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    overdue = np.where(rng.random(n) < 0.2, rng.integers(1, 60, n), 0).astype(float)
    X = pd.DataFrame(
        {
            "invoices__days_overdue__now": overdue,
            "invoices__overdue_amount__now": np.where(overdue > 0, 1000.0, 0.0),
            "campaigns__paused_client__7d": rng.integers(0, 3, n).astype(float),
            "campaigns__n_campaigns__now": rng.integers(1, 5, n).astype(float),
            "contacts__technical__30d": rng.poisson(0.3, n).astype(float),
            "spend__conversions__30d__trend": rng.normal(0, 0.3, n),
        }
    )
    logit = (
        -2
        + 0.08 * X["invoices__days_overdue__now"]
        + 0.9 * X["campaigns__paused_client__7d"]
        + 0.8 * X["contacts__technical__30d"]
        - 1.5 * X["spend__conversions__30d__trend"]
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


@pytest.fixture(scope="module")
def booster_and_data():
    X, y = _world()
    booster = lgb.train(
        {
            "objective": "binary",
            "verbose": -1,
            "seed": 1,
            "num_leaves": 8,
            "min_data_in_leaf": 20,
            "deterministic": True,
            "num_threads": 1,
        },
        lgb.Dataset(X, y),
        num_boost_round=60,
    )
    return booster, X


def _contrib(booster, X: pd.DataFrame) -> pd.DataFrame:
    c = booster.predict(X, pred_contrib=True)
    return pd.DataFrame(c, columns=[*X.columns, "bias"])


def test_overdue_only_client_gets_money_reason(booster_and_data):
    booster, X = booster_and_data
    probe = pd.DataFrame(
        [
            {
                "invoices__days_overdue__now": 40.0,
                "invoices__overdue_amount__now": 1000.0,
                "campaigns__paused_client__7d": 0.0,
                "campaigns__n_campaigns__now": 3.0,
                "contacts__technical__30d": 0.0,
                "spend__conversions__30d__trend": 0.0,
            }
        ]
    )
    (reasons,) = top_reasons(_contrib(booster, probe), probe, CATALOG, language="en", k=3)
    assert reasons, "an overdue invoice must produce a reason"
    assert reasons[0].family == "invoices"
    assert reasons[0].feature.startswith("invoices__")
    assert "40" in reasons[0].text and "overdue" in reasons[0].text
    (ru,) = top_reasons(_contrib(booster, probe), probe, CATALOG, language="ru", k=3)
    assert "просроч" in ru[0].text and "40" in ru[0].text


def test_reasons_sorted_positive_and_grouped(booster_and_data):
    booster, X = booster_and_data
    C = _contrib(booster, X.head(500))
    out = top_reasons(C, X.head(500), CATALOG, language="en", k=2)
    assert len(out) == 500
    top = {f.name: topic_of(f) for f in CATALOG}
    for i, rs in enumerate(out):
        assert len(rs) <= 2
        assert all(isinstance(r, Reason) for r in rs)
        assert [r.contribution for r in rs] == sorted((r.contribution for r in rs), reverse=True)
        assert all(r.contribution > 0 for r in rs)
        assert len({r.topic for r in rs}) == len(rs)
        for r in rs:  # the topic weight is the sum of its positive contributions
            cols = [c for c in NAMES if top[c] == r.topic]
            row = C.loc[i, cols]
            assert r.contribution == pytest.approx(row[row > 0].sum())
            assert r.feature == row.idxmax()


def test_paired_phrase_paused_of_campaigns(booster_and_data):
    booster, _ = booster_and_data
    probe = pd.DataFrame(
        [
            {
                "invoices__days_overdue__now": 0.0,
                "invoices__overdue_amount__now": 0.0,
                "campaigns__paused_client__7d": 2.0,
                "campaigns__n_campaigns__now": 3.0,
                "contacts__technical__30d": 0.0,
                "spend__conversions__30d__trend": 0.0,
            }
        ]
    )
    (rs,) = top_reasons(_contrib(booster, probe), probe, CATALOG, language="en", k=3)
    texts = [r.text for r in rs]
    assert "2 of 3 campaigns paused by the client in the last 7 days" in texts


def test_array_input_and_no_positive_contribution():
    X = pd.DataFrame({"a__x__7d": [1.0, 2.0]})
    cat = [Feature("a__x__7d", "a", "x", "count", 7, ("x",))]
    out = top_reasons(np.array([[-1.0, 0.5], [0.3, 0.1]]), X, cat, feature_names=["a__x__7d"])
    assert out[0] == []
    assert out[1][0].feature == "a__x__7d" and out[1][0].text.startswith("2 ")


def _big_catalog() -> list[Feature]:
    """Many names and kinds, as the engine and declared tables produce them."""
    feats: list[Feature] = []
    slices = {
        "campaigns": [
            ("paused", "client"),
            ("paused", "low_balance"),
            ("stopped", "manager"),
            ("created",),
            ("budget_changed", "client"),
            ("resumed", "system"),
            ("weird_event",),
            (),
        ],
        "contacts": [
            ("call", "outbound", "reached"),
            ("call", "outbound", "no_answer"),
            ("email", "inbound"),
            ("complaint",),
            ("technical",),
            ("billing",),
            ("inbound",),
            ("ticket", "inbound", "billing"),
            ("carrier_pigeon",),
            (),
        ],
        "activity": [("login",), ("report_view",), ()],
        "orders": [("returned", "web"), ()],
    }
    for fam, svs in slices.items():
        for sv in svs:
            s = "_".join(sv) or "events"
            for w in (7, 30, 90):
                feats.append(Feature(f"{fam}__{s}__{w}d", fam, "d", "count", w, sv))
                feats.append(Feature(f"{fam}__{s}__{w}d__trend", fam, "d", "trend", w, sv))
            feats.append(Feature(f"{fam}__{s}__days_since", fam, "d", "days_since", None, sv))
    for fam, cols in {
        "spend": ["spend", "impressions", "clicks", "conversions"],
        "activity": ["value"],
        "orders": ["basket"],
    }.items():
        for c in cols:
            for w in (7, 30):
                feats.append(Feature(f"{fam}__{c}__{w}d", fam, "d", "sum", w, (), c))
                feats.append(Feature(f"{fam}__{c}_mean__{w}d", fam, "d", "mean", w, (), c))
                feats.append(Feature(f"{fam}__{c}__{w}d__trend", fam, "d", "trend", w, (), c))
    for c in ("cost_per_conversion", "conversion_rate", "ctr", "mystery_ratio"):
        feats.append(Feature(f"spend__{c}__30d", "spend", "d", "ratio", 30, (), c))
    state = [
        ("campaigns", c, k)
        for c, k in [
            ("running", "state"),
            ("paused", "state"),
            ("n_campaigns", "state"),
            ("share_running", "ratio"),
            ("budget", "amount"),
            ("running_budget", "amount"),
            ("longest_pause", "state"),
        ]
    ]
    state += [
        ("invoices", c, k)
        for c, k in [
            ("unpaid_amount", "amount"),
            ("unpaid", "state"),
            ("overdue_amount", "amount"),
            ("overdue", "state"),
            ("share_paid_late", "ratio"),
            ("delay_max", "state"),
            ("days_overdue", "state"),
        ]
    ]
    for fam, c, k in state:
        feats.append(Feature(f"{fam}__{c}__now", fam, "d", k, None, (), c))
    feats += [
        Feature(
            "campaigns__running_change__7d",
            "campaigns",
            "d",
            "trend",
            "running" and 7,
            (),
            "running",
        ),
        Feature(
            "campaigns__budget_change__7d", "campaigns", "d", "trend", 7, (), "running_budget"
        ),
        Feature(
            "invoices__payment__days_since", "invoices", "d", "days_since", None, (), "payment"
        ),
        Feature("invoices__paid_late__90d", "invoices", "d", "count", 90, (), "paid_late"),
        Feature("invoices__delay_mean__30d", "invoices", "d", "mean", 30, (), "delay"),
        Feature("profile__tenure_days", "profile", "d", "state", None, (), "tenure_days"),
        Feature("profile__first_month", "profile", "d", "flag", None, (), "first_month"),
        Feature("profile__monthly_revenue", "profile", "d", "amount", None, (), "monthly_revenue"),
        Feature("profile__segment_key", "profile", "d", "flag", None, ("key",), "segment"),
        Feature(
            "profile__days_since_manager_change",
            "profile",
            "d",
            "days_since",
            None,
            (),
            "days_since_manager_change",
        ),
        Feature(
            "profile__manager_changes__90d", "profile", "d", "count", 90, (), "manager_changes"
        ),
        Feature("profile__rfm_recency", "profile", "d", "days_since", None, (), "rfm_recency"),
        Feature("profile__rfm_score", "profile", "d", "state", None, (), "rfm_score"),
        Feature("profile__plan", "profile", "d", "category", None, (), "plan"),
        Feature("orders__flagged", "orders", "d", "flag", None, (), None),
    ]
    return feats


@pytest.mark.parametrize("language", ["en", "ru"])
def test_every_feature_renders(language):
    cat = _big_catalog()
    book = PhraseBook(cat, language)
    values = [0.0, 1.0, 2.0, 5.0, 12.0, 45.0, 400.0, -3.0, -0.4, 0.25, 1234.5, float("nan")]
    for f in cat:
        p = book.phrase(f.name)
        for v, cv in itertools.product(values, [0.0, 3.0, float("nan")]):
            text = p(v, [cv] * len(p.companions))
            if text is None:  # nothing worth saying: the reason is dropped
                continue
            assert isinstance(text, str) and text.strip(), (f.name, v)
            assert "None" not in text and "{" not in text, (f.name, v, text)
            low = text.lower()
            assert not re.search(r"\b(no data|нет данных|nan)\b", low), text
            if language == "ru":  # no English word in a Russian phrase, but the data's own
                bare = re.sub(r"«[^»]*»", "", low).replace("rfm", "")  # quoted values
                assert not any("a" <= ch <= "z" for ch in bare), text
        if language == "ru":  # a Russian phrase has Cyrillic unless it is a bare number label
            assert any("а" <= ch <= "я" for ch in p(5.0, [3.0] * len(p.companions)).lower()), (
                f.name,
                p(5.0, [3.0] * len(p.companions)),
            )


@pytest.mark.parametrize(
    ("feature", "value", "comp", "en", "ru"),
    [
        (CATALOG[0], 12, [4500], "invoice 12 days overdue", "счёт просрочен на 12 дней"),
        (
            Feature(
                "contacts__call_outbound_reached__days_since",
                "contacts",
                "d",
                "days_since",
                None,
                ("call", "outbound", "reached"),
            ),
            45,
            [],
            "no reached call for 45 days",
            "нет дозвона 45 дней",
        ),
        (
            Feature(
                "profile__days_since_manager_change",
                "profile",
                "d",
                "days_since",
                None,
                (),
                "days_since_manager_change",
            ),
            21,
            [],
            "manager changed 3 weeks ago",
            "менеджер сменился 3 недели назад",
        ),
        (
            CATALOG[5],
            -0.4,
            [],
            "conversions down 40% vs the previous 30 days",
            "конверсии: снижение на 40% против предыдущих 30 дней",
        ),
        (
            Feature("contacts__complaint__30d", "contacts", "d", "count", 30, ("complaint",)),
            3,
            [],
            "3 complaints in the last 30 days",
            "3 жалобы за последние 30 дней",
        ),
        (
            CATALOG[2],
            2,
            [3],
            "2 of 3 campaigns paused by the client in the last 7 days",
            "на паузу поставлены 2 кампании из 3 по инициативе клиента за последние 7 дней",
        ),
    ],
)
def test_key_templates(feature, value, comp, en, ru):
    cat = [*CATALOG, feature]
    for lang, want in (("en", en), ("ru", ru)):
        p = PhraseBook(cat, lang).phrase(feature.name)
        assert p(value, comp[: len(p.companions)]).startswith(want)


def test_plural_ru():
    forms = ("жалоба", "жалобы", "жалоб")
    assert [plural_ru(n, forms) for n in (1, 2, 5, 11, 21, 22, 112)] == [
        "жалоба",
        "жалобы",
        "жалоб",
        "жалоб",
        "жалоба",
        "жалобы",
        "жалоб",
    ]


def test_russian_plural_forms_of_days():
    want = {1: "день", 2: "дня", 5: "дней", 11: "дней", 21: "день", 22: "дня", 25: "дней"}
    for n, form in want.items():
        assert days_ru(n) == f"{n} {form}"
        if n < 14:  # later ones are said in weeks
            assert ago(n, "ru") == ("вчера" if n == 1 else f"{n} {form} назад")
    assert ago(1, "en") == "yesterday" and ago(5, "en") == "5 days ago"
    assert ago(21, "ru") == "3 недели назад" and ago(92, "ru") == "3 месяца назад"


FACTS = {
    "n_campaigns": 4.0,
    "running": 0.0,
    "idle_days": 9.0,
    "halt_days": 9.0,
    "halt_event": "paused",
    "halt_initiator": "client",
    "halt_reason": "results",
    "halt_k": 3.0,
    "halt_resumed": 0.0,
    "overdue_n": 0.0,
    "paid_n": 3.0,
    "paid_late_n": 0.0,
    "complaint_days": 6.0,
    "complaint_n": 2.0,
    "technical_days": 400.0,
    "conv_now": 12.0,
    "conv_prev": 30.0,
}


def test_fact_phrases_name_the_event():
    en = FactPhrases("en", lookback=90)
    assert (
        en.pause(FACTS)
        == "3 of 4 campaigns paused by the client 9 days ago — reason: not effective"
    )
    assert en.state(FACTS) == "nothing has run for 9 days"
    assert en.results(FACTS) == "conversions down 60% on their previous 30 days (12 vs 30)"
    assert en.complaint(FACTS) == "complaint 6 days ago, 2 complaints in the last 90 days"
    assert en.technical(FACTS) is None  # 400 days ago: older than the look-back
    assert en.money(FACTS) is None  # paid on time, nothing overdue: no money reason
    system = {
        **FACTS,
        "halt_initiator": "system",
        "halt_reason": "low_balance",
        "halt_k": 1.0,
        "n_campaigns": 1.0,
        "halt_days": 5.0,
    }
    assert (
        en.pause(system)
        == "the only campaign paused by the system 5 days ago — reason: low balance"
    )
    ru = FactPhrases("ru", lookback=90)
    assert ru.pause(FACTS) == (
        "клиент поставил на паузу 3 кампании из 4 — 9 дней назад, причина: недоволен результатами"
    )
    assert ru.pause({**system, "halt_days": 1.0}) == (
        "система поставила на паузу единственную кампанию вчера, причина: низкий баланс"
    )
    assert ru.state({**FACTS, "idle_days": 21.0}) == "ни одна кампания не работает уже 21 день"
    assert ru.money(
        {**FACTS, "overdue_n": 2.0, "overdue_days": 22.0, "overdue_amount": 1500.0}
    ) == ("просрочено 2 счёта, старейший — на 22 дня, долг 1\u00a0500")
    assert ru.pause({**FACTS, "halt_k": 4.0, "halt_days": 13.0}).startswith(
        "клиент поставил на паузу все 4 кампании 13 дней назад"
    )
    old = {**FACTS, "halt_days": 200.0}
    assert en.pause(old) is None  # never cite an event older than the look-back


def test_reasons_from_facts_name_the_pause_and_drop_empty_ones(booster_and_data):
    booster, _ = booster_and_data
    probe = pd.DataFrame(
        [
            {
                "invoices__days_overdue__now": 0.0,
                "invoices__overdue_amount__now": 0.0,
                "campaigns__paused_client__7d": 2.0,
                "campaigns__n_campaigns__now": 3.0,
                "contacts__technical__30d": 2.0,
                "spend__conversions__30d__trend": -0.5,
            }
        ]
    )
    facts = pd.DataFrame([{**FACTS, "technical_days": np.nan}])
    (rs,) = top_reasons(
        _contrib(booster, probe), probe, CATALOG, language="en", k=3, facts=facts, lookback=90
    )
    texts = [r.text for r in rs]
    assert texts[0].startswith("3 of 4 campaigns paused by the client 9 days ago")
    assert "conversions down 60% on their previous 30 days (12 vs 30)" in texts
    # the model weighs technical requests, but the facts hold none within the look-back
    assert not any("technical" in t for t in texts)
    strong = top_reasons(
        _contrib(booster, probe), probe, CATALOG, k=3, facts=facts, min_contribution=50.0
    )
    assert strong == [[]]  # nothing reaches the threshold: no reason at all


def test_declared_table_reasons_use_its_noun():
    cat = [Feature("transactions__events__30d", "transactions", "d", "count", 30, ())]
    X = pd.DataFrame({"transactions__events__30d": [0.0]})
    facts = pd.DataFrame(
        [{"transactions__days": 45.0, "transactions__now": 0.0, "transactions__prev": 2.0}]
    )
    nouns = {"transactions": (("purchase", "purchases"), ("покупка", "покупки", "покупок"))}
    (rs,) = top_reasons(
        np.array([[1.0]]), X, cat, feature_names=[cat[0].name], facts=facts, nouns=nouns
    )
    assert rs[0].text == (
        "last purchase 6 weeks ago, 0 purchases in the last 30 days vs 2 in the 30 before"
    )
    assert "invoice" not in rs[0].text
    (plain,) = top_reasons(np.array([[1.0]]), X, cat, feature_names=[cat[0].name], nouns=nouns)
    assert plain[0].text == "no purchase in the last 30 days"
    (ru,) = top_reasons(
        np.array([[1.0]]),
        X,
        cat,
        feature_names=[cat[0].name],
        facts=facts,
        nouns=nouns,
        language="ru",
    )
    assert "покуп" in ru[0].text and "6 недель назад" in ru[0].text


@pytest.mark.slow
def test_many_rows_and_features_each_get_k_reasons():
    """A wide, long input (speed is measured by `make bench`'s score case, not here)."""
    rng = np.random.default_rng(0)
    cat = _big_catalog()[:250]
    n = 20_000
    X = pd.DataFrame(rng.poisson(2, (n, len(cat))).astype(float), columns=[f.name for f in cat])
    C = pd.DataFrame(rng.normal(0, 0.1, (n, len(cat))), columns=X.columns)
    out = top_reasons(C, X, cat, language="ru", k=3)
    assert len(out) == n and all(len(r) == 3 for r in out[:100])


def test_bad_texts_are_caught():
    from churnpredict.explain import _bad

    for t in ("value: NaN", "value: nan", "None", "average delay: no data", "нет данных"):
        assert _bad(t), t
    for t in ("invoice 12 days overdue", "no campaign has run yet", "Nova agency"):
        assert not _bad(t), t


def test_contact_topics_in_codes_are_technical_and_complaint_when_configured():
    from churnpredict.features.catalog import Feature

    tech = Feature("contacts__ticket_t-tech__30d", "contacts", "d", "count", 30, ("T-TECH",), None)
    compl = Feature(
        "contacts__t-compl__days_since", "contacts", "d", "days_since", None, ("T-COMPL",), None
    )
    assert topic_of(tech) == "contact" and topic_of(compl) == "contact"
    codes = {"technical": ["T-TECH"], "complaint": ["T-COMPL"]}
    assert topic_of(tech, codes) == "technical"
    assert topic_of(compl, codes) == "complaint"


def test_silence_ratio_says_what_it_measures():
    """It was 'silence ratio: 36%' (en) and «показатель «silence ratio»» (ru)."""
    f = Feature(
        "profile__activity_silence_ratio", "profile", "d", "ratio", None, (), "silence_ratio"
    )
    en = PhraseBook([f], "en").phrase(f.name)
    ru = PhraseBook([f], "ru").phrase(f.name)
    assert en(0.36, ()) == "time since the last activity event: 0.4× the client's usual gap"
    assert en(3.0, ()) == "time since the last activity event: 3.0× the client's usual gap"
    assert ru(2.5, ()) == (
        "события активности: с последнего прошло 2,5 обычного промежутка между ними"
    )
    assert en(float("nan"), ()) is None
    t = Feature(
        "profile__orders_silence_ratio", "profile", "d", "ratio", None, (), "silence_ratio"
    )
    nouns = {"orders": (("order", "orders"), "заказы")}
    assert PhraseBook([t], "en", nouns=nouns).phrase(t.name)(1.0, ()) == (
        "time since the last order: 1.0× the client's usual gap"
    )


def test_a_count_the_data_does_not_cover_is_no_reason():
    """NaN (the table's export starts later, or came out empty) is unknown, not zero: it
    used to read 'no inbound call in the last 30 days' for a client called last week."""
    f = Feature(
        "contacts__call_inbound__30d", "contacts", "d", "count", 30, ("call", "inbound"), None
    )
    for lang in ("en", "ru"):
        assert PhraseBook([f], lang).phrase(f.name)(float("nan"), ()) is None
    assert PhraseBook([f], "en").phrase(f.name)(0.0, ()) == "no inbound call in the last 30 days"


def test_a_declared_table_reason_is_one_reason_and_names_its_table():
    """It read 'last subscriptions event 6 weeks ago; 0 events in the last 30 days vs 2 ...':
    two reasons for a reader that splits the column on '; ' (the contract's separator),
    and 'events' of no table."""
    cat = [Feature("subscriptions__events__30d", "subscriptions", "d", "count", 30, ())]
    X = pd.DataFrame({"subscriptions__events__30d": [0.0]})
    facts = pd.DataFrame(
        [{"subscriptions__days": 45.0, "subscriptions__now": 0.0, "subscriptions__prev": 2.0}]
    )
    for lang in ("en", "ru"):
        (rs,) = top_reasons(
            np.array([[1.0]]), X, cat, feature_names=[cat[0].name], facts=facts, language=lang
        )
        assert len(rs) == 1 and "; " not in rs[0].text, rs[0].text
    (rs,) = top_reasons(np.array([[1.0]]), X, cat, feature_names=[cat[0].name], facts=facts)
    assert rs[0].text == (
        "last subscriptions event 6 weeks ago, "
        "0 subscriptions events in the last 30 days vs 2 in the 30 before"
    )


def test_a_table_named_events_is_not_called_events_event():
    """A declared table ``churn_events`` read 'no churn events event in the last 30 days'."""
    cat = [Feature("churn_events__events__30d", "churn_events", "d", "count", 30, ())]
    X = pd.DataFrame({"churn_events__events__30d": [0.0]})
    facts = pd.DataFrame(
        [{"churn_events__days": 45.0, "churn_events__now": 0.0, "churn_events__prev": 2.0}]
    )
    (rs,) = top_reasons(np.array([[1.0]]), X, cat, feature_names=[cat[0].name], facts=facts)
    assert rs[0].text == (
        "last churn event 6 weeks ago, 0 churn events in the last 30 days vs 2 in the 30 before"
    )
    assert "events event" not in PhraseBook(cat, "en").phrase(cat[0].name)(0.0, ())
