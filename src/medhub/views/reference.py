"""A small tree-walking reference interpreter for views, used only to cross-check the SQL compiler.

It evaluates the same `View` model over Python dicts, one resource at a time, with FHIRPath
collection semantics (every value is a list). Slow and simple on purpose; property tests generate
views and resources and check that it and the compiled DuckDB SQL return the same rows.
"""

from __future__ import annotations

from medhub.views import fhirpath as fp
from medhub.views.definition import Select as SelectNode
from medhub.views.definition import View, ViewError


class EvalError(ViewError):
    """The data violate the view at run time (e.g. a collection where one value is required)."""


def _child(item: object, name: str) -> list:
    if not isinstance(item, dict) or name not in item:
        return []
    v = item[name]
    if v is None:
        return []
    return list(v) if isinstance(v, list) else [v]


def _single(c: list, what: str) -> object:
    if len(c) > 1:
        raise EvalError(f"{what}: expected a single value, got a collection")
    return c[0] if c else None


def _truth(c: list, what: str) -> bool | None:
    if not c:
        return None
    v = _single(c, what)
    return v if isinstance(v, bool) else True


def _num(v: object) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _key(ref: object, typ: str | None) -> str | None:
    """The key a Reference points at (same rules as compile.reference_key_sql)."""
    if not isinstance(ref, dict) or not isinstance(ref.get("reference"), str):
        return None
    s = ref["reference"]
    for prefix in ("urn:uuid:", "urn:oid:"):
        if s.startswith(prefix):
            return s[len(prefix) :] if typ is None or ref.get("type", typ) == typ else None
    parts = s.split("/_history/")[0].split("/")
    if len(parts) < 2 or not parts[-1]:
        return None
    ok = parts[-2] == typ if typ else parts[-2][:1].isascii() and parts[-2][:1].isupper()
    return parts[-1] if ok else None


class _Eval:
    def __init__(self, root: dict, constants: dict) -> None:
        self.root = root
        self.constants = constants

    def ev(self, node: object, focus: list, row_index: int) -> list:  # noqa: C901 - one dispatch
        if isinstance(node, fp.Literal):
            if node.type == "empty":
                return []
            if node.type == "decimal":
                return [float(node.value)]
            return [node.value]
        if isinstance(node, fp.This):
            return focus
        if isinstance(node, fp.Constant):
            if node.name == "rowIndex":
                return [row_index]
            if node.name in ("resource", "rootResource", "context"):
                return [self.root]
            return self.ev(self.constants[node.name], focus, row_index)
        if isinstance(node, fp.Identifier):
            return [x for item in focus for x in _child(item, node.name)]
        if isinstance(node, fp.Member):
            base = self.ev(node.base, focus, row_index)
            return [x for item in base for x in _child(item, node.name)]
        if isinstance(node, fp.Index):
            base = self.ev(node.base, focus, row_index)
            idx = _single(self.ev(node.index, focus, row_index), "index")
            return [base[idx]] if isinstance(idx, int) and 0 <= idx < len(base) else []
        if isinstance(node, fp.Call):
            return self.call(node, focus, row_index)
        if isinstance(node, fp.Unary):
            v = _single(self.ev(node.operand, focus, row_index), "-")
            return [] if v is None else [-v]
        if isinstance(node, fp.Binary):
            return self.binary(node, focus, row_index)
        raise ViewError(f"reference interpreter: unsupported node {node!r}")

    def call(self, node: fp.Call, focus: list, ri: int) -> list:
        name = node.name
        if name == "ofType":
            t = node.args[0].name
            b = node.base
            if isinstance(b, fp.Member | fp.Identifier):
                parent = self.ev(b.base, focus, ri) if isinstance(b, fp.Member) else focus
                key = b.name + t[0].upper() + t[1:]
                return [x for item in parent for x in _child(item, key)]
            raise ViewError("reference interpreter: ofType only on element names")
        base = self.ev(node.base, focus, ri) if node.base is not None else focus
        args = node.args
        if name == "where":
            return [x for x in base if _truth(self.ev(args[0], [x], ri), "where") is True]
        if name == "exists":
            if args:
                base = [x for x in base if _truth(self.ev(args[0], [x], ri), "exists") is True]
            return [bool(base)]
        if name == "empty":
            return [not base]
        if name == "count":
            return [len(base)]
        if name == "first":
            return base[:1]
        if name == "last":
            return base[-1:]
        if name == "not":
            t = _truth(base, "not")
            return [] if t is None else [not t]
        if name == "join":
            sep = _single(self.ev(args[0], focus, ri), "join") if args else ""
            return [sep.join(str(x) for x in base)] if base else []
        if name == "extension":
            url = _single(self.ev(args[0], focus, ri), "extension")
            return [
                e
                for item in base
                for e in _child(item, "extension")
                if isinstance(e, dict) and e.get("url") == url
            ]
        if name == "getResourceKey":
            r = _single(base, "getResourceKey")
            return [r["id"]] if isinstance(r, dict) and isinstance(r.get("id"), str) else []
        if name == "getReferenceKey":
            typ = args[0].name if args else None
            return [k for k in (_key(x, typ) for x in base) if k is not None]
        raise ViewError(f"reference interpreter: function {name}() not supported")

    def binary(self, node: fp.Binary, focus: list, ri: int) -> list:
        op = node.op
        a = self.ev(node.left, focus, ri)
        b = self.ev(node.right, focus, ri)
        if op in ("and", "or"):
            x, y = _truth(a, op), _truth(b, op)
            if op == "and":
                if x is False or y is False:
                    return [False]
                return [] if x is None or y is None else [True]
            if x is True or y is True:
                return [True]
            return [] if x is None or y is None else [False]
        if op in ("=", "!=", "<", ">", "<=", ">="):
            x, y = _single(a, op), _single(b, op)
            if x is None or y is None:
                return []
            if _num(x) is not None and _num(y) is not None:
                x, y = _num(x), _num(y)
            elif isinstance(x, bool) or isinstance(y, bool):
                if not (isinstance(x, bool) and isinstance(y, bool)):
                    x, y = str(x).lower(), str(y).lower()
            else:
                x, y = str(x), str(y)
            res = {
                "=": x == y, "!=": x != y, "<": x < y, ">": x > y, "<=": x <= y, ">=": x >= y,
            }[op]  # fmt: skip
            return [res]
        if op in ("+", "-", "*", "/"):
            x, y = _single(a, op), _single(b, op)
            if x is None or y is None or (op == "/" and y == 0):
                return []
            return [{"+": lambda: x + y, "-": lambda: x - y, "*": lambda: x * y, "/": lambda: x / y}[op]()]
        raise ViewError(f"reference interpreter: operator {op} not supported")


def _rows(sel: SelectNode, ev: _Eval, focus: list, ri: int) -> list[dict]:
    if sel.repeat:
        nodes: list = []

        def walk(item: object) -> None:
            for path in sel.repeat:
                for kid in ev.ev(path, [item], ri):
                    nodes.append(kid)
                    walk(kid)

        for item in focus:
            walk(item)
        return [r for i, n in enumerate(nodes) for r in _body(sel, ev, [n], i)]
    iter_expr = sel.for_each if sel.for_each is not None else sel.for_each_or_null
    if iter_expr is not None:
        items = ev.ev(iter_expr, focus, ri)
        out: list[dict] = []
        for i, item in enumerate(items):
            out += _body(sel, ev, [item], i)
        if not items and sel.for_each_or_null is not None:
            out.append(
                {
                    c.name: (0 if isinstance(c.expr, fp.Constant) and c.expr.name == "rowIndex" else None)
                    for c in sel.output_columns()
                }
            )
        return out
    return _body(sel, ev, focus, ri)


def _value(col, ev: _Eval, focus: list, ri: int) -> object:
    c = ev.ev(col.expr, focus, ri)
    if col.collection:
        return c
    return _single(c, f"column {col.name}")


def _body(sel: SelectNode, ev: _Eval, focus: list, ri: int) -> list[dict]:
    rows = [{c.name: _value(c, ev, focus, ri) for c in sel.columns}]
    parts = [_rows(s, ev, focus, ri) for s in sel.selects]
    if sel.union_all:
        parts.append([r for u in sel.union_all for r in _rows(u, ev, focus, ri)])
    for part in parts:
        rows = [{**a, **b} for a in rows for b in part]
    return rows


def evaluate(view: View, resources: list[dict]) -> list[dict]:
    """Rows of `view` over `resources` (dicts), each row a dict in column order."""
    names = [c.name for c in view.columns()]
    out = []
    for r in resources:
        if not isinstance(r, dict) or r.get("resourceType") != view.resource:
            continue
        ev = _Eval(r, view.constants)
        keep = True
        for w in view.where:
            c = ev.ev(w, [r], 0)
            if c and not isinstance(_single(c, "where"), bool):
                raise EvalError("where: expression does not evaluate to a boolean")
            if _truth(c, "where") is not True:
                keep = False
                break
        if keep:
            out += [{n: row[n] for n in names} for row in _rows(view.select, ev, [r], 0)]
    return out
