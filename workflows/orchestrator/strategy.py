"""How the orchestrator decides, as pure functions of the task's state: the analysis (the
model's, normalised, or a deterministic fallback) and the next strategy."""

from __future__ import annotations

import re
from typing import Any

from workflows.agent.graph import parse_json_answer
from workflows.orchestrator.models import TaskState

RECOVERY_ORDER = ("react", "parallel")
"""Strategies error_recovery falls back to, in this order, skipping those already tried."""

SENSITIVE_WORDS = (
    "approve",
    "delete",
    "deploy",
    "payment",
    "pay ",
    "production",
    "refund",
    "transfer",
    "wire",
)

ANALYSIS_PROMPT = """You orchestrate a task with these tools: {tools}.
First analyse the task. Answer with JSON only:
{{"complexity": <0..1>, "capabilities": [<tool names needed>],
  "dependencies": "independent" | "sequential" | "conditional",
  "sensitive": <true when a human must approve before anything runs>,
  "subtasks": [{{"tool": <name>, "args": {{...}}}}],
  "branches": [{{"when": <condition>, "subtasks": [...]}}]}}
"independent": the subtasks can all run at once; "conditional": exactly one of the branches
applies; "sequential": you will work step by step with the tools."""


CAPABILITY_PROMPT = """
Subtasks may run on these capability queues: {capabilities}. Give a subtask that needs one
{{"tool": ..., "args": ..., "capability": <one of them>}}; "capabilities" lists those used."""


def analysis_prompt(tools: list[str], capabilities: list[str]) -> str:
    """The analysis question; the capability queues are offered only when the task has any."""
    prompt = ANALYSIS_PROMPT.format(tools=", ".join(tools) or "none")
    if capabilities:
        prompt += CAPABILITY_PROMPT.format(capabilities=", ".join(capabilities))
    return prompt


def parse_analysis(
    answer: str, tools: list[str], capabilities: list[str] | None = None
) -> tuple[dict[str, Any] | None, str]:
    """The model's analysis, normalised, or (None, why it is not usable). With `capabilities`
    (the task's declared capability queues), a subtask may name one of them as `capability`
    and the analysis' `capabilities` are those its subtasks use."""
    value = parse_json_answer(answer)
    if not isinstance(value, dict):
        return None, "the analysis is not a JSON object"
    if value.get("branches") is not None and not isinstance(value["branches"], list):
        return None, "branches is not a list"
    try:
        complexity = min(max(float(value.get("complexity", 0.5)), 0.0), 1.0)
    except (TypeError, ValueError):
        return None, "complexity is not a number"
    dependencies = value.get("dependencies", "sequential")
    if dependencies not in ("independent", "sequential", "conditional"):
        return None, f"dependencies {dependencies!r} is not independent/sequential/conditional"
    declared = capabilities or []
    subtasks, problem = _subtasks(value.get("subtasks"), tools, declared)
    if problem:
        return None, problem
    branches = []
    for index, branch in enumerate(value.get("branches") or []):
        if not isinstance(branch, dict) or not isinstance(branch.get("when"), str):
            return None, f"branch {index} has no `when` text"
        calls, problem = _subtasks(branch.get("subtasks"), tools, declared)
        if problem:
            return None, f"branch {index}: {problem}"
        branches.append({"when": branch["when"], "subtasks": calls})
    listed = value.get("capabilities") or []
    listed = listed if isinstance(listed, list | str | dict) else []
    needed = [c for c in listed if isinstance(c, str)]
    if declared:  # the queues the subtasks are routed to
        every = [*subtasks, *(c for b in branches for c in b["subtasks"])]
        needed = list(dict.fromkeys(c["capability"] for c in every if "capability" in c))
    return {
        "source": "model",
        "complexity": complexity,
        "capabilities": needed,
        "dependencies": dependencies,
        "sensitive": bool(value.get("sensitive", False)),
        "subtasks": subtasks,
        "branches": branches,
    }, ""


def _subtasks(
    raw: Any, tools: list[str], capabilities: list[str]
) -> tuple[list[dict[str, Any]], str]:
    if raw is None:
        return [], ""
    if not isinstance(raw, list):
        return [], "subtasks is not a list"
    out = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or item.get("tool") not in tools:
            return [], f"subtask {index} names no tool of {tools}"
        args = item.get("args") or {}
        if not isinstance(args, dict):
            return [], f"subtask {index}: args is not an object"
        subtask = {"tool": item["tool"], "args": args}
        capability = item.get("capability")
        if capabilities and capability is not None:  # undeclared: the key is not used
            if capability not in capabilities:
                return [], f"subtask {index}: capability {capability!r} is not in {capabilities}"
            subtask["capability"] = capability
        out.append(subtask)
    return out, ""


def fallback_analysis(task: str, tools: list[str], problem: str) -> dict[str, Any]:
    """A deterministic analysis when the model's does not parse: complexity from the task's
    length and the tools on offer, capabilities = the tools the task names (else all),
    sensitive when the task uses words like payment/delete/deploy; always the react route."""
    lowered = task.lower()
    words = len(re.findall(r"\w+", task))
    named = [t for t in tools if t.lower() in lowered or t.split(".")[-1].lower() in lowered]
    return {
        "source": "fallback",
        "problem": problem,
        "complexity": round(min(1.0, words / 200 + 0.1 * len(tools)), 3),
        "capabilities": named or list(tools),
        "dependencies": "sequential",
        "sensitive": any(w in lowered for w in SENSITIVE_WORDS),
        "subtasks": [],
        "branches": [],
    }


def feasible(strategy: str, analysis: dict[str, Any]) -> bool:
    if strategy == "parallel":
        return len(analysis.get("subtasks") or []) >= 1
    if strategy == "conditional":
        return len(analysis.get("branches") or []) >= 1
    return strategy == "react"


def select_strategy(state: TaskState) -> tuple[str, str]:
    """The next route and why: a pure function of the state."""
    analysis = state.get("analysis") or {}
    failure = state.get("failure")
    if failure is not None:
        return "complete", f"ended: {failure['message']}"
    if state.get("error"):
        return "error", str(state["error"])
    if state.get("done"):
        return "complete", "the task is done"
    needs_approval = analysis.get("sensitive") or state["config"].get("require_approval")
    if needs_approval and not state.get("approved"):
        return "approval", "sensitive task: a human approves the plan first"
    forced = state.get("forced")
    if forced:
        return forced, f"recovery: trying {forced}"
    dependencies = analysis.get("dependencies")
    if dependencies == "conditional" and feasible("conditional", analysis):
        return "conditional", "one of several branches applies"
    if dependencies == "independent" and len(analysis.get("subtasks") or []) >= 2:
        return "parallel", f"{len(analysis['subtasks'])} independent subtasks"
    return "react", "work step by step with the tools"


# ---------------------------------------------------------------------- nodes
