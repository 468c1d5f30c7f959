"""The command line: one Typer app; each command loads the config, calls, summarizes.

Exit status (DATA_CONTRACT.md §4): 0 success; 2 bad usage, config or data; 3 no
model; 4 output locked by another run; 5 drift past the failure threshold; 6 the
tracking store cannot be reached or written; 1 any internal failure (with a one-line
summary; ``-v`` shows the traceback).
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from churnpredict import __version__
from churnpredict.errors import ChurnPredictError, UsageError

log = logging.getLogger("churnpredict")

app = typer.Typer(
    name="churnpredict",
    help="Predict which clients are about to freeze their projects, why, and who should call. "
    "Data contract: docs/DATA_CONTRACT.md; call-list columns: docs/call_list.md.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)
features_app = typer.Typer(
    help="List the features or build a feature table.", no_args_is_help=True
)
app.add_typer(features_app, name="features")

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="YAML config (default: the shipped default.yaml = configs/default.yaml).",
        dir_okay=False,
    ),
]
DataOpt = Annotated[
    Path,
    typer.Option("--data", "-d", help="Data directory (DATA_CONTRACT.md §1).", file_okay=False),
]


class Engine(StrEnum):
    local = "local"
    spark = "spark"


EngineOpt = Annotated[
    Engine,
    typer.Option(
        "--engine",
        help="local: the embedded engine (DuckDB); spark: Apache Spark "
        '(pip install "churnpredict[spark]"; the spark section of the config, docs/spark.md). '
        "--data may then be any Spark path (s3a://, abfss://, hdfs://).",
    ),
]


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "ts": datetime.fromtimestamp(record.created).isoformat(timespec="seconds"),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": record.getMessage(),
            },
            ensure_ascii=False,
        )


def _setup_logging(verbose: int, log_json: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _JsonFormatter() if log_json else logging.Formatter("%(levelname)s %(message)s")
    )
    root = logging.getLogger("churnpredict")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose > 0 else logging.INFO)
    root.propagate = False


_state = {"verbose": 0, "log_json": False}


def _error_line(
    command: str, kind: str, message: str, exit_code: int, *, internal: bool = False
) -> None:
    """Write the one error line on stderr: text, or a JSON object under ``--log-json``."""
    if _state["log_json"]:
        line = json.dumps(
            {
                "ts": datetime.now().isoformat(timespec="seconds"),
                "level": "error",
                "logger": "churnpredict",
                "command": command,
                "error": kind,
                "exit_code": exit_code,
                "message": message,
            },
            ensure_ascii=False,
        )
    else:
        label = "internal error" if internal else "error"
        line = f"churnpredict {command}: {label}: {message}"
    typer.echo(line, err=True)


def _handled(fn):
    """Turn expected failures into a message on stderr and their exit status."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        command = fn.__name__.rstrip("_").replace("_", " ")
        try:
            return fn(*args, **kwargs)
        except ChurnPredictError as err:
            _error_line(command, type(err).__name__, str(err), err.exit_code)
            raise typer.Exit(err.exit_code) from None
        except (typer.Exit, typer.Abort, SystemExit, KeyboardInterrupt):
            raise
        except Exception as err:  # an internal failure: one line for cron mail
            if _state["verbose"]:
                log.exception("internal error")
            _error_line(
                command,
                type(err).__name__,
                f"{type(err).__name__}: {err} (run with -v for the traceback)",
                1,
                internal=True,
            )
            raise typer.Exit(1) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"churnpredict {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logging.")] = 0,
    log_json: Annotated[
        bool, typer.Option("--log-json", help="Log JSON lines to stderr.")
    ] = False,
) -> None:
    """Churn prediction for service companies: train on activity logs, write call lists."""
    _state["verbose"] = verbose
    _state["log_json"] = log_json
    _setup_logging(verbose, log_json)


def _config(path: Path | None, data: Path | None = None):
    """Load the config and log which file (and data directory) this run uses."""
    from churnpredict.config import DEFAULT_CONFIG, load_config

    cfg = load_config(path)
    used = path if path is not None else DEFAULT_CONFIG
    log.info(
        "config: %s%s",
        Path(used).resolve(),
        "" if path is not None else " (the shipped default)",
    )
    if data is not None:
        log.info("data: %s", Path(data).resolve())
    return cfg


def _store(cfg, *, write: bool = False) -> str:
    """Check the tracking store within seconds (exit 6) and log which one is used.

    A reading command on a SQLite store that does not exist goes on: it checks its data
    first and then says "no model" (exit 3), without creating the store.
    """
    from churnpredict.tracking import check_store

    uri = check_store(cfg, write=write, missing_ok=not write)
    log.info("tracking store: %s", uri)
    return uri


# dates outside this range are typing mistakes (and outside what timestamps can hold)
MIN_DATE, MAX_DATE = date(1900, 1, 1), date(2199, 12, 31)


def _parse_date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option} must be a date YYYY-MM-DD, got {value!r}") from None
    if not MIN_DATE <= day <= MAX_DATE:
        raise UsageError(f"{option} {value} is out of range ({MIN_DATE} .. {MAX_DATE})")
    return day


# ---------------------------------------------------------------------------- simulate
@app.command()
@_handled
def simulate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write the world to.")],
    clients: Annotated[int | None, typer.Option(help="Number of clients.", min=1)] = None,
    days: Annotated[int | None, typer.Option(help="Days of history.", min=30)] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Write a synthetic ad-platform world (contract tables + truth.parquet)."""
    from churnpredict.config import override
    from churnpredict.simulate import simulate as run

    cfg = _config(config)
    sim = override(cfg, "simulate", clients=clients, days=days, seed=seed).simulate
    summary = run(sim, out, label_cfg=cfg.label)
    typer.echo(f"Simulated {sim.clients} clients × {sim.days} days (seed {sim.seed}) into {out}")
    for key, value in summary.items():
        typer.echo(f"  {key}: {value}")


# ---------------------------------------------------------------------------- validate
class Fmt(StrEnum):
    text = "text"
    json = "json"


@app.command()
@_handled
def validate(
    data: DataOpt,
    format: Annotated[Fmt, typer.Option("--format", help="Report format.")] = Fmt.text,
    strict: Annotated[
        bool | None, typer.Option("--strict/--lenient", help="Row-problem policy.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Check a data directory against the data contract (docs/DATA_CONTRACT.md); print a report."""
    from churnpredict.contract import validate as run

    cfg = _config(config, data)
    report = run(data, cfg, policy=None if strict is None else ("strict" if strict else "lenient"))
    if format == Fmt.json:
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False, default=str))
    else:
        typer.echo(report.render_text())
    raise typer.Exit(0 if report.usable else 2)


# ------------------------------------------------------------------------------- train
@app.command()
@_handled
def train(
    data: DataOpt,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of", help="Use data before this date (default: day after the last event)."
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict/--lenient", help="Stop on bad rows, or quarantine them.")
    ] = True,
    reports: Annotated[Path, typer.Option(help="Where the HTML report and plots go.")] = Path(
        "reports/train"
    ),
    engine: EngineOpt = Engine.local,
    config: ConfigOpt = None,
) -> None:
    """Build the training table, train, evaluate on later snapshots, register the model."""
    from churnpredict.io import check_output_path
    from churnpredict.pipeline import run_train

    cfg = _config(config, data)
    as_of_day = _parse_date(as_of, "--as-of")
    check_output_path(reports / "report.html", "--reports")
    _store(cfg, write=True)  # before the long work: exit 6 within seconds
    summary = run_train(
        data,
        cfg,
        as_of=as_of_day,
        policy="strict" if strict else "lenient",
        report_dir=reports,
        engine=engine.value,
    )
    typer.echo(summary)


@app.command()
@_handled
def backtest(
    data: DataOpt,
    strict: Annotated[bool, typer.Option("--strict/--lenient")] = True,
    reports: Annotated[Path, typer.Option(help="Where the report goes.")] = Path(
        "reports/backtest"
    ),
    config: ConfigOpt = None,
) -> None:
    """Rolling-origin backtest: per cut date and pooled, model vs baselines."""
    from churnpredict.pipeline import run_backtest

    cfg = _config(config, data)
    typer.echo(
        run_backtest(data, cfg, policy="strict" if strict else "lenient", report_dir=reports)
    )


# ------------------------------------------------------------------------------- score
class SortBy(StrEnum):
    risk = "risk"
    value = "value"
    urgency = "urgency"


class Segment(StrEnum):
    new = "new"


class SplitBy(StrEnum):
    account_manager = "account_manager"
    owner_role = "owner_role"


@app.command()
@_handled
def score(
    data: DataOpt,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Call list CSV to write.", dir_okay=False)
    ],
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Date to score, YYYY-MM-DD, or 'latest' (the day after the newest event). "
            "Default: today in calls.timezone.",
        ),
    ] = None,
    sort: Annotated[
        SortBy,
        typer.Option(
            help="Order by risk (30 days, within risk bands), by value at risk, or by "
            "urgency: the risk of a freeze within 7 days (risk_7d), most urgent first."
        ),
    ] = SortBy.risk,
    segment: Annotated[
        Segment | None,
        typer.Option(
            help="List only these clients. new: signed up at most calls.new_client_days "
            "(30) days before the as-of date."
        ),
    ] = None,
    top: Annotated[int | None, typer.Option(help="Keep only the first N rows.", min=1)] = None,
    split_by: Annotated[
        SplitBy | None, typer.Option("--split-by", help="Also write one file per owner.")
    ] = None,
    strict: Annotated[bool, typer.Option("--strict/--lenient")] = True,
    model_version: Annotated[
        str | None,
        typer.Option("--model-version", help="Score with this version, not the champion."),
    ] = None,
    allow_stale: Annotated[
        bool,
        typer.Option(
            "--allow-stale",
            help="Score even when a required table ends more than data.max_lag_days "
            "before the as-of date (otherwise exit 2).",
        ),
    ] = False,
    engine: EngineOpt = Engine.local,
    config: ConfigOpt = None,
) -> None:
    """Score every active client at a date with the champion model; write the call list.

    Also writes the digest (the same name with .html) for people. Columns, reasons,
    routing and capacity: docs/call_list.md.
    """
    from churnpredict.io import check_output_path
    from churnpredict.pipeline import run_score

    cfg = _config(config, data)
    day = as_of if as_of == "latest" else _parse_date(as_of, "--as-of")
    check_output_path(out, "--out")
    _store(cfg)  # before the lock and the data: exit 6 within seconds
    summary = run_score(
        data,
        cfg,
        as_of=day,
        out=out,
        sort=sort.value,
        top=top,
        split_by=split_by.value if split_by else None,
        policy="strict" if strict else "lenient",
        model_version=model_version,
        allow_stale=allow_stale,
        engine=engine.value,
        segment=segment.value if segment else None,
    )
    typer.echo(summary)


# ----------------------------------------------------------------------------- models
@app.command()
@_handled
def models(config: ConfigOpt = None) -> None:
    """List registered model versions with their aliases and metrics."""
    from churnpredict.tracking import list_models

    cfg = _config(config)
    _store(cfg)
    df = list_models(cfg)
    typer.echo("No registered models yet." if df.empty else df.to_string(index=False))


@app.command()
@_handled
def promote(
    version: Annotated[str, typer.Option("--version", help="Model version to make champion.")],
    config: ConfigOpt = None,
) -> None:
    """Make a model version the champion (used by `score`)."""
    from churnpredict.tracking import promote as run

    cfg = _config(config)
    _store(cfg)
    run(cfg, version)
    typer.echo(f"Version {version} of {cfg.tracking.model_name} is now @champion.")


@app.command()
@_handled
def outcomes(
    lists: Annotated[
        Path, typer.Option("--lists", help="Folder of past call lists.", file_okay=False)
    ],
    data: DataOpt,
    strict: Annotated[bool, typer.Option("--strict/--lenient")] = True,
    config: ConfigOpt = None,
) -> None:
    """Join past call lists with later freezes: realized precision, called vs held out."""
    from churnpredict.pipeline import run_outcomes

    cfg = _config(config, data)
    typer.echo(run_outcomes(lists, data, cfg, policy="strict" if strict else "lenient"))


# ---------------------------------------------------------------------------- features
@features_app.command("list")
@_handled
def features_list(
    data: Annotated[
        Path | None,
        typer.Option("--data", "-d", help="Resolve 'auto' slices from this data directory."),
    ] = None,
    markdown: Annotated[
        Path | None, typer.Option("--markdown", help="Also write the list as Markdown here.")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """List every feature: name, family, description."""
    from churnpredict.pipeline import feature_catalog

    cfg = _config(config)
    catalog = feature_catalog(cfg, data)
    for f in catalog:
        typer.echo(f"{f.name}\t{f.family}\t{f.description}")
    if markdown:
        from churnpredict.pipeline import write_feature_docs

        write_feature_docs(catalog, markdown, cfg)
        typer.echo(f"Wrote {len(catalog)} features to {markdown}", err=True)


@features_app.command("build")
@_handled
def features_build(
    data: DataOpt,
    as_of: Annotated[list[str], typer.Option("--as-of", help="As-of date(s); repeat the option.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Parquet file to write.", dir_okay=False)
    ],
    strict: Annotated[bool, typer.Option("--strict/--lenient")] = True,
    engine: EngineOpt = Engine.local,
    config: ConfigOpt = None,
) -> None:
    """Build the feature table for every active client at each as-of date (Parquet)."""
    from churnpredict.io import check_output_path
    from churnpredict.pipeline import run_features_build

    cfg = _config(config, data)
    dates = [_parse_date(d, "--as-of") for d in as_of]
    check_output_path(out, "--out")
    typer.echo(
        run_features_build(
            data,
            cfg,
            dates,
            out,
            policy="strict" if strict else "lenient",
            engine=engine.value,
        )
    )


def _terminate(signum: int, frame) -> None:
    """Turn SIGTERM into SystemExit, so that temporary files are removed, locks released
    and an MLflow run in progress is closed as failed (kill -9 cannot be caught: its
    temporary files are removed by the next successful write)."""
    raise SystemExit(128 + signum)


def main() -> None:
    """Entry point of the console script."""
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    app()
