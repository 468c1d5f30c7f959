"""Neutral data access: the contract tables on the local engine (DuckDB) or on Spark.

The stages (labels, the spine, facts, the call list's client columns) ask this module
for data instead of a raw connection, and pass what they computed to the next stage
explicitly (no scratch table is left in a connection for a later stage to find):

- :func:`load` reads and validates a data directory on either engine and returns a
  data set: :class:`churnpredict.contract.Dataset` (DuckDB) or :class:`SparkDataset`.
- :func:`frame` runs one query over the data set's tables (and ``views`` the caller
  passes, e.g. the freezes) and returns an engine frame: a ``pyarrow.Table`` locally,
  a lazy Spark ``DataFrame`` on Spark. :func:`query` returns a pandas frame.

Queries are written once, in DuckDB's SQL dialect; on Spark they are transpiled by
sqlglot (table names mapped to this data set's views). On Spark the data is read from
any path Spark reads (local, ``s3a://``, ``abfss://``, ``hdfs://``, ``dbfs:/``), and
the checks that need the whole table — required tables and columns, types, empty
required values, allowed values, ranges, unique ids, unknown clients, order of dates,
far-future times — run on Spark with the same rules (:mod:`churnpredict.validation`)
and raise the same :class:`DataError` (exit 2) as the local engine.
"""

from __future__ import annotations

import itertools
import logging
import warnings
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import duckdb
import pandas as pd
import pyarrow as pa

from churnpredict.config import Config
from churnpredict.errors import DataError, UsageError
from churnpredict.validation import (
    ERROR,
    Problem,
    TableReport,
    ValidationReport,
    lit,
    q,
    render_example,
    row_rules,
)

log = logging.getLogger("churnpredict.data")

ENGINES = ("local", "spark")


def engine_of(ds) -> str:
    """Return ``"spark"`` for a :class:`SparkDataset`, else ``"local"``."""
    return "spark" if isinstance(ds, SparkDataset) else "local"


def check_engine(engine: str) -> str:
    """Return ``engine`` if known (``local`` or ``spark``), else raise UsageError."""
    if engine not in ENGINES:
        raise UsageError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    return engine


# --------------------------------------------------------------------------- data sets
@dataclass
class SparkDataset:
    """Typed, validated contract tables as Spark DataFrames (cached on the cluster).

    The attributes other than ``spark`` and ``tables`` mean what they mean on
    :class:`churnpredict.contract.Dataset`.
    """

    spark: Any
    tables: dict[str, Any]
    data_dir: str
    present: set[str]
    files: dict[str, str]
    data_end: pd.Timestamp
    data_start: pd.Timestamp
    report: ValidationReport
    coverage: dict[str, tuple[pd.Timestamp, pd.Timestamp]] = field(default_factory=dict)
    views: dict[str, str] = field(default_factory=dict)  # table -> temp view name
    _con: Any = field(default=None, repr=False)

    @property
    def con(self) -> SparkSQL:
        """A DuckDB-connection look-alike for read queries (see :class:`SparkSQL`)."""
        if self._con is None:
            self._con = SparkSQL(self)
        return self._con

    def unpersist(self) -> None:
        """Free the cached tables and drop this data set's views."""
        for df in self.tables.values():
            df.unpersist()
        for view in self.views.values():
            self.spark.catalog.dropTempView(view)


class SparkSQL:
    """Read queries in DuckDB's dialect on a :class:`SparkDataset`, connection-style.

    ``execute(sql)`` transpiles the query (:func:`frame`) and returns a result with
    ``fetchall()``, ``fetchone()`` and ``df()``; ``DESCRIBE <table>`` lists a table's
    columns; ``register(name, frame)`` adds a view for the following queries. It lets
    code written against the local engine's connection (slice resolution, the coverage
    mask, facts) run unchanged on Spark; new code calls :func:`query` instead.
    """

    def __init__(self, ds: SparkDataset):
        self.ds = ds
        self.views: dict[str, Any] = {}

    def execute(self, sql: str, parameters: Any = None) -> _SparkResult:
        """Run one DuckDB-dialect SELECT (or ``DESCRIBE <table>``) on Spark."""
        if parameters:
            raise NotImplementedError("parameters are not supported on Spark")
        text = sql.strip().rstrip(";")
        if text.upper().startswith("DESCRIBE ") and " " not in text[9:].strip():
            name = text[9:].strip().strip('"')
            df = self.ds.tables[name]
            return _SparkResult(rows=[(c, t.upper()) for c, t in df.dtypes])
        return _SparkResult(frame=frame(self.ds, text, self.views))

    def sql(self, sql: str) -> _SparkResult:
        """Same as :meth:`execute`."""
        return self.execute(sql)

    def register(self, name: str, value: Any) -> None:
        """Make ``value`` (a pandas/Arrow/Spark frame) a view called ``name``."""
        self.views[name] = value

    def unregister(self, name: str) -> None:
        """Drop the view ``name``."""
        self.views.pop(name, None)


class _SparkResult:
    def __init__(self, frame: Any = None, rows: list | None = None):
        self._frame, self._rows = frame, rows

    def fetchall(self) -> list[tuple]:
        if self._rows is None:
            self._rows = [tuple(r) for r in self._frame.collect()]
        return self._rows

    def fetchone(self) -> tuple | None:
        rows = self.fetchall()
        return rows[0] if rows else None

    def df(self) -> pd.DataFrame:
        if self._frame is None:
            return pd.DataFrame(self._rows)
        return to_pandas(self._frame)


def load(
    data_dir,
    cfg: Config,
    *,
    engine: str = "local",
    policy: str | None = None,
    quarantine_dir: Path | None = None,
    today: date | None = None,
):
    """Read, validate and load a data directory on ``engine`` (``local`` or ``spark``).

    ``local`` is :func:`churnpredict.contract.load_dataset`. ``spark`` reads the same
    files (``data_dir`` may be any Spark path) and applies the same checks on Spark;
    it supports the strict policy only (``--lenient`` is a usage error there).

    Raises
    ------
    DataError
        The data breaks the contract (exit 2): the message names the file, column and
        example rows, followed by the report.
    """
    check_engine(engine)
    if engine == "local":
        from churnpredict.contract import load_dataset

        return load_dataset(
            Path(data_dir), cfg, policy=policy, quarantine_dir=quarantine_dir, today=today
        )
    given = policy
    policy = policy or cfg.data.policy
    if policy != "strict":
        said = "--lenient" if given else f"data.policy: {policy} (config)"
        raise UsageError(
            f"{said} is not supported with --engine spark: Spark checks the data strictly "
            "and stops at the first bad row (exit 2); quarantining bad rows is local only. "
            "Run with --strict (data.policy: strict), or with --engine local --lenient"
        )
    from churnpredict import spark as sparkmod

    return _spark_load(sparkmod.session(cfg), str(data_dir), cfg, today=today)


# schemes whose paths always name a bucket/container (``hdfs:/x`` is valid as it is: the
# default name node; ``hdfs:///x`` and ``hdfs:/x`` are the same path)
_AUTHORITY = ("s3a", "s3", "s3n", "abfss", "abfs", "wasbs", "wasb", "gs", "oss")


def spark_path(value) -> str:
    """Return a data location as Spark reads it.

    A command-line ``Path`` folds ``s3a://bucket/x`` into ``s3a:/bucket/x``; the double
    slash of schemes with an authority is put back. Plain paths stay as they are.
    """
    text = str(value)
    scheme, sep, rest = text.partition(":/")
    if sep and scheme.lower() in _AUTHORITY and not rest.startswith("/"):
        return f"{scheme}://{rest}"
    return text


def spark_truth(ds) -> pd.DataFrame | None:
    """Return the simulator's ``truth.parquet`` of a Spark data set (None when absent)."""
    fs = _FS(ds.spark, ds.data_dir)
    path = fs.path("truth.parquet")
    if not fs.is_file(path):
        return None
    truth = to_pandas(ds.spark.read.parquet(path).select("client_id", "as_of", "p_true"))
    truth["as_of"] = pd.to_datetime(truth["as_of"])
    truth["client_id"] = truth["client_id"].astype(str)
    return truth


# ------------------------------------------------------------------------------ queries
def _transpile(sql: str, names: dict[str, str]) -> str:
    """Return DuckDB ``sql`` in Spark's dialect, table names mapped by ``names``."""
    try:
        import sqlglot
        from sqlglot import exp
    except ImportError:
        raise UsageError(
            'the Spark engine needs sqlglot: pip install "churnpredict[spark]" '
            "(or pip install sqlglot next to the cluster's pyspark)"
        ) from None

    tree = sqlglot.parse_one(sql, read="duckdb")
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    for t in tree.find_all(exp.Table):
        if not t.args.get("db") and t.name in names and t.name not in ctes:
            t.set("this", exp.to_identifier(names[t.name]))
    return tree.sql(dialect="spark")


_view_ids = itertools.count()


def frame(ds, sql: str, views: dict[str, Any] | None = None):
    """Run DuckDB-dialect ``sql`` over ``ds``'s tables and ``views`` on ``ds``'s engine.

    Parameters
    ----------
    ds : Dataset or SparkDataset
    sql : str
        One SELECT; it may name the data set's tables and the keys of ``views``.
    views : dict, optional
        Extra relations by name: engine frames (``pyarrow.Table`` / Spark DataFrame) or
        pandas frames. They exist only for this query.

    Returns
    -------
    pyarrow.Table (local) or pyspark.sql.DataFrame (Spark, lazy)
    """
    views = views or {}
    if isinstance(ds, SparkDataset):
        spark = ds.spark
        names = dict(ds.views)
        made = []
        try:
            for name, value in views.items():
                df = value
                if isinstance(value, pd.DataFrame | pa.Table):
                    df = spark.createDataFrame(
                        value.to_pandas() if isinstance(value, pa.Table) else value
                    )
                view = f"_cp{next(_view_ids)}_{name.strip('_')}"
                df.createOrReplaceTempView(view)
                made.append(view)
                names[name] = view
            # spark.sql analyses the query now: the plan keeps what the views stood for
            return spark.sql(_transpile(sql, names))
        finally:
            for view in made:
                spark.catalog.dropTempView(view)
    con = ds.con
    for name, value in views.items():
        con.register(name, value)
    try:
        try:
            return con.sql(sql).to_arrow_table()
        except duckdb.ResourceInUseException:
            # a caller left a result of execute() unfetched (e.g. after fetchone()):
            # execute() closes it; its Arrow output costs one copy more, said in a warning
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return con.execute(sql).to_arrow_table()
    finally:
        for name in views:
            con.unregister(name)


def to_pandas(value) -> pd.DataFrame:
    """Return an engine frame (or pandas frame) as a pandas DataFrame."""
    if isinstance(value, pd.DataFrame):
        return value
    if isinstance(value, pa.Table):
        return value.to_pandas()
    from churnpredict import spark as sparkmod

    sparkmod._quiet()
    return value.toPandas()


def query(ds, sql: str, views: dict[str, Any] | None = None) -> pd.DataFrame:
    """Run ``sql`` like :func:`frame` and return the result as a pandas DataFrame."""
    if not isinstance(ds, SparkDataset) and not views:
        return ds.con.execute(sql).df()
    return to_pandas(frame(ds, sql, views))


def columns(ds, table: str) -> list[str]:
    """Return the column names of one of ``ds``'s tables."""
    if isinstance(ds, SparkDataset):
        return list(ds.tables[table].columns)
    return [r[0] for r in ds.con.execute(f"DESCRIBE {q(table)}").fetchall()]


# ------------------------------------------------------------------- Spark: the files
_SPARK_TYPES = {"VARCHAR": "string", "DOUBLE": "double", "TIMESTAMP": "timestamp", "DATE": "date"}


def _kind(name: str) -> str | None:
    low = name.lower()
    if low.endswith((".parquet", ".pq")):
        return "parquet"
    if low.endswith((".csv", ".csv.gz")):
        return "csv"
    return None


class _FS:
    """Hadoop FileSystem look-ups through the JVM (any scheme Spark reads)."""

    def __init__(self, spark, base: str):
        self.spark = spark
        jvm = spark._jvm
        self._Path = jvm.org.apache.hadoop.fs.Path
        self.base = base.rstrip("/")
        root = self._Path(self.base or "/")
        self.fs = root.getFileSystem(spark._jsc.hadoopConfiguration())

    def path(self, rel: str) -> str:
        return f"{self.base}/{rel}"

    def is_dir(self, p: str) -> bool:
        path = self._Path(p)
        return bool(self.fs.exists(path) and self.fs.getFileStatus(path).isDirectory())

    def is_file(self, p: str) -> bool:
        path = self._Path(p)
        return bool(self.fs.exists(path) and self.fs.getFileStatus(path).isFile())

    def files(self, folder: str) -> list[str]:
        it = self.fs.listFiles(self._Path(folder), True)
        out = []
        while it.hasNext():
            st = it.next()
            name = st.getPath().getName()
            if not name.startswith((".", "_")) and _kind(name):
                out.append(str(st.getPath()))
        return sorted(out)

    def first_line(self, p: str) -> str:
        rows = self.spark.read.text(p).limit(1).collect()
        return rows[0][0] if rows else ""


def _spark_source(fs: _FS, table: str, path: str | None) -> tuple[str, list[str], str] | None:
    """Return ``(kind, files, display)`` for ``table``: :func:`churnpredict.contract.
    find_source` on Hadoop's file system (any path Spark reads)."""
    from churnpredict.contract import find_source

    src = find_source(fs.base, table, path, fs=fs)
    return None if src is None else (src.kind, list(src.files), src.display)


def _local_path(uri: str) -> str:
    """Return a ``file:`` URI as a plain path (others unchanged), for messages."""
    if uri.startswith("file:"):
        return unquote(urlparse(uri).path)
    return uri


# ------------------------------------------------------------------ Spark: typed tables
def _typed_col(F, raw, src_type: str, target: str, kind: str):
    """Return the Column turning a raw source column into the contract type (NULL if bad)."""
    st = src_type.lower()
    if target == "VARCHAR":
        return raw.cast("string")
    if target == "DOUBLE":
        x = raw.try_cast("double") if st == "string" else raw.cast("double")
        return F.when(~F.isnan(x) & (F.abs(x) != float("inf")), x)
    if target == "TIMESTAMP":
        if st == "string":
            return F.try_to_timestamp(raw)
        if st.startswith("timestamp") or st == "date":
            return raw.cast("timestamp")
        return F.lit(None).cast("timestamp")
    if target == "DATE":
        if st == "string":
            # a date, or a timestamp's day (as DuckDB's cast of text to DATE reads it)
            return F.to_date(F.try_to_timestamp(raw))
        if st.startswith("timestamp") or st == "date":
            return raw.cast("date")
        return F.lit(None).cast("date")
    raise ValueError(target)


def _read_spark(spark, fs: _FS, kind: str, files: list[str], sep: str):
    """Read the files as one DataFrame (CSV: every column as text) plus ``_file``."""
    from pyspark.sql import functions as F

    if kind == "parquet":
        df = spark.read.option("mergeSchema", "true").parquet(*files)
    else:
        first = fs.first_line(files[0]).lstrip("\ufeff")
        if sep == "auto":
            counts = {s: first.count(s) for s in (",", ";", "\t", "|")}
            sep = max(counts, key=lambda s: (counts[s], s == ","))
        df = (
            spark.read.option("header", "true")
            .option("sep", sep)
            .option("quote", '"')
            .option("escape", '"')
            .option("encoding", "UTF-8")
            .option("inferSchema", "false")
            .option("multiLine", "true")  # quoted fields may hold line breaks (RFC 4180)
            .option("mode", "FAILFAST")
            .csv(files)
        )
        df = df.toDF(*[c.lstrip("\ufeff").strip() for c in df.columns])
    return df.withColumn("_file", F.input_file_name()), sep


@dataclass
class _SparkCtx:
    spark: Any
    cfg: Config
    data_dir: str
    future_limit: str
    client_keys: Any = None  # DataFrame (client_id, signup_date) for foreign keys
    span: list[pd.Timestamp] = field(default_factory=list)


def _check_spark(ctx: _SparkCtx, spec, df, found: dict[str, tuple[str, str]], kind, tr, fk):
    """Check one table on Spark with the contract's row rules; return its valid rows."""
    from pyspark.sql import functions as F

    from churnpredict.contract import empty_table_problem

    # the row's place in its file, for the examples' line numbers: Parquet's row index; a
    # CSV file (multiLine: never split) is read in order by one task, so the row id minus
    # the file's first id is the data row's index (lines are counted as by DuckDB: one a row)
    rowid = F.col("_metadata.row_index") if kind == "parquet" else F.monotonically_increasing_id()
    cols = [F.col("_file"), rowid.alias("_rowid")]
    for c in spec.columns:
        rc = "raw." + c.name
        if c.name in found:
            src, st = found[c.name]
            raw = F.col(f"`{src}`")
            if st == "string":
                raw = F.nullif(F.trim(raw) if kind == "csv" else raw, F.lit(""))
            cols.append(raw.alias(rc))
        else:
            cols.append(F.lit(None).cast("string").alias(rc))
    raw_df = df.select(*cols)
    typed = []
    for c in spec.columns:
        rc = F.col(f"`raw.{c.name}`")
        st = found[c.name][1] if c.name in found else None
        if st is None:
            typed.append(F.lit(None).cast(_SPARK_TYPES[c.type]).alias(c.name))
        elif c.type == "VARCHAR" and st == "string":
            typed.append(rc.alias(c.name))
        else:
            typed.append(_typed_col(F, rc, st, c.type, kind).alias(c.name))
    t = raw_df.select("*", *typed)
    keys = None
    if spec.unique:
        u = F.col(spec.unique)
        dist = t.select(*spec.names).where(u.isNotNull()).distinct()
        shared = dist.groupBy(spec.unique).count().where("count > 1").select(u.alias("key"))
        txt = dist.select(u.cast("string").alias("key")).distinct()
        folded = txt.groupBy(F.lower(F.trim("key")).alias("f")).count().where("count > 1")
        near = txt.join(folded, F.lower(F.trim(txt["key"])) == folded["f"]).select("key")
        keys = shared.union(near).distinct()
    if fk:
        ck = ctx.client_keys.select(
            F.col("client_id").alias("_c_client_id"), F.col("signup_date").alias("_c_signup")
        )
        t = t.join(ck, t["client_id"] == ck["_c_client_id"], "left")
    if keys is not None:
        t = t.join(
            keys.select(F.col("key").alias("_k_key")),
            F.col(spec.unique) == F.col("_k_key"),
            "left",
        )
    rules = row_rules(
        spec, future_limit=ctx.future_limit, fk=fk, unique_keys="_k" if keys is not None else None
    )
    view = f"_cp{next(_view_ids)}_check"
    t.createOrReplaceTempView(view)
    try:
        flags = ", ".join(f"coalesce({r.sql}, false) AS {q(r.key)}" for r in rules)
        errs = [q(r.key) for r in rules if r.severity == ERROR]
        bad = " OR ".join(errs) if errs else "false"
        inner = f"SELECT *{', ' + flags if flags else ''} FROM {view}"
        checked = ctx.spark.sql(_transpile(f"SELECT *, ({bad}) AS _bad FROM ({inner})", {}))
    finally:
        ctx.spark.catalog.dropTempView(view)
    # not persisted: the aggregate below and the valid rows each read the files once
    aggs = [F.count(F.lit(1)), F.sum(F.col("_bad").cast("long"))]
    aggs += [F.sum(F.col(f"`{r.key}`").cast("long")) for r in rules]
    for tcol in spec.time_columns:
        ok = ~F.col("_bad")
        aggs += [
            F.min(F.when(ok, F.col(tcol).cast("timestamp"))),
            F.max(F.when(ok, F.col(tcol).cast("timestamp"))),
        ]
    row = checked.agg(*aggs).collect()[0]
    tr.rows_read, n_bad = int(row[0]), int(row[1] or 0)
    tr.rows_accepted = tr.rows_read - n_bad
    counts = [int(v or 0) for v in row[2 : 2 + len(rules)]]
    for i, _ in enumerate(spec.time_columns):
        lo, hi = row[2 + len(rules) + 2 * i], row[3 + len(rules) + 2 * i]
        ctx.span += [pd.Timestamp(v) for v in (lo, hi) if v is not None]
        if i == 0 and lo is not None:
            tr.first_ts = pd.Timestamp(lo)
        if hi is not None and (tr.last_ts is None or pd.Timestamp(hi) > tr.last_ts):
            tr.last_ts = pd.Timestamp(hi)
    if tr.rows_read == 0:
        tr.problems.append(empty_table_problem(spec.name, tr.file))
    shown = [c for c in spec.names if c in found]
    for r, n in zip(rules, counts, strict=True):
        if not n:
            continue
        ex = (
            checked.where(F.col(f"`{r.key}`"))
            .select("_file", "_rowid", *[F.col(f"`raw.{c}`").cast("string") for c in shown])
            .orderBy("_file", "_rowid")
            .limit(5)
            .collect()
        )
        first = _first_row_ids(raw_df, kind, {rec["_file"] for rec in ex})
        examples = []
        for rec in ex:
            d = rec.asDict()
            d["_line"] = d.pop("_rowid") - first[d["_file"]] + (1 if kind == "parquet" else 2)
            d["_file"] = _local_path(d["_file"] or "")
            d["_kind"] = kind
            examples.append(render_example(d, _local_path(ctx.data_dir), shown, r.column))
        tr.problems.append(
            Problem(
                spec.name,
                tr.file,
                r.column,
                r.code,
                r.message,
                severity=r.severity,
                count=n,
                expected=r.expected,
                examples=examples,
            )
        )
    tr.rows_quarantined = n_bad
    valid = checked.where(~F.col("_bad")).select(*[F.col(c) for c in spec.names])
    return valid, checked


def _first_row_ids(raw_df, kind: str, files: set[str]) -> dict[str, int]:
    """Return each file's first ``_rowid`` (0 for Parquet's row index; CSV: one more pass)."""
    from pyspark.sql import functions as F

    if kind == "parquet" or not files:
        return dict.fromkeys(files, 0)
    rows = (
        raw_df.where(F.col("_file").isin(sorted(files)))
        .groupBy("_file")
        .agg(F.min("_rowid").alias("first"))
        .collect()
    )
    return {r["_file"]: int(r["first"]) for r in rows}


def _spark_load(spark, data_dir: str, cfg: Config, *, today: date | None = None) -> SparkDataset:
    """Load and check every table on Spark (strict policy); see :func:`load`."""
    from pyspark.errors import PySparkException
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from churnpredict.contract import (
        CONTRACT_TABLES,
        _data_error,
        _renames,
        ambiguous_problem,
        derive_table,
        duplicate_rows_problem,
        match_columns,
        missing_table_problem,
        no_clients_problem,
        no_data_dir_problem,
        table_specs,
    )

    report = ValidationReport(data_dir, "strict")
    fs = _FS(spark, data_dir)
    if not fs.is_dir(data_dir):
        report.tables["clients"] = TableReport("clients", data_dir, present=False)
        report.tables["clients"].problems.append(no_data_dir_problem(data_dir))
        raise _data_error(report, report.tables["clients"])
    today = today or datetime.now(UTC).date()
    limit = datetime.combine(
        today + timedelta(days=cfg.data.future_tolerance_days + 1), datetime.min.time()
    )
    ctx = _SparkCtx(spark, cfg, data_dir, f"TIMESTAMP '{limit:%Y-%m-%d %H:%M:%S}'")
    specs = table_specs(cfg)
    required = set(cfg.data.required_tables)
    derive = derive_table(cfg, specs)
    sources = {}
    for name, spec in specs.items():
        try:
            sources[name] = _spark_source(fs, name, spec.path)
        except DataError as err:
            tr = report.tables.setdefault(name, TableReport(name, err.file or name))
            tr.problems.append(ambiguous_problem(name, err))
            raise _data_error(report, tr) from None
    order = ["clients"] + [n for n in specs if n != "clients"]
    if sources.get("clients") is None and derive is not None:
        order = [derive, "clients"] + [n for n in specs if n not in ("clients", derive)]
    tables: dict[str, Any] = {}
    files: dict[str, str] = {}

    def fail(tr: TableReport) -> None:
        if tr.errors:
            raise _data_error(report, tr)

    def empty(spec):
        schema = T.StructType(
            [
                T.StructField(c.name, T._parse_datatype_string(_SPARK_TYPES[c.type]), True)
                for c in spec.columns
            ]
        )
        return spark.createDataFrame([], schema)

    for name in order:
        spec = specs[name]
        if name == "clients" and sources["clients"] is None and derive is not None:
            if derive in tables:
                tcol = specs[derive].time_columns[0]
                cl = tables[derive].where(F.col(tcol).isNotNull()).groupBy("client_id")
                cl = cl.agg(F.min(tcol).cast("date").alias("signup_date"))
                for c in spec.columns[2:]:
                    cl = cl.withColumn(c.name, F.lit(None).cast(_SPARK_TYPES[c.type]))
                cl = cl.select(*spec.names).persist()
                n = cl.count()
                files["clients"] = f"derived from {files[derive]}"
                tr = TableReport("clients", files["clients"], rows_read=n, rows_accepted=n)
                report.tables["clients"] = tr
                if n == 0:
                    tr.problems.append(no_clients_problem(tr.file, derived_from=derive))
                    fail(tr)
                tables["clients"] = cl
                ctx.client_keys = cl.select("client_id", "signup_date")
            continue
        source = sources[name]
        if source is None:
            display = fs.path(spec.path or name)
            tr = TableReport(name, _local_path(display), present=False)
            report.tables[name] = tr
            if name in required or name == "clients" or name == derive:
                tr.problems.append(missing_table_problem(name, tr.file))
                fail(tr)
            if name in CONTRACT_TABLES:
                tables[name] = empty(spec)
            continue
        kind, parts, display = source
        tr = TableReport(name, _local_path(display))
        report.tables[name] = tr
        try:
            df, _ = _read_spark(spark, fs, kind, parts, cfg.data.csv_separator)
            types = dict(df.dtypes)
        except PySparkException as err:
            tr.problems.append(_unreadable(name, tr.file, err))
            fail(tr)
        found, missing = match_columns(
            spec, tr.file, _renames(name, cfg), types, reserved=("_file",), hidden=("_file",)
        )
        tr.problems.extend(missing)
        fail(tr)
        fk = ctx.client_keys is not None and name != "clients" and "client_id" in spec.names
        try:
            valid, _ = _check_spark(ctx, spec, df, found, kind, tr, fk)
        except PySparkException as err:
            tr.problems.append(_unreadable(name, tr.file, err))
            fail(tr)
        if name == "clients" and tr.rows_accepted == 0 and not tr.errors:
            tr.problems.append(no_clients_problem(tr.file))
        fail(tr)
        kept = valid.dropDuplicates().persist()
        n_kept = kept.count()
        tr.rows_duplicate = tr.rows_accepted - n_kept
        if tr.rows_duplicate:
            tr.problems.append(duplicate_rows_problem(name, tr.file, tr.rows_duplicate))
        tables[name] = kept
        files[name] = tr.file
        if name == "clients":
            ctx.client_keys = kept.groupBy("client_id").agg(
                F.min("signup_date").alias("signup_date")
            )
    span = ctx.span
    if not span:
        lo = tables["clients"].agg(F.min("signup_date")).collect()[0][0]
        span = [pd.Timestamp(lo)]
    ds = SparkDataset(
        spark=spark,
        tables=tables,
        data_dir=data_dir,
        present=set(files),
        files=files,
        data_end=max(span),
        data_start=min(span),
        report=report,
        coverage={
            n: (t.first_ts, t.last_ts)
            for n, t in report.tables.items()
            if n in files and t.first_ts is not None and t.last_ts is not None
        },
    )
    prefix = f"_cp{next(_view_ids)}_"
    for name, df in tables.items():
        view = prefix + name
        df.createOrReplaceTempView(view)
        ds.views[name] = view
    log.info(
        "spark: loaded %s",
        ", ".join(f"{n} ({report.tables[n].rows_accepted:,} rows)" for n in sorted(files)),
    )
    return ds


def _unreadable(table: str, display: str, err: Exception) -> Problem:
    text = str(err).strip().splitlines()
    msg = " ".join(text[:3])[:400]
    return Problem(
        table,
        display,
        None,
        "unreadable",
        f"cannot read the file: {msg}",
        expected="UTF-8 CSV with a header row (or Parquet) in the contract's shape",
        table_level=True,
    )


__all__ = [
    "ENGINES",
    "SparkDataset",
    "check_engine",
    "columns",
    "engine_of",
    "frame",
    "load",
    "lit",
    "query",
    "to_pandas",
]
