"""The definition's observability fields checked: a step's `custom_metrics` (names, kinds) and
the definition's `tags` (what a search attribute and a span attribute can carry).

A metric is declared as `name` or `name:kind` (kind: counter, histogram or gauge); its name is
what the worker exports (Prometheus adds `_total` to counters), so it must be a valid metric
name, and `cadenza_` is cadenza's own. Tags become the `CadenzaTags` search attribute (one
KeywordList value: Temporal bounds its size) and a span attribute.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from workflows.dsl.diagnostics import Diagnostic, DiagnosticCode
from workflows.dsl.models import WorkflowStep
from workflows.dsl.rules import RULES

METRIC_KINDS = ("counter", "histogram", "gauge")
METRIC_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
RESERVED_METRIC_PREFIX = "cadenza_"
MAX_METRICS = 20
MAX_TAGS = 20
MAX_TAG_LENGTH = 64
TAG_FORBIDDEN = re.compile(r"['\"\\\x00-\x1f\x7f]")


def metric_problems(step: WorkflowStep, path: str) -> Iterator[Diagnostic]:
    """What is wrong with `step.custom_metrics`, each with the fix."""
    entries = step.custom_metrics
    where = f"{path}.custom_metrics"
    if entries and RULES[step.step_type].action == "never":
        yield Diagnostic(
            where,
            DiagnosticCode.INVALID_METRIC,
            f"a {step.step_type} step runs no action, so nothing records its custom_metrics: "
            "declare them on the steps whose actions record them",
        )
        return
    if len(entries) > MAX_METRICS:
        yield Diagnostic(
            where,
            DiagnosticCode.INVALID_METRIC,
            f"{len(entries)} metrics; a step declares at most {MAX_METRICS}",
        )
    seen: set[str] = set()
    for k, entry in enumerate(entries):
        name, colon, kind = entry.partition(":")
        problem = _metric_problem(name, colon, kind, seen)
        if problem:
            yield Diagnostic(f"{where}[{k}]", DiagnosticCode.INVALID_METRIC, problem)
        seen.add(name)


def _metric_problem(name: str, colon: str, kind: str, seen: set[str]) -> str | None:
    if not METRIC_NAME.fullmatch(name):
        return (
            f"metric name {name!r} is not valid: lower-case letters, digits and '_', starting "
            "with a letter, at most 63 characters (e.g. 'orders_processed')"
        )
    if name.startswith(RESERVED_METRIC_PREFIX):
        return f"metric name {name!r}: names starting with 'cadenza_' are cadenza's own metrics"
    if colon and kind not in METRIC_KINDS:
        return f"metric {name!r}: unknown kind {kind!r}; use one of {', '.join(METRIC_KINDS)}"
    if name in seen:
        return f"metric {name!r} is declared twice"
    return None


def tag_problems(tags: Sequence[str]) -> Iterator[Diagnostic]:
    """What is wrong with the definition's `tags`, each with the fix."""
    if len(tags) > MAX_TAGS:
        yield Diagnostic(
            "tags", DiagnosticCode.INVALID_TAG, f"{len(tags)} tags; a definition has at most 20"
        )
    seen: set[str] = set()
    for k, tag in enumerate(tags):
        problem = None
        if not tag or tag != tag.strip():
            problem = f"tag {tag!r} is empty or starts or ends with spaces"
        elif len(tag) > MAX_TAG_LENGTH:
            problem = f"tag {tag[:20]!r}... is {len(tag)} characters; at most {MAX_TAG_LENGTH}"
        elif TAG_FORBIDDEN.search(tag):
            problem = (
                f"tag {tag!r} holds a quote, a backslash or a control character (tags are "
                "searched as CadenzaTags = 'TAG'): remove it"
            )
        elif tag in seen:
            problem = f"tag {tag!r} is listed twice"
        seen.add(tag)
        if problem:
            yield Diagnostic(f"tags[{k}]", DiagnosticCode.INVALID_TAG, problem)
