"""The definition engine: `AdvancedWorkflowRun` runs one `AdvancedWorkflow` as one Temporal
workflow execution (`workflow.py`), interpreted step by step (`interpreter.py`, `scheduler.py`)
through one handler per step type (`steps/`); large containers and long loops run in child
workflows (`children.py`)."""

from workflows.contracts import RUN_WORKFLOW as WORKFLOW_NAME, SA_STATE, SA_VERSION, SA_WORKFLOW_ID
from workflows.engine.children import CadenzaBatchRun, CadenzaLoopRun
from workflows.engine.mutex import CadenzaMutex
from workflows.engine.workflow import AdvancedWorkflowRun

__all__ = [
    "SA_STATE",
    "SA_VERSION",
    "SA_WORKFLOW_ID",
    "WORKFLOW_NAME",
    "AdvancedWorkflowRun",
    "CadenzaBatchRun",
    "CadenzaLoopRun",
    "CadenzaMutex",
]
