"""Settings of cadenza processes: `CADENZA_*` variables; the Temporal connection uses envconfig."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_ADDRESS = "127.0.0.1:7233"


class Settings(BaseSettings):
    """Application settings. The Temporal address, namespace, TLS and API key are not here:
    they come from Temporal's envconfig (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, profiles)."""

    model_config = SettingsConfigDict(env_prefix="CADENZA_", extra="ignore")

    task_queue: str = Field("cadenza", description="Task queue of the default worker.")
    data_dir: Path = Field(Path(".cadenza"), description="Where the embedded server keeps data.")
    actions: list[str] = Field(
        default_factory=list, description="Extra action modules every worker loads."
    )
    max_cached_workflows: int = Field(1000, ge=0, description="Workflow cache size of a worker.")
    max_concurrent_activities: int = Field(200, ge=1)
    http_timeout: float = Field(30.0, gt=0, description="Default timeout of the HTTP client.")
    log_level: str = Field("INFO")
