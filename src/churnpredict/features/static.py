"""Static client columns as features: extra columns of ``clients`` named in the config.

``data.client_columns.numerics`` become ``profile__client_<col>`` (the value as given);
``data.client_columns.categories`` become one flag per value,
``profile__client_<col>_<value>``, for the ``top`` most frequent values in the training
data (resolved once and stored with the model, so scoring builds the same columns); a
client whose value is empty gets NaN in every flag of that column.

Point in time: ``clients`` holds one row per client and no history, so these columns
must be *static* — known from signup on and never updated (country, acquisition
channel, plan at signup, age at signup). A column that is overwritten as the
relationship goes on (current plan, status, "ended" flags) would leak the future into
past snapshots: do not declare such columns here.
"""

from __future__ import annotations

from typing import Any

from churnpredict.features.declarations import At, FeatureDecl, Static
from churnpredict.features.events import slug


def declare_static(static: dict[str, Any]) -> list[FeatureDecl]:
    """Declare the static client-column features of a resolved ``static`` spec."""
    out: list[FeatureDecl] = []
    for col in static.get("numerics", []):
        out.append(
            FeatureDecl(
                f"profile__client_{slug(col)}",
                "profile",
                f"client's {col}",
                "state",
                At(Static(col)),
                None,
                (),
                col,
                ("client_column",),
            )
        )
    for col, values in static.get("categories", {}).items():
        seen: set[str] = set()
        for v in values:
            name = f"profile__client_{slug(col)}_{slug(v)}"
            if name in seen:
                continue
            seen.add(name)
            out.append(
                FeatureDecl(
                    name,
                    "profile",
                    f"client's {col} is {v}",
                    "flag",
                    At(Static(col, "equals", v)),
                    None,
                    (v,),
                    col,
                    ("client_column",),
                )
            )
    return out
