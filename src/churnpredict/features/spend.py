"""Spend and results ratios on top of the generic ``spend`` source sums."""

from __future__ import annotations

from churnpredict.features.declarations import Div, Feat, FeatureDecl

_RATIOS = [
    ("cost_per_conversion", "spend", "conversions", "cost per conversion"),
    ("conversion_rate", "conversions", "clicks", "conversions per click"),
    ("ctr", "clicks", "impressions", "clicks per impression"),
]


def declare_ratios(source: str, numerics: list[str], windows: list[int]) -> list[FeatureDecl]:
    """Declare cost per conversion, conversion rate and click-through rate per window
    (ratios of the source's window sums; x / 0 is missing)."""
    have = set(numerics)
    out = []
    for what, num, den, desc in _RATIOS:
        if num not in have or den not in have:
            continue
        for w in windows:
            out.append(
                FeatureDecl(
                    f"{source}__{what}__{w}d",
                    source,
                    f"{desc} in the last {w} days",
                    "ratio",
                    Div(Feat(f"{source}__{num}__{w}d"), Feat(f"{source}__{den}__{w}d")),
                    w,
                    (),
                    what,
                    tags=(source, what),
                )
            )
    return out
