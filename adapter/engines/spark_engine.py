"""Run the export views on Apache Spark: NDJSON folder in, one CSV or Parquet table per view out.

The same views and the same FHIRPath walk as the DuckDB engine (``adapter.engines.sql``),
compiled to Spark SQL (``spark_sql``). Each NDJSON line is read as text (an explicit
one-column string schema: nothing is inferred), its numbers quoted, and parsed into a
``VARIANT``, so decimals and partial dates keep their text. The query runs on the
session's master: ``local[N]`` on one machine, or a cluster under ``spark-submit``.

CSV: each row becomes one CSV line in Spark, quoted as DuckDB's writer quotes (a cell
with a comma, quote, CR, LF or ``#``, and the empty text, in quotes; NULL as nothing),
with the CSV-injection rule unless ``raw_csv``; the driver joins the part files under
one header into ``<view>.csv``, so the file is the DuckDB engine's, byte for byte, its
rows in another order. Parquet: Spark's own layout, a folder ``<view>.parquet/`` of
part files (numbers as doubles, everything else text, as the other engines) that
pyarrow, DuckDB and Spark read as one table. The output folder must be one the driver
and the executors both see (on a cluster, a shared file system).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from adapter.engines.spark_sql import NUMBERS, NUMBERS_AS_TEXT, compile_view, identifier
from adapter.engines.sql import CompiledView, input_error, plan_tables
from adapter.engines.views import NUMBER_TYPES
from adapter.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

DEFAULT_MASTER = "local[2]"
MASTER_VARIABLE = "SPARK_MASTER"
_SOURCE = "trialfhir_resources"
# adapter.export.csvcell.safe_cell as Java regexes (a test holds the three spellings to one rule).
_FORMULA = r"^[=+\-@\t\r]"
_NUMBER = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\z"
# The characters that make DuckDB's CSV writer quote a cell (its delimiter, quote, newlines and comment mark).
_NEEDS_QUOTES = r'[,"\r\n#]'


def session(master: str | None = None) -> SparkSession:
    """The Spark session: ``master``, else $SPARK_MASTER, else the one ``spark-submit`` set, else ``local[2]``."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError("the spark engine needs PySpark: pip install 'trialfhir[spark]' (and Java 17)") from None

    master = master or os.environ.get(MASTER_VARIABLE)
    builder = SparkSession.builder.appName("trialfhir")
    # Under spark-submit the driver is started with a gateway whose configuration already names the master.
    if master or "PYSPARK_GATEWAY_PORT" not in os.environ:
        master = master or DEFAULT_MASTER
        builder = builder.master(master)
    if (master or "").startswith("local"):
        # Python tasks (map package) run in worker processes, started as $PYSPARK_PYTHON (PySpark reads only the
        # variable): on this machine, this very interpreter and its packages; on a cluster, what it configures.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.errors import PySparkException

    builder = (builder.config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               # A view's query is one large projection: whole-stage code for the biggest (Observation) passes
               # Java's 64 KB method limit, and Spark would log the failure before falling back to this anyway.
               .config("spark.sql.codegen.wholeStage", "false")
               .config("spark.sql.session.timeZone", "UTC"))
    try:
        spark = builder.getOrCreate()
    except PySparkException as error:  # most often: no Java, or JAVA_HOME names none
        raise ConfigError(f"Spark did not start (it needs Java 17; is JAVA_HOME right?): {error}") from None
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def write_tables(
    folder: str | Path,
    output: str | Path,
    fmt: str = "csv",
    *,
    spark: SparkSession | None = None,
    master: str | None = None,
    views_folder: str | Path | None = None,
    raw_csv: bool = False,
) -> dict[str, tuple[Path, int]]:
    """Write one table per view of the types in ``folder`` to ``output``; returns {view name: (path, rows)}.

    ``spark``: a session to use (else one is started on ``master``, see ``session``).
    """
    files, views, out = plan_tables(folder, output, fmt, views_folder)
    spark = spark or session(master)
    from py4j.protocol import Py4JJavaError  # type: ignore[import-untyped]
    from pyspark.errors import PySparkException

    written: dict[str, tuple[Path, int]] = {}
    for view in views:
        paths = files[view["resource"]]
        compiled = compile_view(view, _SOURCE)
        target = out / f"{compiled.name}.{fmt}"
        try:
            resources(spark, paths).createOrReplaceTempView(_SOURCE)
            table = spark.sql(compiled.sql)
            count = _write_csv(table, compiled, target, raw_csv) if fmt == "csv" else _write_parquet(
                table, compiled, target)
        except (PySparkException, Py4JJavaError) as error:
            # Spark wraps what raise_error says in its error class and SQL state.
            message = re.sub(r"\[[A-Z_.]+\] |\s*SQLSTATE: \w+", "", str(error))
            raise input_error(message, compiled, paths) from None
        written[compiled.name] = (target, count)
    return written


def resources(spark: SparkSession, paths: list[Path]) -> DataFrame:
    """One VARIANT (column ``r``) per NDJSON line, blank lines skipped, numbers quoted first so they keep
    their digits."""
    from pyspark.sql import functions as F

    lines = spark.read.schema("value STRING").text([str(p) for p in paths])
    quoted = F.regexp_replace(F.col("value"), NUMBERS, NUMBERS_AS_TEXT)
    return lines.where(F.trim(F.col("value")) != "").select(F.parse_json(quoted).alias("r"))


def _write_csv(table: DataFrame, compiled: CompiledView, target: Path, raw_csv: bool) -> int:
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    cells = [F.col(identifier(name)).cast("string") for name in compiled.columns]
    if not raw_csv:
        cells = [_safe_cell(cell) for cell in cells]
    line = F.concat_ws(",", *[F.coalesce(_quoted(cell), F.lit("")) for cell in cells])
    rows = Observation("rows")
    parts = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        (table.select(line.alias("value")).observe(rows, F.count(F.lit(1)).alias("rows"))
         .write.mode("overwrite").option("lineSep", "\r\n").text(str(parts / "csv")))
        with target.open("wb") as out:
            out.write((",".join(compiled.columns) + "\r\n").encode("utf-8"))
            for part in sorted((parts / "csv").glob("part-*")):
                with part.open("rb") as handle:
                    shutil.copyfileobj(handle, out)
        return int(rows.get["rows"])
    finally:
        shutil.rmtree(parts, ignore_errors=True)


def _quoted(cell: Column) -> Column:
    """A cell as DuckDB's CSV writer writes it (NULL stays NULL)."""
    from pyspark.sql import functions as F

    needs = cell.rlike(_NEEDS_QUOTES) | (cell == F.lit(""))
    return F.when(needs, F.concat(F.lit('"'), F.replace(cell, F.lit('"'), F.lit('""')), F.lit('"'))).otherwise(cell)


def _safe_cell(cell: Column) -> Column:
    from pyspark.sql import functions as F

    risky = cell.rlike(_FORMULA) & ~cell.rlike(_NUMBER)
    return F.when(risky, F.concat(F.lit("'"), cell)).otherwise(cell)


def _write_parquet(table: DataFrame, compiled: CompiledView, target: Path) -> int:
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    # As the other engines: numbers as doubles, everything else text.
    cells = [F.col(identifier(name)).cast("double" if kind in NUMBER_TYPES else "string").alias(name)
             for name, kind in zip(compiled.columns, compiled.types, strict=True)]
    rows = Observation("rows")
    table.select(*cells).observe(rows, F.count(F.lit(1)).alias("rows")).write.mode("overwrite").parquet(str(target))
    return int(rows.get["rows"])
