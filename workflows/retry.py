"""A step's merged retry policy as Temporal's RetryPolicy (for every activity a step runs)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.dsl.models import EffectiveRetryPolicy


def temporal_retry_policy(policy: EffectiveRetryPolicy) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=timedelta(seconds=policy.initial_interval),
        backoff_coefficient=policy.backoff_coefficient,
        maximum_interval=timedelta(seconds=policy.maximum_interval),
        maximum_attempts=policy.max_attempts,
        non_retryable_error_types=policy.non_retryable_errors,
    )
