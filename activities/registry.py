"""The action registry: `@action("name")` turns a function into a step executor target."""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from activities.contracts import ErrorType, Execution
from activities.egress import EgressPolicy
from cadenza.errors import CadenzaError

if TYPE_CHECKING:  # activities.metrics raises ActionError: imported for the type only
    from activities.metrics import StepMetrics


class ActionError(CadenzaError):
    """Raised by actions to fail a step with a chosen error type.

    Args:
        message: what went wrong, for people.
        type: the error type name that retry policies and error handlers match on.
        non_retryable: fail at once, whatever the retry policy says.
    """

    def __init__(
        self, message: str, *, type: str = ErrorType.STEP_FAILED, non_retryable: bool = False
    ) -> None:
        super().__init__(message)
        self.type = str(type)
        self.non_retryable = non_retryable


@dataclass
class ActionContext:
    """What an action may use besides its input. Built by the step executor per call."""

    workflow_id: str
    step_id: str
    attempt: int
    http: Any
    """An `httpx.AsyncClient` shared by the worker (retries off: Temporal retries; no cookie jar).
    Unlike `std.http` it reaches any address: a user action's URLs are its author's code."""
    heartbeat: Callable[..., None]
    egress: EgressPolicy = field(default_factory=EgressPolicy)
    """Where `std.http` may connect (the worker's CADENZA_HTTP_ALLOW)."""
    metrics: StepMetrics | None = None
    """The step's custom metrics (its `custom_metrics`): `ctx.metrics.counter("orders")`,
    `.histogram(name, value)`, `.gauge(name, value)` (activities/metrics.py). The step executor
    always sets it; None only in a context built by hand."""


ActionFn = Callable[[Any, ActionContext], Awaitable[Any] | Any]


@dataclass(frozen=True)
class ActionSpec:
    """One registered action."""

    name: str
    fn: ActionFn
    input_model: type[BaseModel] | None
    description: str
    execution: Execution = "activity"
    """How steps run it unless they say (`local`: short and idempotent, a local activity)."""

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)

    def input_schema(self) -> dict[str, Any]:
        """JSON Schema of the action's input (an open object when it declares no model)."""
        if self.input_model is None:
            return {"type": "object"}
        return self.input_model.model_json_schema()


RESERVED_PREFIX = "cadenza."


@dataclass
class ActionRegistry:
    """Actions by name. A worker serves every action of its registry."""

    actions: dict[str, ActionSpec] = field(default_factory=dict)

    def register(
        self,
        name: str,
        fn: ActionFn,
        input_model: type[BaseModel] | None = None,
        execution: Execution = "activity",
    ) -> ActionSpec:
        if name.startswith(RESERVED_PREFIX):
            raise ValueError(
                f"action {name!r}: names starting with {RESERVED_PREFIX!r} are cadenza's own "
                "activities (e.g. cadenza.alert); choose another name"
            )
        if name in self.actions and self.actions[name].fn is not fn:
            raise ValueError(f"action {name!r} is registered twice")
        doc = inspect.getdoc(fn) or ""
        if execution not in ("activity", "local"):
            raise ValueError(f"action {name!r}: execution must be 'activity' or 'local'")
        spec = ActionSpec(name, fn, input_model, doc.splitlines()[0] if doc else "", execution)
        self.actions[name] = spec
        return spec

    def get(self, name: str) -> ActionSpec:
        try:
            return self.actions[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self.actions), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ActionError(
                f"unknown action {name!r} on this worker{hint} (load its module with "
                "`cadenza worker --actions MODULE`)",
                type=ErrorType.ACTION_NOT_FOUND,
                non_retryable=True,
            ) from None

    def names(self) -> list[str]:
        return sorted(self.actions)

    def executions(self, names: Iterable[str]) -> dict[str, Execution]:
        """The declared execution of each of `names` this registry serves."""
        return {n: self.actions[n].execution for n in names if n in self.actions}


DEFAULT_REGISTRY = ActionRegistry()


def action(
    name: str,
    *,
    input_model: type[BaseModel] | None = None,
    registry: ActionRegistry | None = None,
    execution: Execution = "activity",
) -> Callable[[ActionFn], ActionFn]:
    """Register `fn(params, ctx)` as the action `name`.

    `params` is the step's mapped input: a validated `input_model` instance when one is given,
    else a dict. The return value (JSON-compatible, or a pydantic model) is the step's output.
    `execution="local"` declares the action short and idempotent: steps that do not set
    `execution` run it as a local activity (one history marker, re-run whole if the worker dies
    before recording it).
    """

    def decorate(fn: ActionFn) -> ActionFn:
        (registry or DEFAULT_REGISTRY).register(name, fn, input_model, execution)
        return fn

    return decorate


def load_action_modules(modules: list[str]) -> None:
    """Import user modules whose `@action` decorators fill the default registry.

    Raises:
        ImportError: with the module name, when one cannot be imported.
    """
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:
            raise ImportError(f"cannot import action module {module!r}: {exc}") from exc
