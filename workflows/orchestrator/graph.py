"""The orchestrator graph of agentic tasks: the seed's EnterpriseWorkflowOrchestrator, durable.

Deterministic code only. `ORCHESTRATOR_GRAPH` is a LangGraph `StateGraph` run by the
`AgenticTaskRun` workflow (workflows/orchestrator/workflow.py) through temporalio-langgraph. Its
nodes are the seed's, and every node runs in the workflow (`execute_in: workflow`) and does its
side effects as activities: model calls are `cadenza.llm.chat`, tool calls are cadenza actions
(workflows/agent/graph.py), each retried and timed out by Temporal.

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

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

from activities.contracts import ErrorType
from workflows.agent.graph import (
    AgentState,
    chat,
    choose_branch,
    model_call,
    run_agent,
)
from workflows.engine.telemetry import record_decision
from workflows.orchestrator.guard import guarded, orchestrator_error, recovery_error
from workflows.orchestrator.models import APPROVAL_NODE, ROUTES, TaskState
from workflows.orchestrator.strategy import (
    RECOVERY_ORDER,
    analysis_prompt,
    fallback_analysis,
    feasible,
    parse_analysis,
    select_strategy,
)
from workflows.orchestrator.subtasks import run_subtasks


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
        {"role": "system", "content": analysis_prompt(tools, config.get("capabilities") or [])},
        {"role": "user", "content": state["task"]},
    ]
    try:
        reply = await chat(config, messages, [], summary="orchestrator: analyse the task")
    except ActivityError as exc:
        return {"error": f"task analysis failed: {exc.cause or exc}"[:500], "messages": messages}
    answer = str(reply.message.get("content", ""))
    analysis, problem = parse_analysis(answer, tools, config.get("capabilities") or [])
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
    return await run_subtasks(dict(state), subtasks, "parallel")


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
    update = await run_subtasks(
        {**state, "usage": usage}, branches[chosen]["subtasks"], f"branch {chosen}"
    )
    update.update(messages=messages, calls=calls)
    if "error" not in update:
        update["answer"] = f"branch {chosen}: {branches[chosen]['when']}"
    return update


async def react_node(state: TaskState) -> dict[str, Any]:
    """The ReAct loop of agent steps (workflows/agent/graph.py), continuing the conversation."""
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
    nodes: dict[str, Any] = {
        "orchestrator": guarded("orchestrator", orchestrator_node, orchestrator_error),
        "parallel_executor": guarded("parallel_executor", parallel_node),
        "conditional_router": guarded("conditional_router", conditional_node),
        "react_agent": guarded("react_agent", react_node),
        APPROVAL_NODE: guarded(APPROVAL_NODE, approval_node),
        "error_recovery": guarded("error_recovery", recovery_node, recovery_error),
    }
    for name, node in nodes.items():  # an exception in a node goes to error_recovery
        graph.add_node(name, node, metadata=in_workflow)
    graph.add_edge(START, "orchestrator")
    edges: dict[Any, str] = {**ROUTES, "complete": END}
    graph.add_conditional_edges("orchestrator", route, edges)
    for node in ROUTES.values():
        graph.add_edge(node, "orchestrator")
    return graph
