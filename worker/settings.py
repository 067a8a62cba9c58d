"""Settings of cadenza processes: `CADENZA_*` variables; the Temporal connection uses envconfig.

Secrets (the alert webhook's URL and token, the approval signing key, the OpenAI key) are
`SecretStr`: `repr`, `str` and `model_dump_json` of the settings show `**********`, and the code
that uses one asks for it with `get_secret_value()`."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from activities.egress import EgressPolicy
from activities.reasoning.allow import ModelAllowList

DEFAULT_ADDRESS = "127.0.0.1:7233"
QUEUE_PATTERN = re.compile(r"^[A-Za-z0-9_.\-*?\[\]!]+$")


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
    approval_signing_key: SecretStr = Field(
        SecretStr(""),
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
    queues_allow: str = Field(
        "",
        description="Task queues steps may be routed to (agent_capability: X runs on "
        "cadenza.X): names and globs, comma-separated; empty: any. A run routing a step "
        "elsewhere fails before it schedules anything, with error type Forbidden.",
    )

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
    openai_api_key: SecretStr | None = Field(
        None, description="Key of `openai:` models (else OPENAI_API_KEY)."
    )
    ollama_url: str = Field("http://127.0.0.1:11434", description="Server of `ollama:` models.")
    models_allow: str = Field(
        "",
        description="Models this worker may call: provider:name names or globs, comma-separated "
        "(openai:gpt-4o-mini,scripted:*); unset: any. Others are refused with Forbidden.",
    )
    graceful_shutdown_seconds: float = Field(
        30.0,
        ge=0,
        description="On SIGTERM, running activities get this long to finish before they are "
        "cancelled (give the container longer than this to stop).",
    )
    health_port: int | None = Field(
        None, ge=0, le=65535, description="Serve /livez and /readyz on this port (0: any free)."
    )
    health_host: str = Field(
        "127.0.0.1",
        description="Interface of the health endpoint (0.0.0.0 for probes from outside the host "
        "or pod, as the Kubernetes manifests set it).",
    )

    # observability (worker/observability/); OTLP export uses the OTEL_* variables
    telemetry: bool = Field(
        True, description="Spans, metrics and the monitor; off: no spans are made at all."
    )
    temporal_spans: bool = Field(
        False,
        description="Temporal's own spans too (RunWorkflow, StartActivity, RunActivity, ...) "
        "besides cadenza's run, step and attempt spans; about 0.4 ms of worker CPU per step "
        "(docs/benchmarks.md). The trace context reaches activities and child runs either way.",
    )
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="Serve Prometheus metrics on this port (0: any free)."
    )
    metrics_host: str = Field(
        "127.0.0.1",
        description="Interface of the metrics endpoint (0.0.0.0 to be scraped from elsewhere).",
    )
    alert_sinks: list[str] = Field(
        default_factory=lambda: ["log"], description="Where alerts go: log, webhook, otel."
    )
    alert_webhook_url: SecretStr | None = Field(
        None, description="POST alerts here (adds 'webhook'); a secret: it may carry a token."
    )
    alert_webhook_token: SecretStr | None = Field(
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

    @field_validator("queues_allow")
    @classmethod
    def _queues_allow_parses(cls, value: str) -> str:
        for pattern in _patterns(value):
            if not QUEUE_PATTERN.match(pattern):
                raise ValueError(
                    f"CADENZA_QUEUES_ALLOW: {pattern!r} is not a task queue name or glob "
                    "(letters, digits, . _ - and the globs * ? [ ])"
                )
        return value

    def allowed_queues(self) -> list[str]:
        """The queue names and globs of `CADENZA_QUEUES_ALLOW` (empty: any queue)."""
        return _patterns(self.queues_allow)

    @field_validator("models_allow")
    @classmethod
    def _models_allow_parses(cls, value: str) -> str:
        ModelAllowList.parse(value)  # a typo fails the worker's start, not every model call
        return value

    def egress(self) -> EgressPolicy:
        """Where std.http may connect (`CADENZA_HTTP_ALLOW`)."""
        return EgressPolicy.parse(self.http_allow)


def _patterns(value: str) -> list[str]:
    return [p.strip() for p in value.split(",") if p.strip()]
