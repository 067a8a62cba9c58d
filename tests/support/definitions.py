"""Definitions the integration tests share."""

from __future__ import annotations

from typing import Any


def agent(script: str, tools: list[str], max_iterations: int = 5) -> dict[str, Any]:
    """One agent step answering `input.question` with a scripted model and `tools`."""
    return {
        "workflow_id": "agents",
        "retry_policy": {"initial_interval": 0.1, "backoff_coefficient": 1, "max_attempts": 5},
        "steps": [
            {
                "step_id": "think",
                "step_type": "agent",
                "input_mapping": {"question": "input.question"},
                "agent": {
                    "instructions": "Be brief.",
                    "tools": tools,
                    "max_iterations": max_iterations,
                    "model": f"scripted:{script}",
                },
            }
        ],
    }
