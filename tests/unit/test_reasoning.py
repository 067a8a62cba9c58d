"""The pure parts of agents and agentic tasks: the context window of a model call, the
orchestrator's analysis parsing, fallback and strategy selection, model names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from activities.contracts import model_problem
from activities.reasoning.llm import Providers, chat_model
from workflows.agent.graph import context_window
from workflows.dsl.validate import validate_definition
from workflows.orchestrator.strategy import (
    fallback_analysis,
    parse_analysis,
    select_strategy,
)


def conversation(turns: int, size: int = 500) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "instructions"},
        {"role": "user", "content": "the task"},
    ]
    for i in range(turns):
        calls = [{"name": "std.echo", "args": {}, "id": f"c{i}"}]
        messages.append({"role": "assistant", "content": "x" * size, "tool_calls": calls})
        messages.append({"role": "tool", "content": "y" * size, "tool_call_id": f"c{i}"})
    return messages


def test_a_short_conversation_is_sent_whole() -> None:
    messages = conversation(3)
    assert context_window(messages, 32_000) == messages


def test_a_long_conversation_keeps_the_head_and_the_latest_whole_exchanges() -> None:
    messages = conversation(200)
    window = context_window(messages, 8_000)
    assert window[:2] == messages[:2]
    assert window[2]["role"] == "user" and "earlier messages" in window[2]["content"]
    assert window[3]["role"] == "assistant"  # never starts inside a tool-call exchange
    assert window[-1] == messages[-1]
    assert len(json.dumps(window)) <= 8_000 + 200
    # bounded: the window of 2,000 turns is no bigger than the one of 200
    assert len(json.dumps(context_window(conversation(2000), 8_000))) <= 8_200


def test_a_huge_message_is_cut_and_the_last_exchange_is_always_kept() -> None:
    messages = conversation(2, size=100_000)
    window = context_window(messages, 8_000)
    assert window[-1]["tool_call_id"] == "c1"
    assert window[-2]["role"] == "assistant"
    assert all(len(m["content"]) < 2_100 for m in window)
    assert "characters cut" in window[-1]["content"]


def test_the_models_analysis_is_normalised_and_checked_against_the_tools() -> None:
    answer = json.dumps(
        {
            "complexity": 3,
            "dependencies": "independent",
            "subtasks": [{"tool": "std.echo", "args": {"a": 1}}],
        }
    )
    analysis, problem = parse_analysis(f"```json\n{answer}\n```", ["std.echo"])
    assert problem == "" and analysis is not None
    assert analysis["complexity"] == 1.0 and analysis["source"] == "model"
    bad = json.dumps({"subtasks": [{"tool": "rm", "args": {}}]})
    assert parse_analysis(bad, ["std.echo"]) == (None, "subtask 0 names no tool of ['std.echo']")
    assert parse_analysis("sure!", ["std.echo"])[1] == "the analysis is not a JSON object"
    odd = json.dumps({"dependencies": "whenever"})
    assert "not independent/sequential/conditional" in parse_analysis(odd, [])[1]


def test_the_fallback_analysis_is_deterministic() -> None:
    task = "Transfer the refund to the customer, then echo the receipt"
    first = fallback_analysis(task, ["std.echo", "std.log"], "no JSON")
    assert first == fallback_analysis(task, ["std.echo", "std.log"], "no JSON")
    assert first["sensitive"] is True
    assert first["capabilities"] == ["std.echo"]
    assert first["dependencies"] == "sequential" and first["source"] == "fallback"


def state(**fields: Any) -> Any:
    return {"config": {"require_approval": False}, **fields}


@pytest.mark.parametrize(
    ("fields", "strategy"),
    [
        ({"analysis": {"dependencies": "independent", "subtasks": [1, 2]}}, "parallel"),
        ({"analysis": {"dependencies": "independent", "subtasks": [1]}}, "react"),
        ({"analysis": {"dependencies": "conditional", "branches": [1]}}, "conditional"),
        ({"analysis": {"dependencies": "conditional", "branches": []}}, "react"),
        ({"analysis": {"sensitive": True}}, "approval"),
        ({"analysis": {"sensitive": True}, "approved": True}, "react"),
        ({"analysis": {}, "error": "boom"}, "error"),
        ({"analysis": {}, "done": True}, "complete"),
        ({"analysis": {}, "failure": {"message": "x"}}, "complete"),
        (
            {"analysis": {"dependencies": "independent", "subtasks": [1, 2]}, "forced": "react"},
            "react",
        ),
    ],
)
def test_strategy_selection_follows_the_seeds_edges(fields: dict[str, Any], strategy: str) -> None:
    assert select_strategy(state(**fields))[0] == strategy


def test_model_names_need_a_known_provider(tmp_path: Path) -> None:
    assert model_problem("openai:gpt-4o-mini") is None
    assert model_problem("ollama:llama3.1") is None
    assert "provider:name" in (model_problem("gpt-4o") or "")
    report = validate_definition(
        {
            "workflow_id": "w",
            "steps": [
                {
                    "step_id": "a",
                    "step_type": "agent",
                    "agent": {"instructions": "x", "model": "gpt4"},
                }
            ],
        }
    )
    assert not report.ok and "e.g. `openai:gpt-4o-mini`" in report.summary()
    with pytest.raises(ApplicationError, match="no API key: set OPENAI_API_KEY"):
        chat_model("openai:gpt-4o-mini", Providers(scripts=tmp_path))


SECRET = "sk-live-do-not-leak"


def test_a_scripted_model_reads_only_its_scripts_folder_and_never_quotes_a_file(
    tmp_path: Path,
) -> None:
    scripts = tmp_path / "deploy" / "scripts"
    scripts.mkdir(parents=True)
    (tmp_path / "x.yaml").write_text(f"- content: {SECRET}\n")  # scripted:../../x
    (scripts / "ok.yaml").write_text("- content: hello\n")
    (scripts / "linked.yaml").symlink_to(tmp_path / "x.yaml")
    (scripts / "broken.yaml").write_text(f"- content: {SECRET}\n  : [unclosed\n")
    (scripts / "binary.yaml").write_bytes(b"\xff\xfe" + SECRET.encode())
    providers = Providers(scripts=scripts)
    assert chat_model("scripted:ok", providers).invoke("hi").content == "hello"
    for name in ("../../x", "..", "/etc/passwd", "a/b", "x.yaml", "", "linked"):
        with pytest.raises(ApplicationError) as caught:
            chat_model(f"scripted:{name}", providers).invoke("hi")
        assert caught.value.type == "ModelError" and caught.value.non_retryable
        assert SECRET not in str(caught.value)
    for name, problem in (("broken", "not valid YAML at line 2"), ("binary", "not UTF-8")):
        with pytest.raises(ApplicationError, match=problem) as caught:
            chat_model(f"scripted:{name}", providers)
        assert SECRET not in str(caught.value)


def test_a_scripted_model_name_that_is_a_path_fails_validation() -> None:
    assert model_problem("scripted:research-2_b") is None
    assert "not a path" in (model_problem("scripted:../../x") or "")
    report = validate_definition(
        {
            "workflow_id": "w",
            "steps": [
                {
                    "step_id": "a",
                    "step_type": "agent",
                    "agent": {"instructions": "x", "model": "scripted:../../etc/x"},
                }
            ],
        }
    )
    assert not report.ok and "not a path" in report.summary()
