"""Chat models for agent steps, and the `cadenza.llm.chat` activity that calls them.

Every model call of an agent step is one activity, so Temporal retries and times it out; the
model library's own retries are off. The model is chosen by name:

- `scripted:NAME` plays back `NAME.yaml` from `CADENZA_LLM_SCRIPTS` (default `examples/scripts`):
  a list of turns, each `{content: str, tool_calls: [{name, args}]}`. Turn k answers the k-th
  model call of a conversation, so retries and replays get the same answer. For tests and the
  offline demo.

Hosted providers (OpenAI-compatible endpoints, Ollama) are not wired in this build: asking for
one fails the call with a clear, non-retryable error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.contracts import CHAT_ACTIVITY, ChatRequest, ChatResponse, ErrorType
from activities.registry import ActionRegistry


class ScriptedChatModel(BaseChatModel):
    """A deterministic chat model: turn k of the script answers the k-th call."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = "scripted"
    turns: list[dict[str, Any]]

    @property
    def _llm_type(self) -> str:
        return "cadenza-scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:  # type: ignore[override]
        return self  # the script decides which tools it calls

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        turn = sum(1 for m in messages if isinstance(m, AIMessage))
        if turn >= len(self.turns):
            raise ScriptExhausted(
                f"script {self.name!r} has {len(self.turns)} turns; the conversation asked for "
                f"turn {turn + 1}"
            )
        spec = self.turns[turn]
        calls = [
            {"name": c["name"], "args": c.get("args", {}), "id": f"call_{turn}_{i}"}
            for i, c in enumerate(spec.get("tool_calls") or [])
        ]
        prompt = sum(len(str(m.content)) for m in messages)
        content = str(spec.get("content", ""))
        message = AIMessage(
            content=content,
            tool_calls=calls,
            usage_metadata={
                "input_tokens": prompt // 4,
                "output_tokens": max(1, len(content) // 4),
                "total_tokens": prompt // 4 + max(1, len(content) // 4),
            },
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


class ScriptExhausted(Exception):
    """The scripted model was asked for more turns than its script has."""


def load_script(name: str, folder: Path) -> list[dict[str, Any]]:
    path = folder / f"{name}.yaml"
    try:
        turns = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ApplicationError(
            f"scripted model {name!r}: cannot read {path} ({exc.strerror}); set "
            "CADENZA_LLM_SCRIPTS to the folder of scripts",
            type=ErrorType.MODEL_ERROR,
            non_retryable=True,
        ) from None
    if not isinstance(turns, list) or not all(isinstance(t, dict) for t in turns):
        raise ApplicationError(
            f"scripted model {name!r}: {path} must be a list of turns {{content, tool_calls}}",
            type=ErrorType.MODEL_ERROR,
            non_retryable=True,
        )
    return turns


def chat_model(name: str, scripts: Path) -> BaseChatModel:
    provider, _, model = name.partition(":")
    if provider == "scripted" and model:
        return ScriptedChatModel(name=model, turns=load_script(model, scripts))
    raise ApplicationError(
        f"model {name!r}: only scripted models (scripted:NAME) are wired in this build; "
        "OpenAI-compatible and Ollama providers are planned",
        type=ErrorType.MODEL_ERROR,
        non_retryable=True,
    )


def to_langchain(messages: list[dict[str, Any]]) -> list[BaseMessage]:
    from langchain_core.messages import HumanMessage, SystemMessage, ToolMessage

    out: list[BaseMessage] = []
    for m in messages:
        role, content = m.get("role"), str(m.get("content", ""))
        if role == "system":
            out.append(SystemMessage(content=content))
        elif role == "user":
            out.append(HumanMessage(content=content))
        elif role == "assistant":
            out.append(AIMessage(content=content, tool_calls=m.get("tool_calls") or []))
        elif role == "tool":
            out.append(ToolMessage(content=content, tool_call_id=str(m.get("tool_call_id", ""))))
    return out


class LlmActivities:
    """`cadenza.llm.chat`: one model call of an agent step."""

    def __init__(self, registry: ActionRegistry, scripts: Path, default_model: str) -> None:
        self.registry = registry
        self.scripts = scripts
        self.default_model = default_model

    @activity.defn(name=CHAT_ACTIVITY)
    async def chat(self, request: ChatRequest) -> ChatResponse:
        name = request.model or self.default_model
        model = chat_model(name, self.scripts)
        tools = [
            {
                "type": "function",
                "function": {
                    "name": tool,
                    "description": self.registry.get(tool).description or tool,
                    "parameters": self.registry.get(tool).input_schema(),
                },
            }
            for tool in request.tools
        ]
        bound = model.bind_tools(tools) if tools else model
        try:
            reply = await bound.ainvoke(to_langchain(request.messages))
        except ScriptExhausted as exc:
            raise ApplicationError(
                str(exc), type=ErrorType.MODEL_ERROR, non_retryable=True
            ) from None
        usage = dict(getattr(reply, "usage_metadata", None) or {})
        calls = [
            {"name": c["name"], "args": c.get("args") or {}, "id": c.get("id") or f"call_{i}"}
            for i, c in enumerate(getattr(reply, "tool_calls", None) or [])
        ]
        return ChatResponse(
            message={"role": "assistant", "content": str(reply.content), "tool_calls": calls},
            usage={k: int(v) for k, v in usage.items() if isinstance(v, int)},
            model=name,
        )
