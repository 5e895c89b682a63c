"""ViewDefinition parsing and validation into a typed model (the views' intermediate model).

`parse_view(obj)` takes the ViewDefinition JSON (dict, JSON text or path) and returns a `View`:
each select node with its iteration (forEach / forEachOrNull / repeat), its columns (name, parsed
FHIRPath, declared FHIR type, collection flag), nested selects and unionAll branches, the where
filters and the resolved constants. Anything invalid raises `ViewError` with a message that names
the offending element. The SQL compiler and the reference interpreter both consume this model.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from medhub.views import fhirpath as fp


class ViewError(ValueError):
    """The ViewDefinition is invalid (or uses something this implementation does not support)."""


# FHIR primitive type -> DuckDB SQL type of the column (spec defaults; dates stay text to keep precision)
SQL_TYPES = {
    "boolean": "BOOLEAN",
    "integer": "INTEGER",
    "positiveInt": "INTEGER",
    "unsignedInt": "INTEGER",
    "integer64": "BIGINT",
    "decimal": "DOUBLE",
}
STRING_TYPES = {
    "string", "code", "id", "uri", "url", "canonical", "markdown", "oid", "uuid", "base64Binary",
    "date", "dateTime", "instant", "time", "xhtml",
}  # fmt: skip
KNOWN_TYPES = set(SQL_TYPES) | STRING_TYPES

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

# constant value[x] -> FHIRPath literal type
_CONSTANT_TYPES = {
    "valueBase64Binary": "string",
    "valueBoolean": "boolean",
    "valueCanonical": "string",
    "valueCode": "string",
    "valueDate": "date",
    "valueDateTime": "dateTime",
    "valueDecimal": "decimal",
    "valueId": "string",
    "valueInstant": "dateTime",
    "valueInteger": "integer",
    "valueInteger64": "integer",
    "valueOid": "string",
    "valuePositiveInt": "integer",
    "valueString": "string",
    "valueTime": "time",
    "valueUnsignedInt": "integer",
    "valueUri": "string",
    "valueUrl": "string",
    "valueUuid": "string",
}


@dataclass(frozen=True)
class Column:
    name: str
    path: str
    expr: fp.Node
    type: str | None  # declared FHIR type, or None
    collection: bool
    collection_declared: bool  # the view said collection: false/true explicitly

    @property
    def sql_type(self) -> str:
        base = SQL_TYPES.get(self.type or "", "VARCHAR")
        return f"{base}[]" if self.collection else base


@dataclass(frozen=True)
class Select:
    columns: tuple[Column, ...] = ()
    selects: tuple[Select, ...] = ()
    union_all: tuple[Select, ...] = ()
    for_each: fp.Node | None = None
    for_each_or_null: fp.Node | None = None
    repeat: tuple[fp.Node, ...] = ()

    def output_columns(self) -> list[Column]:
        """Columns this node produces, in the specification's order."""
        cols = list(self.columns)
        for s in self.selects:
            cols += s.output_columns()
        if self.union_all:
            cols += self.union_all[0].output_columns()
        return cols


@dataclass(frozen=True)
class View:
    resource: str
    select: Select
    where: tuple[fp.Node, ...]
    constants: dict[str, fp.Literal] = field(default_factory=dict)
    name: str | None = None

    def columns(self) -> list[Column]:
        return self.select.output_columns()


def load_view_json(source: object) -> dict:
    """A ViewDefinition as a dict from a dict, JSON text or a file path."""
    if isinstance(source, dict):
        return source
    if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith("{")):
        p = Path(source)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ViewError(f"{p}: cannot read the ViewDefinition: {exc.strerror or exc}") from exc
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ViewError(f"{p}: not valid JSON: {exc}") from exc
    elif isinstance(source, str):
        try:
            obj = json.loads(source)
        except json.JSONDecodeError as exc:
            raise ViewError(f"ViewDefinition is not valid JSON: {exc}") from exc
    else:
        raise ViewError(f"ViewDefinition must be a JSON object, got {type(source).__name__}")
    if not isinstance(obj, dict):
        raise ViewError("ViewDefinition must be a JSON object")
    return obj


def _path(value: object, where: str) -> fp.Node:
    if not isinstance(value, str):
        raise ViewError(f"{where}: a FHIRPath string is required, got {json.dumps(value)}")
    try:
        return fp.parse(value)
    except fp.FhirPathSyntaxError as exc:
        raise ViewError(f"{where}: {exc}") from exc


def _constants(raw: object) -> dict[str, fp.Literal]:
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise ViewError("constant: must be a list")
    out: dict[str, fp.Literal] = {}
    for i, c in enumerate(raw):
        where = f"constant[{i}]"
        if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not _NAME.match(c["name"]):
            raise ViewError(f"{where}: needs a name made of letters, digits and '_'")
        values = [k for k in c if k.startswith("value")]
        if len(values) != 1:
            raise ViewError(f"{where} ({c['name']}): exactly one value[x] is required, found {len(values)}")
        key = values[0]
        if key not in _CONSTANT_TYPES:
            raise ViewError(f"{where} ({c['name']}): unsupported constant type {key}")
        lit_type = _CONSTANT_TYPES[key]
        value = c[key]
        checks = {
            "boolean": lambda v: isinstance(v, bool),
            "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "decimal": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        }
        if not checks.get(lit_type, lambda v: isinstance(v, str))(value):
            raise ViewError(f"{where} ({c['name']}): {key} has the wrong JSON type: {json.dumps(value)}")
        if lit_type == "decimal":
            value = repr(float(value)) if isinstance(value, float) else str(value)
        if c["name"] in out:
            raise ViewError(f"{where}: constant {c['name']!r} defined twice")
        out[c["name"]] = fp.Literal(value, lit_type)
    return out


def _column(raw: object, where: str) -> Column:
    if not isinstance(raw, dict):
        raise ViewError(f"{where}: a column must be an object")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ViewError(
            f"{where}: column name {name!r} must start with a letter and use letters, digits, '_'"
        )
    col_type = raw.get("type")
    if col_type is not None and (not isinstance(col_type, str) or col_type not in KNOWN_TYPES):
        raise ViewError(f"{where} ({name}): unknown column type {col_type!r}")
    coll = raw.get("collection")
    if coll is not None and not isinstance(coll, bool):
        raise ViewError(f"{where} ({name}): collection must be true or false")
    return Column(
        name=name,
        path=raw.get("path"),
        expr=_path(raw.get("path"), f"{where} ({name}).path"),
        type=col_type,
        collection=bool(coll),
        collection_declared=coll is not None,
    )


def _select(raw: object, where: str) -> Select:
    if not isinstance(raw, dict):
        raise ViewError(f"{where}: a select must be an object")
    iters = [k for k in ("forEach", "forEachOrNull", "repeat") if k in raw]
    if len(iters) > 1:
        raise ViewError(f"{where}: only one of forEach, forEachOrNull, repeat may be given")
    columns = raw.get("column") or []
    selects = raw.get("select") or []
    union = raw.get("unionAll") or []
    for key, val in (("column", columns), ("select", selects), ("unionAll", union)):
        if not isinstance(val, list):
            raise ViewError(f"{where}.{key}: must be a list")
    repeat: tuple[fp.Node, ...] = ()
    if "repeat" in raw:
        if not isinstance(raw["repeat"], list) or not raw["repeat"]:
            raise ViewError(f"{where}.repeat: must be a non-empty list of FHIRPath strings")
        repeat = tuple(_path(p, f"{where}.repeat[{i}]") for i, p in enumerate(raw["repeat"]))
    node = Select(
        columns=tuple(_column(c, f"{where}.column[{i}]") for i, c in enumerate(columns)),
        selects=tuple(_select(s, f"{where}.select[{i}]") for i, s in enumerate(selects)),
        union_all=tuple(_select(s, f"{where}.unionAll[{i}]") for i, s in enumerate(union)),
        for_each=_path(raw["forEach"], f"{where}.forEach") if "forEach" in raw else None,
        for_each_or_null=_path(raw["forEachOrNull"], f"{where}.forEachOrNull")
        if "forEachOrNull" in raw
        else None,
        repeat=repeat,
    )
    if node.union_all:
        first = [(c.name) for c in node.union_all[0].output_columns()]
        for i, branch in enumerate(node.union_all[1:], start=1):
            names = [c.name for c in branch.output_columns()]
            types = {c.name: c.type for c in node.union_all[0].output_columns()}
            for c in branch.output_columns():
                other = types.get(c.name)
                if c.type and other and SQL_TYPES.get(c.type, "VARCHAR") != SQL_TYPES.get(other, "VARCHAR"):
                    raise ViewError(
                        f"{where}.unionAll[{i}]: column {c.name} has type {c.type}, "
                        f"but {types[c.name]} in unionAll[0]"
                    )
            if names != first:
                raise ViewError(
                    f"{where}.unionAll[{i}]: columns {names} differ from unionAll[0] columns {first} "
                    "(names and order must match)"
                )
    if not node.output_columns():
        raise ViewError(f"{where}: a select must produce at least one column")
    return node


def _free_constants(node: object) -> set[str]:
    if isinstance(node, fp.Constant):
        return {node.name}
    out: set[str] = set()
    if hasattr(node, "__dataclass_fields__"):
        for f in node.__dataclass_fields__:
            v = getattr(node, f)
            items = v if isinstance(v, tuple) else (v,)
            for item in items:
                if hasattr(item, "__dataclass_fields__"):
                    out |= _free_constants(item)
    return out


def _all_exprs(sel: Select) -> list[fp.Node]:
    out = [c.expr for c in sel.columns] + list(sel.repeat)
    out += [e for e in (sel.for_each, sel.for_each_or_null) if e is not None]
    for s in sel.selects + sel.union_all:
        out += _all_exprs(s)
    return out


BUILTIN_CONSTANTS = {"rowIndex", "resource", "rootResource", "context", "ucum", "sct", "loinc"}


def parse_view(source: object) -> View:
    """Parse and validate a ViewDefinition (dict, JSON text or file path) into a `View`."""
    raw = load_view_json(source)
    if raw.get("resourceType") not in (None, "ViewDefinition"):
        raise ViewError(f"resourceType must be ViewDefinition, got {raw.get('resourceType')!r}")
    resource = raw.get("resource")
    if not isinstance(resource, str) or not re.match(r"^[A-Z][A-Za-z]+$", resource):
        raise ViewError(f"resource: a FHIR resource type name is required, got {json.dumps(resource)}")
    sel_raw = raw.get("select")
    if not isinstance(sel_raw, list) or not sel_raw:
        raise ViewError("select: at least one select is required")
    root = Select(selects=tuple(_select(s, f"select[{i}]") for i, s in enumerate(sel_raw)))
    where_raw = raw.get("where") or []
    if not isinstance(where_raw, list):
        raise ViewError("where: must be a list")
    where = []
    for i, w in enumerate(where_raw):
        if not isinstance(w, dict):
            raise ViewError(f"where[{i}]: must be an object with a path")
        where.append(_path(w.get("path"), f"where[{i}].path"))
    constants = _constants(raw.get("constant"))
    used = set()
    for e in _all_exprs(root) + where:
        used |= _free_constants(e)
    missing = sorted(used - set(constants) - BUILTIN_CONSTANTS)
    if missing:
        raise ViewError(f"undefined constant(s): {', '.join('%' + m for m in missing)}")
    names = [c.name for c in root.output_columns()]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ViewError(f"column name(s) used more than once: {', '.join(dupes)}")
    return View(resource=resource, select=root, where=tuple(where), constants=constants, name=raw.get("name"))
