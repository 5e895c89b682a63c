"""Running compiled views: the sources a view reads, execution in DuckDB, and writing results.

Sources are SQL relations with columns (resource_type, resource):
  * `lake_source(lake_dir)`: the lake's Hive-partitioned FHIR Parquet (medhub.lake.layout.FHIR_SCHEMA);
    the resource_type partition column prunes files;
  * `file_source(paths)`: NDJSON files (.ndjson/.jsonl, gzip allowed) and JSON files holding a single
    resource or a Bundle (entries are unnested);
  * a table name already in the connection (`load_resources_table` makes one from dicts).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from medhub.lake import layout
from medhub.views.compile import compile_view, q, qi
from medhub.views.definition import View, ViewError, parse_view

MAX_OBJECT_SIZE = 256 * 1024 * 1024
_NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz")


def table_source(table: str) -> str:
    return f"SELECT resource_type, resource FROM {qi(table)}"


def lake_source(lake_dir: Path) -> str:
    """The lake's FHIR Parquet as a source relation; raises ViewError when the lake has none."""
    root = layout.fhir_dir(Path(lake_dir))
    if not root.is_dir() or not any(root.glob("*/*/*.parquet")):
        raise ViewError(f"{root}: the lake holds no FHIR Parquet files yet (ingest some data first)")
    glob = layout.fhir_glob(Path(lake_dir))
    return (
        f"SELECT resource_type, resource FROM read_parquet({q(glob)}, hive_partitioning = true, "
        "union_by_name = true)"
    )


def _expand(paths: Iterable[str | os.PathLike]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(
                x
                for x in p.rglob("*")
                if x.is_file() and (x.name.endswith(_NDJSON_SUFFIXES) or x.suffix == ".json")
            )
        elif p.is_file():
            out.append(p)
        else:
            raise ViewError(f"{p}: no such file or directory")
    if not out:
        raise ViewError("no FHIR files (.ndjson, .jsonl, .json) among the given paths")
    return out


# resourceType without parsing when it is the first key (as bulk exports write it); else parse
_TYPE_OF_JSON = (
    "(CASE WHEN starts_with(json, '{{\"resourceType\":\"') THEN split_part(substr(json, 18, 64), '\"', 1) "
    "ELSE json_extract_string(json, '$.resourceType') END)"
)


def file_source(paths: Sequence[str | os.PathLike]) -> str:
    """NDJSON / JSON / Bundle files as a source relation.

    NDJSON lines are resources (FHIR bulk-data export); .json files may hold one resource or a
    Bundle, whose entries are unnested.
    """
    files = _expand(paths)
    nd = [str(f) for f in files if f.name.endswith(_NDJSON_SUFFIXES)]
    js = [str(f) for f in files if not f.name.endswith(_NDJSON_SUFFIXES)]
    parts = []
    type_of = _TYPE_OF_JSON.replace("{{", "{")
    if nd:
        parts.append(
            f"SELECT {type_of} AS resource_type, json AS resource FROM read_ndjson_objects("
            f"[{', '.join(map(q, nd))}], maximum_object_size = {MAX_OBJECT_SIZE})"
        )
    if js:
        unnested = (
            "SELECT unnest(CASE WHEN json_extract_string(json, '$.resourceType') = 'Bundle' "
            "THEN CAST(coalesce(json_extract(json, '$.entry[*].resource'), []) AS JSON[]) "
            f"ELSE [json] END) AS json FROM read_json_objects([{', '.join(map(q, js))}], format = 'auto', "
            f"maximum_object_size = {MAX_OBJECT_SIZE})"
        )
        parts.append(
            f"SELECT json_extract_string(json, '$.resourceType') AS resource_type, json AS resource "
            f"FROM ({unnested})"
        )
    return " UNION ALL ".join(parts)


def load_resources_table(con: duckdb.DuckDBPyConnection, name: str, resources: Iterable[dict]) -> None:
    """Create table `name`(resource_type, resource) from resource dicts."""
    res = list(resources)
    tbl = pa.table(
        {
            "resource_type": pa.array([r.get("resourceType") for r in res], pa.string()),
            "resource": pa.array([json.dumps(r) for r in res], pa.string()),
        }
    )
    con.register("_medhub_load", tbl)
    con.execute(f"CREATE OR REPLACE TABLE {qi(name)} AS SELECT * FROM _medhub_load")
    con.unregister("_medhub_load")


def run_view_on(con: duckdb.DuckDBPyConnection, view: View, table: str) -> tuple[list[str], list[tuple]]:
    """Run `view` over a table of resources in `con`; (column names, rows)."""
    cur = con.execute(compile_view(view, table_source(table)))
    cols = [d[0] for d in cur.description]
    return cols, cur.fetchall()


_ENGINE: list[duckdb.DuckDBPyConnection] = []
_ENGINE_LOCK = threading.Lock()


def _engine() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per process (opening one costs ~20 ms); callers take a cursor each."""
    with _ENGINE_LOCK:
        if not _ENGINE:
            _ENGINE.append(duckdb.connect())
        return _ENGINE[0]


def run_view_arrow(
    view: View | object, source_sql: str, con: duckdb.DuckDBPyConnection | None = None
) -> pa.Table:
    """Run a view over a source relation and return an Arrow table (columns in view order)."""
    v = view if isinstance(view, View) else parse_view(view)
    sql = compile_view(v, source_sql)
    own = con is None
    con = con or _engine().cursor()
    try:
        return con.sql(sql).to_arrow_table()
    except duckdb.Error as exc:
        raise ViewError(f"view over the source failed: {exc}") from exc
    finally:
        if own:
            con.close()


def write_table(table: pa.Table, out: Path) -> Path:
    """Write a result as Parquet, CSV or NDJSON (by suffix), staged then renamed into place."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    suffix = out.suffix.lower()
    if suffix == ".parquet":
        pq.write_table(table, tmp)
    elif suffix == ".csv":
        import pyarrow.csv as pacsv

        flat = table
        for i, f in enumerate(table.schema):
            if pa.types.is_list(f.type):
                flat = flat.set_column(
                    i, f.name, pa.array([json.dumps(x) for x in table.column(i).to_pylist()])
                )
        pacsv.write_csv(flat, tmp)
    elif suffix in (".ndjson", ".jsonl"):
        with open(tmp, "w", encoding="utf-8") as fh:
            for row in table.to_pylist():
                fh.write(json.dumps(row, default=str) + "\n")
    else:
        raise ViewError(f"{out}: output must end in .parquet, .csv or .ndjson")
    os.replace(tmp, out)
    return out


def materialize(view: View | object, lake_dir: Path, name: str | None = None) -> Path:
    """Run a view over the lake and store the result at layout.view_path(lake_dir, name)."""
    v = view if isinstance(view, View) else parse_view(view)
    name = name or v.name
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ViewError(f"materialize: a view name of letters, digits, '_' or '-' is required, got {name!r}")
    table = run_view_arrow(v, lake_source(lake_dir))
    return write_table(table, layout.view_path(Path(lake_dir), name))
