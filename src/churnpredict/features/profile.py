"""Profile and state at T: tenure, first month, segment, revenue, manager changes, RFM.

Profile columns come from the ``clients`` table as given (the current segment and
revenue). Manager changes come from ``assignments``: every row after a client's
first is a change, known at ``T`` when ``from_date < T``. RFM is computed per as-of
date across the active clients: recency = days since the client's last row in any
event source, frequency = rows in the longest window, monetary = the configured
numeric sum in that window; each is scored 1..5 by quintile (ties share a score), and the score is their
sum (3..15, higher = more engaged).
"""

from __future__ import annotations

from churnpredict.features.catalog import Feature
from churnpredict.features.declarations import (
    Add,
    Aggregation,
    At,
    Coalesce,
    DaysSince,
    Div,
    Feat,
    FeatureDecl,
    Min,
    Num,
    Quintile,
    Source,
    Static,
    Sub,
    window,
)
from churnpredict.features.engine import FeatureExpr, Measure, Stream
from churnpredict.features.events import Part, quote, slug

_MANAGER_SQL = """
SELECT client_id, from_date AS day FROM (
    SELECT client_id, from_date,
           row_number() OVER (PARTITION BY client_id ORDER BY from_date) AS rn
    FROM assignments WHERE from_date IS NOT NULL)
WHERE rn > 1
"""


def profile_part(
    segments: list[str],
    has_assignments: bool,
    windows: list[int],
    rfm_sources: list[str],
    rfm_monetary: str | None,
) -> Part:
    """Declare the profile family and the RFM scores.

    Parameters
    ----------
    segments : list of str
        Segment values to flag (resolved from the data at training time).
    has_assignments : bool
        Whether the ``assignments`` table exists.
    windows : list of int
        Feature windows; RFM uses the longest.
    rfm_sources : list of str
        Generic event sources whose ``<src>__events__*`` features feed recency/frequency.
    rfm_monetary : str or None
        A numeric window feature stem for monetary, e.g. ``spend__spend``.
    """
    part = Part()
    cols = [
        "(s.as_of - c.signup_date)::DOUBLE AS profile__tenure_days",
        "((s.as_of - c.signup_date) <= 30)::DOUBLE AS profile__first_month",
        "c.monthly_revenue::DOUBLE AS profile__monthly_revenue",
    ]
    feats = [
        Feature(
            "profile__tenure_days",
            "profile",
            "days since the client signed up",
            "state",
            None,
            (),
            "tenure_days",
        ),
        Feature(
            "profile__first_month",
            "profile",
            "client is in its first month",
            "flag",
            None,
            (),
            "first_month",
        ),
        Feature(
            "profile__monthly_revenue",
            "profile",
            "expected monthly revenue",
            "amount",
            None,
            (),
            "monthly_revenue",
        ),
    ]
    for seg in segments:
        name = f"profile__segment_{slug(seg)}"
        cols.append(f"(c.segment = {quote(seg)})::DOUBLE AS {name}")
        feats.append(
            Feature(
                name, "profile", f"client is in the {seg} segment", "flag", None, (seg,), "segment"
            )
        )
    part.extra_sql.append(
        (
            "SELECT s.rid, "
            + ", ".join(cols)
            + " FROM _spine s LEFT JOIN clients c USING (client_id)",
            feats,
        )
    )
    wmax = max(windows)
    if has_assignments:
        part.streams.append(
            Stream(
                "mgr",
                _MANAGER_SQL,
                measures=(Measure("n", "sum(n)"), Measure("last", "max(last_day)", "max")),
            )
        )
        part.features.append(
            (
                FeatureExpr("profile__days_since_manager_change", "as_of - o0_mgr__last"),
                Feature(
                    "profile__days_since_manager_change",
                    "profile",
                    "days since the account manager changed",
                    "days_since",
                    None,
                    (),
                    "days_since_manager_change",
                ),
            )
        )
        part.features.append(
            (
                FeatureExpr(f"profile__manager_changes__{wmax}d", f"o0_mgr__n - o{wmax}_mgr__n"),
                Feature(
                    f"profile__manager_changes__{wmax}d",
                    "profile",
                    f"account manager changes in the last {wmax} days",
                    "count",
                    wmax,
                    (),
                    "manager_changes",
                ),
            )
        )
    if rfm_sources:
        rec = "list_min([" + ", ".join(f'"{s}__events__days_since"' for s in rfm_sources) + "])"
        freq = " + ".join(f'COALESCE("{s}__events__{wmax}d", 0)' for s in rfm_sources)
        stage1 = [
            (
                FeatureExpr("profile__rfm_recency", rec),
                Feature(
                    "profile__rfm_recency",
                    "profile",
                    "days since the client's last activity of any kind",
                    "days_since",
                    None,
                    (),
                    "rfm_recency",
                ),
            ),
            (
                FeatureExpr(f"profile__rfm_frequency__{wmax}d", freq),
                Feature(
                    f"profile__rfm_frequency__{wmax}d",
                    "profile",
                    f"events of any kind in the last {wmax} days",
                    "count",
                    wmax,
                    (),
                    "rfm_frequency",
                ),
            ),
        ]
        for src in rfm_sources:
            since, total = f'"{src}__events__days_since"', f'"{src}__events__total"'
            gap = f"(profile__tenure_days - {since}) / NULLIF({total} - 1, 0)"
            stage1.append(
                (
                    FeatureExpr(f"profile__{src}_silence_ratio", f"{since} / NULLIF({gap}, 0)"),
                    Feature(
                        f"profile__{src}_silence_ratio",
                        "profile",
                        f"days since the last of {src} over the client's usual gap between "
                        "them (1 = as usual, 3 = three times longer than usual)",
                        "ratio",
                        None,
                        (),
                        "silence_ratio",
                    ),
                )
            )
        if rfm_monetary:
            stage1.append(
                (
                    FeatureExpr(
                        f"profile__rfm_monetary__{wmax}d",
                        f'COALESCE("{rfm_monetary}__{wmax}d", 0)',
                    ),
                    Feature(
                        f"profile__rfm_monetary__{wmax}d",
                        "profile",
                        f"money spent in the last {wmax} days",
                        "sum",
                        wmax,
                        (),
                        "rfm_monetary",
                    ),
                )
            )
        score = [
            "ceil(5 * cume_dist() OVER (PARTITION BY as_of "
            "ORDER BY COALESCE(profile__rfm_recency, 1e9) DESC))",
            f"ceil(5 * cume_dist() OVER (PARTITION BY as_of "
            f"ORDER BY profile__rfm_frequency__{wmax}d))",
        ]
        if rfm_monetary:
            score.append(
                f"ceil(5 * cume_dist() OVER (PARTITION BY as_of "
                f"ORDER BY profile__rfm_monetary__{wmax}d))"
            )
        stage2 = [
            (
                FeatureExpr("profile__rfm_score", " + ".join(score)),
                Feature(
                    "profile__rfm_score",
                    "profile",
                    "recency-frequency-monetary score (higher = more engaged)",
                    "state",
                    None,
                    (),
                    "rfm_score",
                ),
            ),
        ]
        part.post = [stage1, stage2]
    return part


# manager changes: every assignment after the client's first
MANAGER_CHANGES = Source("manager_changes", "assignments", "from_date", after_first=True)


def declare_profile(
    segments: list[str],
    has_assignments: bool,
    windows: list[int],
    rfm_sources: list[str],
    rfm_monetary: str | None,
) -> tuple[list[FeatureDecl], list[list[FeatureDecl]]]:
    """Declare the profile family and the RFM scores (parameters as :func:`profile_part`).

    Returns the features over the data and the stages of features over features (the
    RFM parts, then the score), which come after every other feature.
    """
    wmax = max(windows)

    def decl(name, value, desc, kind, column, window=None, slice_values=(), tags=()):
        return FeatureDecl(name, "profile", desc, kind, value, window, slice_values, column, tags)

    direct: list[FeatureDecl] = []
    if has_assignments:
        n = Aggregation(MANAGER_CHANGES, "count")
        direct.append(
            decl(
                "profile__days_since_manager_change",
                DaysSince(At(Aggregation(MANAGER_CHANGES, "last"))),
                "days since the account manager changed",
                "days_since",
                "days_since_manager_change",
                tags=("manager",),
            )
        )
        direct.append(
            decl(
                f"profile__manager_changes__{wmax}d",
                window(n, wmax),
                f"account manager changes in the last {wmax} days",
                "count",
                "manager_changes",
                wmax,
                tags=("manager",),
            )
        )
    direct += [
        decl(
            "profile__tenure_days",
            At(Static("signup_date", "days_since")),
            "days since the client signed up",
            "state",
            "tenure_days",
            tags=("tenure",),
        ),
        decl(
            "profile__first_month",
            At(Static("signup_date", "within", days=30)),
            "client is in its first month",
            "flag",
            "first_month",
            tags=("tenure", "new_client"),
        ),
        decl(
            "profile__monthly_revenue",
            At(Static("monthly_revenue")),
            "expected monthly revenue",
            "amount",
            "monthly_revenue",
            tags=("revenue",),
        ),
    ]
    for seg in segments:
        direct.append(
            decl(
                f"profile__segment_{slug(seg)}",
                At(Static("segment", "equals", seg)),
                f"client is in the {seg} segment",
                "flag",
                "segment",
                slice_values=(seg,),
                tags=("segment",),
            )
        )
    if not rfm_sources:
        return direct, []
    recency = "profile__rfm_recency"
    frequency = f"profile__rfm_frequency__{wmax}d"
    freq = None
    for src in rfm_sources:
        term = Coalesce(Feat(f"{src}__events__{wmax}d"), Num(0))
        freq = term if freq is None else Add(freq, term)
    stage1 = [
        decl(
            recency,
            Min(tuple(Feat(f"{s}__events__days_since") for s in rfm_sources)),
            "days since the client's last activity of any kind",
            "days_since",
            "rfm_recency",
            tags=("rfm",),
        ),
        decl(
            frequency,
            freq,
            f"events of any kind in the last {wmax} days",
            "count",
            "rfm_frequency",
            wmax,
            tags=("rfm",),
        ),
    ]
    for src in rfm_sources:
        since, total = Feat(f"{src}__events__days_since"), Feat(f"{src}__events__total")
        gap = Div(Sub(Feat("profile__tenure_days"), since), Sub(total, Num(1)))
        stage1.append(
            decl(
                f"profile__{src}_silence_ratio",
                Div(since, gap),
                f"days since the last of {src} over the client's usual gap between "
                "them (1 = as usual, 3 = three times longer than usual)",
                "ratio",
                "silence_ratio",
                tags=("silence", src),
            )
        )
    score = Add(Quintile(Feat(recency), descending=True, missing=1e9), Quintile(Feat(frequency)))
    if rfm_monetary:
        monetary = f"profile__rfm_monetary__{wmax}d"
        stage1.append(
            decl(
                monetary,
                Coalesce(Feat(f"{rfm_monetary}__{wmax}d"), Num(0)),
                f"money spent in the last {wmax} days",
                "sum",
                "rfm_monetary",
                wmax,
                tags=("rfm",),
            )
        )
        score = Add(score, Quintile(Feat(monetary)))
    stage2 = [
        decl(
            "profile__rfm_score",
            score,
            "recency-frequency-monetary score (higher = more engaged)",
            "state",
            "rfm_score",
            tags=("rfm",),
        )
    ]
    return direct, [stage1, stage2]
