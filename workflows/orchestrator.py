"""The orchestrator graph of agentic tasks: the seed's EnterpriseWorkflowOrchestrator, durable.

Deterministic code only. `ORCHESTRATOR_GRAPH` is a LangGraph `StateGraph` run by the
`AgenticTaskRun` workflow (workflows/task.py) through temporalio-langgraph. Its nodes are the
seed's, and every node runs in the workflow (`execute_in: workflow`) and does its side effects
as activities: model calls are `cadenza.llm.chat`, tool calls are cadenza actions
(workflows/reasoning.py), each retried and timed out by Temporal.

    START -> orchestrator --parallel----> parallel_executor  --> orchestrator
                          --conditional-> conditional_router --> orchestrator
                          --react-------> react_agent        --> orchestrator
                          --approval----> human_approval     --> orchestrator
                          --error-------> error_recovery     --> orchestrator
                          --complete----> END

`orchestrator` analyses the task once (one model call answering JSON; when the answer does not
parse, `fallback_analysis` decides deterministically) and then picks the next route with
`select_strategy`, a pure function of the state: each decision is recorded (`decisions`, and a
`cadenza.decision` span the worker's monitor counts). `human_approval` interrupts the graph;
the workflow waits for an `approve`/`reject` update and resumes it.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Literal, TypedDict

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel, ConfigDict, Field, field_validator

    from activities.contracts import ErrorType, model_problem
    from workflows.dsl.models import AuditEntry, EffectiveRetryPolicy, ErrorInfo

from workflows.reasoning import (
    AgentState,
    call_tool,
    chat,
    choose_branch,
    model_call,
    parse_json_answer,
    run_agent,
)
from workflows.telemetry import record_decision

ORCHESTRATOR_GRAPH = "cadenza-orchestrator"
TASK_WORKFLOW = "AgenticTaskRun"
APPROVAL_NODE = "human_approval"
"""The `step_id` approvers name in their `approve`/`reject` update (`cadenza approve ID
human_approval --by NAME`)."""

Strategy = Literal["parallel", "conditional", "react", "approval", "error", "complete"]
ROUTES: dict[str, str] = {
    "parallel": "parallel_executor",
    "conditional": "conditional_router",
    "react": "react_agent",
    "approval": APPROVAL_NODE,
    "error": "error_recovery",
}
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


class TaskInput(BaseModel):
    """What `cadenza task` starts: a free-form task and the actions it may use as tools."""

    model_config = ConfigDict(extra="forbid")

    task: str = Field(min_length=1, max_length=20_000, description="The task, in words.")
    tools: list[str] = Field(default_factory=list, description="Action names it may call.")
    model: str | None = Field(None, description="provider:name; the worker's default if unset.")
    capability: str | None = Field(
        None, description="Route model and tool activities to task queue cadenza.<capability>."
    )
    require_approval: bool = Field(False, description="Ask a human before any tool runs.")
    approvers: list[str] = Field(default_factory=list, description="Who may decide (any: []).")
    approval_timeout: float = Field(86_400.0, gt=0, description="Seconds to wait for a decision.")
    max_iterations: int = Field(10, ge=1, le=1000, description="Model turns of the react route.")
    max_recoveries: int = Field(2, ge=0, le=10, description="error_recovery attempts.")
    timeout: float = Field(300.0, gt=0, description="Timeout of each model and tool call (s).")
    retry: EffectiveRetryPolicy = Field(
        default_factory=lambda: EffectiveRetryPolicy(max_attempts=3, backoff_coefficient=2.0),
        description="Retries of each model and tool call (the seed's: 3, exponential).",
    )

    @field_validator("model")
    @classmethod
    def _known_provider(cls, value: str | None) -> str | None:
        problem = model_problem(value) if value is not None else None
        if problem is not None:
            raise ValueError(problem)
        return value


class Decision(BaseModel):
    """One routing decision of the orchestrator node."""

    at: str
    strategy: str
    complexity: float
    reason: str


class TaskResult(BaseModel):
    """The live state (query `status`) and the result of an AgenticTaskRun."""

    execution_id: str
    task: str
    status: Literal["running", "waiting", "completed", "failed"] = "running"
    analysis: dict[str, Any] | None = None
    route: list[str] = Field(default_factory=list, description="Strategies taken, in order.")
    decisions: list[Decision] = Field(default_factory=list)
    answer: str | None = None
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    iterations: int = 0
    usage: dict[str, int] = Field(default_factory=dict)
    model_calls: list[dict[str, Any]] = Field(
        default_factory=list, description="Every model call: {purpose, model, usage}."
    )
    waiting: dict[str, Any] | None = Field(None, description="The approval asked for, if any.")
    approval_requests: int = 0
    approvals: list[AuditEntry] = Field(default_factory=list)
    error: ErrorInfo | None = None
    started_at: str = ""
    ended_at: str | None = None


class TaskState(TypedDict, total=False):
    task: str
    config: dict[str, Any]
    """Model and tool call settings: step_id, workflow_id, model, tools, timeout, retry,
    task_queue, max_iterations, max_context_bytes; plus require_approval, max_recoveries."""
    messages: list[dict[str, Any]]
    analysis: dict[str, Any] | None
    strategy: str
    forced: str | None
    tried: list[str]
    approved: bool | None
    done: bool
    error: str | None
    error_count: int
    failure: dict[str, Any] | None
    decisions: list[dict[str, Any]]
    trace: list[dict[str, Any]]
    usage: dict[str, int]
    calls: list[dict[str, Any]]
    iterations: int
    answer: str | None


# ---------------------------------------------------------------------- analysis and strategy


def parse_analysis(answer: str, tools: list[str]) -> tuple[dict[str, Any] | None, str]:
    """The model's analysis, normalised, or (None, why it is not usable)."""
    value = parse_json_answer(answer)
    if not isinstance(value, dict):
        return None, "the analysis is not a JSON object"
    try:
        complexity = min(max(float(value.get("complexity", 0.5)), 0.0), 1.0)
    except (TypeError, ValueError):
        return None, "complexity is not a number"
    dependencies = value.get("dependencies", "sequential")
    if dependencies not in ("independent", "sequential", "conditional"):
        return None, f"dependencies {dependencies!r} is not independent/sequential/conditional"
    subtasks, problem = _subtasks(value.get("subtasks"), tools)
    if problem:
        return None, problem
    branches = []
    for index, branch in enumerate(value.get("branches") or []):
        if not isinstance(branch, dict) or not isinstance(branch.get("when"), str):
            return None, f"branch {index} has no `when` text"
        calls, problem = _subtasks(branch.get("subtasks"), tools)
        if problem:
            return None, f"branch {index}: {problem}"
        branches.append({"when": branch["when"], "subtasks": calls})
    capabilities = [c for c in value.get("capabilities") or [] if isinstance(c, str)]
    return {
        "source": "model",
        "complexity": complexity,
        "capabilities": capabilities,
        "dependencies": dependencies,
        "sensitive": bool(value.get("sensitive", False)),
        "subtasks": subtasks,
        "branches": branches,
    }, ""


def _subtasks(raw: Any, tools: list[str]) -> tuple[list[dict[str, Any]], str]:
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
        out.append({"tool": item["tool"], "args": args})
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


async def orchestrator_node(state: TaskState) -> dict[str, Any]:
    update: dict[str, Any] = {}
    if state.get("analysis") is None and not state.get("error"):
        update = await _analyse(state)
        state = {**state, **update}  # type: ignore[typeddict-item]
    strategy, reason = select_strategy(state)
    complexity = float((state.get("analysis") or {}).get("complexity", 0.0))
    decision = {
        "at": workflow.now().isoformat(),
        "strategy": strategy,
        "complexity": complexity,
        "reason": reason[:300],
    }
    record_decision(workflow.info().workflow_id, strategy, complexity)
    update.update(strategy=strategy, decisions=[*state.get("decisions", []), decision])
    if strategy in ("parallel", "conditional", "react"):
        update["tried"] = [*state.get("tried", []), strategy]
        update["forced"] = None
    return update


async def _analyse(state: TaskState) -> dict[str, Any]:
    config = state["config"]
    tools = list(config["tools"])
    messages = [
        {"role": "system", "content": ANALYSIS_PROMPT.format(tools=", ".join(tools) or "none")},
        {"role": "user", "content": state["task"]},
    ]
    try:
        reply = await chat(config, messages, [], summary="orchestrator: analyse the task")
    except ActivityError as exc:
        return {"error": f"task analysis failed: {exc.cause or exc}"[:500], "messages": messages}
    answer = str(reply.message.get("content", ""))
    analysis, problem = parse_analysis(answer, tools)
    if analysis is None:
        analysis = fallback_analysis(state["task"], tools, problem)
    return {
        "analysis": analysis,
        "messages": [*messages, reply.message],
        "usage": _add(state.get("usage", {}), reply.usage),
        "calls": [*state.get("calls", []), model_call("analysis", reply)],
    }


async def route(state: TaskState) -> str:
    return state["strategy"]


async def parallel_node(state: TaskState) -> dict[str, Any]:
    """Run the analysed subtasks' tool calls concurrently; any failure goes to recovery."""
    subtasks = (state.get("analysis") or {}).get("subtasks") or []
    return await _run_calls(state, subtasks, "parallel")


async def conditional_node(state: TaskState) -> dict[str, Any]:
    """The model picks one of the analysed branches; its subtasks run concurrently."""
    config = state["config"]
    branches = (state.get("analysis") or {}).get("branches") or []
    chosen, detail, asked = await choose_branch(
        config,
        "Which branch applies to the task?",
        [b["when"] for b in branches],
        {"task": state["task"]},
        conversation=state.get("messages"),
    )
    usage = _add(state.get("usage", {}), detail.get("usage") or {})
    messages, calls = list(state.get("messages", [])), list(state.get("calls", []))
    if asked is not None:  # the question and the answer join the task's conversation
        question, reply = asked
        messages += [question, reply.message]
        calls.append(model_call("route", reply))
    if not isinstance(chosen, int):
        answer = detail.get("error") or detail.get("answer")
        return {
            "error": f"conditional: no declared branch chosen ({answer!r})",
            "usage": usage,
            "messages": messages,
            "calls": calls,
        }
    update = await _run_calls(
        {**state, "usage": usage}, branches[chosen]["subtasks"], f"branch {chosen}"
    )
    update.update(messages=messages, calls=calls)
    if "error" not in update:
        update["answer"] = f"branch {chosen}: {branches[chosen]['when']}"
    return update


async def react_node(state: TaskState) -> dict[str, Any]:
    """The ReAct loop of agent steps (workflows/reasoning.py), continuing the conversation."""
    config = state["config"]
    messages = [
        *state.get("messages", []),
        {"role": "user", "content": _react_prompt(state)},
    ]
    agent: AgentState = {
        "messages": messages,
        "iterations": 0,
        "usage": state.get("usage", {}),
        "calls": state.get("calls", []),
        "trace": [],
        "config": config,
    }
    try:
        final = await run_agent(agent, config["max_iterations"])
    except ActivityError as exc:  # a model call failed for good (after its retries)
        return {"error": f"react: model call failed: {exc.cause or exc}"[:500]}
    update: dict[str, Any] = {
        "messages": final["messages"],
        "usage": final.get("usage", {}),
        "calls": final.get("calls", []),
        "iterations": state.get("iterations", 0) + final.get("iterations", 0),
        "trace": [*state.get("trace", []), *final.get("trace", [])],
    }
    if final.get("limit_hit"):
        update["error"] = (
            f"react: {ErrorType.AGENT_LIMIT_EXCEEDED}: the model still called tools after "
            f"max_iterations={config['max_iterations']} turns"
        )
        return update
    replies = [m for m in final["messages"] if m.get("role") == "assistant"]
    update.update(done=True, answer=str(replies[-1].get("content", "")) if replies else "")
    return update


def _react_prompt(state: TaskState) -> str:
    failed = [d["reason"] for d in state.get("decisions", []) if d["strategy"] == "error"]
    prompt = "Carry out the task with the tools; answer in words when it is done."
    if failed:
        prompt = f"An earlier attempt failed ({failed[-1]}). {prompt}"
    return prompt


async def approval_node(state: TaskState) -> dict[str, Any]:
    """Interrupt for a human decision. Nothing happens before `interrupt`: on resume LangGraph
    runs this node again from the top, and interrupt() then returns the decision."""
    from langgraph.types import interrupt

    analysis = state.get("analysis") or {}
    decision = interrupt(
        {
            "key": APPROVAL_NODE,
            "task": state["task"][:2000],
            "plan": {
                "dependencies": analysis.get("dependencies"),
                "subtasks": analysis.get("subtasks"),
                "tools": state["config"]["tools"],
            },
        }
    )
    if decision.get("decision") == "approve":
        return {"approved": True}
    timed_out = decision.get("decision") == "timeout"
    return {
        "approved": False,
        "failure": {
            "type": ErrorType.APPROVAL_TIMEOUT if timed_out else ErrorType.APPROVAL_REJECTED,
            "message": decision.get("reason") or "the plan was rejected",
        },
    }


async def recovery_node(state: TaskState) -> dict[str, Any]:
    """Retry with another strategy, or end with a clear failure."""
    error = str(state.get("error") or "unknown error")
    count = state.get("error_count", 0) + 1
    base: dict[str, Any] = {"error": None, "error_count": count}
    analysis = state.get("analysis")
    if analysis is None:  # the analysis itself failed: decide without the model
        return {
            **base,
            "analysis": fallback_analysis(state["task"], state["config"]["tools"], error),
        }
    if count > state["config"]["max_recoveries"]:
        return {**base, "failure": _failure(f"{error}; gave up after {count - 1} recoveries")}
    tried = state.get("tried", [])
    options = [s for s in RECOVERY_ORDER if s not in tried and feasible(s, analysis)]
    if not options:
        return {**base, "failure": _failure(f"{error}; no other strategy left (tried {tried})")}
    return {**base, "forced": options[0]}


def _failure(message: str) -> dict[str, Any]:
    return {"type": ErrorType.WORKFLOW_FAILED, "message": message}


async def _run_calls(
    state: TaskState, subtasks: list[dict[str, Any]], label: str
) -> dict[str, Any]:
    config = state["config"]
    calls = [
        {"name": s["tool"], "args": s["args"], "id": f"{label}_{i}"} for i, s in enumerate(subtasks)
    ]
    done = await asyncio.gather(*(call_tool(config, c) for c in calls))
    entries = [entry for _, entry in done]
    update: dict[str, Any] = {
        "trace": [*state.get("trace", []), *entries],
        "usage": state.get("usage", {}),
    }
    failed = [e for e in entries if "error" in e]
    if failed:
        update["error"] = f"{label}: tool {failed[0]['tool']} failed: {failed[0]['error']}"[:500]
    else:
        update["done"] = True
    return update


def _add(total: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    out = dict(total)
    for key, value in more.items():
        out[key] = out.get(key, 0) + value
    return out


def build_orchestrator_graph() -> Any:
    """A fresh `StateGraph` with the seed's nodes and edges (one per worker and replayer)."""
    from langgraph.graph import END, START, StateGraph

    in_workflow = {"execute_in": "workflow"}
    graph = StateGraph(TaskState)
    graph.add_node("orchestrator", orchestrator_node, metadata=in_workflow)
    graph.add_node("parallel_executor", parallel_node, metadata=in_workflow)
    graph.add_node("conditional_router", conditional_node, metadata=in_workflow)
    graph.add_node("react_agent", react_node, metadata=in_workflow)
    graph.add_node(APPROVAL_NODE, approval_node, metadata=in_workflow)
    graph.add_node("error_recovery", recovery_node, metadata=in_workflow)
    graph.add_edge(START, "orchestrator")
    edges: dict[Any, str] = {**ROUTES, "complete": END}
    graph.add_conditional_edges("orchestrator", route, edges)
    for node in ROUTES.values():
        graph.add_edge(node, "orchestrator")
    return graph
