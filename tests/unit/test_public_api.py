"""The public import: `from cadenza import ...` gives every name in `cadenza.__all__`, and
`import cadenza` alone loads none of the internals (workflows/ and activities/ import
`cadenza.errors`, so the facade must stay free of them)."""

from __future__ import annotations

import subprocess
import sys

import cadenza


def test_every_public_name_resolves() -> None:
    assert set(cadenza.__all__) == {"CadenzaError", *cadenza._EXPORTS}
    for name in cadenza.__all__:
        assert getattr(cadenza, name) is not None, name
    from cadenza import CadenzaClient, action
    from worker.client import CadenzaClient as Internal

    assert CadenzaClient is Internal and callable(action)


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        cadenza.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("cadenza.NoSuchThing resolved")


def test_importing_cadenza_loads_no_internals() -> None:
    code = (
        "import sys, cadenza, cadenza.errors\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('workflows', 'activities', 'worker'))\n"
        "print(loaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_cadenza_error_derives_from_one_base() -> None:
    from cadenza import ActionError, CadenzaError, DefinitionRejected, DocumentError

    for cls in (ActionError, DefinitionRejected, DocumentError):
        assert issubclass(cls, CadenzaError)
