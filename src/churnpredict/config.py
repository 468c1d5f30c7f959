"""The configuration: frozen pydantic models loaded from YAML.

Priority, highest first: CLI flags (applied by the CLI through :func:`override`),
environment variables ``CHURNPREDICT_<SECTION>__<KEY>`` (e.g.
``CHURNPREDICT_LABEL__HORIZON_DAYS=60``), the YAML file, the defaults below.
Every model forbids unknown keys, so a typo is an error that names the key.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from churnpredict.errors import ConfigError

# the shipped default configuration (package data; configs/default.yaml in the repository
# is the same file, kept equal by a test): it applies wherever the command is run from
DEFAULT_CONFIG = Path(__file__).with_name("default.yaml")
ENV_PREFIX = "CHURNPREDICT_"


class Section(BaseModel):
    """Base for every config section: frozen, no unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# ----------------------------------------------------------------------------- data
class EventTableConfig(Section):
    """A bring-your-own event table (entity key, timestamp, categories, numerics)."""

    path: str | None = None  # file or folder inside the data dir; default: the table's name
    key: str = "client_id"
    ts: str = "ts"
    categories: list[str] = []
    numerics: list[str] = []

    @field_validator("path")
    @classmethod
    def _inside_data_dir(cls, v: str | None) -> str | None:
        if v is not None and (
            not v.strip() or Path(v).is_absolute() or ".." in Path(v).parts or ":" in v
        ):
            raise ValueError(
                f"must be a file or folder inside the data directory (relative, no '..'), "
                f"got {v!r}"
            )
        return v


class ClientColumnsConfig(Section):
    """Extra columns of ``clients`` that become features (static: one value per client)."""

    numerics: list[str] = []
    categories: list[str] = []
    top: int = Field(default=10, ge=1)  # category values flagged (most frequent in training)


class DataConfig(Section):
    required_tables: list[str] = ["clients", "campaign_events", "invoices", "contacts"]
    derive_clients_from: str | None = None  # build `clients` from first event of this table
    event_tables: dict[str, EventTableConfig] = {}
    # table -> column that tells distinct events apart (kept through de-duplication)
    event_ids: dict[str, str] = {}
    client_columns: ClientColumnsConfig = ClientColumnsConfig()
    csv_separator: Literal["auto", ",", ";", "\t", "|"] = "auto"
    policy: Literal["strict", "lenient"] = "strict"
    future_tolerance_days: int = Field(default=366, ge=0)
    # a table whose first row is this close to the data's first row covers from there
    coverage_slack_days: int = Field(default=30, ge=0)
    # score refuses data whose required tables end more than this before the as-of date
    max_lag_days: int = Field(default=3, ge=0)

    @model_validator(mode="after")
    def _client_columns_disjoint(self) -> DataConfig:
        both = set(self.client_columns.numerics) & set(self.client_columns.categories)
        if both:
            raise ValueError(f"client_columns: {sorted(both)} declared both numeric and category")
        return self


# ---------------------------------------------------------------------------- label
class EndConfig(Section):
    """Where a relationship's end (without a freeze) is recorded: a column or a table."""

    column: str | None = None  # a date/timestamp column of `clients`, e.g. ended_at
    table: str | None = None  # a declared event table: ended at the client's first row

    @model_validator(mode="after")
    def _one_source(self) -> EndConfig:
        if self.column and self.table:
            raise ValueError("label.ended: give either column or table, not both")
        return self


class LabelConfig(Section):
    rule: Literal["auto", "freezes", "idle"] = "auto"
    idle_source: str = "campaigns"  # "campaigns" (no running campaign) or an event table name
    idle_days: int = Field(default=14, ge=1)
    horizon_days: int = Field(default=30, ge=1)
    # The time-to-freeze curve runs to this many days (risk_90d, expected_active_days).
    max_horizon_days: int = Field(default=90, ge=1)
    ended: EndConfig = EndConfig()

    @model_validator(mode="after")
    def _max_horizon(self) -> LabelConfig:
        if self.max_horizon_days < max(self.horizon_days, 7):
            raise ValueError(
                f"max_horizon_days ({self.max_horizon_days}) must be at least horizon_days "
                f"({self.horizon_days}) and 7 (risk_7d)"
            )
        return self


class SnapshotConfig(Section):
    every_days: int = Field(default=7, ge=1)
    warmup_days: int = Field(default=60, ge=0)  # first as-of this many days after coverage
    # tables whose coverage must have begun (plus warmup) before the first snapshot:
    # "auto" = every table the features and the label read
    wait_for: Literal["auto"] | list[str] = "auto"


# ------------------------------------------------------------------------- features
class SliceConfig(Section):
    """Counts per value combination of ``by`` columns (``values: auto`` = most frequent)."""

    by: list[str]
    values: list[list[str]] | Literal["auto"] = "auto"
    top: int = Field(default=10, ge=1)


class SourceConfig(Section):
    """A generic event source: counts, sums, recency and trend per slice and window."""

    table: str
    ts: str = "ts"
    noun: str = "events"  # used in descriptions: "paused campaign events in the last 7 days"
    slices: list[SliceConfig] = []
    numerics: list[str] = []
    recency: bool = True
    trend: bool = True


class FeaturesConfig(Section):
    windows: list[int] = [7, 30, 90]
    trend_windows: list[int] = [30]
    sources: dict[str, SourceConfig] = {}
    rfm_monetary: str | None = "spend.spend"  # <source>.<numeric column> for RFM monetary
    campaign_state: bool = True
    invoice_state: bool = True
    profile: bool = True

    @field_validator("windows")
    @classmethod
    def _windows_positive(cls, v: list[int]) -> list[int]:
        if not v or any(w <= 0 for w in v):
            raise ValueError("windows must be a non-empty list of positive day counts")
        return sorted(set(v))


# ---------------------------------------------------------------------------- model
class ModelConfig(Section):
    seed: int = 42
    learning_rate: float = Field(default=0.1, gt=0)
    n_estimators: int = Field(default=1000, ge=1)
    num_leaves: int = Field(default=31, ge=2)
    min_child_samples: int = Field(default=100, ge=1)
    subsample: float = Field(default=0.8, gt=0, le=1)
    colsample_bytree: float = Field(default=0.5, gt=0, le=1)
    reg_lambda: float = Field(default=1.0, ge=0)
    early_stopping_rounds: int = Field(default=30, ge=1)
    # Metric early stopping watches on the validation fold: a ranking metric, so that a
    # base rate that differs between folds does not pick the number of trees.
    early_stopping_metric: Literal["average_precision", "auc", "binary_logloss"] = (
        "average_precision"
    )
    # Serve a fresh model: after the evaluation, refit on every labelled snapshot (trees =
    # the early-stopping choice scaled by the rows, at most refit_max_scale times it).
    refit: bool = True
    refit_max_scale: float = Field(default=1.5, ge=1)
    n_jobs: int = 2
    calibration: Literal["isotonic", "sigmoid"] = "isotonic"
    class_weight: Literal["none", "balanced"] = "none"
    validation_days: int = Field(default=56, ge=7)  # as-of dates held out for early stopping
    calibration_days: int = Field(default=56, ge=7)  # later as-of dates for calibration
    test_days: int = Field(default=56, ge=7)  # latest as-of dates, for the reported metrics
    # Days between the last fit as-of date and the first later one; null = label horizon.
    gap_days: int | None = Field(default=None, ge=0)
    # Keep this share of the fit fold's negatives (calibration on the untouched later
    # fold undoes the shift), and at most max_fit_rows fit rows in all (null = no cap).
    negative_sample_rate: float = Field(default=0.5, gt=0, le=1)
    max_fit_rows: int | None = Field(default=400_000, ge=1000)
    max_bin: int = Field(default=127, ge=15, le=255)
    # Time to freeze (modeling/survival.py): the discrete-time hazard model's day bins
    # (inner edges; 7, label.horizon_days and label.max_horizon_days are always edges), the
    # share of its no-freeze rows kept, and how many features it reads (the classifier's
    # strongest by gain).
    survival_bins: list[int] = [7, 14, 30, 60]
    survival_negative_rate: float = Field(default=0.05, gt=0, le=1)
    survival_features: int = Field(default=32, ge=1)
    # A separate, smaller booster for the bins after label.horizon_days (own early
    # stopping): its leaves and the fewest rows per leaf.
    survival_long_booster: bool = True
    survival_long_num_leaves: int = Field(default=7, ge=2)
    survival_long_min_child_samples: int = Field(default=400, ge=1)


class BacktestConfig(Section):
    cuts: int = Field(default=3, ge=1)
    cut_every_days: int = Field(default=56, ge=7)
    test_days: int = Field(default=56, ge=7)


class EvaluationConfig(Section):
    calls_per_day: int = Field(default=100, ge=1)  # capacity = calls_per_day × capacity_days
    capacity_days: int = Field(default=1, ge=1)
    top_pct: float | None = Field(default=None, gt=0, le=1)  # overrides capacity when set
    lift_pct: float = Field(default=0.1, gt=0, le=1)  # lift at this top share per as-of date
    ece_bins: int = Field(default=10, ge=2)  # equal-mass bins for the calibration error
    baselines: list[Literal["paused_rule", "rfm", "recency", "logistic", "bgnbd"]] = [
        "paused_rule",
        "rfm",
        "recency",
        "logistic",
        "bgnbd",
    ]
    logistic_max_rows: int = Field(default=100_000, ge=100)  # fit-row subsample for the LR
    shap_sample_rows: int = Field(default=2000, ge=10)  # test rows for mean |SHAP| in the report


# ---------------------------------------------------------------------------- calls
class RiskBands(Section):
    high: float = Field(default=0.3, ge=0, le=1)
    medium: float = Field(default=0.1, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> RiskBands:
        if self.medium > self.high:
            raise ValueError("risk_bands.medium must not exceed risk_bands.high")
        return self


class DriftConfig(Section):
    psi_warn: float = Field(default=0.1, ge=0)
    psi_fail: float = Field(default=0.5, ge=0)
    fail_min_features: int = Field(default=3, ge=1)
    action: Literal["warn", "fail"] = "warn"


class NounConfig(Section):
    """What one event of a declared table is called in reasons (``calls.nouns``).

    ``en``: singular and plural, e.g. ``[purchase, purchases]``; ``ru``: the three
    Russian forms for 1, 2 and 5, e.g. ``[покупка, покупки, покупок]``.
    """

    en: tuple[str, str]
    ru: tuple[str, str, str] | None = None  # forms for 1, 2 and 5
    ru_plural: str | None = None  # the label form, e.g. «покупки»; default: the form for 2


CALL_ROLES = ("account_manager", "receivables", "business_development", "technical")


class CallsConfig(Section):
    language: Literal["en", "ru"] = "en"
    separator: str | None = None  # None: "," in English, ";" with language ru
    decimal: Literal[".", ","] | None = None  # None: "." in English, "," with language ru
    bom: bool = True
    timezone: str = "UTC"
    top_reasons: int = Field(default=3, ge=1)
    min_contribution: float = Field(default=0.05, ge=0)  # weaker reasons are not shown
    lookback_days: int | None = Field(default=None, ge=1)  # None: the longest feature window
    risk_bands: RiskBands = RiskBands()
    calls_per_owner_per_day: int = Field(default=15, ge=0)  # per account manager
    calls_per_day: dict[str, int] = {  # shared roles without a staff table
        "receivables": 60,
        "technical": 20,
        "business_development": 20,
    }
    min_risk: float = Field(default=0.05, ge=0, le=1)  # never in capacity below this risk
    recently_reached_days: int = Field(default=7, ge=0)
    hold_out_share: float = Field(default=0.0, ge=0, lt=1)
    hold_out_seed: int = 7
    sort: Literal["risk", "value", "urgency"] = "risk"
    new_client_days: int = Field(default=30, ge=1)  # `score --segment new`: tenure <= this
    change_min_delta: float = Field(default=0.05, ge=0, le=1)
    narrow_feature: str = "campaigns__n_campaigns__now"
    narrow_max: float = Field(default=1, ge=0)
    reached_feature: str = "contacts__call_outbound_reached__days_since"
    money_reasons: list[str] = ["low_balance", "payment", "non_payment", "unpaid", "balance"]
    technical_days: int = Field(default=14, ge=0)  # a technical request this recent
    complaint_days: int = Field(default=30, ge=0)  # no resale within this after a complaint
    # contacts.topic values that are a technical request / a complaint (exports in codes)
    technical_topics: list[str] = ["technical"]
    complaint_topics: list[str] = ["complaint"]
    currency: str = ""  # shown with revenue in the digest, e.g. "EUR" or "₽"
    digest: bool = True  # write <list>.html (the morning digest) next to the CSV
    nouns: dict[str, NounConfig] = {}

    @field_validator("calls_per_day")
    @classmethod
    def _roles_known(cls, v: dict[str, int]) -> dict[str, int]:
        for role, n in v.items():
            if role not in CALL_ROLES or role == "account_manager":
                raise ValueError(
                    f"calls_per_day: unknown shared role {role!r} (use receivables, technical "
                    "or business_development; account managers use calls_per_owner_per_day)"
                )
            if n < 0:
                raise ValueError(f"calls_per_day.{role} must be >= 0, got {n}")
        return v

    @property
    def sep(self) -> str:
        """The CSV separator in force (``;`` by default in Russian)."""
        if self.separator is not None:
            return self.separator
        return ";" if self.language == "ru" else ","

    @property
    def decimal_mark(self) -> str:
        """The decimal mark in force (``,`` by default in Russian)."""
        if self.decimal is not None:
            return self.decimal
        return "," if self.language == "ru" else "."

    drift: DriftConfig = DriftConfig()


# ------------------------------------------------------------------------- tracking
class TrackingConfig(Section):
    uri: str | None = None  # default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in cwd
    experiment: str = "churnpredict"
    model_name: str = "churnpredict"


# ---------------------------------------------------------------------------- spark
class SparkConfig(Section):
    """The Spark session of ``--engine spark`` (docs/spark.md)."""

    master: str | None = "local[2]"  # null: whatever spark-submit / the cluster set
    app_name: str = "churnpredict"
    driver_memory: str | None = "2g"  # only when this process starts the JVM
    executor_memory: str | None = None
    shuffle_partitions: int = Field(4, ge=1)
    conf: dict[str, str] = {}  # any other spark.* setting, e.g. s3a credentials provider


# ------------------------------------------------------------------------- simulate
class SegmentParams(Section):
    """One client segment of the synthetic world."""

    share: float = Field(gt=0)  # relative share of new clients
    daily_budget: float = Field(gt=0)  # median daily budget per campaign
    monthly_revenue: float = Field(gt=0)  # median expected revenue per month
    campaigns_mean: float = Field(ge=0)  # campaigns at signup = 1 + Poisson(campaigns_mean)
    hazard_offset: float = 0.0  # added to the log-hazard of deciding to leave
    call_factor: float = Field(default=1.0, gt=0)  # scales the manager's call rate


class SimSignupParams(Section):
    """Signups: when clients arrive, their segments, names and first campaigns."""

    initial_share: float = Field(default=0.4, ge=0, le=1)  # signed up on day 0
    segments: dict[str, SegmentParams] = {
        "low-cost": SegmentParams(
            share=0.55,
            daily_budget=15,
            monthly_revenue=400,
            campaigns_mean=0.3,
            hazard_offset=0.3,
            call_factor=0.6,
        ),
        "smb": SegmentParams(
            share=0.35,
            daily_budget=60,
            monthly_revenue=1800,
            campaigns_mean=1.2,
            hazard_offset=0.0,
            call_factor=1.0,
        ),
        "key": SegmentParams(
            share=0.10,
            daily_budget=300,
            monthly_revenue=9000,
            campaigns_mean=3.0,
            hazard_offset=-0.4,
            call_factor=2.5,
        ),
    }
    max_campaigns: int = Field(default=8, ge=1)
    cyrillic_share: float = Field(default=0.35, ge=0, le=1)  # names like «ООО Ромашка»
    never_start_share: float = Field(default=0.03, ge=0, le=1)  # sign up, never start
    max_start_delay_days: int = Field(default=5, ge=0)  # first start within this many days


class SimManagerParams(Section):
    """Account managers: ownership, departures and their effect on clients."""

    clients_per_manager: int = Field(default=150, ge=1)
    departures_per_year: float = Field(default=0.35, ge=0)  # per manager seat
    calls_per_client_month: float = Field(default=1.2, ge=0)  # mean outbound call rate
    diligence_sd: float = Field(default=0.8, ge=0)  # log-sd of call rates between managers
    emails_per_client_month: float = Field(default=0.8, ge=0)
    sat_drop: float = Field(default=0.4, ge=0)  # satisfaction lost at a manager change
    hazard_boost: float = Field(default=1.2, ge=0)  # log-hazard bump right after a change
    boost_days: float = Field(default=45.0, gt=0)  # e-folding time of that bump


class SimSatisfactionParams(Section):
    """Hidden satisfaction: an AR(1) walk towards a client-specific level."""

    reversion: float = Field(default=0.03, gt=0, lt=1)  # daily pull towards the level
    noise_sd: float = Field(default=0.06, ge=0)  # daily Gaussian noise
    init_sd: float = Field(default=0.5, ge=0)  # start = level + N(0, init_sd)
    results_sd: float = Field(default=0.6, ge=0)  # spread of hidden results quality
    results_weight: float = 0.6  # level += results_weight × results quality
    breadth_weight: float = 0.4  # level += breadth_weight × log(campaigns)
    reached_call_gain: float = Field(default=0.5, ge=0)  # jump after a reached call
    incident_rate: float = Field(default=0.01, ge=0, le=1)  # daily chance of a bad incident
    incident_loss: float = Field(default=0.25, ge=0)  # jump down at an incident


class SimChurnParams(Section):
    """Deciding to leave, being rescued by a call, and coming back."""

    base_log_hazard: float = -6.7  # daily log-hazard at satisfaction 0
    sat_slope: float = Field(default=1.6, ge=0)  # log-hazard falls by this per unit of sat
    newcomer_boost: float = Field(default=1.0, ge=0)  # log-hazard bump in the first days
    newcomer_days: int = Field(default=30, ge=0)
    results_reason_share: float = Field(default=0.6, ge=0, le=1)  # else reason `budget`
    paused_call_rate: float = Field(default=0.08, ge=0, le=1)  # extra daily call chance
    rescue_prob: float = Field(default=0.55, ge=0, le=1)  # reached call during idle -> resume
    comeback_rate: float = Field(default=0.003, ge=0, le=1)  # daily chance a frozen client returns


class SimPauseParams(Section):
    """Harmless pauses (season, budget) that end before the idle rule bites."""

    client_rate: float = Field(default=0.0028, ge=0, le=1)  # daily chance, client-initiated
    manager_rate: float = Field(default=0.0008, ge=0, le=1)  # daily chance, manager-initiated
    partial_share: float = Field(default=0.4, ge=0, le=1)  # pause one campaign, not all
    season_share: float = Field(default=0.5, ge=0, le=1)  # reason `season` (else `budget`)
    season_amplitude: float = Field(default=0.6, ge=0, le=1)  # seasonal swing of season pauses
    season_peak_doy: int = Field(default=200, ge=1, le=366)  # day of year of the peak
    min_days: int = Field(default=1, ge=1)  # shortest pause; longest = idle_days - 1
    budget_change_rate: float = Field(default=0.01, ge=0, le=1)  # daily budget_changed chance
    stop_rate: float = Field(default=0.0004, ge=0, le=1)  # daily chance to stop one of 2+


class SimBillingParams(Section):
    """Prepaid monthly invoices, late and missing payments, system pauses."""

    every_days: int = Field(default=30, ge=1)
    due_days: int = Field(default=7, ge=0)
    grace_days: int = Field(default=3, ge=0)  # overdue this long -> system pause
    bad_payer_share: float = Field(default=0.12, ge=0, le=1)
    late_prob_good: float = Field(default=0.05, ge=0, le=1)
    late_prob_bad: float = Field(default=0.35, ge=0, le=1)
    never_prob_good: float = Field(default=0.001, ge=0, le=1)
    never_prob_bad: float = Field(default=0.03, ge=0, le=1)
    late_mean_days: float = Field(default=6.0, ge=1)  # days after due, geometric
    receivables_staff: int = Field(default=3, ge=1)


class SimContactParams(Section):
    """Contacts besides the managers' calls: tickets, complaints, sales, meetings."""

    reach_prob: float = Field(default=0.6, ge=0, le=1)  # outbound call -> reached
    ticket_prob: float = Field(default=0.6, ge=0, le=1)  # incident -> technical ticket
    ticket_rate: float = Field(default=0.004, ge=0, le=1)  # other technical questions
    complaint_rate: float = Field(default=0.002, ge=0, le=1)  # daily at satisfaction 0
    complaint_sat_slope: float = Field(default=2.0, ge=0)  # unhappy clients complain more
    sales_rate: float = Field(default=0.004, ge=0, le=1)  # business development calls
    resale_prob: float = Field(default=0.2, ge=0, le=1)  # a reached sales call adds a campaign
    meeting_rate_key: float = Field(default=0.01, ge=0, le=1)  # meetings with key clients


class SimUsageParams(Section):
    """Daily spend results and product activity."""

    cpm: float = Field(default=2.0, gt=0)  # cost per 1000 impressions
    ctr: float = Field(default=0.02, gt=0, lt=1)
    conversion_rate: float = Field(default=0.04, gt=0, lt=1)
    login_rate: float = Field(default=0.25, ge=0)  # per day when engaged
    report_rate: float = Field(default=0.1, ge=0)
    settings_rate: float = Field(default=0.03, ge=0)


class SimulateConfig(Section):
    """The synthetic ad-platform world (see :mod:`churnpredict.simulate`)."""

    clients: int = Field(default=20000, ge=1)
    days: int = Field(default=730, ge=30)
    seed: int = 42
    start_date: date = date(2024, 1, 1)
    signup: SimSignupParams = SimSignupParams()
    managers: SimManagerParams = SimManagerParams()
    satisfaction: SimSatisfactionParams = SimSatisfactionParams()
    churn: SimChurnParams = SimChurnParams()
    pauses: SimPauseParams = SimPauseParams()
    billing: SimBillingParams = SimBillingParams()
    contacts: SimContactParams = SimContactParams()
    usage: SimUsageParams = SimUsageParams()


# --------------------------------------------------------------------------- root
class Config(Section):
    data: DataConfig = DataConfig()
    label: LabelConfig = LabelConfig()
    snapshots: SnapshotConfig = SnapshotConfig()
    features: FeaturesConfig = FeaturesConfig()
    model: ModelConfig = ModelConfig()
    backtest: BacktestConfig = BacktestConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    calls: CallsConfig = CallsConfig()
    tracking: TrackingConfig = TrackingConfig()
    spark: SparkConfig = SparkConfig()
    simulate: SimulateConfig = SimulateConfig()

    def fingerprint(self) -> str:
        """Return a short, stable hash of the resolved config."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    """Turn ``CHURNPREDICT_SECTION__KEY=value`` into a nested dict (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = _yaml(raw)
    return out


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"Bad config in {source}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            lines.append(f"  - unknown key '{key}' (check the spelling; see configs/default.yaml)")
        else:
            lines.append(f"  - key '{key}': {e['msg']} (got {e.get('input')!r})")
    return "\n".join(lines)


def build_config(raw: dict[str, Any], source: str = "config") -> Config:
    """Validate a raw mapping into a :class:`Config`, raising :class:`ConfigError`."""
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, source)) from None


# libyaml's safe loader when PyYAML was built with it (the wheels are): the same
# documents as yaml.SafeLoader, parsed ~10x faster (the default config: 0.07 s in Python)
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _yaml(text: str) -> Any:
    """``yaml.safe_load`` with libyaml's parser when available."""
    return yaml.load(text, Loader=_SAFE_LOADER)


def _with_shipped_sources(raw: dict[str, Any], path: Path) -> dict[str, Any]:
    """Give a config file that does not name ``features.sources`` the shipped sources.

    The built-in default of ``features.sources`` is empty (no sliced event features), so
    a short file such as ``features: {windows: [14, 45]}`` would silently train without
    the contacts, spend, activity and campaign-event features of ``default.yaml``. A
    file that names ``sources`` (``sources: {}`` included) keeps exactly what it names.
    """
    feats = raw.get("features")
    if Path(path).resolve() == DEFAULT_CONFIG.resolve():
        return raw
    if feats is not None and (not isinstance(feats, dict) or "sources" in feats):
        return raw
    shipped = _yaml(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    sources = shipped["features"]["sources"]
    return {**raw, "features": {**(feats or {}), "sources": sources}}


def load_config(path: Path | None = None, *, environ: dict[str, str] | None = None) -> Config:
    """Load the YAML config at ``path`` (default: the shipped ``default.yaml``).

    Parameters
    ----------
    path : Path, optional
        The YAML file. When omitted, the package's ``default.yaml`` (the same file as
        ``configs/default.yaml`` in the repository) applies, wherever the command runs.
    environ : dict, optional
        Environment to read ``CHURNPREDICT_*`` overrides from (default ``os.environ``).
    """
    raw: dict[str, Any] = {}
    if path is None:
        path = DEFAULT_CONFIG
    if path is not None:
        source = str(path)
        if not path.exists():
            raise ConfigError(f"Config file not found: {path}")
        try:
            loaded = _yaml(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise ConfigError(f"Config file {path} is not valid YAML: {err}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"Config file {path} must be a mapping of sections at the top level")
        raw = _with_shipped_sources(loaded, path)
    env = _env_overrides(dict(os.environ if environ is None else environ))
    if env:
        raw = _deep_merge(raw, env)
        source += " + CHURNPREDICT_* environment"
    return build_config(raw, source)


def override(cfg: Config, section: str, **values: Any) -> Config:
    """Return a copy of ``cfg`` with ``values`` set in ``section`` (``None`` values skipped)."""
    values = {k: v for k, v in values.items() if v is not None}
    if not values:
        return cfg
    raw = cfg.model_dump(mode="json")
    raw[section] = _deep_merge(raw[section], values)
    return build_config(raw, f"command-line options for {section}")
