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

from churnpredict.errors import DataError
from churnpredict.features.catalog import Feature
from churnpredict.features.declarations import At, FeatureDecl, Static
from churnpredict.features.events import Part, ident, quote, slug


def resolve_static(con, cfg) -> dict[str, Any] | None:
    """Return the static-column spec ``{"numerics": [...], "categories": {col: [values]}}``.

    Category values are the ``top`` most frequent non-empty values in ``clients``
    (ties by value). Returns None when the config declares no client columns.
    """
    cc = cfg.data.client_columns
    if not cc.numerics and not cc.categories:
        return None
    have = {r[0] for r in con.execute("DESCRIBE clients").fetchall()}
    missing = [c for c in [*cc.numerics, *cc.categories] if c not in have]
    if missing:
        raise DataError(
            f"data.client_columns names columns that clients lacks: {', '.join(missing)}",
            file="clients",
            column=missing[0],
            expected="columns of the clients file (a derived clients table has none)",
        )
    cats: dict[str, list[str]] = {}
    for col in cc.categories:
        rows = con.execute(
            f"SELECT CAST({ident(col)} AS VARCHAR) AS v, count(*) AS n FROM clients "
            f"WHERE {ident(col)} IS NOT NULL GROUP BY 1 ORDER BY n DESC, v LIMIT {int(cc.top)}"
        ).fetchall()
        cats[col] = [str(r[0]) for r in rows]
    return {"numerics": list(cc.numerics), "categories": cats}


def static_part(static: dict[str, Any]) -> Part:
    """Declare the static client-column features of a resolved ``static`` spec."""
    cols: list[str] = []
    feats: list[Feature] = []
    for col in static.get("numerics", []):
        name = f"profile__client_{slug(col)}"
        cols.append(f"CAST(c.{ident(col)} AS DOUBLE) AS {ident(name)}")
        feats.append(Feature(name, "profile", f"client's {col}", "state", None, (), col))
    for col, values in static.get("categories", {}).items():
        seen: set[str] = set()
        for v in values:
            name = f"profile__client_{slug(col)}_{slug(v)}"
            if name in seen:
                continue
            seen.add(name)
            cols.append(
                f"CASE WHEN c.{ident(col)} IS NULL THEN NULL "
                f"ELSE (CAST(c.{ident(col)} AS VARCHAR) = {quote(v)})::DOUBLE END "
                f"AS {ident(name)}"
            )
            feats.append(
                Feature(name, "profile", f"client's {col} is {v}", "flag", None, (v,), col)
            )
    part = Part()
    if cols:
        part.extra_sql.append(
            (
                "SELECT s.rid, " + ", ".join(cols) + " FROM _spine s LEFT JOIN clients c "
                "USING (client_id)",
                feats,
            )
        )
    return part


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
