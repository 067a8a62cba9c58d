"""The base class of every error cadenza raises, and the exit code each one means to the CLI."""

from __future__ import annotations

from typing import ClassVar

EXIT_FAILED = 1
"""A run failed, or something went wrong that the user's input did not cause."""
EXIT_USAGE = 2
"""Bad input or usage: a definition, a flag, a file, the environment or a service to reach."""


class CadenzaError(Exception):
    """Raised by cadenza when an operation cannot go on; the message says what happened.

    Each subclass names one kind of failure, says in its docstring (and in its message) how to
    fix it, and sets `exit_code`: what `cadenza` exits with when the error ends a command.
    Catch `CadenzaError` to handle every cadenza failure at once.
    """

    exit_code: ClassVar[int] = EXIT_FAILED
