"""Every English and Russian phrase of the call list, in one place.

Reasons are rendered from the catalog's *structured* fields (family, kind, window,
slice values, column) and a small vocabulary, never from the English description
alone, so every feature of any catalog reads in both languages. Key signals have
hand-written templates ("invoice 12 days overdue", «счёт просрочен на 12 дней»);
everything else falls back to a generic template per kind.

A phrase may read a *companion* feature of the same client (e.g. the number of
campaigns, to say "2 of 3 campaigns paused by the client in the last 7 days");
when the companion is not among the features, the phrase is rendered alone.

Russian numbers agree with their nouns (1 день, 2 дня, 5 дней; «вчера» for one day
ago) through :func:`plural_ru`; labels of counts keep the «жалобы за последние
30 дней: 3» form. No English word appears in a Russian phrase.

A render returns ``None`` when it has nothing worth saying (an empty value, an
average of nothing, an event older than the look-back window): such a reason is
dropped, never printed as "no data".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from churnpredict.features.catalog import Feature

LANGUAGES = ("en", "ru")

# ------------------------------------------------------------------ vocabulary
# Each entry: en (singular, plural), ru (nominative plural).
_EVENTS: dict[str, tuple[tuple[str, str], str]] = {
    "created": (("campaign created", "campaigns created"), "созданные кампании"),
    "started": (("campaign start", "campaign starts"), "запуски кампаний"),
    "paused": (("campaign pause", "campaign pauses"), "паузы кампаний"),
    "resumed": (("campaign resumption", "campaign resumptions"), "возобновления кампаний"),
    "stopped": (("campaign stop", "campaign stops"), "остановки кампаний"),
    "budget_changed": (("budget change", "budget changes"), "изменения бюджета"),
}
_INITIATORS: dict[str, tuple[str, str]] = {
    "client": ("by the client", "по инициативе клиента"),
    "manager": ("by the manager", "по инициативе менеджера"),
    "system": ("by the system", "автоматически"),
}
_REASONS: dict[str, tuple[str, str]] = {
    "low_balance": ("for low balance", "из-за низкого баланса"),
    "season": ("for seasonality", "из-за сезонности"),
    "budget": ("for budget reasons", "из-за бюджета"),
    "results": ("over poor results", "из-за результатов"),
    "moderation": ("by moderation", "на модерации"),
}
_CHANNELS: dict[str, tuple[tuple[str, str], str]] = {
    "call": (("call", "calls"), "звонки"),
    "email": (("email", "emails"), "письма"),
    "chat": (("chat", "chats"), "чаты"),
    "ticket": (("ticket", "tickets"), "тикеты"),
    "meeting": (("meeting", "meetings"), "встречи"),
    "other": (("other contact", "other contacts"), "прочие контакты"),
}
_DIRECTIONS: dict[str, tuple[str, str]] = {
    "inbound": ("inbound", "входящие"),
    "outbound": ("outbound", "исходящие"),
}
# topic: as a head noun (en sing/plural, ru), and as a modifier (en, ru)
_TOPICS: dict[str, tuple[tuple[str, str], str, tuple[str, str]]] = {
    "billing": (
        ("billing contact", "billing contacts"),
        "обращения по оплате",
        ("about billing", "по оплате"),
    ),
    "complaint": (("complaint", "complaints"), "жалобы", ("with a complaint", "с жалобой")),
    "technical": (
        ("technical request", "technical requests"),
        "технические обращения",
        ("on a technical issue", "по технической проблеме"),
    ),
    "results": (
        ("contact about results", "contacts about results"),
        "обсуждения результатов",
        ("about results", "о результатах"),
    ),
    "sales": (
        ("sales contact", "sales contacts"),
        "контакты по продажам",
        ("about sales", "о продажах"),
    ),
}
_OUTCOMES: dict[str, tuple[str, str]] = {  # en: before the noun; ru: after it
    "reached": ("reached", "с дозвоном"),
    "no_answer": ("unanswered", "без ответа"),
}
# activity events of the contract's `activity` table (other values are quoted as they are)
_ACTIVITY: dict[str, tuple[tuple[str, str], str]] = {
    "login": (("login", "logins"), "входы в личный кабинет"),
    "report_view": (("report view", "report views"), "просмотры отчётов"),
    "settings_change": (("settings change", "settings changes"), "изменения настроек"),
}
_FAMILY_NOUNS: dict[str, tuple[tuple[str, str], str]] = {
    "campaigns": (("campaign event", "campaign events"), "события кампаний"),
    "contacts": (("contact", "contacts"), "контакты"),
    "invoices": (("invoice event", "invoice events"), "события по счетам"),
    "spend": (("day with spend", "days with spend"), "дни с расходом"),
    "activity": (("activity event", "activity events"), "события активности"),
    "profile": (("profile event", "profile events"), "события профиля"),
}
# numeric / state columns: en (singular, plural) noun, ru noun
_COLUMNS: dict[str, tuple[tuple[str, str], str]] = {
    "spend": (("spend", "spend"), "расход"),
    "impressions": (("impression", "impressions"), "показы"),
    "clicks": (("click", "clicks"), "клики"),
    "conversions": (("conversion", "conversions"), "конверсии"),
    "value": (("value", "value"), "значение"),
    "cost_per_conversion": (("cost per conversion", "cost per conversion"), "цена конверсии"),
    "conversion_rate": (("conversion rate", "conversion rate"), "конверсия из клика"),
    "ctr": (("click-through rate", "click-through rate"), "кликабельность"),
    "running": (("running campaign", "running campaigns"), "работающие кампании"),
    "paused": (("paused campaign", "paused campaigns"), "кампании на паузе"),
    "n_campaigns": (("campaign", "campaigns"), "кампании"),
    "share_running": (
        ("share of campaigns running", "share of campaigns running"),
        "доля работающих кампаний",
    ),
    "budget": (("total daily budget", "total daily budget"), "суммарный дневной бюджет"),
    "running_budget": (
        ("daily budget of running campaigns", "daily budget of running campaigns"),
        "дневной бюджет работающих кампаний",
    ),
    "longest_pause": (("longest pause, days", "longest pause, days"), "самая долгая пауза в днях"),
    "unpaid_amount": (("unpaid amount", "unpaid amount"), "сумма неоплаченных счетов"),
    "unpaid": (("unpaid invoice", "unpaid invoices"), "неоплаченные счета"),
    "overdue_amount": (("overdue amount", "overdue amount"), "сумма просроченных счетов"),
    "overdue": (("overdue invoice", "overdue invoices"), "просроченные счета"),
    "share_paid_late": (
        ("share of invoices paid late", "share of invoices paid late"),
        "доля счетов, оплаченных с опозданием",
    ),
    "delay_max": (
        ("longest payment delay, days", "longest payment delay, days"),
        "самая долгая задержка оплаты в днях",
    ),
    "payment": (("payment", "payments"), "оплаты"),
    "issued": (("invoice issued", "invoices issued"), "выставленные счета"),
    "paid": (("invoice paid", "invoices paid"), "оплаченные счета"),
    "paid_late": (("invoice paid late", "invoices paid late"), "счета, оплаченные с опозданием"),
    "delay": (("payment delay, days", "payment delay, days"), "задержка оплаты в днях"),
    "days_overdue": (("days overdue", "days overdue"), "дней просрочки"),
    "tenure_days": (("days as a client", "days as a client"), "дней с начала работы"),
    "first_month": (("first month", "first month"), "первый месяц работы"),
    "monthly_revenue": (("monthly revenue", "monthly revenue"), "ежемесячная выручка"),
    "segment": (("segment", "segment"), "сегмент"),
    "days_since_manager_change": (
        ("days since manager change", "days since manager change"),
        "дней со смены менеджера",
    ),
    "manager_changes": (("account manager change", "account manager changes"), "смены менеджера"),
    "rfm_recency": (("days since any activity", "days since any activity"), "дней без активности"),
    "rfm_frequency": (("event of any kind", "events of any kind"), "события любого типа"),
    "rfm_monetary": (("money spent", "money spent"), "расходы"),
    "rfm_score": (
        ("engagement score (RFM)", "engagement score (RFM)"),
        "оценка вовлечённости (RFM)",
    ),
}
_RELATIVE_TREND_EXCLUDE = {"running", "paused", "n_campaigns"}  # these trends are differences


# -------------------------------------------------------------------- helpers
def plural_en(n: float, forms: tuple[str, str]) -> str:
    """Return the English singular or plural form for ``n``."""
    return forms[0] if abs(n) == 1 else forms[1]


def days_ru(n: float) -> str:
    """Return ``n`` with the agreeing Russian noun: 1 день, 2 дня, 5 дней, 21 день."""
    k = int(round(float(n)))
    return f"{fmt_int(k, 'ru')} {plural_ru(k, ('день', 'дня', 'дней'))}"


def days_en(n: float) -> str:
    """Return ``n`` days in English: 1 day, 2 days."""
    k = int(round(float(n)))
    return f"{fmt_int(k, 'en')} {plural_en(k, ('day', 'days'))}"


def _gen_days(n: float) -> str:
    """Return ``n`` days in the genitive: «предыдущих 30 дней», «предыдущего 1 дня»."""
    k = int(round(float(n)))
    return f"{fmt_int(k, 'ru')} {plural_ru(k, ('дня', 'дней', 'дней'))}"


def _paused_of_ru(k: float, tot: str) -> str:
    """Return «на паузу поставлены 2 кампании из 3» with the verb and noun agreeing."""
    n = int(round(float(k)))
    verb = plural_ru(n, ("поставлена", "поставлены", "поставлено"))
    noun = plural_ru(n, ("кампания", "кампании", "кампаний"))
    return f"на паузу {verb} {fmt_int(n, 'ru')} {noun} из {tot}"


def plural_ru(n: float, forms: tuple[str, str, str]) -> str:
    """Return the Russian form for ``n`` out of (one, few, many): жалоба / жалобы / жалоб."""
    k = int(abs(round(n)))
    if k % 10 == 1 and k % 100 != 11:
        return forms[0]
    if 2 <= k % 10 <= 4 and not 12 <= k % 100 <= 14:
        return forms[1]
    return forms[2]


def _isnan(v: float) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def fmt_num(v: float, language: str, *, decimals: int | None = None) -> str:
    """Format a number for people: thousands separators, integers without decimals."""
    if _isnan(v):
        return "—"
    v = float(v)
    if decimals is None:
        if v == round(v) or abs(v) >= 100:
            decimals = 0
        elif abs(v) >= 10:
            decimals = 1
        else:
            decimals = 2
    s = f"{v:,.{decimals}f}"
    if language == "ru":
        s = s.replace(",", "\u00a0").replace(".", ",")
    return s


def fmt_int(v: float, language: str) -> str:
    """Format a count or a number of days (rounded to an integer)."""
    return fmt_num(round(float(v)), language, decimals=0)


def fmt_pct(v: float, language: str) -> str:
    """Format a share (0..1) as a whole percentage."""
    return fmt_num(round(100 * float(v)), language, decimals=0) + "%"


def _window(w: int | None, language: str, *, before: bool = False) -> str:
    if w is None:
        return ""
    if language == "ru":
        return f"за предыдущие {days_ru(w)}" if before else f"за последние {days_ru(w)}"
    return f"in the {w} days before" if before else f"in the last {w} days"


def _humanize(value: str) -> str:
    return str(value).replace("_", " ")


def _event_nouns(name: str) -> tuple[str, str]:
    """Return "<name> event" / "<name> events", without doubling a name that already
    says "events" (a table ``churn_events``: "churn event", not "churn events event")."""
    h = _humanize(name)
    for suffix in (" events", " event"):
        if h.endswith(suffix) and len(h) > len(suffix):
            h = h[: -len(suffix)]
            break
    return f"{h} event", f"{h} events"


# ---------------------------------------------------------------- slice labels
@dataclass(frozen=True)
class Label:
    """A noun phrase for a slice: English singular and plural, Russian plural."""

    en_one: str
    en_many: str
    ru: str

    def en(self, n: float) -> str:
        """Return the English form agreeing with ``n``."""
        return self.en_one if abs(n) == 1 else self.en_many


def slice_label(feature: Feature, nouns: dict | None = None) -> Label:
    """Build the noun phrase of a slice feature from its family and slice values.

    ``nouns`` maps a family to ``((en one, en many), ru plural)`` and overrides the
    built-in family nouns (a declared table's events are "purchases", not "events").
    """
    vals = [str(v) for v in feature.slice_values]
    fam = feature.family
    pre_en: list[str] = []
    post_en: list[str] = []
    pre_ru: list[str] = []
    post_ru: list[str] = []
    head: tuple[tuple[str, str], str] | None = None
    unknown: list[str] = []
    for v in vals:
        if v in _EVENTS and fam != "contacts" and head is None:
            head = _EVENTS[v]
        elif v in _INITIATORS and fam != "contacts":
            post_en.append(_INITIATORS[v][0])
            post_ru.append(_INITIATORS[v][1])
        elif v in _REASONS and fam == "campaigns":
            post_en.append(_REASONS[v][0])
            post_ru.append(_REASONS[v][1])
        elif v in _CHANNELS and fam != "campaigns" and (head is None or head[1] in _TOPIC_RU):
            if head is not None:  # a topic came first: demote it to a modifier
                t = _TOPIC_RU[head[1]]
                post_en.append(_TOPICS[t][2][0])
                post_ru.append(_TOPICS[t][2][1])
            head = _CHANNELS[v]
        elif v in _DIRECTIONS and fam != "campaigns":
            pre_en.append(_DIRECTIONS[v][0])
            pre_ru.append(_DIRECTIONS[v][1])
        elif v in _TOPICS and fam != "campaigns":
            if head is None:
                head = (_TOPICS[v][0], _TOPICS[v][1])
            else:
                post_en.append(_TOPICS[v][2][0])
                post_ru.append(_TOPICS[v][2][1])
        elif v in _OUTCOMES and fam != "campaigns":
            pre_en.insert(0, _OUTCOMES[v][0])
            post_ru.append(_OUTCOMES[v][1])
        elif v in _ACTIVITY and head is None:
            head = _ACTIVITY[v]
        else:
            unknown.append(v)
    if head is None:
        head = {**_FAMILY_NOUNS, **(nouns or {})}.get(
            fam,
            (
                _event_nouns(fam),
                f"события «{_humanize(fam)}»",
            ),
        )
    if unknown:
        q_en = " ".join(f'"{_humanize(u)}"' for u in unknown)
        q_ru = " ".join(f"«{_humanize(u)}»" for u in unknown)
        pre_en.append(q_en)
        post_ru.append(q_ru)
    (h_one, h_many), h_ru = head
    one = " ".join([*pre_en, h_one, *post_en])
    many = " ".join([*pre_en, h_many, *post_en])
    ru = " ".join([*pre_ru, h_ru, *post_ru])
    return Label(one, many, ru)


_TOPIC_RU = {v[1]: k for k, v in _TOPICS.items()}


def column_label(feature: Feature, nouns: dict | None = None) -> Label:
    """Build the noun phrase of a numeric or state feature from its column."""
    col = feature.column or ""
    if col in _COLUMNS:
        (one, many), ru = _COLUMNS[col]
        return Label(one, many, ru)
    if feature.slice_values:
        return slice_label(feature, nouns)
    if not col:
        # e.g. a declared count without slices: use the family noun
        (one, many), ru = {**_FAMILY_NOUNS, **(nouns or {})}.get(
            feature.family,
            (
                _event_nouns(feature.family),
                f"события «{_humanize(feature.family)}»",
            ),
        )
        return Label(one, many, ru)
    h = _humanize(col)
    return Label(h, h, f"показатель «{h}»")


# -------------------------------------------------------------------- phrases
Render = Callable[[float, Sequence[float]], "str | None"]


@dataclass(frozen=True)
class Phrase:
    """How one feature is put into words in one language.

    Attributes
    ----------
    feature : str
        The feature it renders.
    companions : tuple of str
        Other features of the same client the phrase reads (in this order).
    render : callable
        ``render(value, companion_values) -> str``.
    """

    feature: str
    companions: tuple[str, ...]
    render: Render

    def __call__(self, value: float, companions: Sequence[float] = ()) -> str:
        """Render ``value`` (and the companions' values) as text."""
        return self.render(value, companions)


def _ago_en(d: float) -> str:
    d = round(d)
    if d == 1:
        return "yesterday"
    if d < 14:
        return f"{d} {plural_en(d, ('day', 'days'))} ago"
    if d < 60:
        w = round(d / 7)
        return f"{w} weeks ago"
    m = round(d / 30.4)
    return f"{m} {plural_en(m, ('month', 'months'))} ago"


def _ago_ru(d: float) -> str:
    d = round(d)
    if d == 1:
        return "вчера"
    if d < 14:
        return f"{days_ru(d)} назад"
    if d < 60:
        w = round(d / 7)
        return f"{w} {plural_ru(w, ('неделю', 'недели', 'недель'))} назад"
    m = round(d / 30.4)
    return f"{m} {plural_ru(m, ('месяц', 'месяца', 'месяцев'))} назад"


def ago(d: float, language: str) -> str:
    """Return "N days ago" / «N дней назад» («вчера» for one day)."""
    return _ago_ru(d) if language == "ru" else _ago_en(d)


def _comp_ok(c: Sequence[float], i: int = 0) -> bool:
    return len(c) > i and not _isnan(c[i])


class PhraseBook:
    """Compile phrases for every feature of a catalog in one language.

    Parameters
    ----------
    catalog : iterable of Feature
        The features that may need phrasing.
    language : {"en", "ru"}
        The language of the phrases.
    """

    def __init__(
        self,
        catalog: Iterable[Feature],
        language: str = "en",
        *,
        lookback: int = 90,
        nouns: dict[str, tuple[tuple[str, str], str]] | None = None,
    ) -> None:
        if language not in LANGUAGES:
            raise ValueError(f"language must be one of {LANGUAGES}, got {language!r}")
        self.language = language
        self.lookback = int(lookback)
        self.nouns = dict(nouns or {})
        self.catalog = {f.name: f for f in catalog}
        self._by_column: dict[tuple[str, str], str] = {}
        for f in self.catalog.values():
            if f.column and f.window is None:
                self._by_column.setdefault((f.family, f.column), f.name)
        self._cache: dict[str, Phrase] = {}

    # -- public
    def phrase(self, name: str) -> Phrase:
        """Return the (cached) phrase of feature ``name``."""
        p = self._cache.get(name)
        if p is None:
            f = self.catalog.get(name)
            if f is None:  # not in the catalog: phrase the bare name
                f = Feature(name, name.split("__", 1)[0], name, "state", None, (), None)
            p = self._compile(f)
            self._cache[name] = p
        return p

    def render(self, name: str, value: float, companions: Sequence[float] = ()) -> str:
        """Render feature ``name`` with the client's ``value``."""
        return self.phrase(name)(value, companions)

    # -- compilation
    def _companion(self, family: str, column: str) -> str | None:
        return self._by_column.get((family, column))

    def _compile(self, f: Feature) -> Phrase:
        hand = self._hand(f)
        if hand is not None:
            return hand
        return self._generic(f)

    def _p(self, f: Feature, render: Render, companions: tuple[str, ...] = ()) -> Phrase:
        return Phrase(f.name, companions, render)

    def _hand(self, f: Feature) -> Phrase | None:  # noqa: C901 - one table of templates
        ru = self.language == "ru"
        col = f.column
        kind = f.kind
        sv = tuple(f.slice_values)
        w = f.window
        win = _window(w, self.language)
        L = self.language

        if col == "silence_ratio":  # profile__<src>_silence_ratio: days since / usual gap
            src = f.name.removeprefix("profile__").removesuffix("_silence_ratio")
            (one_en, _), many_ru = {**_FAMILY_NOUNS, **self.nouns}.get(
                src, ((_event_nouns(src)[0], ""), f"события «{_humanize(src)}»")
            )

            def r_silence(v: float, c: Sequence[float]) -> str | None:
                if _isnan(v) or v < 0:
                    return None  # no usual gap known (fewer than two events)
                x = f"{v:.1f}".replace(".", "," if ru else ".")
                if ru:
                    return f"{many_ru}: с последнего прошло {x} обычного промежутка между ними"
                return f"time since the last {one_en}: {x}× the client's usual gap"

            return self._p(f, r_silence)

        if col == "days_overdue":
            amt = self._companion(f.family, "overdue_amount")

            def r_days_overdue(v: float, c: Sequence[float]) -> str:
                if _isnan(v) or v <= 0:
                    return "нет просроченных счетов" if ru else "no overdue invoice"
                d = fmt_int(v, L)
                if ru:
                    s = f"счёт просрочен на {days_ru(v)}"
                    return s + (f", долг {fmt_num(c[0], L)}" if _comp_ok(c) and c[0] > 0 else "")
                s = f"invoice {d} {plural_en(round(v), ('day', 'days'))} overdue"
                return s + (
                    f", {fmt_num(c[0], L)} outstanding" if _comp_ok(c) and c[0] > 0 else ""
                )

            return self._p(f, r_days_overdue, (amt,) if amt else ())

        if col == "overdue_amount":
            days = self._companion(f.family, "days_overdue")

            def r_overdue_amount(v: float, c: Sequence[float]) -> str:
                if _isnan(v) or v <= 0:
                    return "нет просроченных счетов" if ru else "no overdue invoices"
                a = fmt_num(v, L)
                if _comp_ok(c) and c[0] > 0:
                    d = fmt_int(c[0], L)
                    if ru:
                        return f"просрочено {a}, старейший счёт — на {days_ru(c[0])}"
                    return f"{a} overdue, the oldest invoice {d} days past due"
                return f"просроченные счета на сумму {a}" if ru else f"overdue invoices of {a}"

            return self._p(f, r_overdue_amount, (days,) if days else ())

        if col in ("unpaid_amount",):

            def r_unpaid_amount(v: float, c: Sequence[float]) -> str:
                if _isnan(v) or v <= 0:
                    return "нет неоплаченных счетов" if ru else "no unpaid invoices"
                a = fmt_num(v, L)
                return f"неоплаченные счета на сумму {a}" if ru else f"unpaid invoices of {a}"

            return self._p(f, r_unpaid_amount)

        if col == "days_since_manager_change":

            def r_mgr(v: float, c: Sequence[float]) -> str | None:
                if _isnan(v) or v > self.lookback:
                    return None  # no change, or one too old to cite
                return f"менеджер сменился {_ago_ru(v)}" if ru else f"manager changed {_ago_en(v)}"

            return self._p(f, r_mgr)

        if col == "payment" and kind == "days_since":

            def r_payment(v: float, c: Sequence[float]) -> str:
                if _isnan(v):
                    return "оплат ещё не было" if ru else "no payment yet"
                d = fmt_int(v, L)
                if v > self.lookback:
                    return None  # a state so old says nothing about today
                return f"нет оплаты {days_ru(v)}" if ru else f"no payment for {d} days"

            return self._p(f, r_payment)

        if col == "rfm_recency":

            def r_recency(v: float, c: Sequence[float]) -> str:
                if _isnan(v):
                    return "активности ещё не было" if ru else "no activity yet"
                d = fmt_int(v, L)
                return (
                    f"нет никакой активности {days_ru(v)}"
                    if ru
                    else f"no activity of any kind for {d} days"
                )

            return self._p(f, r_recency)

        if col == "tenure_days":

            def r_tenure(v: float, c: Sequence[float]) -> str | None:
                if _isnan(v):
                    return None  # unknown: nothing to say
                d = round(v)
                if d > self.lookback:
                    return None  # a signup older than the look-back is no event to cite
                if d < 60:
                    return f"клиент всего {days_ru(d)}" if ru else f"client for only {d} days"
                m = round(d / 30.4)
                if ru:
                    return f"клиент {m} {plural_ru(m, ('месяц', 'месяца', 'месяцев'))}"
                return f"client for {m} months"

            return self._p(f, r_tenure)

        if col == "first_month":

            def r_first(v: float, c: Sequence[float]) -> str:
                yes = not _isnan(v) and v >= 0.5
                if ru:
                    return "первый месяц работы" if yes else "уже не первый месяц работы"
                return "client in its first month" if yes else "client past its first month"

            return self._p(f, r_first)

        if col == "segment" and kind == "flag":
            seg = _humanize(sv[0]) if sv else "?"

            def r_seg(v: float, c: Sequence[float]) -> str:
                yes = not _isnan(v) and v >= 0.5
                if ru:
                    return f"клиент сегмента «{seg}»" if yes else f"клиент не из сегмента «{seg}»"
                return f"{seg} segment client" if yes else f"not a {seg} segment client"

            return self._p(f, r_seg)

        if col in ("running", "paused") and kind == "state":
            n = self._companion(f.family, "n_campaigns")

            def r_running(v: float, c: Sequence[float]) -> str:
                if _isnan(v):
                    v = 0.0
                k = fmt_int(v, L)
                if col == "running":
                    if v <= 0:
                        return "нет работающих кампаний" if ru else "no campaign running now"
                    if _comp_ok(c) and c[0] >= v:
                        tot = fmt_int(c[0], L)
                        return (
                            f"работает {k} из {tot}"
                            if ru
                            else f"{k} of {tot} campaigns running now"
                        )
                    return (
                        f"работающих кампаний: {k}"
                        if ru
                        else f"{k} {plural_en(v, ('campaign', 'campaigns'))} running now"
                    )
                if _comp_ok(c) and c[0] >= v > 0:
                    tot = fmt_int(c[0], L)
                    return f"на паузе {k} из {tot}" if ru else f"{k} of {tot} campaigns paused now"
                return (
                    f"кампаний на паузе: {k}"
                    if ru
                    else f"{k} {plural_en(v, ('campaign', 'campaigns'))} paused now"
                )

            return self._p(f, r_running, (n,) if n and col else ())

        if col == "n_campaigns" and kind == "state":

            def r_n(v: float, c: Sequence[float]) -> str:
                if _isnan(v) or v <= 0:
                    return "нет активных кампаний" if ru else "no live campaigns"
                k = fmt_int(v, L)
                if v == 1:
                    return "всего одна кампания" if ru else "only one campaign"
                return f"всего кампаний: {k}" if ru else f"{k} campaigns in total"

            return self._p(f, r_n)

        if col == "idle_days":

            def r_idle(v: float, c: Sequence[float]) -> str:
                if _isnan(v):
                    return "кампании работают" if ru else "campaigns are running"
                d = fmt_int(v, L)
                return (
                    f"ни одна кампания не работает уже {days_ru(v)}"
                    if ru
                    else f"nothing has run for {d} days"
                )

            return self._p(f, r_idle)

        if col == "longest_pause":

            def r_pause(v: float, c: Sequence[float]) -> str:
                if _isnan(v) or v <= 0:
                    return "нет кампаний на паузе" if ru else "no campaign on pause"
                d = fmt_int(v, L)
                return (
                    f"кампания на паузе уже {days_ru(v)}"
                    if ru
                    else f"a campaign paused for {d} days"
                )

            return self._p(f, r_pause)

        if col == "running" and kind == "trend":

            def r_run_change(v: float, c: Sequence[float]) -> str:
                if _isnan(v) or v == 0:
                    return (
                        f"число работающих кампаний не изменилось {win}"
                        if ru
                        else f"no change in running campaigns {win}"
                    )
                k = fmt_int(abs(v), L)
                if ru:
                    more = "больше" if v > 0 else "меньше"
                    return f"работающих кампаний стало на {k} {more} {win}"
                d = "up" if v > 0 else "down"
                return f"running campaigns {d} by {k} {win}"

            return self._p(f, r_run_change)

        # campaigns paused (by someone) in a window, phrased against the number of campaigns
        if kind == "count" and f.family == "campaigns" and sv and sv[0] == "paused":
            n = self._companion(f.family, "n_campaigns")
            label = slice_label(f)
            post_ru = " ".join(
                _INITIATORS[v][1] if v in _INITIATORS else _REASONS[v][1]
                for v in sv[1:]
                if v in _INITIATORS or v in _REASONS
            )
            post_en = " ".join(
                _INITIATORS[v][0] if v in _INITIATORS else _REASONS[v][0]
                for v in sv[1:]
                if v in _INITIATORS or v in _REASONS
            )

            def r_paused(v: float, c: Sequence[float]) -> str | None:
                if _isnan(v) or v <= 0:
                    return None  # no pause is no reason
                k = fmt_int(v, L)
                if v > 0 and _comp_ok(c) and c[0] >= v:
                    tot = fmt_int(c[0], L)
                    if ru:
                        s = _paused_of_ru(v, tot)
                        return " ".join(x for x in (s, post_ru, win) if x)
                    s = f"{k} of {tot} campaigns paused"
                    return " ".join(x for x in (s, post_en, win) if x)
                if ru:
                    return f"{label.ru} {win}: {k}"
                return f"{k} {label.en(v)} {win}"

            return self._p(f, r_paused, (n,) if n else ())

        if kind == "count" and f.family == "contacts" and sv == ("complaint",):

            def r_complaints(v: float, c: Sequence[float]) -> str:
                v = 0.0 if _isnan(v) else v
                k = fmt_int(v, L)
                if v <= 0:
                    return None  # no complaint is no reason
                if ru:
                    return f"{k} {plural_ru(v, ('жалоба', 'жалобы', 'жалоб'))} {win}"
                return f"{k} {plural_en(v, ('complaint', 'complaints'))} {win}"

            return self._p(f, r_complaints)

        if (
            kind == "days_since"
            and f.family == "contacts"
            and "reached" in sv
            and ("call" in sv or not sv)
        ):

            def r_reached(v: float, c: Sequence[float]) -> str:
                if _isnan(v):
                    return "дозвона ещё не было" if ru else "no reached call yet"
                d = fmt_int(v, L)
                if v > self.lookback:
                    lb = self.lookback
                    return (
                        f"ни одного дозвона за последние {days_ru(lb)}"
                        if ru
                        else f"no reached call in the last {lb} days"
                    )
                return f"нет дозвона {days_ru(v)}" if ru else f"no reached call for {d} days"

            return self._p(f, r_reached)

        return None

    def _generic(self, f: Feature) -> Phrase:  # noqa: C901 - one branch per kind
        ru = self.language == "ru"
        L = self.language
        w = f.window
        win = _window(w, L)
        kind = f.kind
        label = (
            slice_label(f, self.nouns)
            if (f.slice_values or not f.column)
            else column_label(f, self.nouns)
        )
        pct_like = bool(f.column) and any(t in f.column for t in ("share", "rate", "ctr"))

        def lab_ru() -> str:
            return label.ru

        if kind == "count":

            def r(v: float, c: Sequence[float]) -> str | None:
                if _isnan(v):
                    return None  # not covered (the table's export starts later): unknown, not 0
                k = fmt_int(v, L)
                if ru:
                    return f"{lab_ru()} {win}: {k}".replace("  ", " ")
                if v == 0:
                    return f"no {label.en_one} {win}".strip()
                return f"{k} {label.en(v)} {win}".strip()

            return self._p(f, r)

        bad_news = bool(set(f.slice_values) & {"no_answer", "complaint", "technical"})
        if kind == "days_since":

            def r(v: float, c: Sequence[float]) -> str:
                if bad_news and (_isnan(v) or v > self.lookback):
                    return None  # the absence of bad news is no reason for risk
                if _isnan(v):
                    return f"{lab_ru()}: ещё не было" if ru else f"no {label.en_one} yet"
                if v > self.lookback:  # never cite an event older than the longest window
                    lb = self.lookback
                    if ru:
                        return f"{lab_ru()}: не было за последние {days_ru(lb)}"
                    return f"no {label.en_one} in the last {lb} days"
                if ru:
                    return f"{lab_ru()}: последний раз {_ago_ru(v)}"
                return f"last {label.en_one} {_ago_en(v)}"

            return self._p(f, r)

        if kind == "trend":
            relative = (
                not f.slice_values and bool(f.column) and (f.column not in _RELATIVE_TREND_EXCLUDE)
            )
            before = _window(w, L, before=True)
            if relative:

                def r(v: float, c: Sequence[float]) -> str:
                    if _isnan(v) or v == 0:
                        return None  # nothing before, or no change: nothing to say
                    p = fmt_pct(abs(v), L)
                    if ru:
                        if v == 0:
                            return f"{lab_ru()}: без изменений против предыдущих {_gen_days(w)}"
                        what = "рост" if v > 0 else "снижение"
                        return f"{lab_ru()}: {what} на {p} против предыдущих {_gen_days(w)}"
                    if v == 0:
                        return f"{label.en_many} unchanged vs the previous {w} days"
                    d = "up" if v > 0 else "down"
                    return f"{label.en_many} {d} {p} vs the previous {w} days"

                return self._p(f, r)
            base = f.name.removesuffix("__trend")
            comp = (base,) if base != f.name and base in self.catalog else ()

            def r(v: float, c: Sequence[float]) -> str:
                v = 0.0 if _isnan(v) else v
                if _comp_ok(c):
                    cur = c[0]
                    prev = cur - v
                    if ru:
                        return (
                            f"{lab_ru()}: {fmt_int(cur, L)} {win} "
                            f"против {fmt_int(prev, L)} {before}"
                        )
                    return (
                        f"{fmt_int(cur, L)} {label.en(cur)} {win} vs {fmt_int(prev, L)} {before}"
                    )
                k = fmt_int(abs(v), L)
                if ru:
                    if v == 0:
                        return f"{lab_ru()}: без изменений {win}"
                    what = "больше" if v > 0 else "меньше"
                    return f"{lab_ru()}: на {k} {what} {win}, чем {before}"
                if v == 0:
                    return f"{label.en_many}: no change {win}"
                d = "up" if v > 0 else "down"
                return f"{label.en_many} {d} by {k} {win} vs the {w} days before"

            return self._p(f, r, comp)

        if kind in ("sum", "mean"):

            def r(v: float, c: Sequence[float]) -> str | None:
                if _isnan(v) or v == 0:
                    return None  # an average of nothing says nothing
                val = fmt_num(v, L)
                if ru:
                    avg = " в среднем" if kind == "mean" else ""
                    return f"{lab_ru()}{avg} {win}: {val}".replace("  ", " ")
                avg = "average " if kind == "mean" else ""
                return f"{avg}{label.en_many} {win}: {val}".replace("  ", " ")

            return self._p(f, r)

        if kind == "flag":

            def r(v: float, c: Sequence[float]) -> str:
                yes = not _isnan(v) and v >= 0.5
                if ru:
                    return f"{lab_ru()}: {'да' if yes else 'нет'}"
                return f"{label.en_many}: {'yes' if yes else 'no'}"

            return self._p(f, r)

        # state, ratio, amount, category and anything new
        def r(v: float, c: Sequence[float]) -> str | None:
            if _isnan(v):
                return None  # unknown: nothing to say
            if kind == "category":
                val = fmt_num(v, L) if isinstance(v, float) else str(v)
            elif pct_like or (kind == "ratio" and 0 <= v <= 1 and "per" not in label.en_many):
                val = fmt_pct(v, L)
            elif kind == "state" and label.en_many.endswith("days"):
                val = fmt_int(v, L)
            else:
                val = fmt_num(v, L)
            tail = f" {win}" if win else ""
            if ru:
                return f"{lab_ru()}{tail}: {val}"
            return f"{label.en_many}{tail}: {val}"

        return self._p(f, r)


# ----------------------------------------------------------- suggested actions
# (role, topic) -> (en, ru); the first match wins ("*" matches anything).
_ACTIONS: list[tuple[str, str, tuple[str, str]]] = [
    (
        "receivables",
        "overdue",
        (
            "Remind about the overdue invoice and agree on a payment date.",
            "Напомнить о просроченном счёте и согласовать дату оплаты.",
        ),
    ),
    (
        "receivables",
        "*",
        (
            "Campaigns stopped for low balance: help the client top up and restart them.",
            "Кампании остановлены из-за баланса: помочь пополнить счёт и перезапустить их.",
        ),
    ),
    (
        "technical",
        "*",
        (
            "Find the technical problem behind the requests and confirm a fix date.",
            "Разобраться в технической проблеме и назвать срок исправления.",
        ),
    ),
    (
        "business_development",
        "*",
        (
            "Propose services that widen the project: the best retention is resale.",
            "Предложить услуги, расширяющие проект: лучшее удержание — допродажа.",
        ),
    ),
    (
        "account_manager",
        "launch",
        (
            "Help the client launch their first campaign.",
            "Помочь клиенту запустить первую кампанию.",
        ),
    ),
    (
        "account_manager",
        "pause",
        (
            "Ask why campaigns were paused and agree on a plan to restart them.",
            "Узнать, почему кампании на паузе, и договориться о плане перезапуска.",
        ),
    ),
    (
        "account_manager",
        "state",
        (
            "Ask why campaigns were paused and agree on a plan to restart them.",
            "Узнать, почему кампании на паузе, и договориться о плане перезапуска.",
        ),
    ),
    (
        "account_manager",
        "campaign_activity",
        (
            "Review the campaigns with the client and agree on next steps.",
            "Разобрать кампании с клиентом и договориться о следующих шагах.",
        ),
    ),
    (
        "account_manager",
        "results",
        (
            "Go through the results with the client and propose how to improve them.",
            "Обсудить результаты с клиентом и предложить, как их улучшить.",
        ),
    ),
    (
        "account_manager",
        "complaint",
        (
            "Call about the complaint, acknowledge it and agree on a fix.",
            "Позвонить по жалобе, признать проблему и договориться о решении.",
        ),
    ),
    (
        "account_manager",
        "manager",
        (
            "Introduce yourself as the new manager and agree on goals for the project.",
            "Представиться новым менеджером и договориться о целях проекта.",
        ),
    ),
    (
        "account_manager",
        "contact",
        (
            "Get back in touch: ask how the project is going and what worries the client.",
            "Восстановить контакт: спросить, как идёт проект и что беспокоит клиента.",
        ),
    ),
    (
        "account_manager",
        "*",
        (
            "Call to check how the project is going and what the client needs.",
            "Позвонить и узнать, как идёт проект и что нужно клиенту.",
        ),
    ),
    (
        "*",
        "*",
        ("Call to check how the project is going.", "Позвонить и узнать, как идёт проект."),
    ),
]


def suggested_action(role: str, topic: str | None, language: str = "en") -> str:
    """Return one short sentence for a caller of ``role`` acting on reason ``topic``.

    ``topic`` is a reason topic (:func:`churnpredict.explain.topic_of`) or, for
    receivables, ``overdue`` (an overdue invoice) versus a system stop for money.
    """
    i = 1 if language == "ru" else 0
    t = topic or ""
    for r, pat, texts in _ACTIONS:
        if (r == "*" or r == role) and (pat == "*" or pat == t):
            return texts[i]
    return _ACTIONS[-1][2][i]  # pragma: no cover - the last rule matches everything


def reached_note(days: float, language: str = "en") -> str:
    """Return the note for a client reached recently (moved down the list)."""
    d = fmt_int(days, language)
    if language == "ru":
        return f"дозвон был {_ago_ru(days)} — опущен ниже"
    return f"reached {d} {plural_en(round(days), ('day', 'days'))} ago, moved down"


def hold_out_note(language: str = "en") -> str:
    """Return the note for a client in the control group."""
    if language == "ru":
        return "контрольная группа: не звонить"
    return "control group: do not call"


def no_reason_text(language: str = "en") -> str:
    """Return the reason text when no feature raises the client's risk."""
    return "нет заметных причин риска" if language == "ru" else "no notable risk signals"


# ------------------------------------------------------------------ fact phrases
def _f(row: dict, key: str) -> float:
    """Return a numeric fact (NaN when absent or unknown)."""
    v = row.get(key)
    try:
        v = float(v)
    except (TypeError, ValueError):
        return math.nan
    return v


def _s(row: dict, key: str) -> str | None:
    v = row.get(key)
    if v is None or (isinstance(v, float) and math.isnan(v)) or str(v) == "":
        return None
    return str(v)


# who paused: en, ru (subject + verb agreeing in gender)
_WHO_PAUSED: dict[str, tuple[str, str, str]] = {
    # initiator: (en "by ...", ru paused, ru stopped)
    "client": ("by the client", "клиент поставил на паузу", "клиент остановил"),
    "manager": ("by the manager", "менеджер поставил на паузу", "менеджер остановил"),
    "system": ("by the system", "система поставила на паузу", "система остановила"),
}
_WHY: dict[str, tuple[str, str]] = {
    "low_balance": ("low balance", "низкий баланс"),
    "payment": ("unpaid invoice", "неоплаченный счёт"),
    "non_payment": ("unpaid invoice", "неоплаченный счёт"),
    "unpaid": ("unpaid invoice", "неоплаченный счёт"),
    "balance": ("low balance", "низкий баланс"),
    "budget": ("budget", "бюджет"),
    "results": ("not effective", "недоволен результатами"),
    "season": ("seasonal", "сезонность"),
    "moderation": ("moderation", "модерация"),
}


class FactPhrases:
    """Reasons phrased from the client's facts (:mod:`churnpredict.facts`).

    Each method takes one client's facts as a dict and returns the reason, or
    ``None`` when the facts hold nothing worth saying (nothing happened within
    ``lookback`` days, no evidence): the caller then falls back to the feature's
    own phrase or drops the reason.

    Parameters
    ----------
    language : {"en", "ru"}
    lookback : int
        The oldest age, in days, of an event a reason may cite.
    nouns : dict, optional
        ``{table: ((en one, en many), (ru 1, ru 2, ru 5))}`` for declared tables.
    """

    def __init__(
        self,
        language: str = "en",
        *,
        lookback: int = 90,
        nouns: dict[str, tuple[tuple[str, str], tuple[str, str, str]]] | None = None,
    ) -> None:
        if language not in LANGUAGES:
            raise ValueError(f"language must be one of {LANGUAGES}, got {language!r}")
        self.language = language
        self.ru = language == "ru"
        self.lookback = int(lookback)
        self.nouns = dict(nouns or {})

    # -- campaigns
    def pause(self, row: dict) -> str | None:
        """Name the latest pause: how many campaigns, who, why, how long ago."""
        d = _f(row, "halt_days")
        if _isnan(d) or d > self.lookback:
            return None
        L = self.language
        k = _f(row, "halt_k")
        k = 1 if _isnan(k) or k < 1 else int(k)
        n = _f(row, "n_campaigns")
        tot = max(k, 0 if _isnan(n) else int(n))
        who = _s(row, "halt_initiator")
        why = _s(row, "halt_reason")
        stopped = _s(row, "halt_event") == "stopped"
        resumed = _f(row, "halt_resumed") == 1
        when = ago(d, L)
        if self.ru:
            subj = _WHO_PAUSED.get(who or "", (None, None, None))[2 if stopped else 1]
            verb = subj or ("остановлены" if stopped else "поставлены на паузу")
            if k == 1 and tot == 1:
                what = "единственную кампанию" if subj else "единственная кампания"
                if not subj:
                    verb = "остановлена" if stopped else "поставлена на паузу"
            elif k == tot and subj:
                noun = plural_ru(k, ("кампанию", "кампании", "кампаний"))
                what = "обе кампании" if k == 2 else f"все {k} {noun}"
            elif subj:
                what = f"{k} {plural_ru(k, ('кампанию', 'кампании', 'кампаний'))} из {tot}"
            else:
                what = f"{k} из {tot}"
            # a dash keeps "из 4" and "13 дней назад" apart
            gap = " — " if what[-1].isdigit() else " "
            s = f"{verb} {what}{gap}{when}" if subj else f"{what} {verb}{gap}{when}"
            if why:
                s += ", причина: " + _WHY.get(why, (why, f"«{_humanize(why)}»"))[1]
            if resumed:
                s += " (уже снова работает)" if k == 1 else " (часть снова работает)"
            return s
        verb = "stopped" if stopped else "paused"
        by = _WHO_PAUSED.get(who or "", ("",))[0]
        if k == 1 and tot == 1:
            what = f"the only campaign {verb}"
        elif k == tot:
            what = f"both campaigns {verb}" if k == 2 else f"all {k} campaigns {verb}"
        else:
            what = f"{k} of {tot} campaigns {verb}"
        s = " ".join(x for x in (what, by, when) if x)
        if why:
            s += " — reason: " + _WHY.get(why, (f'"{_humanize(why)}"', ""))[0]
        if resumed:
            s += " (running again)" if k == 1 else " (some running again)"
        return s

    def state(self, row: dict) -> str | None:
        """Say what runs now: "nothing has run for 9 days" or "1 of 4 campaigns running"."""
        run = _f(row, "running")
        n = _f(row, "n_campaigns")
        if _isnan(run):
            return None
        L = self.language
        if run <= 0:
            idle = _f(row, "idle_days")
            if _isnan(idle):
                return (
                    "ни одна кампания ещё не запускалась" if self.ru else "no campaign has run yet"
                )
            if idle > self.lookback:
                return None
            if self.ru:
                return f"ни одна кампания не работает уже {days_ru(idle)}"
            return f"nothing has run for {days_en(idle)}"
        if _isnan(n) or n <= run:
            return None  # everything runs: nothing to say about the state
        r, t = fmt_int(run, L), fmt_int(n, L)
        if self.ru:
            return f"работает {r} из {t} {plural_ru(n, ('кампании', 'кампаний', 'кампаний'))}"
        return f"{r} of {t} campaigns running now"

    # -- money
    def money(self, row: dict) -> str | None:
        """Name the money evidence: overdue invoices, a system pause for money, late payments."""
        L = self.language
        n = _f(row, "overdue_n")
        if not _isnan(n) and n > 0:
            d = _f(row, "overdue_days")
            a = _f(row, "overdue_amount")
            amt = fmt_num(a, L) if not _isnan(a) and a > 0 else None
            known = not _isnan(d) and d > 0
            if self.ru:
                if n == 1:
                    s = f"счёт просрочен на {days_ru(d)}" if known else "счёт просрочен"
                else:
                    s = f"просрочено {fmt_int(n, L)} {plural_ru(n, ('счёт', 'счёта', 'счетов'))}"
                    s += f", старейший — на {days_ru(d)}" if known else ""
                return s + (f", долг {amt}" if amt else "")
            if n == 1:
                s = f"invoice {days_en(d)} overdue" if known else "an invoice overdue"
            else:
                s = f"{fmt_int(n, L)} invoices overdue"
                s += f", the oldest by {days_en(d)}" if known else ""
            return s + (f", {amt} outstanding" if amt else "")
        md = _f(row, "money_halt_days")
        if not _isnan(md) and md <= self.lookback:
            why = _WHY.get(_s(row, "halt_reason") or "low_balance", _WHY["low_balance"])
            if self.ru:
                return f"система остановила кампании {ago(md, L)}: {why[1]}"
            return f"campaigns paused by the system {ago(md, L)}: {why[0]}"
        late = _f(row, "paid_late_n")
        paid = _f(row, "paid_n")
        if not _isnan(late) and late > 0 and not _isnan(paid) and paid >= late:
            lb = self.lookback
            if self.ru:
                return (
                    f"{fmt_int(late, L)} из {fmt_int(paid, L)} оплат за последние {days_ru(lb)} "
                    "— с опозданием"
                )
            return f"{fmt_int(late, L)} of {fmt_int(paid, L)} invoices in the last {lb} days paid late"
        return None

    # -- contacts
    def _recent(self, row: dict, key: str, en: tuple[str, str], ru: tuple[str, ...]) -> str | None:
        d = _f(row, f"{key}_days")
        if _isnan(d) or d > self.lookback:
            return None
        L = self.language
        n = _f(row, f"{key}_n")
        lb = self.lookback
        if self.ru:
            s = f"{ru[0]} {ago(d, L)}"
            if not _isnan(n) and n > 1:
                s += f", всего {fmt_int(n, L)} за последние {days_ru(lb)}"
            return s
        s = f"{en[0]} {ago(d, L)}"
        if not _isnan(n) and n > 1:
            s += f", {fmt_int(n, L)} {en[1]} in the last {lb} days"
        return s

    def technical(self, row: dict) -> str | None:
        """Name the latest technical request (within the look-back)."""
        return self._recent(
            row, "technical", ("technical request", "requests"), ("техническое обращение",)
        )

    def complaint(self, row: dict) -> str | None:
        """Name the latest complaint (within the look-back)."""
        return self._recent(row, "complaint", ("complaint", "complaints"), ("жалоба",))

    # -- results
    def results(self, row: dict) -> str | None:
        """Compare the last 30 days' results with the client's previous 30 days."""
        L = self.language
        for key, en, ru in (
            ("conv", "conversions", "конверсий"),
            ("clicks", "clicks", "кликов"),
            ("spend", "spend", "расход"),
        ):
            now, prev = _f(row, f"{key}_now"), _f(row, f"{key}_prev")
            now = 0.0 if _isnan(now) else now
            if _isnan(prev) or prev <= 0 or now >= prev * 0.9:
                continue
            pct = fmt_pct(1 - now / prev, L)
            a, b = fmt_num(now, L, decimals=0), fmt_num(prev, L, decimals=0)
            if self.ru:
                less = "меньше" if key != "spend" else "ниже"
                head = f"{ru} на {pct} {less}" if key != "spend" else f"расход на {pct} ниже"
                return f"{head}, чем за предыдущие 30 дней ({a} против {b})"
            return f"{en} down {pct} on their previous 30 days ({a} vs {b})"
        return None

    # -- declared tables
    def declared(self, table: str, row: dict) -> str | None:
        """Name a declared table's last event and compare the last 30 days with the 30 before."""
        d = _f(row, f"{table}__days")
        if _isnan(d):
            return None
        L = self.language
        (one, many), ru = self.nouns.get(table, (_event_nouns(table), None))
        ru = ru or ("событие", "события", "событий")
        now, prev = _f(row, f"{table}__now"), _f(row, f"{table}__prev")
        now = 0.0 if _isnan(now) else now
        prev = 0.0 if _isnan(prev) else prev
        if d > self.lookback:
            lb = self.lookback
            if self.ru:
                return f"{ru[2]} не было за последние {days_ru(lb)}"
            return f"no {one} in the last {lb} days"
        if self.ru:
            s = f"последняя запись «{ru[0]}» {ago(d, L)}"
            if now < prev:
                s += (
                    f", за последние 30 дней {fmt_int(now, L)} "
                    f"{plural_ru(now, ru)} против {fmt_int(prev, L)} за предыдущие 30"
                )
            return s
        s = f"last {one} {ago(d, L)}"  # one reason: no "; " inside (the list's separator)
        if now < prev:
            s += (
                f", {fmt_int(now, L)} {plural_en(now, (one, many))} in the last 30 days "
                f"vs {fmt_int(prev, L)} in the 30 before"
            )
        return s

    # -- resale (business development)
    def resale(self, row: dict) -> list[str]:
        """Reasons to offer more to a healthy client: what runs, how results go."""
        L = self.language
        out: list[str] = []
        run = _f(row, "running")
        if not _isnan(run) and run > 0:
            if self.ru:
                k = fmt_int(run, L)
                out.append(
                    "работает единственная кампания: есть куда расти"
                    if run == 1
                    else f"работают {k} {plural_ru(run, ('кампания', 'кампании', 'кампаний'))}"
                    " — есть куда расти"
                )
            else:
                out.append(
                    "one campaign running: room to grow"
                    if run == 1
                    else f"{fmt_int(run, L)} campaigns running: room to grow"
                )
        now, prev = _f(row, "conv_now"), _f(row, "conv_prev")
        if not _isnan(now) and now > 0:
            a = fmt_num(now, L, decimals=0)
            if not _isnan(prev) and prev > 0 and now >= prev:
                b = fmt_num(prev, L, decimals=0)
                out.append(
                    f"конверсий за последние 30 дней: {a} (за предыдущие 30: {b})"
                    if self.ru
                    else f"{a} conversions in the last 30 days, up from {b}"
                )
            else:
                out.append(
                    f"конверсий за последние 30 дней: {a}"
                    if self.ru
                    else f"{a} conversions in the last 30 days"
                )
        return out
