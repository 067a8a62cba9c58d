"""`map` steps: one instance of a body step per item of a list computed at run time, at most
`max_concurrency` at once; long lists run in batch child workflows (`CadenzaBatchRun`) so that
every history stays bounded."""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow

from activities.contracts import ErrorType
from workflows.contracts import BatchInput, ScopeSnapshot, StepRecord, StepStatus
from workflows.dsl.expressions import ExpressionError
from workflows.dsl.models import CompletionSpec, EffectiveRetryPolicy, MapSpec, WorkflowStep
from workflows.engine.batches import run_batches
from workflows.engine.context import Priority, StepContext, StepHandler
from workflows.engine.failures import StepFailure, expression_failure
from workflows.engine.outputs import MapOutput, completion_reached, map_output
from workflows.engine.steps.parallel import check_completion


class MapStep(StepHandler):
    async def run(
        self,
        ctx: StepContext,
        step: WorkflowStep,
        record: StepRecord,
        policy: EffectiveRetryPolicy,
        priority: Priority,
    ) -> Any:
        spec = step.map
        assert spec is not None  # validated
        items = _items(ctx, step, spec)
        record.input = {"items": len(items)}
        instances = ctx.add_instances(spec.step, range(len(items)))
        limit = spec.max_concurrency or ctx.definition.max_parallel_steps
        completion = step.completion
        try:
            if len(items) > ctx.options.batch_threshold:
                if completion is not None:
                    raise StepFailure.of(
                        step,
                        ErrorType.STEP_FAILED,
                        f"completion on a map over more than {ctx.options.batch_threshold} items "
                        "is not supported: its instances run in batch child workflows",
                    )
                ctx.runs_in_batches(step)
                await _run_batches(ctx, step, spec, items, limit)
            else:
                await run_instances(
                    ctx, spec, instances, items, 0, limit, priority, step, completion
                )
            output = map_output(ctx.state, instances)
            if ctx.terminated:
                return output
            if completion is not None:
                check_completion(ctx, step, instances, completion)
            else:
                _check_threshold(step, output, policy)
        except StepFailure:
            await ctx.compensate(instances)  # undo the instances that completed
            raise
        return output


def _items(ctx: StepContext, step: WorkflowStep, spec: MapSpec) -> list[Any]:
    try:
        items = ctx.evaluate(spec.items)
    except ExpressionError as exc:
        raise StepFailure(expression_failure(exc, step.step_id)) from None
    if not isinstance(items, list):
        raise StepFailure.of(
            step,
            ErrorType.EXPRESSION_ERROR,
            f"map.items ({spec.items}) must give a list, not {type(items).__name__}",
        )
    return items


def _check_threshold(step: WorkflowStep, output: MapOutput, policy: EffectiveRetryPolicy) -> None:
    total = output["total"]
    rate = output["completed"] / total if total else 1.0
    if rate < policy.parallel_failure_threshold:
        raise StepFailure.of(
            step,
            ErrorType.PARALLEL_THRESHOLD,
            f"{output['completed']} of {total} instances completed ({rate:.0%}); the threshold "
            f"is {policy.parallel_failure_threshold:.0%}",
        )


async def run_instances(
    ctx: StepContext,
    spec: MapSpec,
    instances: list[WorkflowStep],
    items: list[Any],
    offset: int,
    limit: int,
    priority: Priority,
    step: WorkflowStep | None = None,
    completion: CompletionSpec | None = None,
) -> None:
    """Run `instances[i]` for each of `items[i]` (its index: `offset + i`), `limit` at once,
    started in item order; with `completion`, until it is decided."""
    gate = asyncio.Semaphore(limit)

    async def one(index: int, item: Any) -> None:
        async with gate:
            if ctx.terminated:
                return
            bindings = {spec.as_: item, "index": offset + index}
            await ctx.run_instance(instances[index], bindings, priority)

    tasks = [asyncio.ensure_future(one(i, item)) for i, item in enumerate(items)]
    if completion is None or step is None:
        await asyncio.gather(*tasks)
        return
    need = completion.min_successes
    await workflow.wait_condition(
        lambda: all(t.done() for t in tasks) or completion_reached(ctx.state, instances, need)
    )
    left = [t for t in tasks if not t.done()]
    if not left:
        return
    if not completion.cancel_remaining:
        ctx.keep_running(asyncio.gather(*left), step.step_id)
        return
    for instance in instances:
        if ctx.state.steps[instance.step_id].status != StepStatus.PENDING:
            ctx.cancelling(instance.step_id)
    for task in left:
        task.cancel()
    await workflow.wait(left)
    ctx.cancel_unstarted(instances, f"not started: '{step.step_id}' completed without it")


async def _run_batches(
    ctx: StepContext, step: WorkflowStep, spec: MapSpec, items: list[Any], limit: int
) -> None:
    """A long list in batch child workflows of `batch_size` items each; at most `limit`
    instances at once across them."""
    size = ctx.options.batch_size
    count = (len(items) + size - 1) // size
    prefix = f"{spec.step.step_id}["
    snapshot = ctx.snapshot()
    # instances' outputs stay out of the children's scope: they could outgrow a payload
    scope = ScopeSnapshot(
        input=snapshot.input,
        vars=snapshot.vars,
        steps={k: v for k, v in snapshot.steps.items() if not k.startswith(prefix)},
    )

    def request(index: int, share: int) -> tuple[BatchInput, str]:
        start = index * size
        chunk = items[start : start + size]
        definition = ctx.definition.model_copy(
            update={"steps": [step], "max_parallel_steps": share, "sla_targets": None}
        )
        batch = BatchInput(
            definition=definition.model_dump(mode="json", exclude_defaults=True),
            scope=scope,
            options=ctx.options,
            map_items=chunk,
            map_offset=start,
        )
        last = start + len(chunk) - 1
        return batch, f"{step.step_id}: items {start}-{last} (batch {index + 1}/{count})"

    await run_batches(ctx, step, count, limit, request)
