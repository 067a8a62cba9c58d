"""Agent steps: a LangGraph ReAct loop run inside the workflow through temporalio-langgraph.

Deterministic code only. The graph (`AGENT_GRAPH`) has two nodes that both run in the workflow
(`execute_in: workflow`) and do their side effects as activities of their own: `model` makes one
`cadenza.llm.chat` call (activities/reasoning/llm.py); `tools` runs each tool call of the model's
message as the cadenza action of that name (the step executor: input validation, heartbeats,
circuit breaker), concurrently. So every model call and every tool call is one activity, retried
and timed out by Temporal with the step's policy, and routed to `cadenza.<agent_capability>`
when the step has one. The loop ends when the model answers without tool calls; a model turn
past `max_iterations` fails the step with AgentLimitExceeded.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any, TypedDict, cast

from temporalio import workflow
from temporalio.exceptions import ActivityError, TimeoutError, TimeoutType

with workflow.unsafe.imports_passed_through():
    from activities.contracts import (
        CHAT_ACTIVITY,
        TASK_QUEUE_PREFIX,
        ChatRequest,
        ChatResponse,
        ErrorType,
        StepActivityInput,
        StepActivityResult,
    )
    from activities.reasoning.answers import text_too_deep
    from workflows.dsl.models import EffectiveRetryPolicy
    from workflows.retry import temporal_retry_policy

AGENT_GRAPH = "cadenza-agent"
MAX_CONTEXT_BYTES = 32_000
"""Default bytes of conversation one model call sends (AgentSpec.max_context_bytes)."""


class ModelCallConfig(TypedDict, total=False):
    """How the model and tool activities of an agent step, a router or an agentic task run."""

    step_id: str
    workflow_id: str
    model: str | None
    timeout: float
    """start_to_close seconds of each model and tool call."""
    task_queue: str | None
    """`cadenza.<agent_capability>`, or None for the run's own queue."""
    retry: dict[str, Any]
    """An EffectiveRetryPolicy as JSON (the step's merged policy)."""
    schedule_to_start: float
    """Seconds a call routed to `task_queue` may wait for a worker (each attempt); unset: no
    bound. Set for agentic tasks' subtasks routed by capability."""
    max_parallel_steps: int
    tools: list[str]
    max_iterations: int
    max_context_bytes: int


def model_call_config(
    *,
    step_id: str,
    workflow_id: str,
    model: str | None,
    timeout: float,
    capability: str | None,
    retry: EffectiveRetryPolicy,
) -> ModelCallConfig:
    """The one place a model-call configuration is built (agent steps, routers, tasks)."""
    return {
        "step_id": step_id,
        "workflow_id": workflow_id,
        "model": model,
        "timeout": timeout,
        "task_queue": TASK_QUEUE_PREFIX + capability if capability else None,
        "retry": retry.model_dump(mode="json"),
    }


class ToolCall(TypedDict, total=False):
    """One tool call in an agent's trace (the step output's `tool_calls`)."""

    tool: str
    args: Any
    output: Any
    error: str
    attempts: int
    queue: str
    """The capability queue the call ran on, when routed (agentic tasks' subtasks)."""


class ModelCall(TypedDict):
    """One model call (the output's `model_calls`)."""

    purpose: str
    model: str | None
    usage: dict[str, int]


class AgentState(TypedDict, total=False):
    messages: list[dict[str, Any]]
    iterations: int
    usage: dict[str, int]
    calls: list[ModelCall]
    trace: list[ToolCall]
    limit_hit: bool
    config: ModelCallConfig


def _options(config: ModelCallConfig) -> dict[str, Any]:
    options = {
        "start_to_close_timeout": timedelta(seconds=config["timeout"]),
        "retry_policy": temporal_retry_policy(EffectiveRetryPolicy.model_validate(config["retry"])),
        "task_queue": config.get("task_queue"),
    }
    if config.get("schedule_to_start"):
        options["schedule_to_start_timeout"] = timedelta(seconds=config["schedule_to_start"])
    return options


async def model_node(state: AgentState) -> dict[str, Any]:
    config = state["config"]
    iterations = state.get("iterations", 0)
    if iterations >= config["max_iterations"]:
        return {"limit_hit": True}
    reply = await chat(
        config,
        state["messages"],
        list(config["tools"]),
        summary=f"{config['step_id']}: model turn {iterations + 1}",
    )
    usage = dict(state.get("usage", {}))
    for key, value in reply.usage.items():
        usage[key] = usage.get(key, 0) + value
    return {
        "messages": [*state["messages"], reply.message],
        "iterations": iterations + 1,
        "usage": usage,
        "calls": [*state.get("calls", []), model_call("turn", reply)],
    }


def model_call(purpose: str, reply: ChatResponse) -> ModelCall:
    """What one model call cost, for the output's `model_calls`."""
    return {"purpose": purpose, "model": reply.model, "usage": dict(reply.usage)}


async def chat(
    config: ModelCallConfig, messages: list[dict[str, Any]], tools: list[str], summary: str
) -> ChatResponse:
    """One model call (an activity) on the conversation `messages`, sent through
    `context_window`, so the history grows by a bounded amount per call however long the
    conversation gets."""
    window = context_window(messages, config.get("max_context_bytes", MAX_CONTEXT_BYTES))
    request = ChatRequest(
        model=config["model"],
        messages=window,
        tools=tools,
        turn=sum(1 for m in messages if m.get("role") == "assistant"),
    )
    return cast(
        ChatResponse,
        await workflow.execute_activity(
            CHAT_ACTIVITY, request, result_type=ChatResponse, summary=summary, **_options(config)
        ),
    )


def context_window(messages: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """What a model call sends of a conversation: the first two messages (instructions and
    task), a note of what was left out, and the most recent messages that fit `budget` bytes
    (JSON), never starting inside a tool-call exchange (a `tool` message needs the assistant
    message that asked for it). Long message contents are cut to a quarter of the budget."""
    cap = max(budget // 4, 200)
    clipped = [_clip(m, cap) for m in messages]
    head, rest = clipped[:2], clipped[2:]
    used = sum(_size(m) for m in head)
    start: int | None = None
    for index in range(len(rest) - 1, -1, -1):
        used += _size(rest[index])
        if used > budget and start is not None:
            break  # the last exchange is kept even when it alone is over the budget
        if rest[index].get("role") != "tool":
            start = index
    if not start:  # nothing after the head, or everything fits
        return clipped
    note = {
        "role": "user",
        "content": f"[{start} earlier messages of this conversation are omitted for length]",
    }
    return [*head, note, *rest[start:]]


def _clip(message: dict[str, Any], cap: int) -> dict[str, Any]:
    content = message.get("content")
    if isinstance(content, str) and len(content) > cap:
        cut = len(content) - cap
        return {**message, "content": f"{content[:cap]} [... {cut} characters cut]"}
    return message


def _size(message: dict[str, Any]) -> int:
    return len(json.dumps(message, default=str))


async def route(state: AgentState) -> str:
    if state.get("limit_hit"):
        return "stop"
    last = state["messages"][-1]
    return "tools" if last.get("tool_calls") else "stop"


async def tools_node(state: AgentState) -> dict[str, Any]:
    config = state["config"]
    calls = state["messages"][-1].get("tool_calls") or []
    done = await asyncio.gather(*(call_tool(config, c) for c in calls))
    return {
        "messages": [*state["messages"], *(m for m, _ in done)],
        "trace": [*state.get("trace", []), *(e for _, e in done)],
    }


async def call_tool(
    config: ModelCallConfig, tool: dict[str, Any]
) -> tuple[dict[str, Any], ToolCall]:
    """Run one tool call `{name, args, id}` as the cadenza action of that name (an activity);
    return the `tool` message for the model and the trace entry `{tool, args, output|error,
    attempts}`. A failed call (after its retries) is reported to the model, not raised."""
    name, args = tool["name"], tool.get("args") or {}
    entry: ToolCall = {"tool": name, "args": args}
    if name not in config["tools"]:
        entry["error"] = f"no tool {name!r}; the tools are {config['tools']}"
        content = entry["error"]
    else:
        try:
            result: StepActivityResult = await workflow.execute_activity(
                name,
                StepActivityInput(
                    workflow_id=config["workflow_id"],
                    step_id=config["step_id"],
                    params=args if isinstance(args, dict) else {"value": args},
                    role="tool",
                ),
                result_type=StepActivityResult,
                summary=f"{config['step_id']}: tool {name}",
                **_options(config),
            )
            entry["output"] = result.output
            entry["attempts"] = result.attempt
            content = json.dumps(result.output, default=str)
        except ActivityError as exc:
            entry["error"] = _tool_error(exc, config.get("task_queue"))
            content = f"error: {entry['error']}"
    message = {"role": "tool", "content": content, "tool_call_id": tool.get("id", "")}
    return message, entry


def _tool_error(exc: ActivityError, queue: str | None) -> str:
    cause = exc.cause or exc
    if queue and isinstance(cause, TimeoutError) and cause.type == TimeoutType.SCHEDULE_TO_START:
        return (
            f"{ErrorType.NO_WORKER_FOR_CAPABILITY}: no worker polls the task queue {queue!r}: "
            f"start one with `cadenza worker --task-queue {queue}`"
        )
    return str(cause)[:500]


def build_agent_graph() -> Any:
    """A fresh `StateGraph` (the plugin mutates the graph it is given: one per worker and
    replayer). LangGraph is imported here, not at module import: the CLI does not need it."""
    from langgraph.graph import END, START, StateGraph

    graph = StateGraph(AgentState)
    graph.add_node("model", model_node, metadata={"execute_in": "workflow"})
    graph.add_node("tools", tools_node, metadata={"execute_in": "workflow"})
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", route, {"tools": "tools", "stop": END})
    graph.add_edge("tools", "model")
    return graph


async def run_agent(initial: AgentState, max_iterations: int) -> AgentState:
    """Run the agent graph from `initial` to its end state."""
    from temporalio.langgraph import graph

    app = graph(AGENT_GRAPH).compile()
    final: Any = await app.ainvoke(initial, {"recursion_limit": 2 * max_iterations + 5})
    return cast(AgentState, final)


async def choose_branch(
    config: ModelCallConfig,
    instructions: str,
    branches: list[str],
    context: dict[str, Any],
    conversation: list[dict[str, Any]] | None = None,
) -> tuple[int | str | None, dict[str, Any], tuple[dict[str, Any], ChatResponse] | None]:
    """Ask the model which branch to take: an index into `branches`, "default", or None when
    the answer is not one of them (the caller falls back); what the call cost and answered;
    and the question with the model's reply (None when the call failed). The question is a
    fresh conversation, or the next turn of `conversation` when given."""
    listing = "\n".join(f"{i}: {text}" for i, text in enumerate(branches))
    question = (
        f"{instructions}\n\nBranches:\n{listing}\ndefault: none of the above\n\n"
        'Answer with JSON only: {"branch": <number>} or {"branch": "default"}.'
    )
    facts = json.dumps(context, default=str)[:20_000]
    messages = (
        [*conversation, {"role": "user", "content": f"{question}\n\n{facts}"}]
        if conversation
        else [{"role": "system", "content": question}, {"role": "user", "content": facts}]
    )
    detail: dict[str, Any] = {"model": config["model"]}
    try:
        reply = await chat(config, messages, [], summary=f"{config['step_id']}: route")
    except ActivityError as exc:
        detail["error"] = str(exc.cause or exc)[:300]
        return None, detail, None
    answer = str(reply.message.get("content", "")).strip()
    detail.update(answer=answer[:300], usage=reply.usage)
    asked = (messages[-1], reply)
    value = parse_json_answer(answer)
    value = value.get("branch") if isinstance(value, dict) else value
    if value is None:
        value = answer
    if isinstance(value, str) and value.strip().lower() == "default":
        return "default", detail, asked
    try:
        index = int(value)
    except (TypeError, ValueError, OverflowError):  # 1e999 parses as inf
        return None, detail, asked
    return (index if 0 <= index < len(branches) else None), detail, asked


def parse_json_answer(answer: str) -> Any:
    """The JSON value in a model's answer (also inside a ```json fence), or None (also for an
    answer nested too deeply to parse without recursing: the chat activity refuses those, this
    is for answers recorded before it did)."""
    text = answer.strip()
    if text.startswith("```"):
        text = text.strip("`")
        text = text[4:] if text.lower().startswith("json") else text
    if text_too_deep(text):
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None
