"""Which behaviours a run has: one patch at the start of every new execution stands for all the
changes made before it.

A `workflow.patched(id)` asked in the activation that resumes after a local activity can meet its
marker in a later workflow task than the one the replay has reached: the replay answers False,
finds the marker with no command for it, and fails with a nondeterminism error (seen on a run with
approval steps replayed after a worker restart: keys local activity, then `run-facts`). So a new
execution asks `ENGINE_PATCH` first, before anything that can wait, and takes every change below
without asking again; an execution whose history predates it asks each patch where it always did,
and its recorded markers are met where they were made.
"""

from __future__ import annotations

from temporalio import workflow

ENGINE_PATCH = "engine-2026-11"
"""Stands for every patch before it: signed-decisions, approval-no-default-deadline,
sla-waiting-steps, alert-failed-runs, run-facts, queue-allow-list, tags-search-attribute."""


def begin() -> None:
    """Ask the engine patch: the first thing a run of the engine's workflows does."""
    workflow.patched(ENGINE_PATCH)


def patched(patch_id: str) -> bool:
    """Whether this execution has the change `patch_id` (True for every run begun with the engine
    patch, without a marker of its own; as `workflow.patched` for older histories)."""
    return workflow.patched(ENGINE_PATCH) or workflow.patched(patch_id)
