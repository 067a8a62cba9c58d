"""Secrets referenced by name: a definition writes `{"$secret": "API_TOKEN"}` where a value is
secret, and the activity resolves it from the worker's environment (`CADENZA_SECRET_API_TOKEN`)
when it runs. The value never enters the definition, the run input or history; what an action
returns or raises is scrubbed of every value it resolved (`Resolved.scrub`).

Used by `std.http` for header values:
`headers: {Authorization: {$secret: API_TOKEN, prefix: "Bearer "}}`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from activities.contracts import ErrorType
from activities.registry import ActionError

PREFIX = "CADENZA_SECRET_"
NAME = r"^[A-Z][A-Z0-9_]{0,63}$"
MASK = "***"


class SecretRef(BaseModel):
    """A secret of the worker's environment, by name: `{"$secret": "API_TOKEN"}`."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    secret: str = Field(
        alias="$secret",
        pattern=NAME,
        description="Name of the secret: the worker reads CADENZA_SECRET_<name>.",
    )
    prefix: str = Field(
        "", max_length=64, description='Text put before the value (e.g. "Bearer ").'
    )

    @property
    def variable(self) -> str:
        return PREFIX + self.secret


class Resolved:
    """The values of the secrets one action call resolved, to scrub from what it returns."""

    def __init__(self) -> None:
        self.values: set[str] = set()

    def scrub(self, value: Any) -> Any:
        """`value` (text, or JSON-like data) with every resolved secret replaced by `***`."""
        if not self.values:
            return value
        if isinstance(value, str):
            for secret in sorted(self.values, key=len, reverse=True):
                value = value.replace(secret, MASK)
            return value
        if isinstance(value, dict):
            return {self.scrub(k): self.scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub(v) for v in value]
        return value


class SecretResolver:
    """Resolves `SecretRef`s from an environment (the process's, read at each call)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = env

    def resolve(self, ref: SecretRef, where: str, resolved: Resolved) -> str:
        """The referenced value, with its prefix.

        Raises:
            ActionError: non-retryable, when the worker has no such secret (naming the
                variable to set); a retry on the same worker would not find it either.
        """
        env = os.environ if self._env is None else self._env
        value = env.get(ref.variable)
        if not value:
            raise ActionError(
                f"{where}: secret {ref.secret!r} is not configured on this worker: set "
                f"{ref.variable} in the worker's environment (a Kubernetes Secret, a compose "
                "variable)",
                type=ErrorType.INPUT_VALIDATION,
                non_retryable=True,
            )
        # a value too short would be scrubbed from innocent text everywhere: still scrubbed
        resolved.values.add(value)
        return ref.prefix + value

    def resolve_map(
        self, values: Mapping[str, str | SecretRef], where: str, resolved: Resolved
    ) -> dict[str, str]:
        """`values` with each `SecretRef` resolved (`where` names the field in errors)."""
        return {
            k: self.resolve(v, f"{where}.{k}", resolved) if isinstance(v, SecretRef) else v
            for k, v in values.items()
        }
