"""One ``llama-server`` process owned by zerosearch: started on a loopback port, health-checked, stopped.

Why this exists: llama.cpp beats transformers on a CPU only when it decodes many requests at once, which
its own ``llama-server`` does (``-np`` parallel slots, continuous batching). The ``llamacpp`` generator
backend starts one with this class when its config gives no ``base_url``. Start-up is bounded
(``startup_timeout_s``): the process must answer ``GET /health`` with 200 in time, and a process that
exits — during start-up or later — raises :class:`GenerationError` naming its exit code and its log
file, with the log's tail. The process is stopped by :meth:`LlamaServer.stop`, when the object is
garbage-collected, or when Python exits.

    server = LlamaServer("sim-q8_0.gguf", slots=16, threads=2)
    url = server.start()            # http://127.0.0.1:PORT, healthy
    ...
    server.stop()
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

import httpx

from zerosearch.llm.base import GenerationError
from zerosearch.llm.llamacpp_home import llama_cpp_program
from zerosearch.taskgraph import die_with_parent

HOST = "127.0.0.1"
STOP_GRACE_S = 10.0
LOG_TAIL_CHARS = 3000


def free_port(host: str = HOST) -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _stop_process(process: subprocess.Popen, log_handle: object) -> None:
    """Terminate, then kill after a grace period; close the log. Safe to call twice."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_GRACE_S)
    close = getattr(log_handle, "close", None)
    if close is not None:
        close()


class LlamaServer:
    """``llama-server -m GGUF -np SLOTS -c SLOTS*CONTEXT_PER_SLOT -t THREADS`` on a free loopback port."""

    def __init__(
        self,
        gguf: str | Path,
        *,
        slots: int = 8,
        context_per_slot: int = 2048,
        threads: int | None = None,
        binary: str | Path | None = None,
        startup_timeout_s: float = 120.0,
        log_path: str | Path | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.gguf = Path(gguf).expanduser()
        if not self.gguf.is_file():
            raise FileNotFoundError(f"GGUF file {self.gguf} not found (export one with `zerosearch simulator "
                                    "export-gguf`)")
        if slots < 1 or context_per_slot < 16 or startup_timeout_s <= 0 or (threads is not None and threads < 1):
            raise ValueError(f"need slots >= 1, context_per_slot >= 16, startup_timeout_s > 0, threads >= 1; got "
                             f"{slots=}, {context_per_slot=}, {startup_timeout_s=}, {threads=}")
        self.binary = llama_cpp_program("llama-server", binary)
        self.slots = slots
        self.context_per_slot = context_per_slot
        self.threads = threads
        self.startup_timeout_s = startup_timeout_s
        self.log_path = Path(log_path) if log_path else None
        self.extra_args = tuple(extra_args)
        self.url: str | None = None
        self.process: subprocess.Popen | None = None
        self._finalizer: weakref.finalize | None = None

    def command(self, port: int) -> list[str]:
        """The command line the server is started with."""
        cmd = [str(self.binary), "-m", str(self.gguf), "--host", HOST, "--port", str(port),
               "-np", str(self.slots), "-c", str(self.slots * self.context_per_slot), "--no-webui"]
        if self.threads is not None:
            cmd += ["-t", str(self.threads), "-tb", str(self.threads)]
        return cmd + list(self.extra_args)

    def start(self) -> str:
        """Start the process and wait until it is healthy; returns its base URL."""
        if self.process is not None:
            raise RuntimeError(f"llama-server for {self.gguf} is already started at {self.url}")
        if self.log_path is None:
            handle, name = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
            os.close(handle)
            self.log_path = Path(name)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        port = free_port()
        log_handle = self.log_path.open("w")
        # die_with_parent (prctl PR_SET_PDEATHSIG, one libc call between fork and exec): a run killed with SIGTERM
        # or SIGKILL runs no atexit or finalizer, and must not leave its server behind. The kernel ties it to the
        # starting *thread*, so start servers from a thread that lives as long as the generator (the main one).
        self.process = subprocess.Popen(self.command(port), stdout=log_handle, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)  # noqa: PLW1509
        self._finalizer = weakref.finalize(self, _stop_process, self.process, log_handle)
        self.url = f"http://{HOST}:{port}"
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self.url

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        with httpx.Client(timeout=2.0) as client:
            while True:
                self.check_alive("during start-up")
                try:
                    if client.get(f"{self.url}/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass  # not listening yet
                if time.monotonic() > deadline:
                    raise GenerationError(
                        f"llama-server for {self.gguf} was not healthy within startup_timeout_s="
                        f"{self.startup_timeout_s:g} s; its log {self.log_path}:\n{self.log_tail()}")
                time.sleep(0.2)

    @property
    def alive(self) -> bool:
        """True while the process runs."""
        return self.process is not None and self.process.poll() is None

    def check_alive(self, when: str = "") -> None:
        """Raise GenerationError (exit code, log file, log tail) if the process has exited."""
        if self.process is None:
            raise GenerationError(f"llama-server for {self.gguf} was never started (call start())")
        code = self.process.poll()
        if code is not None:
            raise GenerationError(
                f"llama-server for {self.gguf} exited with code {code}{' ' + when if when else ''}; its log "
                f"{self.log_path}:\n{self.log_tail()}")

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        """The end of the server's log ("" before it has one)."""
        if self.log_path is None or not self.log_path.is_file():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        """Stop the process (terminate, then kill after a grace period); safe to call twice."""
        if self._finalizer is not None:
            self._finalizer()

    def __enter__(self) -> LlamaServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
