"""The step types: one module per `StepType`, each a `StepHandler`; `HANDLERS` is the table the
interpreter dispatches on (a unit test checks that every StepType has a handler)."""

from __future__ import annotations

from workflows.dsl.models import StepType
from workflows.engine.context import StepHandler
from workflows.engine.steps.action import ActionStep
from workflows.engine.steps.agent import AgentStep
from workflows.engine.steps.approval import ApprovalStep
from workflows.engine.steps.conditional import ConditionalStep
from workflows.engine.steps.event import EventStep
from workflows.engine.steps.loop import LoopStep
from workflows.engine.steps.map import MapStep
from workflows.engine.steps.parallel import ParallelStep
from workflows.engine.steps.subworkflow import SubWorkflowStep
from workflows.engine.steps.terminate import TerminateStep
from workflows.engine.steps.wait import WaitStep

HANDLERS: dict[StepType, StepHandler] = {
    StepType.ACTION: ActionStep(),
    StepType.PARALLEL: ParallelStep(),
    StepType.LOOP: LoopStep(),
    StepType.CONDITIONAL: ConditionalStep(),
    StepType.APPROVAL: ApprovalStep(),
    StepType.AGENT: AgentStep(),
    StepType.WAIT: WaitStep(),
    StepType.TERMINATE: TerminateStep(),
    StepType.MAP: MapStep(),
    StepType.WORKFLOW: SubWorkflowStep(),
    StepType.EVENT: EventStep(),
}
