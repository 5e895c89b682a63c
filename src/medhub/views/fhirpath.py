"""FHIRPath: tokenizer and Pratt parser producing a small immutable AST.

Covers what SQL on FHIR v2 views use: paths, indexers, function calls, `$this`, `%constants`,
literals (string, number, boolean, @date/@dateTime/@Thh:mm, `{}`), unary minus, arithmetic
(`* / div mod + - &`), union `|`, comparison, equality, `in`/`contains`, and boolean logic
(`and or xor implies`). Errors raise `FhirPathSyntaxError` naming the expression and position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class FhirPathSyntaxError(ValueError):
    """The expression is not valid FHIRPath (or uses syntax this parser does not support)."""


@dataclass(frozen=True)
class Literal:
    value: object
    type: str  # string | integer | decimal | boolean | date | dateTime | time | empty


@dataclass(frozen=True)
class Identifier:
    name: str


@dataclass(frozen=True)
class This:
    pass


@dataclass(frozen=True)
class Constant:
    name: str


@dataclass(frozen=True)
class Member:
    base: object
    name: str


@dataclass(frozen=True)
class Call:
    base: object | None  # None: called on the focus ($this)
    name: str
    args: tuple


@dataclass(frozen=True)
class Index:
    base: object
    index: object


@dataclass(frozen=True)
class Unary:
    op: str
    operand: object


@dataclass(frozen=True)
class Binary:
    op: str
    left: object
    right: object


Node = Literal | Identifier | This | Constant | Member | Call | Index | Unary | Binary

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|//[^\n]*|/\*.*?\*/)
  | (?P<datetime>@T?\d[\d\-:T.+Z]*)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<delimited>`(?:[^`\\]|\\.)*`)
  | (?P<special>\$this|\$index|\$total)
  | (?P<constant>%(?:[A-Za-z_][A-Za-z0-9_]*|`(?:[^`\\]|\\.)*`|'(?:[^'\\]|\\.)*'))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|!=|!~|[-+*/&|<>=~.,()\[\]{}])
    """,
    re.VERBOSE | re.DOTALL,
)

_ESCAPES = {"'": "'", '"': '"', "`": "`", "\\": "\\", "/": "/", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _unescape(body: str) -> str:
    out = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt == "u" and i + 5 < len(body):
                out.append(chr(int(body[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int


def tokenize(src: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if not m:
            raise FhirPathSyntaxError(
                f"FHIRPath {src!r}: unexpected character {src[pos]!r} at position {pos}"
            )
        kind = m.lastgroup or ""
        if kind != "ws":
            toks.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    toks.append(_Tok("eof", "", len(src)))
    return toks


# binary operator -> binding power (higher binds tighter)
_BINARY = {
    "implies": 10,
    "or": 20,
    "xor": 20,
    "and": 30,
    "in": 40,
    "contains": 40,
    "=": 50,
    "!=": 50,
    "~": 50,
    "!~": 50,
    "<": 60,
    ">": 60,
    "<=": 60,
    ">=": 60,
    "|": 70,
    "is": 80,
    "as": 80,
    "+": 90,
    "-": 90,
    "&": 90,
    "*": 100,
    "/": 100,
    "div": 100,
    "mod": 100,
}
_UNARY_BP = 110
_KEYWORD_OPS = {"implies", "or", "xor", "and", "in", "contains", "is", "as", "div", "mod"}


class _Parser:
    def __init__(self, src: str) -> None:
        self.src = src
        self.toks = tokenize(src)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def fail(self, msg: str, tok: _Tok | None = None) -> FhirPathSyntaxError:
        tok = tok or self.peek()
        return FhirPathSyntaxError(f"FHIRPath {self.src!r}: {msg} at position {tok.pos}")

    def expect(self, text: str) -> None:
        t = self.next()
        if t.text != text:
            raise self.fail(f"expected {text!r}, found {t.text or 'end of expression'!r}", t)

    def parse(self) -> Node:
        if self.peek().kind == "eof":
            raise self.fail("empty expression")
        node = self.expr(0)
        if self.peek().kind != "eof":
            raise self.fail(f"unexpected {self.peek().text!r}")
        return node

    def _binary_op(self) -> str | None:
        t = self.peek()
        if t.kind == "op" and t.text in _BINARY:
            return t.text
        if t.kind == "ident" and t.text in _KEYWORD_OPS:
            return t.text
        return None

    def expr(self, min_bp: int) -> Node:
        left = self.prefix()
        while True:
            op = self._binary_op()
            if op is None or _BINARY[op] <= min_bp:
                return left
            self.next()
            if op in ("is", "as"):
                type_name = self.type_specifier()
                left = Call(left, "ofType" if op == "as" else "is", (Identifier(type_name),))
                continue
            right = self.expr(_BINARY[op])
            left = Binary(op, left, right)

    def type_specifier(self) -> str:
        t = self.next()
        if t.kind not in ("ident", "delimited"):
            raise self.fail("expected a type name", t)
        name = t.text if t.kind == "ident" else _unescape(t.text[1:-1])
        while self.peek().text == "." and self.toks[self.i + 1].kind == "ident":
            self.next()
            name += "." + self.next().text
        return name

    def prefix(self) -> Node:
        t = self.peek()
        if t.kind == "op" and t.text in ("-", "+"):
            self.next()
            operand = self.expr(_UNARY_BP)
            node: Node = operand if t.text == "+" else Unary("-", operand)
        else:
            node = self.term()
        return self.postfix(node)

    def postfix(self, node: Node) -> Node:
        while True:
            t = self.peek()
            if t.text == "." and t.kind == "op":
                self.next()
                name_tok = self.next()
                if name_tok.kind == "ident":
                    name = name_tok.text
                elif name_tok.kind == "delimited":
                    name = _unescape(name_tok.text[1:-1])
                else:
                    raise self.fail("expected a name after '.'", name_tok)
                node = Call(node, name, self.arguments()) if self.peek().text == "(" else Member(node, name)
            elif t.text == "[" and t.kind == "op":
                self.next()
                idx = self.expr(0)
                self.expect("]")
                node = Index(node, idx)
            else:
                return node

    def arguments(self) -> tuple:
        self.expect("(")
        args: list[Node] = []
        if self.peek().text == ")":
            self.next()
            return ()
        while True:
            args.append(self.expr(0))
            t = self.next()
            if t.text == ")":
                return tuple(args)
            if t.text != ",":
                raise self.fail("expected ',' or ')' in argument list", t)

    def term(self) -> Node:
        t = self.next()
        if t.kind == "number":
            return Literal(int(t.text), "integer") if "." not in t.text else Literal(t.text, "decimal")
        if t.kind == "string":
            return Literal(_unescape(t.text[1:-1]), "string")
        if t.kind == "datetime":
            text = t.text[1:]
            if text.startswith("T"):
                return Literal(text[1:], "time")
            return Literal(text, "dateTime" if "T" in text else "date")
        if t.kind == "special":
            if t.text == "$this":
                return This()
            raise self.fail(f"{t.text} is not supported", t)
        if t.kind == "constant":
            body = t.text[1:]
            if body[0] in "`'":
                body = _unescape(body[1:-1])
            return Constant(body)
        if t.kind == "delimited":
            return self._ident_or_call(_unescape(t.text[1:-1]))
        if t.kind == "ident":
            if t.text in ("true", "false"):
                return Literal(t.text == "true", "boolean")
            return self._ident_or_call(t.text)
        if t.text == "(":
            inner = self.expr(0)
            self.expect(")")
            return inner
        if t.text == "{":
            self.expect("}")
            return Literal(None, "empty")
        raise self.fail(f"unexpected {t.text or 'end of expression'!r}", t)

    def _ident_or_call(self, name: str) -> Node:
        if self.peek().text == "(":
            return Call(None, name, self.arguments())
        return Identifier(name)


def parse(src: str) -> Node:
    """Parse a FHIRPath expression into an AST; raise FhirPathSyntaxError if it is not valid."""
    if not isinstance(src, str):
        raise FhirPathSyntaxError(f"FHIRPath must be a string, got {type(src).__name__}: {src!r}")
    return _Parser(src).parse()
