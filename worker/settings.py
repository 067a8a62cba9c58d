"""Settings of cadenza processes: `CADENZA_*` variables; the Temporal connection uses envconfig."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from activities.egress import EgressPolicy

DEFAULT_ADDRESS = "127.0.0.1:7233"


class Settings(BaseSettings):
    """Application settings. The Temporal address, namespace, TLS and API key are not here:
    they come from Temporal's envconfig (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, profiles)."""

    # an empty variable counts as unset (compose's `${VAR:-}` passes empty strings through)
    model_config = SettingsConfigDict(env_prefix="CADENZA_", extra="ignore", env_ignore_empty=True)

    task_queue: str = Field("cadenza", description="Task queue of the default worker.")
    data_dir: Path = Field(Path(".cadenza"), description="Where the embedded server keeps data.")
    actions: list[str] = Field(
        default_factory=list, description="Extra action modules every worker loads."
    )
    definitions: Path | None = Field(
        None,
        description="A folder of definition files the worker serves by workflow_id and version "
        "(runs started with {workflow, version, input}).",
    )
    approval_keys: str = Field(
        "",
        description="Trusted approval keys ID:BASE64-PUBLIC, comma-separated: with any, runs "
        "accept only decisions signed by one of them (cadenza approval-keys prints a pair).",
    )
    approval_signing_key: str = Field(
        "",
        repr=False,
        description="ID:BASE64-PRIVATE: cadenza approve/reject and CadenzaClient sign with it.",
    )
    max_cached_workflows: int = Field(1000, ge=0, description="Workflow cache size of a worker.")
    max_concurrent_activities: int = Field(200, ge=1)
    http_timeout: float = Field(30.0, gt=0, description="Default timeout of the HTTP client.")
    http_allow: str = Field(
        "",
        description="Where std.http may connect besides public addresses: host names, addresses "
        "and CIDRs, comma-separated (private, loopback, link-local and metadata are refused).",
    )
    log_level: str = Field("INFO")

    circuit_failure_threshold: int = Field(
        5, ge=0, description="Consecutive failures that open an action's circuit (0: off)."
    )
    circuit_reset_seconds: float = Field(
        30.0, gt=0, description="How long an open circuit fails calls fast before a trial."
    )
    llm_model: str = Field(
        "scripted:default", description="Model of agent steps that name none (provider:name)."
    )
    llm_scripts: Path = Field(
        Path("examples/scripts"), description="Folder of scripted-model scripts (NAME.yaml)."
    )
    openai_base_url: str | None = Field(
        None, description="OpenAI-compatible server of `openai:` models (vLLM, LM Studio...)."
    )
    openai_api_key: str | None = Field(
        None, repr=False, description="Key of `openai:` models (else OPENAI_API_KEY)."
    )
    ollama_url: str = Field("http://127.0.0.1:11434", description="Server of `ollama:` models.")
    graceful_shutdown_seconds: float = Field(
        30.0,
        ge=0,
        description="On SIGTERM, running activities get this long to finish before they are "
        "cancelled (give the container longer than this to stop).",
    )
    health_port: int | None = Field(
        None, ge=0, le=65535, description="Serve /livez and /readyz on this port (0: any free)."
    )
    health_host: str = Field("0.0.0.0", description="Interface of the health endpoint.")

    # observability (worker/observability/); OTLP export uses the OTEL_* variables
    telemetry: bool = Field(
        True, description="Spans, metrics and the monitor; off: no spans are made at all."
    )
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="Serve Prometheus metrics on this port (0: any free)."
    )
    metrics_host: str = Field("0.0.0.0", description="Interface of the metrics endpoint.")
    alert_sinks: list[str] = Field(
        default_factory=lambda: ["log"], description="Where alerts go: log, webhook, otel."
    )
    alert_webhook_url: str | None = Field(None, description="POST alerts here (adds 'webhook').")
    alert_webhook_token: str | None = Field(
        None, description="Bearer token for the webhook (from the worker's environment only)."
    )
    anomaly_factor: float = Field(3.0, gt=1, description="Alert above this x baseline p95.")
    anomaly_min_excess_seconds: float = Field(
        1.0, ge=0, description="...and at least this many seconds above the p95."
    )
    baseline_window: int = Field(50, ge=1, description="Recent durations kept per run/step.")
    baseline_min_samples: int = Field(5, ge=1, description="Samples needed before alerting.")
    baseline_seed_runs: int = Field(
        200, ge=0, description="Completed runs read from visibility at start (0: no seeding)."
    )
    baseline_seed_results: int = Field(
        50, ge=0, description="Of those, how many results are read for step durations."
    )

    @field_validator("http_allow")
    @classmethod
    def _http_allow_parses(cls, value: str) -> str:
        EgressPolicy.parse(value)  # a typo fails the worker's start, not every request
        return value

    def egress(self) -> EgressPolicy:
        """Where std.http may connect (`CADENZA_HTTP_ALLOW`)."""
        return EgressPolicy.parse(self.http_allow)
