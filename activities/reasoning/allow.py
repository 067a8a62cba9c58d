"""The operator's allow-list of models (`CADENZA_MODELS_ALLOW`): which `provider:name` models a
worker's `cadenza.llm.chat` activity may call, whatever a definition or a task asks for.

Kept free of LangChain so the settings can check the list when a worker starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

SETTING = "CADENZA_MODELS_ALLOW"


@dataclass(frozen=True)
class ModelAllowList:
    """Model names and globs (`openai:gpt-4o-mini`, `scripted:*`, `ollama:llama3*`); no
    patterns: every model is allowed."""

    patterns: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> ModelAllowList:
        """Comma-separated names or globs; blanks around them are ignored. An entry without a
        `provider:` part is refused (it could never match a model name)."""
        patterns = tuple(p.strip() for p in text.split(",") if p.strip())
        for pattern in patterns:
            provider, colon, name = pattern.partition(":")
            if not colon or not provider or not name:
                raise ValueError(
                    f"{SETTING}: {pattern!r} is not provider:name (a model name or a glob such "
                    "as openai:gpt-4o* or scripted:*)"
                )
        return cls(patterns)

    def allows(self, model: str) -> bool:
        return not self.patterns or any(fnmatchcase(model, p) for p in self.patterns)

    def refusal(self, model: str) -> str | None:
        """Why `model` may not be called on this worker, or None when it may."""
        if self.allows(model):
            return None
        return (
            f"model {model!r} is not allowed on this worker: {SETTING} allows only "
            f"{', '.join(self.patterns)}; ask the operator to add it, or pick one of those"
        )
