"""Every cadenza exception derives from CadenzaError; the CLI's exit code is the class's."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from activities.registry import ActionError
from cadenza.errors import CadenzaError
from worker.cli.base import UsageError
from worker.client import ConnectionFailed, DecisionRefused, DefinitionRejected
from worker.codec import CodecKeyError
from worker.observability.tracing import TelemetryConfigError
from worker.services.dev_server import ServerError
from worker.wiring import SearchAttributesMissing
from workflows.dsl.expressions import ExpressionError
from workflows.dsl.loader import DocumentError, ShapeError
from workflows.engine.failures import StepFailure

ROOT = Path(__file__).resolve().parents[2]


def _exception_classes() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for package in ("workflows", "activities", "worker"):
        for path in sorted((ROOT / package).rglob("*.py")):
            module_name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            classes = [
                n.name for n in ast.parse(path.read_text()).body if isinstance(n, ast.ClassDef)
            ]
            if not classes:
                continue
            module = importlib.import_module(module_name)
            for name in classes:
                value = getattr(module, name)
                if isinstance(value, type) and issubclass(value, BaseException):
                    found.append(value)
    return found


def test_every_cadenza_exception_derives_from_the_base() -> None:
    classes = _exception_classes()
    assert len(classes) >= 15
    outside = [c.__qualname__ for c in classes if not issubclass(c, CadenzaError)]
    assert not outside, f"derive these from cadenza.errors.CadenzaError: {outside}"


def test_exit_codes_are_the_ones_the_cli_always_gave() -> None:
    usage = [
        UsageError,
        DocumentError,
        DefinitionRejected,
        ConnectionFailed,
        ServerError,
        SearchAttributesMissing,
        TelemetryConfigError,
        CodecKeyError,
        DecisionRefused,
        ShapeError,
        ExpressionError,
    ]
    assert {c.__name__: c.exit_code for c in usage} == {c.__name__: 2 for c in usage}
    assert CadenzaError.exit_code == StepFailure.exit_code == ActionError.exit_code == 1


def test_value_errors_stay_value_errors() -> None:
    for cls in (ShapeError, CodecKeyError, TelemetryConfigError):
        assert issubclass(cls, ValueError) and issubclass(cls, CadenzaError)
