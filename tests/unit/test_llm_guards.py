"""The model-call activity's guards, on the real activity (temporalio's ActivityEnvironment) and
the real provider clients against a local model server: the operator's allow-list
(CADENZA_MODELS_ALLOW) and one circuit breaker per model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.circuit import CIRCUIT_OPEN, CircuitBreaker
from activities.contracts import ChatRequest, ErrorType
from activities.reasoning.allow import ModelAllowList
from activities.reasoning.llm import LlmActivities, Providers
from activities.std import default_registry
from tests.support.model_servers import model_server
from worker.settings import Settings

ASK = [{"role": "user", "content": "hello"}]


def scripted(folder: Path, name: str) -> str:
    (folder / f"{name}.yaml").write_text(yaml.safe_dump([{"content": f"{name} here"}] * 20))
    return f"scripted:{name}"


async def call(activities: LlmActivities, model: str | None, attempt: int = 1) -> str:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt)
    request = ChatRequest(model=model, messages=ASK, tools=[], turn=0)
    reply = await env.run(activities.chat, request)
    return str(reply.message["content"])


def test_the_allow_list_parses_names_and_globs_and_refuses_malformed_entries() -> None:
    allowed = ModelAllowList.parse(" openai:gpt-4o-mini , scripted:*,ollama:llama3* ")
    assert allowed.allows("openai:gpt-4o-mini") and not allowed.allows("openai:gpt-4o")
    assert allowed.allows("scripted:anything") and allowed.allows("ollama:llama3.1")
    assert not allowed.allows("ollama:mistral")
    assert ModelAllowList.parse("").allows("openai:o1-pro")  # unset: every model
    with pytest.raises(ValueError, match="CADENZA_MODELS_ALLOW: 'gpt-4o' is not provider:name"):
        ModelAllowList.parse("scripted:*,gpt-4o")
    with pytest.raises(ValueError, match="CADENZA_MODELS_ALLOW"):
        Settings(models_allow="openai:")  # the worker does not start with a typo


async def test_a_model_outside_the_allow_list_is_refused_with_forbidden(tmp_path: Path) -> None:
    with model_server([(200, {"content": "costly"})]) as server:
        providers = Providers(scripts=tmp_path, openai_base_url=f"{server.url}/v1")
        activities = LlmActivities(
            default_registry(),
            providers,
            "openai:o1-pro",
            allowed=ModelAllowList.parse("scripted:*,openai:gpt-4o-mini"),
        )
        for model in ("openai:gpt-4o", None):  # a named model and the worker's default
            with pytest.raises(ApplicationError) as refused:
                await call(activities, model, attempt=1)
            assert refused.value.type == ErrorType.FORBIDDEN
            assert refused.value.non_retryable
            assert "CADENZA_MODELS_ALLOW" in refused.value.message
            assert refused.value.details == ({"attempt": 1},)
        assert "'openai:gpt-4o'" not in refused.value.message  # the default's own name
        assert "'openai:o1-pro'" in refused.value.message
        assert server.requests == []  # nothing reached the provider
        assert await call(activities, scripted(tmp_path, "cheap")) == "cheap here"


async def test_failing_calls_to_one_model_open_its_circuit_and_not_another_models(
    tmp_path: Path,
) -> None:
    with model_server([(503, "overloaded")] * 3) as server:
        providers = Providers(scripts=tmp_path, openai_base_url=f"{server.url}/v1")
        breaker = CircuitBreaker(failure_threshold=3, reset_timeout=60)
        activities = LlmActivities(
            default_registry(), providers, "scripted:default", breaker=breaker
        )
        for attempt in (1, 2, 3):  # retryable failures: each counts
            with pytest.raises(Exception) as failed:
                await call(activities, "openai:down", attempt)
            assert not isinstance(failed.value, ApplicationError) or not failed.value.non_retryable
        assert breaker.state("openai:down") == "open"
        with pytest.raises(ApplicationError) as fast:
            await call(activities, "openai:down", attempt=4)
        assert fast.value.type == CIRCUIT_OPEN and not fast.value.non_retryable
        assert "circuit open for model 'openai:down'" in fast.value.message
        assert fast.value.next_retry_delay is not None
        assert 0 < fast.value.next_retry_delay.total_seconds() <= 60
        assert fast.value.details == ({"attempt": 4},)
        assert len(server.requests) == 3  # the fourth call never reached the provider
        # another model on the same worker still works, and its circuit stays closed
        assert await call(activities, scripted(tmp_path, "up")) == "up here"
        assert breaker.state("scripted:up") == "closed"


async def test_non_retryable_model_errors_do_not_open_the_circuit(tmp_path: Path) -> None:
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout=60)
    activities = LlmActivities(
        default_registry(), Providers(scripts=tmp_path), "scripted:x", breaker=breaker
    )
    for _ in range(3):
        with pytest.raises(ApplicationError) as failed:
            await call(activities, "scripted:missing", attempt=1)
        assert failed.value.type == ErrorType.MODEL_ERROR and failed.value.non_retryable
        assert failed.value.details == ({"attempt": 1},)  # the step records one attempt
    assert breaker.state("scripted:missing") == "closed"
