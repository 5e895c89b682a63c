"""Compile a `View` into one DuckDB SQL query.

Representation: a FHIRPath value compiles to either
  * a collection: SQL of type JSON[] (never NULL; empty list = empty collection), or
  * a node: a single JSON value (the focus; NULL means empty), or
  * a scalar: a typed SQL value (BOOLEAN, VARCHAR, BIGINT, DOUBLE) where NULL means empty.
Navigation flattens with list_transform/flatten, `where`/`exists` become list_filter lambdas.
Select nodes become correlated (lateral) subqueries: forEach/forEachOrNull/repeat unnest the
iteration collection with its 0-based index (%rowIndex), nested selects are cross joined, unionAll
branches are UNION ALL. `repeat` is a correlated recursive CTE numbered in pre-order.
Multi-valued non-collection columns raise at run time, as the spec asks.

Three shapes of query (`compile_view(..., mode=)`):
  * unnest (default): the shape of a hand-written query. Each iteration is unnested in its own
    projection (value and %rowIndex), each context's columns are computed right after its unnest,
    only live columns are carried, and every top-level path of the resource is read with one
    json_extract call. unionAll branches become a list of row structs, unnested as one stage.
  * lateral (used for repeat): each select node is a correlated subquery; repeat is a recursive CTE.
  * list: each resource's rows are built as a list of structs by lambdas, then unnested.
All three must agree (tests run the suite in several modes; a property test checks them against
the reference interpreter).

The query reads a relation with columns (resource_type, resource) given as `source_sql`.
"""

from __future__ import annotations

import contextvars
import hashlib
import itertools
import re
from dataclasses import dataclass, field

from medhub.views import fhirpath as fp
from medhub.views.definition import SQL_TYPES, Column, Select, View, ViewError

_NUMERIC_JSON = "('BIGINT','UBIGINT','DOUBLE')"


def q(s: str) -> str:
    """SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


def qi(s: str) -> str:
    """SQL identifier."""
    return '"' + s.replace('"', '""') + '"'


def json_key(name: str) -> str:
    return q('$."' + name.replace('"', '\\"') + '"')


@dataclass(frozen=True)
class Val:
    """A compiled FHIRPath value.

    kind: coll (JSON[]), node (one JSON value or NULL), jv (a JSON value where an array is a
    collection), path (navigation `keys` from `sql`, materialized lazily: one json_extract when
    every step is an object, list navigation otherwise), scalar (typed SQL; NULL = empty).
    """

    kind: str
    sql: str
    type: str | None = None  # FHIRPath type where known: string, integer, decimal, boolean, date, ...
    keys: tuple = ()
    single: bool = True  # path: `sql` is a single node (not a possible array)


_SCALAR_SQL = {"string": "VARCHAR", "integer": "BIGINT", "decimal": "DOUBLE", "boolean": "BOOLEAN"}


@dataclass
class Ctx:
    node: str  # SQL of the focus (a single JSON value)
    root: str  # SQL of the resource
    row_index: str
    constants: dict
    counter: itertools.count = field(default_factory=itertools.count)

    def var(self, prefix: str = "x") -> str:
        return f"{prefix}{next(self.counter)}"

    def at(self, node: str, row_index: str | None = None) -> Ctx:
        return Ctx(node, self.root, row_index or self.row_index, self.constants, self.counter)


# ---------------------------------------------------------------- conversions


def coll_of_json(j: str) -> str:
    """A JSON value (array, single value or NULL) as a JSON[] collection."""
    return (
        f"(CASE WHEN {j} IS NULL THEN []::JSON[] WHEN starts_with(CAST({j} AS VARCHAR), '[') "
        f"THEN CAST({j} AS JSON[]) ELSE [{j}] END)"
    )


def child(node: str, name: str) -> str:
    j = f"json_extract({node}, {json_key(name)})"
    return coll_of_json(j)


def json_path(keys: tuple) -> str:
    return q("$" + "".join('."' + k.replace('"', '\\"') + '"' for k in keys))


def nav_generic(v: Val, ctx: Ctx | None = None) -> str:
    """List navigation of a path (correct whatever the cardinalities)."""
    counter = ctx.counter if ctx else itertools.count()
    if v.single:
        # bound through a one-element lambda so the extraction is not hoisted out of a lazy branch
        jx = f"j{next(counter)}"
        first = f"json_extract({v.sql}, {json_key(v.keys[0])})"
        coll = f"list_transform([{first}], lambda {jx}: {coll_of_json(jx)})[1]"
        rest = v.keys[1:]
    else:
        coll = coll_of_json(v.sql)
        rest = v.keys
    for k in rest:
        x = f"p{next(counter)}"
        coll = f"flatten(list_transform({coll}, lambda {x}: {child(x, k)}))"
    return coll


def path_jv(v: Val) -> str:
    """A path as one JSON value: a single json_extract, or list navigation when that finds nothing."""
    fast = f"json_extract({v.sql}, {json_path(v.keys)})"
    if len(v.keys) == 1 and v.single:
        return fast
    if len(v.keys) == 2 and v.single:
        # the first step is an object (fast) or an array: `$.a[*].b` then covers it
        wild = "$[*]." + '"' + v.keys[1].replace('"', '\\"') + '"'
        first = f"json_extract({v.sql}, {json_key(v.keys[0])})"
        e = "w" + hashlib.sha1(repr(v).encode()).hexdigest()[:8]
        spread = f"flatten(list_transform(json_extract({first}, {q(wild)}), lambda {e}: {coll_of_json(e)}))"
        return f"coalesce({fast}, CAST({spread} AS JSON))"
    return f"coalesce({fast}, CAST({nav_generic(v)} AS JSON))"


def jv_of(v: Val) -> str:
    return path_jv(v) if v.kind == "path" else v.sql


# one-element lambdas inside correlated subqueries trip a DuckDB 2.0 binder assertion
# ("Failed to bind column reference"), so lateral mode writes the repeated expression out instead
_BIND: contextvars.ContextVar[bool] = contextvars.ContextVar("medhub_views_bind", default=True)
_SIMPLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def bind(expr: str, body) -> str:  # noqa: ANN001 - body: str -> str
    """Evaluate `expr` once and use it several times in `body` (a one-element lambda), unless it is a
    plain column or variable already. DuckDB shares repeated subexpressions in projections, but not
    in filters or inside lambdas."""
    if _SIMPLE.match(expr) or not _BIND.get():
        return body(expr)
    v = "b" + hashlib.sha1(expr.encode()).hexdigest()[:10]
    return f"list_transform([{expr}], lambda {v}: {body(v)})[1]"


def as_coll(v: Val) -> str:
    if v.kind == "coll":
        return v.sql
    if v.kind == "path":
        if len(v.keys) <= 2 and v.single:
            return bind(path_jv(v), coll_of_json)
        return nav_generic(v)
    if v.kind == "jv":
        return coll_of_json(v.sql)
    if v.kind == "node":
        return f"(CASE WHEN {v.sql} IS NULL THEN []::JSON[] ELSE [{v.sql}::JSON] END)"
    return f"(CASE WHEN {v.sql} IS NULL THEN []::JSON[] ELSE [to_json({v.sql})] END)"


def json_to(j: str, typ: str | None) -> str:
    """Convert one JSON value to a typed SQL scalar."""
    if typ in ("integer",):
        return f"TRY_CAST({j} AS BIGINT)"
    if typ == "decimal":
        return f"TRY_CAST({j} AS DOUBLE)"
    if typ == "boolean":
        return f"TRY_CAST({j} AS BOOLEAN)"
    return f"json_extract_string({j}, '$')"


def single_json(v: Val, what: str) -> str:
    """The single JSON item of a value (NULL when empty); raise at run time on more than one."""
    if v.kind == "node":
        return v.sql
    if v.kind == "scalar":
        return f"to_json({v.sql})"
    err = q(what + ": expected a single value, got a collection")
    if v.kind in ("path", "jv"):

        def pick(j: str) -> str:
            many = f"json_array_length({j}) > 1"
            return (
                f"(CASE WHEN starts_with(CAST({j} AS VARCHAR), '[') THEN (CASE WHEN {many} THEN error({err}) "
                f"ELSE json_extract({j}, '$[0]') END) ELSE {j} END)"
            )

        return bind(jv_of(v), pick)
    return f"(CASE WHEN len({v.sql}) > 1 THEN error({err}) ELSE {v.sql}[1] END)"


def as_scalar(v: Val, typ: str | None, what: str) -> str:
    if v.kind == "scalar":
        if typ is None or typ == v.type:
            return v.sql
        return f"TRY_CAST({v.sql} AS {_SCALAR_SQL.get(typ or '', 'VARCHAR')})"
    t = typ or v.type
    if v.kind == "path" and len(v.keys) == 1 and v.single and t not in ("integer", "decimal", "boolean"):
        # one step from a single node: read the string directly; only an array needs the slow path
        s = f"json_extract_string({v.sql}, {json_key(v.keys[0])})"
        return f"(CASE WHEN starts_with({s}, '[') THEN {json_to(single_json(v, what), t)} ELSE {s} END)"
    return json_to(single_json(v, what), t)


def as_bool(v: Val, what: str, strict: bool = False) -> str:
    """FHIRPath singleton evaluation to a boolean (NULL = empty)."""
    if v.kind == "scalar":
        if v.type == "boolean":
            return v.sql
        if strict:
            raise ViewError(f"{what}: expression does not evaluate to a boolean")
        return f"({v.sql} IS NOT NULL)"
    j = single_json(v, what)
    other = f"error({q(what + ': expression does not evaluate to a boolean')})" if strict else "true"
    boolean = f"WHEN json_type({j}) = 'BOOLEAN' THEN {j}::BOOLEAN"
    return f"(CASE WHEN {j} IS NULL THEN NULL {boolean} ELSE {other} END)"


# ---------------------------------------------------------------- expressions


def compile_expr(node: fp.Node, ctx: Ctx) -> Val:
    if isinstance(node, fp.Literal):
        return _literal(node)
    if isinstance(node, fp.This):
        return Val("node", ctx.node)
    if isinstance(node, fp.Constant):
        if node.name == "rowIndex":
            return Val("scalar", ctx.row_index, "integer")
        if node.name in ("resource", "rootResource", "context"):
            return Val("node", ctx.root)
        if node.name not in ctx.constants:
            raise ViewError(f"undefined constant %{node.name}")
        return _literal(ctx.constants[node.name])
    if isinstance(node, fp.Identifier):
        return Val("path", ctx.node, keys=(node.name,))
    if isinstance(node, fp.Member):
        base = compile_expr(node.base, ctx)
        return member(base, node.name, ctx)
    if isinstance(node, fp.Index):
        base = compile_expr(node.base, ctx)
        idx = as_scalar(compile_expr(node.index, ctx), "integer", "indexer")
        if base.kind in ("path", "jv"):
            j = jv_of(base)
            return Val(
                "node",
                f"(CASE WHEN starts_with(CAST({j} AS VARCHAR), '[') "
                f"THEN json_extract({j}, '$[' || ({idx}) || ']') WHEN ({idx}) = 0 THEN {j} END)",
                base.type,
            )
        c = as_coll(base)
        return Val("coll", f"{c}[({idx}) + 1:({idx}) + 1]", base.type)
    if isinstance(node, fp.Call):
        return _call(node, ctx)
    if isinstance(node, fp.Unary):
        v = compile_expr(node.operand, ctx)
        t = v.type if v.type in ("integer", "decimal") else "decimal"
        return Val("scalar", f"(-{as_scalar(v, t, 'unary minus')})", t)
    if isinstance(node, fp.Binary):
        return _binary(node, ctx)
    raise ViewError(f"unsupported FHIRPath node {node!r}")


def _literal(lit: fp.Literal) -> Val:
    t = lit.type
    if t == "empty":
        return Val("coll", "[]::JSON[]")
    if t == "boolean":
        return Val("scalar", "true" if lit.value else "false", "boolean")
    if t == "integer":
        return Val("scalar", f"CAST({int(lit.value)} AS BIGINT)", "integer")
    if t == "decimal":
        return Val("scalar", f"CAST({q(str(lit.value))} AS DOUBLE)", "decimal")
    return Val("scalar", q(str(lit.value)), "string" if t == "string" else t)


def member(base: Val, name: str, ctx: Ctx) -> Val:
    if base.kind == "node":
        return Val("path", base.sql, keys=(name,))
    if base.kind == "path":
        return Val("path", base.sql, keys=base.keys + (name,), single=base.single)
    if base.kind == "jv":
        return Val("path", base.sql, keys=(name,), single=False)
    if base.kind == "scalar":
        return Val("coll", "[]::JSON[]")
    x = ctx.var()
    return Val("coll", f"flatten(list_transform({base.sql}, lambda {x}: {child(x, name)}))")


_TYPE_TESTS = {
    "string": "'VARCHAR'",
    "code": "'VARCHAR'",
    "id": "'VARCHAR'",
    "uri": "'VARCHAR'",
    "url": "'VARCHAR'",
    "canonical": "'VARCHAR'",
    "oid": "'VARCHAR'",
    "uuid": "'VARCHAR'",
    "markdown": "'VARCHAR'",
    "base64Binary": "'VARCHAR'",
    "date": "'VARCHAR'",
    "dateTime": "'VARCHAR'",
    "instant": "'VARCHAR'",
    "time": "'VARCHAR'",
    "boolean": "'BOOLEAN'",
    "integer": "'BIGINT','UBIGINT'",
    "decimal": "'BIGINT','UBIGINT','DOUBLE'",
}
_FP_TYPE_OF = {
    "integer": "integer", "positiveInt": "integer", "unsignedInt": "integer", "integer64": "integer",
    "decimal": "decimal", "boolean": "boolean", "date": "date", "dateTime": "dateTime", "instant": "dateTime",
    "time": "time",
}  # fmt: skip


def _type_name(arg: fp.Node) -> str:
    if isinstance(arg, fp.Identifier):
        name = arg.name
    elif isinstance(arg, fp.Member) and isinstance(arg.base, fp.Identifier):
        name = arg.name  # FHIR.string / System.String
    else:
        raise ViewError(f"ofType: expected a type name, got {arg!r}")
    return name


def _of_type(node: fp.Call, ctx: Ctx) -> Val:
    if len(node.args) != 1:
        raise ViewError("ofType() takes one type name")
    t = _type_name(node.args[0])
    fhir_t = (
        t[0].lower() + t[1:]
        if t in ("String", "Boolean", "Integer", "Decimal", "Date", "DateTime", "Time")
        else t
    )
    fp_type = _FP_TYPE_OF.get(fhir_t, "string" if fhir_t in _TYPE_TESTS else None)
    base_node = node.base
    # choice element: value.ofType(Quantity) -> valueQuantity
    if isinstance(base_node, fp.Member | fp.Identifier):
        choice = base_node.name + fhir_t[0].upper() + fhir_t[1:]
        parent = (
            compile_expr(base_node.base, ctx) if isinstance(base_node, fp.Member) else Val("node", ctx.node)
        )
        m = member(parent, choice, ctx)
        return Val(m.kind, m.sql, fp_type, m.keys, m.single)
    base = compile_expr(base_node, ctx) if base_node is not None else Val("node", ctx.node)
    c = as_coll(base)
    x = ctx.var()
    test = (
        f"json_type({x}) IN ({_TYPE_TESTS[fhir_t]})"
        if fhir_t in _TYPE_TESTS
        else f"json_type({x}) = 'OBJECT'"
    )
    return Val("coll", f"list_filter({c}, lambda {x}: {test})", fp_type)


def _call(node: fp.Call, ctx: Ctx) -> Val:
    name = node.name
    if name == "ofType":
        return _of_type(node, ctx)
    base = compile_expr(node.base, ctx) if node.base is not None else Val("node", ctx.node)
    args = node.args

    def nargs(*allowed: int) -> None:
        if len(args) not in allowed:
            raise ViewError(f"{name}() takes {' or '.join(map(str, allowed))} argument(s), got {len(args)}")

    if name in ("where", "exists", "all", "select") and args:
        nargs(1)
        c = as_coll(base)
        x = ctx.var()
        crit_v = compile_expr(args[0], ctx.at(x))
        if name == "select":
            return Val("coll", f"flatten(list_transform({c}, lambda {x}: {as_coll(crit_v)}))", crit_v.type)
        crit = as_bool(crit_v, f"{name}()")
        if name == "all":
            return Val(
                "scalar",
                f"(len(list_filter({c}, lambda {x}: coalesce(({crit}), false))) = len({c}))",
                "boolean",
            )
        filtered = f"list_filter({c}, lambda {x}: coalesce(({crit}), false))"
        if name == "where":
            return Val("coll", filtered, base.type)
        return Val("scalar", f"(len({filtered}) > 0)", "boolean")
    if name in ("exists", "empty") and base.kind in ("path", "jv", "node"):
        nargs(0)
        j = jv_of(base)
        some = (
            f"(CASE WHEN {j} IS NULL THEN false WHEN starts_with(CAST({j} AS VARCHAR), '[') "
            f"THEN json_array_length({j}) > 0 ELSE true END)"
        )
        return Val("scalar", some if name == "exists" else f"(NOT {some})", "boolean")
    if name == "exists":
        return Val("scalar", f"(len({as_coll(base)}) > 0)", "boolean")
    if name == "empty":
        nargs(0)
        return Val("scalar", f"(len({as_coll(base)}) = 0)", "boolean")
    if name == "count":
        nargs(0)
        return Val("scalar", f"CAST(len({as_coll(base)}) AS BIGINT)", "integer")
    if name == "first" and base.kind in ("path", "jv"):
        nargs(0)
        j = jv_of(base)
        return Val(
            "node",
            f"(CASE WHEN starts_with(CAST({j} AS VARCHAR), '[') THEN json_extract({j}, '$[0]') ELSE {j} END)",
            base.type,
        )
    if name == "first":
        nargs(0)
        return Val("coll", f"{as_coll(base)}[1:1]", base.type)
    if name == "last":
        nargs(0)
        c = as_coll(base)
        return Val("coll", f"{c}[len({c}):len({c})]", base.type)
    if name == "tail":
        nargs(0)
        return Val("coll", f"{as_coll(base)}[2:]", base.type)
    if name in ("not",):
        nargs(0)
        return Val("scalar", f"(NOT {as_bool(base, 'not()')})", "boolean")
    if name == "join":
        nargs(0, 1)
        sep = as_scalar(compile_expr(args[0], ctx), "string", "join separator") if args else "''"
        c = as_coll(base)
        x = ctx.var()
        return Val(
            "scalar",
            f"(CASE WHEN len({c}) = 0 THEN NULL ELSE array_to_string(list_transform({c}, "
            f"lambda {x}: json_extract_string({x}, '$')), {sep}) END)",
            "string",
        )
    if name == "extension":
        nargs(1)
        url = as_scalar(compile_expr(args[0], ctx), "string", "extension url")
        ext = member(base, "extension", ctx)
        x = ctx.var()
        return Val(
            "coll", f"list_filter({as_coll(ext)}, lambda {x}: json_extract_string({x}, '$.url') = {url})"
        )
    if name == "getResourceKey":
        nargs(0)
        j = single_json(base, "getResourceKey()")
        return Val("scalar", f"json_extract_string({j}, '$.id')", "string")
    if name == "getReferenceKey":
        nargs(0, 1)
        typ = _type_name(args[0]) if args else None
        if base.kind in ("path", "jv", "node"):
            # one reference (the usual case); more than one raises like any single-valued use
            return Val("scalar", reference_key_sql(single_json(base, "getReferenceKey()"), typ), "string")
        return Val("coll", _ref_keys_list(as_coll(base), typ, ctx), "string")
    if name in ("lowBoundary", "highBoundary"):
        nargs(0, 1)
        j = single_json(base, f"{name}()")
        return boundary_sql(j, base.type, low=name == "lowBoundary")
    if name in ("toString",):
        return Val("scalar", as_scalar(base, "string", name), "string")
    if name in ("toInteger",):
        return Val("scalar", as_scalar(base, "integer", name), "integer")
    if name in ("toDecimal",):
        return Val("scalar", as_scalar(base, "decimal", name), "decimal")
    if name in ("hasValue",):
        return Val("scalar", f"(len({as_coll(base)}) > 0)", "boolean")
    if name in ("distinct",):
        return Val("coll", f"list_distinct({as_coll(base)})", base.type)
    if name in ("startsWith", "endsWith", "contains") and len(args) == 1:
        s = as_scalar(base, "string", name)
        a = as_scalar(compile_expr(args[0], ctx), "string", name)
        fn = {"startsWith": "starts_with", "endsWith": "ends_with", "contains": "contains"}[name]
        return Val("scalar", f"{fn}({s}, {a})", "boolean")
    if name in ("lower", "upper", "trim", "length"):
        s = as_scalar(base, "string", name)
        if name == "length":
            return Val("scalar", f"CAST(length({s}) AS BIGINT)", "integer")
        return Val("scalar", f"{name}({s})", "string")
    raise ViewError(f"FHIRPath function {name}() is not supported by this compiler")


def _ref_keys_list(coll: str, typ: str | None, ctx: Ctx) -> str:
    x, y = ctx.var(), ctx.var()
    key = reference_key_sql(x, typ)
    return f"list_filter(list_transform({coll}, lambda {x}: to_json({key})), lambda {y}: {y} IS NOT NULL)"


def reference_key_sql(x: str, typ: str | None) -> str:
    """Key of a Reference JSON value `x`: the id of a relative, absolute or urn:uuid/urn:oid reference.

    `urn:uuid:<id>` and `urn:oid:<id>` give <id> (of any type unless the Reference's `type` says
    otherwise); `[base/]<Type>/<id>[/_history/<v>]` gives <id> when <Type> is the one asked for (or
    any capitalized type name when none is asked for); anything else (e.g. `#contained`) has no key.
    String functions only: this runs once per reference, so it avoids regular expressions.
    """
    ref = f"json_extract_string({x}, '$.reference')"

    def with_ref(r: str) -> str:
        def with_parts(ps: str) -> str:
            type_ok = f"{ps}[-2] = {q(typ)}" if typ else f"ascii({ps}[-2]) BETWEEN 65 AND 90"
            return f"(CASE WHEN len({ps}) >= 2 AND {type_ok} AND {ps}[-1] <> '' THEN {ps}[-1] END)"

        parts = bind(f"string_split(split_part({r}, '/_history/', 1), '/')", with_parts)
        urn_ok = f"coalesce(json_extract_string({x}, '$.type') = {q(typ)}, true)" if typ else "true"
        return (
            f"(CASE WHEN starts_with({r}, 'urn:uuid:') THEN (CASE WHEN {urn_ok} THEN substr({r}, 10) END) "
            f"WHEN starts_with({r}, 'urn:oid:') THEN (CASE WHEN {urn_ok} THEN substr({r}, 9) END) "
            f"ELSE {parts} END)"
        )

    return bind(ref, with_ref)


def boundary_sql(j: str, typ: str | None, low: bool) -> Val:
    """lowBoundary()/highBoundary() of a decimal, date, dateTime or time JSON value."""
    s = f"json_extract_string({j}, '$')"
    is_num = f"json_type({j}) IN {_NUMERIC_JSON}"
    # decimal: half a unit of the last digit given
    digits = f"(CASE WHEN contains({s}, '.') THEN length({s}) - strpos({s}, '.') ELSE 0 END)"
    sign = "-" if low else "+"
    dec = f"round(CAST({s} AS DOUBLE) {sign} 0.5 * pow(10, -{digits}), CAST({digits} + 1 AS INTEGER))"
    # date parts
    y = f"substr({s}, 1, 4)"
    m = f"coalesce(nullif(substr({s}, 6, 2), ''), {q('01' if low else '12')})"
    first_day = f"{y} || '-' || {m} || '-01'"
    last_day = f"strftime(last_day(CAST({first_day} AS DATE)), '%Y-%m-%d')"
    day = f"coalesce(nullif(substr({s}, 9, 2), ''), {q('01') if low else f'substr({last_day}, 9, 2)'})"
    date_full = f"({y} || '-' || {m} || '-' || {day})"
    tz = q("+14:00" if low else "-12:00")
    clock = q("T00:00:00.000" if low else "T23:59:59.999")
    fill = "000" if low else "999"
    time_part = f"regexp_extract({s}, 'T([0-9:.]+)', 1)"
    zone = f"regexp_extract({s}, '(Z|[+-][0-9]{{2}}:[0-9]{{2}})$', 1)"

    def pad_time(t: str) -> str:
        hh = f"substr({t}, 1, 2)"
        mm = f"coalesce(nullif(substr({t}, 4, 2), ''), '{'00' if low else '59'}')"
        ss = f"coalesce(nullif(substr({t}, 7, 2), ''), '{'00' if low else '59'}')"
        ms = f"rpad(coalesce(nullif(substr({t}, 10), ''), ''), 3, '{fill[0]}')"
        return f"({hh} || ':' || {mm} || ':' || {ss} || '.' || {ms})"

    dt = (
        f"(CASE WHEN {time_part} = '' THEN {date_full} || {clock} || {tz} "
        f"ELSE {date_full} || 'T' || {pad_time(time_part)} || coalesce(nullif({zone}, ''), {tz}) END)"
    )
    is_time = f"regexp_matches({s}, '^[0-9]{{2}}(:[0-9]{{2}})?(:[0-9]{{2}}(\\.[0-9]+)?)?$')"
    is_date = f"regexp_matches({s}, '^[0-9]{{4}}(-[0-9]{{2}}(-[0-9]{{2}})?)?$')"
    if typ == "decimal" or typ == "integer":
        return Val("scalar", f"(CASE WHEN {is_num} THEN {dec} END)", "decimal")
    if typ == "dateTime":
        return Val("scalar", f"(CASE WHEN {j} IS NOT NULL THEN {dt} END)", "dateTime")
    if typ == "date":
        return Val("scalar", f"(CASE WHEN {j} IS NOT NULL THEN {date_full} END)", "date")
    if typ == "time":
        return Val("scalar", f"(CASE WHEN {j} IS NOT NULL THEN {pad_time(s)} END)", "time")
    sql = (
        f"(CASE WHEN {j} IS NULL THEN NULL WHEN {is_num} THEN CAST({dec} AS VARCHAR) "
        f"WHEN {is_time} THEN {pad_time(s)} WHEN {is_date} THEN {date_full} ELSE {dt} END)"
    )
    return Val("scalar", sql, "string")


_CMP = {"=": "=", "!=": "<>", "<": "<", ">": ">", "<=": "<=", ">=": ">=", "~": "=", "!~": "<>"}
_ARITH = {"+": "+", "-": "-", "*": "*", "/": "/", "div": "//", "mod": "%"}


def _binary(node: fp.Binary, ctx: Ctx) -> Val:
    op = node.op
    left = compile_expr(node.left, ctx)
    right = compile_expr(node.right, ctx)
    if op in ("and", "or"):
        return Val("scalar", f"({as_bool(left, op)} {op.upper()} {as_bool(right, op)})", "boolean")
    if op == "xor":
        return Val("scalar", f"({as_bool(left, op)} <> {as_bool(right, op)})", "boolean")
    if op == "implies":
        return Val("scalar", f"((NOT {as_bool(left, op)}) OR {as_bool(right, op)})", "boolean")
    if op == "|":
        return Val("coll", f"list_distinct(list_concat({as_coll(left)}, {as_coll(right)}))")
    if op in ("in", "contains"):
        item, coll = (left, right) if op == "in" else (right, left)
        t = item.type or "string"
        x = ctx.var()
        it = as_scalar(item, t, op)
        return Val(
            "scalar",
            f"(CASE WHEN {it} IS NULL THEN NULL ELSE "
            f"len(list_filter({as_coll(coll)}, lambda {x}: {json_to(x, t)} = {it})) > 0 END)",
            "boolean",
        )
    if op in _CMP:
        return _compare(op, left, right)
    if op == "&":
        a = f"coalesce({as_scalar(left, 'string', op)}, '')"
        b = f"coalesce({as_scalar(right, 'string', op)}, '')"
        return Val("scalar", f"({a} || {b})", "string")
    if op in _ARITH:
        types = {left.type, right.type}
        if op == "+" and types & {"string"} and not types & {"integer", "decimal"}:
            return Val(
                "scalar", f"({as_scalar(left, 'string', op)} || {as_scalar(right, 'string', op)})", "string"
            )
        t = "integer" if types <= {"integer"} and op not in ("/",) else "decimal"
        a, b = as_scalar(left, t, op), as_scalar(right, t, op)
        if op == "/":
            return Val("scalar", f"(CASE WHEN {b} = 0 THEN NULL ELSE {a} / {b} END)", "decimal")
        if op in ("div", "mod"):
            return Val("scalar", f"(CASE WHEN {b} = 0 THEN NULL ELSE {a} {_ARITH[op]} {b} END)", t)
        return Val("scalar", f"({a} {_ARITH[op]} {b})", t)
    raise ViewError(f"FHIRPath operator {op!r} is not supported")


def _string_literal(v: Val) -> bool:
    """A plain string literal whose JSON text is itself plus quotes (no escapes needed)."""
    if not (v.kind == "scalar" and v.type == "string" and v.sql.startswith("'")):
        return False
    body = v.sql[1:-1].replace("''", "'")
    return not body.startswith("[") and not any(c in body for c in '"\\') and all(ord(c) >= 32 for c in body)


def _compare(op: str, left: Val, right: Val) -> Val:
    sql_op = _CMP[op]
    if (
        op in ("=", "!=")
        and _string_literal(right)
        and left.kind == "path"
        and len(left.keys) == 1
        and left.single
    ):
        # one element against a string: read it as text; an array (several items) never equals one
        # string (FHIRPath: collections of different sizes are not equal) and its JSON text cannot
        # equal a literal that does not start with '['
        s = f"json_extract_string({left.sql}, {json_key(left.keys[0])})"
        lit = right.sql[1:-1]
        one = f"'[\"{lit}\"]'"  # the same string as a one-item array, as DuckDB prints it
        neg = "NOT " if op == "!=" else ""
        return Val("scalar", f"({s} {neg}IN ({right.sql}, {one}))", "boolean")
    typed = left.type or right.type
    if left.kind == "scalar" or right.kind == "scalar" or typed:
        t = typed
        if t in ("date", "dateTime", "time"):
            t = "string"
        a, b = as_scalar(left, t, op), as_scalar(right, t, op)
        if op in ("~", "!~") and t == "string":
            a, b = f"lower({a})", f"lower({b})"
        return Val("scalar", f"({a} {sql_op} {b})", "boolean")
    ja, jb = single_json(left, op), single_json(right, op)
    sql = (
        f"(CASE WHEN json_type({ja}) IN {_NUMERIC_JSON} AND json_type({jb}) IN {_NUMERIC_JSON} "
        f"THEN CAST({ja} AS DOUBLE) {sql_op} CAST({jb} AS DOUBLE) "
        f"WHEN json_type({ja}) IN ('OBJECT','ARRAY') OR json_type({jb}) IN ('OBJECT','ARRAY') "
        f"THEN CAST({ja} AS VARCHAR) {sql_op} CAST({jb} AS VARCHAR) "
        f"ELSE json_extract_string({ja}, '$') {sql_op} json_extract_string({jb}, '$') END)"
    )
    return Val("scalar", sql, "boolean")


# ---------------------------------------------------------------- columns and selects


def column_sql(col: Column, ctx: Ctx) -> str:
    v = compile_expr(col.expr, ctx)
    what = f"column {col.name}"
    target = col.type
    if col.collection:
        c = as_coll(v)
        x = ctx.var()
        return f"list_transform({c}, lambda {x}: {out_cast(Val('node', x, v.type), target, what)})"
    return out_cast(v, target, what)


def out_cast(v: Val, target: str | None, what: str) -> str:
    sql_type = SQL_TYPES.get(target or "")
    if target is None and v.kind == "scalar":
        return v.sql
    if target is None and v.type in ("integer", "decimal", "boolean"):
        return as_scalar(v, v.type, what)
    if sql_type is None:
        if v.kind == "scalar":
            return f"CAST({v.sql} AS VARCHAR)"
        return f"json_extract_string({single_json(v, what)}, '$')"
    fp_type = {"BOOLEAN": "boolean", "DOUBLE": "decimal"}.get(sql_type, "integer")
    return f"CAST({as_scalar(v, fp_type, what)} AS {sql_type})"


def column_type(col: Column, ctx: Ctx) -> str:
    """SQL type of a column (declared, or inferred from the expression)."""
    if col.type:
        return col.sql_type
    v = compile_expr(col.expr, ctx)
    base = (
        _SCALAR_SQL.get(v.type or "", "VARCHAR")
        if (v.kind == "scalar" or v.type in _SCALAR_SQL)
        else "VARCHAR"
    )
    return f"{base}[]" if col.collection else base


def iteration(sel: Select, ctx: Ctx) -> tuple[str, bool] | None:
    """SQL of the collection a select iterates over, and whether it keeps a null row when empty."""
    if sel.for_each is not None:
        return as_coll(compile_expr(sel.for_each, ctx)), False
    if sel.for_each_or_null is not None:
        return as_coll(compile_expr(sel.for_each_or_null, ctx)), True
    return None


def _children(paths: tuple, node: str, ctx: Ctx) -> str:
    parts = [as_coll(compile_expr(p, ctx.at(node))) for p in paths]
    return parts[0] if len(parts) == 1 else f"flatten([{', '.join(parts)}])"


def descendants_sql(paths: tuple, ctx: Ctx) -> str:
    """Rows (n, i): every node reachable through `paths` repeatedly, i = its pre-order position.

    A recursive CTE correlated with the current row; each node carries its path of child positions,
    and pre-order is the lexicographic order of those paths.
    """
    d = ctx.var("d")
    k = ctx.var("k")
    first = _children(paths, ctx.node, ctx)
    step = _children(paths, f"{d}.n", ctx)
    return (
        f"WITH RECURSIVE {d}(n, p) AS ("
        f"SELECT unnest(c) AS n, unnest(list_transform(range(len(c)), lambda {k}: [{k}])) AS p "
        f"FROM (SELECT {first} AS c) "
        f"UNION ALL SELECT unnest(c) AS n, "
        f"unnest(list_transform(range(len(c)), lambda {k}: list_append(pp, {k}))) "
        f"FROM (SELECT {step} AS c, {d}.p AS pp FROM {d})) "
        f"SELECT n, CAST(row_number() OVER (ORDER BY p) - 1 AS BIGINT) AS i FROM {d}"
    )


def select_sql(sel: Select, ctx: Ctx) -> str:
    """A correlated subquery producing the rows of one select node in context `ctx`."""
    t = ctx.var("t")
    if sel.repeat:
        inner = ctx.at(f"{t}.n", f"{t}.i")
        b = ctx.var("b")
        return f"SELECT {b}.* FROM ({descendants_sql(sel.repeat, ctx)}) {t}, ({body_sql(sel, inner)}) {b}"
    it = iteration(sel, ctx)
    if it is None:
        return body_sql(sel, ctx)
    coll, or_null = it
    inner = ctx.at(f"{t}.n", f"{t}.i")
    b = ctx.var("b")
    sql = (
        f"SELECT {b}.* FROM (SELECT unnest(c) AS n, unnest(range(len(c))) AS i "
        f"FROM (SELECT {coll} AS c)) {t}, "
        f"({body_sql(sel, inner)}) {b}"
    )
    if or_null:
        nulls = ", ".join(
            f"CAST({'0' if _is_row_index(c) else 'NULL'} AS {column_type(c, inner)}) AS {qi(c.name)}"
            for c in sel.output_columns()
        )
        sql += f" UNION ALL SELECT {nulls} FROM (SELECT {coll} AS c) WHERE len(c) = 0"
    return sql


def _is_row_index(col: Column) -> bool:
    """The null row of forEachOrNull still numbers itself: %rowIndex is 0 there."""
    return isinstance(col.expr, fp.Constant) and col.expr.name == "rowIndex"


def body_sql(sel: Select, ctx: Ctx) -> str:
    items = [f"{column_sql(c, ctx)} AS {qi(c.name)}" for c in sel.columns]
    froms = []
    for sub in sel.selects:
        a = ctx.var("s")
        froms.append(f"({select_sql(sub, ctx)}) {a}")
        items += [f"{a}.{qi(c.name)}" for c in sub.output_columns()]
    if sel.union_all:
        a = ctx.var("u")
        union = " UNION ALL ".join(f"({select_sql(u, ctx)})" for u in sel.union_all)
        froms.append(f"({union}) {a}")
        items += [f"{a}.{qi(c.name)}" for c in sel.union_all[0].output_columns()]
    sql = "SELECT " + ", ".join(items)
    if froms:
        sql += " FROM " + ", ".join(froms)
    return sql


# ---------------------------------------------------------------- list mode (no lateral joins)


def _has_repeat(sel: Select) -> bool:
    return bool(sel.repeat) or any(_has_repeat(s) for s in sel.selects + sel.union_all)


def _has_union(sel: Select) -> bool:
    return bool(sel.union_all) or any(_has_union(s) for s in sel.selects)


def _single_row(sel: Select) -> bool:
    """True when a select yields exactly one row per context (no iteration, no unionAll)."""
    if sel.for_each is not None or sel.for_each_or_null is not None or sel.repeat or sel.union_all:
        return False
    return all(_single_row(s) for s in sel.selects)


def _flat_columns(sel: Select, ctx: Ctx) -> list[str]:
    items = [f"{column_sql(c, ctx)} AS {qi(c.name)}" for c in sel.columns]
    for s in sel.selects:
        items += _flat_columns(s, ctx)
    return items


def _struct(cols: list[Column], ctx: Ctx) -> str:
    fields = ", ".join(f"{q(c.name)}: CAST({column_sql(c, ctx)} AS {column_type(c, ctx)})" for c in cols)
    return "{" + fields + "}"


def _null_struct(cols: list[Column], ctx: Ctx) -> str:
    fields = ", ".join(
        f"{q(c.name)}: CAST({'0' if _is_row_index(c) else 'NULL'} AS {column_type(c, ctx)})" for c in cols
    )
    return "{" + fields + "}"


def rows_expr(sel: Select, ctx: Ctx) -> str:
    """SQL expression: the rows of one select node in context `ctx`, as a LIST of STRUCTs."""
    it = iteration(sel, ctx)
    if it is None:
        return body_rows(sel, ctx)
    coll, or_null = it
    x, i, c = ctx.var(), ctx.var("i"), ctx.var("c")
    inner = ctx.at(x, f"CAST({i} - 1 AS BIGINT)")
    each = f"flatten(list_transform({c}, lambda {x}, {i}: {body_rows(sel, inner)}))"
    if or_null:
        each = f"(CASE WHEN len({c}) = 0 THEN [{_null_struct(sel.output_columns(), inner)}] ELSE {each} END)"
    return f"list_transform([{coll}], lambda {c}: {each})[1]"


def _product(left: str, left_cols: list[Column], right: str, right_cols: list[Column], ctx: Ctx) -> str:
    a, b = ctx.var("a"), ctx.var("b")
    fields = [f"{q(col.name)}: struct_extract({a}, {q(col.name)})" for col in left_cols]
    fields += [f"{q(col.name)}: struct_extract({b}, {q(col.name)})" for col in right_cols]
    return (
        f"flatten(list_transform({left}, lambda {a}: list_transform({right}, lambda {b}: "
        "{" + ", ".join(fields) + "})))"
    )


def body_rows(sel: Select, ctx: Ctx) -> str:
    parts: list[tuple[str, list[Column]]] = []
    if sel.columns:
        parts.append((f"[{_struct(list(sel.columns), ctx)}]", list(sel.columns)))
    for sub in sel.selects:
        parts.append((rows_expr(sub, ctx), sub.output_columns()))
    if sel.union_all:
        branches = [rows_expr(u, ctx) for u in sel.union_all]
        union = branches[0] if len(branches) == 1 else f"flatten([{', '.join(branches)}])"
        parts.append((union, sel.union_all[0].output_columns()))
    acc, acc_cols = parts[0]
    for rows, cols in parts[1:]:
        acc = _product(acc, acc_cols, rows, cols, ctx)
        acc_cols = acc_cols + cols
    return acc


def _null_guard(sql: str, null_flag: str | None) -> str:
    return sql if null_flag is None else f"(CASE WHEN {null_flag} THEN NULL ELSE {sql} END)"


@dataclass
class _Plan:
    """Unnest stages: context 0 is the resource; each iteration k adds context k (node n{k})."""

    cols: dict[int, list[tuple[str, str]]] = field(default_factory=lambda: {0: []})
    children: dict[int, list[int]] = field(default_factory=lambda: {0: []})
    iters: list[tuple[int, str, str | None, bool]] = field(default_factory=list)  # (k, l, z, is_list)
    pre: dict[int, list[tuple[str, str]]] = field(default_factory=dict)  # values computed a step earlier

    def new(self, parent: int, l_sql: str, z_sql: str | None, is_list: bool) -> int:
        k = len(self.iters) + 1
        self.iters.append((k, l_sql, z_sql, is_list))
        self.children[parent].append(k)
        self.children[k] = []
        self.cols[k] = []
        return k


def _plan_walk(sel: Select, ctx: Ctx, null_flag: str | None, cid: int, plan: _Plan) -> None:
    if sel.union_all:
        rows = rows_expr(sel, ctx)
        if null_flag is not None:
            rows = f"(CASE WHEN {null_flag} THEN [{_null_struct(sel.output_columns(), ctx)}] ELSE {rows} END)"
        k = plan.new(cid, rows, None, True)
        plan.cols[k] += [(c.name, f"struct_extract(n{k}, {q(c.name)})") for c in sel.output_columns()]
        return
    it_expr = sel.for_each if sel.for_each is not None else sel.for_each_or_null
    if it_expr is not None:
        or_null = sel.for_each_or_null is not None
        v = compile_expr(it_expr, ctx)
        if v.kind in ("path", "jv"):  # materialize the JSON value once, in a projection of its own
            alias = f"v{len(plan.iters) + 1}"
            plan.pre.setdefault(cid, []).append((alias, jv_of(v)))
            coll = coll_of_json(alias)
        else:
            coll = as_coll(v)
        parent = null_flag or "false"
        empty = "[NULL::JSON]" if or_null else "[]::JSON[]"
        l_sql = f"(CASE WHEN {parent} THEN [NULL::JSON] WHEN len({coll}) = 0 THEN {empty} ELSE {coll} END)"
        z_sql = f"({parent} OR len({coll}) = 0)" if (or_null or null_flag is not None) else None
        k = plan.new(cid, l_sql, z_sql, False)
        ctx = ctx.at(f"n{k}", f"i{k}")
        null_flag = f"z{k}" if z_sql else None
        cid = k
    for c in sel.columns:
        sql = column_sql(c, ctx)
        plan.cols[cid].append((c.name, sql if _is_row_index(c) else _null_guard(sql, null_flag)))
    for sub in sel.selects:
        _plan_walk(sub, ctx, null_flag, cid, plan)


_ROOT_EXTRACT = re.compile(r"json_extract(_string)?\(r\.resource, ('(?:[^']|'')*')\)")


def _share_root_extracts(texts: list[str]):  # noqa: ANN202 - (sql, rewrite) or None
    """Read every top-level path of the resource in one json_extract call (one parse of the document)
    and rewrite the expressions to pick from that list."""
    paths: list[str] = []
    for t in texts:
        for m in _ROOT_EXTRACT.finditer(t):
            if "[*]" not in m.group(2) and m.group(2) not in paths:
                paths.append(m.group(2))
    if len(paths) < 2:
        return None
    index = {p: i + 1 for i, p in enumerate(paths)}

    def one(m: re.Match) -> str:
        if m.group(2) not in index:
            return m.group(0)
        got = f"_k[{index[m.group(2)]}]"
        return f"json_extract_string({got}, '$')" if m.group(1) else got

    return f"json_extract(r.resource, [{', '.join(paths)}])", lambda t: _ROOT_EXTRACT.sub(one, t)


def _stage_query(view: View, ctx: Ctx, filtered: str) -> str:
    """Hand-written-query shape: compute what each context needs, unnest one iteration at a time,
    carry only the live columns (the resource is dropped as soon as nothing reads it)."""
    plan = _Plan()
    _plan_walk(view.select, ctx, None, 0, plan)
    out_names = {}
    for cid in sorted(plan.cols):
        for name, _ in plan.cols[cid]:
            out_names[name] = f"o{len(out_names)}"
    z_of = {k: z for k, _, z, _ in plan.iters}

    def context_items(cid: int) -> list[str]:
        items = [f"{sql} AS {out_names[name]}" for name, sql in plan.cols[cid]]
        for k in plan.children[cid]:
            _, l_sql, z_sql, _ = plan.iters[k - 1]
            items.append(f"{l_sql} AS l{k}")
            if z_sql:
                items.append(f"{z_sql} AS z{k}")
        return items

    def names(items: list[str]) -> list[str]:
        return [it.rpartition(" AS ")[2] for it in items]

    def emit(sql: str, live: list[str], cid: int, consumed: list[str]) -> tuple[str, list[str]]:
        """Projections for context `cid` over `sql`: its pre-values, then its columns and child lists."""
        pre = [f"{e} AS {a}" for a, e in plan.pre.get(cid, [])]
        items = context_items(cid)
        if cid == 0:
            shared = _share_root_extracts(pre + items)
            if shared is not None:
                extract, rewrite = shared
                sql = f"SELECT {', '.join(live + [extract + ' AS _k'])} FROM ({sql}) r"
                live, consumed = live + ["_k"], consumed + ["_k"]
                pre, items = [rewrite(p) for p in pre], [rewrite(i) for i in items]
        if pre:
            sql = f"SELECT {', '.join(live + pre)} FROM ({sql}) r"
            live = live + names(pre)
        keep = [c for c in live if c not in consumed and c not in names(pre)]
        sql = f"SELECT {', '.join(keep + items)} FROM ({sql}) r"
        return sql, keep + names(items)

    later_parts = [sql for cid in plan.cols if cid for _, sql in plan.cols[cid]]
    later_parts += [e for cid, vals in plan.pre.items() if cid for _, e in vals]
    later_parts += [lst + (z or "") for k, lst, z, _ in plan.iters if k not in plan.children[0]]
    keep_resource = "r.resource" in " ".join(later_parts)
    sql = f"SELECT r.resource FROM {filtered}"
    sql, live = emit(sql, ["resource"], 0, [] if keep_resource else ["resource"])
    for k, _, _, _ in plan.iters:
        keep = [c for c in live if c != f"l{k}"]
        unnest = [f"unnest(l{k}) AS n{k}", f"unnest(range(len(l{k}))) AS i{k}"]
        sql = f"SELECT {', '.join(keep + unnest)} FROM ({sql}) r"
        consumed = [f"n{k}", f"i{k}"] + ([f"z{k}"] if z_of[k] else [])
        sql, live = emit(sql, keep + [f"n{k}", f"i{k}"], k, consumed)
    cols = ", ".join(f"{out_names[c.name]} AS {qi(c.name)}" for c in view.columns())
    return f"SELECT {cols} FROM ({sql}) r"


def compile_view(view: View, source_sql: str, mode: str = "auto") -> str:
    """DuckDB SQL for `view` over a relation (resource_type, resource) given as SQL text (see the
    module docstring for the modes)."""
    if mode == "auto":
        mode = "lateral" if _has_repeat(view.select) else "unnest"
    token = _BIND.set(mode != "lateral")
    try:
        return _compile_view(view, source_sql, mode)
    finally:
        _BIND.reset(token)


def _compile_view(view: View, source_sql: str, mode: str) -> str:
    ctx = Ctx(node="r.resource", root="r.resource", row_index="CAST(0 AS BIGINT)", constants=view.constants)
    typed = f"(SELECT r.resource FROM ({source_sql}) r WHERE r.resource_type = {q(view.resource)})"
    conds = [as_bool(compile_expr(w, ctx), f"where[{i}]", strict=True) for i, w in enumerate(view.where)]
    if conds:  # computed in a projection (where DuckDB shares common subexpressions), then filtered
        tests = ", ".join(f"{c} AS w{i}" for i, c in enumerate(conds))
        keep = " AND ".join(f"coalesce(w{i}, false)" for i in range(len(conds)))
        filtered = f"(SELECT resource FROM (SELECT r.resource, {tests} FROM {typed} r) WHERE {keep}) r"
    else:
        filtered = f"{typed} r"
    if mode == "auto":
        mode = "lateral" if _has_repeat(view.select) else "unnest"
    if mode in ("list", "unnest") and _has_repeat(view.select):
        raise ViewError(f"repeat needs the lateral compilation mode, not {mode}")
    if mode == "unnest":
        return _stage_query(view, ctx, filtered)
    if mode == "list":
        if _single_row(view.select):
            return f"SELECT {', '.join(_flat_columns(view.select, ctx))} FROM {filtered}"
        rows = body_rows(view.select, ctx)
        cols = ", ".join(f"struct_extract(u, {q(c.name)}) AS {qi(c.name)}" for c in view.columns())
        return f"SELECT {cols} FROM (SELECT unnest({rows}) AS u FROM {filtered})"
    body = body_sql(view.select, ctx)
    cols = ", ".join(f"b.{qi(c.name)}" for c in view.columns())
    return f"SELECT {cols} FROM {filtered}, ({body}) b"
