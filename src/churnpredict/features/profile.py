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
from churnpredict.features.events import slug

# manager changes: every assignment after the client's first
MANAGER_CHANGES = Source("manager_changes", "assignments", "from_date", after_first=True)


def declare_profile(
    segments: list[str],
    has_assignments: bool,
    windows: list[int],
    rfm_sources: list[str],
    rfm_monetary: str | None,
) -> tuple[list[FeatureDecl], list[list[FeatureDecl]]]:
    """Declare the profile family and the RFM scores .

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
