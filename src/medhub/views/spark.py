"""Scale-out path: transpile the compiled DuckDB SQL to Spark SQL with sqlglot.

The compiled SQL is DuckDB dialect; sqlglot rewrites lambdas (`lambda x: ...` -> `x -> ...`),
list functions (list_transform -> TRANSFORM, list_filter -> FILTER), casts and string functions.
DuckDB-only constructs that need care on Spark (see `DUCKDB_ONLY`) are reported by
`spark_notes(sql)` so a caller knows what a cluster run still needs.
"""

from __future__ import annotations

import sqlglot

from medhub.views.compile import compile_view
from medhub.views.definition import View

# DuckDB functions/constructs in compiled SQL that have no exact Spark equivalent, and what to do.
DUCKDB_ONLY = {
    "JSON_EXTRACT": 'Spark has get_json_object/from_json; JSON paths with `$."key"` quoting need rewriting',
    "JSON_TYPE": "no Spark equivalent; parse with from_json and the FHIR schema instead",
    "JSON[]": "Spark has no JSON type: collections become ARRAY<STRING> of JSON text",
    "ERROR(": "Spark has raise_error()",
    "WITH RECURSIVE": "recursive CTEs need Spark 4.1+ (used by repeat)",
    "READ_NDJSON_OBJECTS": "source must be a Spark table of (resource_type, resource)",
    "UNNEST(": "two unnest() in one SELECT (value + position) zip in DuckDB; Spark allows one generator "
    "per SELECT: rewrite as posexplode",
    "STARTS_WITH(CAST(": "array test on JSON text; on Spark test the parsed value's type instead",
    "LIST_TRANSFORM([": "one-element lambdas bind a value once (DuckDB shares no subexpressions in "
    "filters); Spark: a plain subexpression or a CTE column",
}


def to_spark(sql: str) -> str:
    """Spark SQL text for a DuckDB query (raises sqlglot errors when it cannot be transpiled)."""
    return sqlglot.transpile(sql, read="duckdb", write="spark")[0]


def view_to_spark(view: View, table: str = "resources") -> str:
    """Spark SQL for a view over a Spark table `table`(resource_type, resource)."""
    return to_spark(compile_view(view, f"SELECT resource_type, resource FROM {table}"))


def spark_notes(sql: str) -> list[str]:
    """The DuckDB-only constructs in `sql` (DuckDB dialect) and how to handle them on Spark."""
    upper = sql.upper()
    return [f"{k}: {v}" for k, v in DUCKDB_ONLY.items() if k in upper]
