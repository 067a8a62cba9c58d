"""Chat models for agent steps, and the `cadenza.llm.chat` activity that calls them.

Every model call of an agent step is one activity, so Temporal retries and times it out; the
model libraries' own retries are off. The model is chosen by name, `provider:model`:

- `scripted:NAME` plays back `NAME.yaml` from `CADENZA_LLM_SCRIPTS` (default `examples/scripts`):
  a list of turns, each `{content: str, tool_calls: [{name, args}]}`. Turn k answers the k-th
  model call of a conversation (`ChatRequest.turn`), so retries and replays get the same answer.
  For tests and the offline demo.
- `openai:MODEL`: any OpenAI-compatible chat-completions server (`langchain-openai`): OpenAI,
  vLLM, LM Studio, llama.cpp... at `CADENZA_OPENAI_BASE_URL` (default OpenAI's), with the key
  of `CADENZA_OPENAI_API_KEY` or `OPENAI_API_KEY` in the worker's environment.
- `ollama:MODEL`: an Ollama server (`langchain-ollama`) at `CADENZA_OLLAMA_URL`.

Keys are read by the worker and never enter a workflow's history. A provider's answer that
cannot succeed on retry (bad key, unknown model, bad request) fails the call with a
non-retryable ModelError; overload, rate limits, 5xx and connection errors are retried by
Temporal with the step's retry policy. The operator's allow-list (`CADENZA_MODELS_ALLOW`,
activities/reasoning/allow.py) refuses other models with a non-retryable Forbidden, and one
circuit breaker per model name (activities/circuit.py) fails calls fast while a model is down.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, SecretStr
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.circuit import CIRCUIT_OPEN, CircuitBreaker
from activities.contracts import (
    CHAT_ACTIVITY,
    SCRIPT_NAME,
    ChatRequest,
    ChatResponse,
    ErrorType,
    model_problem,
)
from activities.reasoning.allow import ModelAllowList
from activities.reasoning.answers import MAX_ANSWER_DEPTH, text_too_deep, value_too_deep
from activities.registry import ActionRegistry
from cadenza.errors import CadenzaError


class ScriptedChatModel(BaseChatModel):
    """A deterministic chat model: turn k of the script answers the k-th call."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    name: str = "scripted"
    turns: list[dict[str, Any]]
    turn: int | None = None
    """The conversation's turn to answer; None: count the assistant messages it was given."""

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
        turn = self.turn
        if turn is None:
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


class ScriptExhausted(CadenzaError):
    """The scripted model was asked for more turns than its script has.

    Add the missing turns to the script, or lower the agent's max_iterations.
    """


MAX_SCRIPT_BYTES = 1_048_576


def load_script(name: str, folder: Path) -> list[dict[str, Any]]:
    """The turns of script `name` (parsed once per file version: a long agent makes hundreds
    of calls on the same script).

    `name` comes from a definition, so it is a file name (SCRIPT_NAME), never a path, and the
    file it names must resolve inside `folder` (no symbolic link out of it). No error message
    quotes the file's content.
    """
    if not SCRIPT_NAME.fullmatch(name):
        raise _model_error(model_problem(f"scripted:{name}") or f"bad script name {name!r}")
    try:
        root = folder.resolve()
        path = (folder / f"{name}.yaml").resolve()
        if not path.is_relative_to(root):
            raise _model_error(
                f"scripted model {name!r}: {name}.yaml leads out of the scripts folder; refused"
            )
        stat = path.stat()
        if stat.st_size > MAX_SCRIPT_BYTES:
            raise _model_error(
                f"scripted model {name!r}: {path} is over {MAX_SCRIPT_BYTES} bytes; refused"
            )
        return _parse_script(name, path, stat.st_mtime_ns, stat.st_size)
    except OSError as exc:
        raise _model_error(
            f"scripted model {name!r}: cannot read {folder / name}.yaml ({exc.strerror}); set "
            "CADENZA_LLM_SCRIPTS to the folder of scripts"
        ) from None


@functools.lru_cache(maxsize=64)
def _parse_script(name: str, path: Path, mtime_ns: int, size: int) -> list[dict[str, Any]]:
    with path.open("rb") as f:
        raw = f.read(MAX_SCRIPT_BYTES + 1)
    try:
        turns = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise _model_error(
            f"scripted model {name!r}: {path} is not UTF-8 (offset {exc.start})"
        ) from None
    except yaml.YAMLError as exc:  # its message quotes the file: only the position goes out
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise _model_error(f"scripted model {name!r}: {path} is not valid YAML{where}") from None
    except RecursionError:
        raise _model_error(f"scripted model {name!r}: {path} nests too deeply") from None
    if not isinstance(turns, list) or not all(isinstance(t, dict) for t in turns):
        raise _model_error(
            f"scripted model {name!r}: {path} must be a list of turns {{content, tool_calls}}"
        )
    return turns


@dataclass(frozen=True)
class Providers:
    """Where the hosted providers are (from the worker's settings and environment)."""

    scripts: Path = Path("examples/scripts")
    openai_base_url: str | None = None
    openai_api_key: str | None = field(default=None, repr=False)
    ollama_url: str = "http://127.0.0.1:11434"

    @classmethod
    def from_settings(cls, settings: Any) -> Providers:
        configured = settings.openai_api_key  # a SecretStr in worker.settings
        configured = configured.get_secret_value() if configured is not None else None
        key = configured or os.environ.get("OPENAI_API_KEY") or None
        return cls(
            scripts=settings.llm_scripts,
            openai_base_url=settings.openai_base_url,
            openai_api_key=key,
            ollama_url=settings.ollama_url,
        )


def chat_model(name: str, providers: Providers, turn: int | None = None) -> BaseChatModel:
    """The chat model `provider:model`, with the libraries' own retries off."""
    problem = model_problem(name)
    if problem is not None:
        raise _model_error(problem)
    provider, _, model = name.partition(":")
    if provider == "scripted":
        return ScriptedChatModel(name=model, turns=load_script(model, providers.scripts), turn=turn)
    if provider == "openai":
        from langchain_openai import ChatOpenAI

        if providers.openai_api_key is None and providers.openai_base_url is None:
            raise _model_error(
                f"model {name!r}: no API key: set OPENAI_API_KEY (or CADENZA_OPENAI_API_KEY) in "
                "the worker's environment, or CADENZA_OPENAI_BASE_URL for a server without keys"
            )
        return ChatOpenAI(
            model=model,
            base_url=providers.openai_base_url,
            api_key=SecretStr(providers.openai_api_key or "none"),
            max_retries=0,
        )
    from langchain_ollama import ChatOllama

    return ChatOllama(model=model, base_url=providers.ollama_url)


def _model_error(message: str) -> ApplicationError:
    return ApplicationError(message, type=ErrorType.MODEL_ERROR, non_retryable=True)


def provider_failure(name: str, exc: BaseException) -> ApplicationError | None:
    """A provider's error that no retry can fix (4xx but 408/409/429), as a non-retryable
    ModelError; None for anything worth retrying (the activity re-raises it as is)."""
    status = getattr(exc, "status_code", None)
    if not isinstance(status, int):
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
    if isinstance(status, int) and 400 <= status < 500 and status not in (408, 409, 429):
        detail = str(getattr(exc, "message", None) or exc)[:500]
        return _model_error(f"model {name!r} refused the call (HTTP {status}): {detail}")
    return None


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
    """`cadenza.llm.chat`: one model call of an agent step, a router or an agentic task.

    `allowed` is the operator's allow-list (`CADENZA_MODELS_ALLOW`): any other model is refused
    with a non-retryable Forbidden. `breaker` keeps one circuit per model name: after its
    threshold of consecutive retryable failures (5xx, timeouts, connection errors) calls to that
    model fail at once with CircuitOpen until its reset time, other models unaffected."""

    def __init__(
        self,
        registry: ActionRegistry,
        providers: Providers,
        default_model: str,
        *,
        allowed: ModelAllowList | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.registry = registry
        self.providers = providers
        self.default_model = default_model
        self.allowed = allowed or ModelAllowList()
        self.breaker = breaker or CircuitBreaker(failure_threshold=0)
        self._hosted: dict[str, BaseChatModel] = {}
        """Hosted models by name, kept: each holds an HTTP client and its open connections."""

    def model(self, name: str, turn: int) -> BaseChatModel:
        if name.startswith("scripted:"):  # cheap, and answers per turn
            return chat_model(name, self.providers, turn=turn)
        if name not in self._hosted:
            self._hosted[name] = chat_model(name, self.providers)
        return self._hosted[name]

    @activity.defn(name=CHAT_ACTIVITY)
    async def chat(self, request: ChatRequest) -> ChatResponse:
        """One model call. Every error says on which attempt it happened (`details`), so a
        non-retryable one is recorded as the one attempt it took."""
        attempt = activity.info().attempt
        try:
            return await self._chat(request)
        except ApplicationError as exc:
            if exc.details:
                raise
            raise ApplicationError(
                exc.message,
                {"attempt": attempt},
                type=exc.type,
                non_retryable=exc.non_retryable,
                next_retry_delay=exc.next_retry_delay,
            ) from None

    async def _chat(self, request: ChatRequest) -> ChatResponse:
        name = request.model or self.default_model
        refused = self.allowed.refusal(name)
        if refused is not None:
            raise ApplicationError(refused, type=ErrorType.FORBIDDEN, non_retryable=True)
        wait = self.breaker.check(name)
        if wait is not None:
            raise ApplicationError(
                f"circuit open for model {name!r} after {self.breaker.failure_threshold} "
                f"consecutive failures on this worker; the next call goes through in {wait:.1f} s",
                type=CIRCUIT_OPEN,
                next_retry_delay=timedelta(seconds=max(wait, 0.1)),
            )
        try:
            response = await self._call(name, request)
        except ApplicationError as exc:
            if not exc.non_retryable:
                self.breaker.failed(name)
            raise
        except asyncio.CancelledError:
            raise
        except Exception:
            self.breaker.failed(name)
            raise
        self.breaker.succeeded(name)
        return response

    async def _call(self, name: str, request: ChatRequest) -> ChatResponse:
        model = self.model(name, request.turn)
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
            raise _model_error(str(exc)) from None
        except Exception as exc:
            refused = provider_failure(name, exc)
            if refused is not None:
                raise refused from None
            raise
        usage = dict(getattr(reply, "usage_metadata", None) or {})
        calls = [
            {"name": c["name"], "args": c.get("args") or {}, "id": c.get("id") or f"call_{i}"}
            for i, c in enumerate(getattr(reply, "tool_calls", None) or [])
        ]
        content = _text(reply.content)
        if text_too_deep(content) or value_too_deep(calls, MAX_ANSWER_DEPTH + 2):
            # the workflow parses the answer and sizes its tool calls: refused here, before
            # its history holds a value no parser there can walk
            raise _model_error(
                f"model {name!r} answered with brackets or tool arguments nested more than "
                f"{MAX_ANSWER_DEPTH} levels deep; refused"
            )
        return ChatResponse(
            message={"role": "assistant", "content": content, "tool_calls": calls},
            usage={k: int(v) for k, v in usage.items() if isinstance(v, int)},
            model=name,
        )


def _text(content: Any) -> str:
    """A message's text: providers may answer with a list of content blocks."""
    if isinstance(content, list):
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return str(content)
