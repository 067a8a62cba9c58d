"""A parser for CEL's grammar (https://github.com/google/cel-spec/blob/master/doc/langdef.md).

The native binding compiles and evaluates expressions but exposes no syntax tree, so the cost
model (`workflows.dsl.cel_cost`) and the names an expression reads come from this parse: every
kind of string literal (quoted, triple-quoted, raw, bytes, with escapes) and `//` comments are
read as the language reads them, never as a character scan would guess. Deterministic, pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from cadenza.errors import CadenzaError

MAX_DEPTH = 32
"""Nesting (parentheses, brackets, calls, operands of operators) deeper than this is refused."""

MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
RESERVED = frozenset(
    {"as", "break", "const", "continue", "else", "for", "function", "if", "import", "let"}
    | {"loop", "package", "namespace", "return", "var", "void", "while"}
)


class ParseError(CadenzaError):
    """The text is not a CEL expression cadenza can read; `args[0]` says where and why."""


@dataclass(frozen=True)
class Node:
    """One node of the syntax tree.

    kind: `lit` (value: the Python value; bytes and strings keep their decoded length),
    `ident` (name), `select` (name: the field; args[0]: the operand), `has` (args[0]: a select),
    `index` (args: operand, key), `call` (name; target or None; args), `macro` (name; target;
    var; args: the predicate/transform), `list` (args: items), `map` (args: key, value, key,
    value, ...), `struct` (name: the type; args: field values), `unary` (name: `!` or `-`),
    `binary` (name: the operator), `cond` (args: condition, then, else).
    """

    kind: str
    name: str = ""
    args: tuple[Node, ...] = ()
    target: Node | None = None
    var: str = ""
    value: Any = None
    pos: int = 0
    children: tuple[Node, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        kids = (self.target, *self.args) if self.target is not None else self.args
        object.__setattr__(self, "children", kids)


# -- tokens

_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\n\r\f]+|//[^\n]*)
  | (?P<string>(?:[rR][bB]?|[bB][rR]?)?(?:'''|\"\"\"|'|\"))
  | (?P<number>0[xX][0-9a-fA-F]+[uU]?
      |(?:[0-9]+\.[0-9]+|\.[0-9]+|[0-9]+)(?:[eE][+-]?[0-9]+)
      |[0-9]+\.[0-9]+|\.[0-9]+
      |[0-9]+[uU]?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\|\||&&|==|!=|<=|>=|\.\?|\[\?|[<>+\-*/%!?:.,()\[\]{}])
    """,
    re.VERBOSE,
)
_SIMPLE_ESCAPES = set("abfnrtv\\'\"`?")


@dataclass(frozen=True)
class Token:
    kind: str  # space/string/number/ident/op/end
    text: str
    pos: int
    value: Any = None


def tokenize(source: str) -> list[Token]:
    """The tokens of `source` (comments and spaces dropped), ending with an `end` token."""
    tokens: list[Token] = []
    i = 0
    while i < len(source):
        match = _TOKEN.match(source, i)
        if match is None:
            raise ParseError(f"1:{i + 1}: unexpected character {source[i]!r}")
        kind = match.lastgroup or ""
        if kind == "string":
            token, i = _string(source, i, match.group())
            tokens.append(token)
            continue
        if kind != "space":
            tokens.append(Token(kind, match.group(), i))
        i = match.end()
    tokens.append(Token("end", "", len(source)))
    return tokens


def _string(source: str, start: int, opening: str) -> tuple[Token, int]:
    """A string or bytes literal starting at `start`; its value is the decoded text."""
    prefix = opening.rstrip("'\"").lower()
    quote = opening[len(prefix) :]
    raw, is_bytes = "r" in prefix, "b" in prefix
    i = start + len(opening)
    out: list[str] = []
    while True:
        if i >= len(source):
            raise ParseError(f"1:{start + 1}: unterminated string")
        if source.startswith(quote, i):
            i += len(quote)
            break
        char = source[i]
        if char == "\n" and len(quote) == 1:
            raise ParseError(f"1:{start + 1}: newline in a single-quoted string")
        if char == "\\" and not raw:
            i, decoded = _escape(source, i, start)
            out.append(decoded)
            continue
        if char == "\r":  # line ends read as "\n", as the binding reads them
            char = "\n"
            i += source.startswith("\r\n", i)
        out.append(char)
        i += 1
    text = "".join(out)
    value: Any = text.encode("utf-8", "surrogatepass") if is_bytes else text
    return Token("string", source[start:i], start, value), i


def _escape(source: str, i: int, start: int) -> tuple[int, str]:
    nxt = source[i + 1 : i + 2]
    if nxt in _SIMPLE_ESCAPES and nxt:
        return i + 2, {"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt)
    widths = {"x": 2, "X": 2, "u": 4, "U": 8}
    if nxt in widths:
        digits = source[i + 2 : i + 2 + widths[nxt]]
        if len(digits) == widths[nxt] and all(c in "0123456789abcdefABCDEF" for c in digits):
            code = int(digits, 16)
            return i + 2 + widths[nxt], chr(code) if code < 0x110000 else "?"
    digits = source[i + 1 : i + 4]
    if len(digits) == 3 and all(c in "01234567" for c in digits):
        return i + 4, chr(int(digits, 8))
    raise ParseError(f"1:{start + 1}: invalid escape in a string at column {i + 1}")


def _number(token: Token) -> Node:
    text = token.text
    if text[:2] in ("0x", "0X"):
        unsigned = text[-1] in "uU"
        value: Any = int(text[2:].rstrip("uU"), 16)
        return Node("lit", "uint" if unsigned else "int", value=value, pos=token.pos)
    if text[-1] in "uU":
        return Node("lit", "uint", value=int(text[:-1]), pos=token.pos)
    if any(c in text for c in ".eE"):
        return Node("lit", "double", value=float(text), pos=token.pos)
    return Node("lit", "int", value=int(text), pos=token.pos)


# -- the grammar


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens = tokenize(source)
        self.i = 0
        self.depth = 0

    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.i + offset, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return token

    def at(self, *texts: str) -> bool:
        token = self.peek()
        is_operator = token.kind == "op" or (token.kind == "ident" and token.text == "in")
        return is_operator and token.text in texts

    def expect(self, text: str) -> Token:
        token = self.take()
        if token.text != text or token.kind not in ("op", "ident"):
            found = repr(token.text) if token.kind != "end" else "the end"
            raise ParseError(f"1:{token.pos + 1}: expected {text!r}, found {found}")
        return token

    def nested(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ParseError(f"it nests more than {MAX_DEPTH} levels deep")

    def expr(self) -> Node:
        self.nested()
        try:
            cond = self.binary(0)
            if self.at("?"):
                pos = self.take().pos
                then = self.binary(0)
                self.expect(":")
                return Node("cond", "?:", (cond, then, self.expr()), pos=pos)
            return cond
        finally:
            self.depth -= 1

    _LEVELS: tuple[tuple[str, ...], ...] = (
        ("||",),
        ("&&",),
        ("==", "!=", "<", "<=", ">", ">=", "in"),
        ("+", "-"),
        ("*", "/", "%"),
    )

    def binary(self, level: int) -> Node:
        if level == len(self._LEVELS):
            return self.unary()
        first = self.binary(level + 1)
        operands, ops = [first], []
        while self.at(*self._LEVELS[level]):
            ops.append(self.take())
            operands.append(self.binary(level + 1))
        if not ops:
            return first
        # a chain (a + b - c) is one node with all its operands: the tree stays shallow; it
        # counts as `+` when any of its operators is (the one that concatenates)
        name = "+" if any(op.text == "+" for op in ops) else ops[0].text
        return Node("binary", name, tuple(operands), pos=ops[0].pos)

    def unary(self) -> Node:
        ops: list[Token] = []
        while self.at("!", "-"):
            ops.append(self.take())
        self.depth += len(ops)
        if self.depth > MAX_DEPTH:
            raise ParseError(f"it nests more than {MAX_DEPTH} levels deep")
        node = self.member()
        self.depth -= len(ops)
        for op in reversed(ops):
            if op.text == "-" and node.kind == "lit" and node.name in ("int", "double"):
                node = Node("lit", node.name, value=-node.value, pos=op.pos)
            else:
                node = Node("unary", op.text, (node,), pos=op.pos)
        return node

    def member(self) -> Node:
        node = self.primary()
        saved = self.depth
        try:
            return self.selections(node)
        finally:
            self.depth = saved

    def selections(self, node: Node) -> Node:
        while True:
            if self.at(".", ".?"):
                dot = self.take()
                if dot.text == ".?":
                    raise ParseError(f"1:{dot.pos + 1}: optional field selection is not supported")
                name = self.take()
                if name.kind != "ident":
                    raise ParseError(f"1:{name.pos + 1}: expected a field name after '.'")
                if self.at("("):
                    node = self.call(name.text, node, name.pos)
                else:
                    node = Node("select", name.text, (node,), pos=name.pos)
                self.nested()
            elif self.at("[", "[?"):
                bracket = self.take()
                if bracket.text == "[?":
                    raise ParseError(f"1:{bracket.pos + 1}: optional indexing is not supported")
                key = self.expr()
                self.expect("]")
                node = Node("index", "[]", (node, key), pos=bracket.pos)
                self.nested()
            else:
                return node

    def call(self, name: str, target: Node | None, pos: int) -> Node:
        self.expect("(")
        args = self.list_of(")")
        if target is not None and name in MACROS and len(args) in (2, 3):
            var = args[0]
            if var.kind != "ident":
                raise ParseError(f"1:{pos + 1}: {name}() takes a variable name first")
            if len(args) == 3 and name != "map":
                raise ParseError(f"1:{pos + 1}: {name}() takes two arguments")
            return Node("macro", name, args[1:], target=target, var=var.name, pos=pos)
        if target is None and name == "has":
            if len(args) != 1 or args[0].kind != "select":
                raise ParseError(f"1:{pos + 1}: has() takes one field selection, e.g. has(a.b)")
            return Node("has", "has", args, pos=pos)
        return Node("call", name, args, target=target, pos=pos)

    def list_of(self, closing: str) -> tuple[Node, ...]:
        items: list[Node] = []
        while not self.at(closing):
            items.append(self.expr())
            if not self.at(closing):
                self.expect(",")
        self.expect(closing)
        return tuple(items)

    def primary(self) -> Node:
        token = self.take()
        if token.kind == "number":
            return _number(token)
        if token.kind == "string":
            kind = "bytes" if isinstance(token.value, bytes) else "string"
            return Node("lit", kind, value=token.value, pos=token.pos)
        if token.kind == "ident":
            return self.identifier(token)
        if token.text == ".":  # a leading dot: a name from the root scope
            name = self.take()
            if name.kind != "ident":
                raise ParseError(f"1:{name.pos + 1}: expected a name after '.'")
            return self.identifier(name)
        if token.text == "(":
            inner = self.expr()
            self.expect(")")
            return inner
        if token.text == "[":
            self.nested()
            node = Node("list", "[]", self.list_of("]"), pos=token.pos)
            self.depth -= 1
            return node
        if token.text == "{":
            self.nested()
            node = Node("map", "{}", self.entries(), pos=token.pos)
            self.depth -= 1
            return node
        found = repr(token.text) if token.kind != "end" else "the end of the expression"
        raise ParseError(f"1:{token.pos + 1}: unexpected {found}")

    def identifier(self, token: Token) -> Node:
        name = token.text
        if name in ("true", "false"):
            return Node("lit", "bool", value=name == "true", pos=token.pos)
        if name == "null":
            return Node("lit", "null", pos=token.pos)
        if name in RESERVED or name == "in":
            raise ParseError(f"1:{token.pos + 1}: {name!r} is a reserved word")
        if self.at("("):
            return self.call(name, None, token.pos)
        if self.at("{") and name[:1].isupper():
            self.take()
            fields = self.entries(fields=True)
            return Node("struct", name, fields, pos=token.pos)
        return Node("ident", name, pos=token.pos)

    def entries(self, fields: bool = False) -> tuple[Node, ...]:
        out: list[Node] = []
        while not self.at("}"):
            if fields:
                key = self.take()
                if key.kind != "ident":
                    raise ParseError(f"1:{key.pos + 1}: expected a field name")
                out.append(Node("lit", "string", value=key.text, pos=key.pos))
            else:
                out.append(self.expr())
            self.expect(":")
            out.append(self.expr())
            if not self.at("}"):
                self.expect(",")
        self.expect("}")
        return tuple(out)


def parse(source: str) -> Node:
    """The syntax tree of `source`.

    Raises:
        ParseError: not CEL, nested deeper than MAX_DEPTH, or syntax cadenza does not support
            (optional selection `.?`, `[?`).
    """
    parser = _Parser(source)
    node = parser.expr()
    rest = parser.peek()
    if rest.kind != "end":
        raise ParseError(f"1:{rest.pos + 1}: unexpected {rest.text!r} after the expression")
    return node


def walk(node: Node) -> list[Node]:
    """Every node of the tree, parents before children (no recursion)."""
    out: list[Node] = []
    stack = [node]
    while stack:
        current = stack.pop()
        out.append(current)
        stack.extend(reversed(current.children))
    return out
