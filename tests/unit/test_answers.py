"""Model answers nested too deeply (issue 18, item 6): the chat activity refuses them with a
ModelError, and workflow code parsing an answer never raises RecursionError."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.contracts import ChatRequest, ErrorType
from activities.reasoning.answers import MAX_ANSWER_DEPTH, text_too_deep, value_too_deep
from activities.reasoning.llm import LlmActivities, Providers
from activities.std import default_registry
from workflows.agent.graph import parse_json_answer
from workflows.orchestrator.strategy import parse_analysis

DEEP = "[" * 100_000 + "]" * 100_000


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


def test_depth_checks_walk_without_recursion_and_count_only_json_structure() -> None:
    assert text_too_deep(DEEP) and value_too_deep(json.loads("[" * 500 + "]" * 500))
    assert value_too_deep(nested(100_000))
    assert not value_too_deep(nested(MAX_ANSWER_DEPTH))
    assert value_too_deep(nested(MAX_ANSWER_DEPTH + 1))
    at_limit = "[" * MAX_ANSWER_DEPTH + "]" * MAX_ANSWER_DEPTH
    assert not text_too_deep(at_limit) and text_too_deep("[" + at_limit + "]")
    # brackets inside JSON strings (escaped quotes too) are text, not structure
    assert not text_too_deep(json.dumps({"s": DEEP[:1000], "q": 'say "[[[[" ' * 100}))
    assert not text_too_deep("plain prose [1] and {2}")


@pytest.mark.parametrize(
    "answer", [DEEP, "```json\n" + DEEP + "\n```", '{"branch": ' + DEEP + "}", "[" * 100_000]
)
def test_parsing_a_deep_answer_in_workflow_code_gives_none_not_recursion_error(
    answer: str,
) -> None:
    assert parse_json_answer(answer) is None
    assert parse_analysis(answer, ["std.echo"])[0] is None


def test_an_ordinary_json_answer_still_parses() -> None:
    assert parse_json_answer('```json\n{"branch": 2}\n```') == {"branch": 2}
    assert parse_json_answer(json.dumps(nested(MAX_ANSWER_DEPTH - 1))) == nested(
        MAX_ANSWER_DEPTH - 1
    )


def _chat(tmp_path: Path, turn: dict[str, Any] | str) -> Any:
    script = tmp_path / "deep.yaml"
    script.write_text(turn if isinstance(turn, str) else yaml.safe_dump([turn]))
    activities = LlmActivities(default_registry(), Providers(scripts=tmp_path), "scripted:deep")
    request = ChatRequest(messages=[{"role": "user", "content": "go"}])
    return ActivityEnvironment().run(activities.chat, request)


async def test_the_chat_activity_refuses_a_deep_answer_with_a_model_error(
    tmp_path: Path,
) -> None:
    turns: list[dict[str, Any] | str] = [
        {"content": DEEP},
        {"content": "ok", "tool_calls": [{"name": "std.echo", "args": nested(200)}]},
        # a script nested past the YAML parser's recursion
        "- content: x\n  tool_calls: " + "[" * 5000 + "]" * 5000 + "\n",
    ]
    for turn in turns:
        with pytest.raises(ApplicationError) as caught:
            await _chat(tmp_path, turn)
        assert caught.value.type == ErrorType.MODEL_ERROR and caught.value.non_retryable
        assert "deep" in caught.value.message


async def test_the_chat_activity_passes_an_answer_within_the_limit(tmp_path: Path) -> None:
    args = nested(MAX_ANSWER_DEPTH)
    reply = await _chat(
        tmp_path, {"content": '{"a": [1]}', "tool_calls": [{"name": "std.echo", "args": args}]}
    )
    assert reply.message["tool_calls"][0]["args"] == args
