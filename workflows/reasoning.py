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
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.contracts import (
        CHAT_ACTIVITY,
        ChatRequest,
        ChatResponse,
        StepActivityInput,
        StepActivityResult,
    )
    from workflows.dsl.models import EffectiveRetryPolicy
    from workflows.retry import temporal_retry_policy

AGENT_GRAPH = "cadenza-agent"


class AgentState(TypedDict, total=False):
    messages: list[dict[str, Any]]
    iterations: int
    usage: dict[str, int]
    trace: list[dict[str, Any]]
    limit_hit: bool
    config: dict[str, Any]
    """step_id, workflow_id, model, tools, max_iterations, timeout, task_queue, retry."""


def _options(config: dict[str, Any]) -> dict[str, Any]:
    return {
        "start_to_close_timeout": timedelta(seconds=config["timeout"]),
        "retry_policy": temporal_retry_policy(EffectiveRetryPolicy.model_validate(config["retry"])),
        "task_queue": config.get("task_queue"),
    }


async def model_node(state: AgentState) -> dict[str, Any]:
    config = state["config"]
    iterations = state.get("iterations", 0)
    if iterations >= config["max_iterations"]:
        return {"limit_hit": True}
    reply: ChatResponse = await workflow.execute_activity(
        CHAT_ACTIVITY,
        ChatRequest(model=config["model"], messages=state["messages"], tools=config["tools"]),
        result_type=ChatResponse,
        summary=f"{config['step_id']}: model turn {iterations + 1}",
        **_options(config),
    )
    usage = dict(state.get("usage", {}))
    for key, value in reply.usage.items():
        usage[key] = usage.get(key, 0) + value
    return {
        "messages": [*state["messages"], reply.message],
        "iterations": iterations + 1,
        "usage": usage,
    }


async def route(state: AgentState) -> str:
    if state.get("limit_hit"):
        return "stop"
    last = state["messages"][-1]
    return "tools" if last.get("tool_calls") else "stop"


async def tools_node(state: AgentState) -> dict[str, Any]:
    config = state["config"]
    calls = state["messages"][-1].get("tool_calls") or []

    async def call(tool: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        name, args = tool["name"], tool.get("args") or {}
        entry: dict[str, Any] = {"tool": name, "args": args}
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
                entry.update(output=result.output, attempts=result.attempt)
                content = json.dumps(result.output, default=str)
            except ActivityError as exc:
                cause = exc.cause or exc
                entry["error"] = str(cause)[:500]
                content = f"error: {entry['error']}"
        message = {"role": "tool", "content": content, "tool_call_id": tool.get("id", "")}
        return message, entry

    done = await asyncio.gather(*(call(c) for c in calls))
    return {
        "messages": [*state["messages"], *(m for m, _ in done)],
        "trace": [*state.get("trace", []), *(e for _, e in done)],
    }


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
    config: dict[str, Any], instructions: str, branches: list[str], context: dict[str, Any]
) -> tuple[int | str | None, dict[str, Any]]:
    """Ask the model which branch a conditional step takes: an index into `branches`,
    "default", or None when the answer is not one of them (the caller falls back to CEL)."""
    listing = "\n".join(f"{i}: {text}" for i, text in enumerate(branches))
    system = (
        f"{instructions}\n\nBranches:\n{listing}\ndefault: none of the above\n\n"
        'Answer with JSON only: {"branch": <number>} or {"branch": "default"}.'
    )
    request = ChatRequest(
        model=config["model"],
        messages=[
            {"role": "system", "content": system},
            {"role": "user", "content": json.dumps(context, default=str)[:20_000]},
        ],
    )
    detail: dict[str, Any] = {"model": config["model"]}
    try:
        reply: ChatResponse = await workflow.execute_activity(
            CHAT_ACTIVITY,
            request,
            result_type=ChatResponse,
            summary=f"{config['step_id']}: route",
            **_options(config),
        )
    except ActivityError as exc:
        detail["error"] = str(exc.cause or exc)[:300]
        return None, detail
    answer = str(reply.message.get("content", "")).strip()
    detail.update(answer=answer[:300], usage=reply.usage)
    try:
        value: Any = json.loads(answer)
        value = value.get("branch") if isinstance(value, dict) else value
    except ValueError:
        value = answer
    if isinstance(value, str) and value.strip().lower() == "default":
        return "default", detail
    try:
        index = int(value)
    except (TypeError, ValueError):
        return None, detail
    return (index, detail) if 0 <= index < len(branches) else (None, detail)
