"""Start and stop a real Celery worker and a private redis-server for a test."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], object], timeout: float, what: str,
             interval: float = 0.1) -> object:
    """Poll ``predicate`` until it is truthy; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def worker_env(*, database_url: str, broker_url: str, instance: Path, smtp_port: int,
               queue: str, **extra: str) -> dict[str, str]:
    """The environment of a worker process: the test's database, broker, queue and SMTP."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MDT_")}
    env.update({
        "MDT_ENV": "test",
        "MDT_DATABASE_URL": database_url,
        "MDT_BROKER_URL": broker_url,
        "MDT_BROKER_QUEUE": queue,
        "MDT_INSTANCE_PATH": str(instance),
        "MDT_MAIL_BACKEND": "smtp",
        "MDT_MAIL_SERVER": "127.0.0.1",
        "MDT_MAIL_PORT": str(smtp_port),
        "MDT_MAIL_TIMEOUT": "5",
        "MDT_BASE_URL": "http://mdt.test",
        "MDT_NOTIFY_RETRY_DELAY": "0.2",
        "MDT_NOTIFY_RETRY_MAX_DELAY": "1",
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


class Worker:
    """A ``celery -A worker worker`` subprocess; its log is kept for failures."""

    def __init__(self, env: dict[str, str], log_path: Path, *, pool: str = "solo",
                 concurrency: int = 1, name: str | None = None, app: str = "worker") -> None:
        self.env, self.log_path = env, log_path
        self.name = name or f"w{uuid.uuid4().hex[:6]}@%h"
        # ``app`` may be tests.helpers.faults: the same worker with a fault injected.
        self.args = [sys.executable, "-m", "celery", "-A", app, "worker",
                     "--loglevel=INFO", f"--pool={pool}", f"--concurrency={concurrency}",
                     "-Q", env["MDT_BROKER_QUEUE"], "-n", self.name,
                     "--without-heartbeat", "--without-mingle", "--without-gossip"]
        self.process: subprocess.Popen | None = None

    def start(self) -> Worker:
        log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self._log = log
        self.process = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: b" ready." in self.log_path.read_bytes() or self.process.poll(),
                 timeout=30, what="the worker to start")
        if self.process.poll() is not None:
            raise AssertionError(f"worker exited at start:\n{self.log()}")
        return self

    def kill(self) -> None:
        """SIGKILL the worker and its children: no cleanup, no acknowledgement."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            # Cold shutdown: the test is over, nothing is waiting on the worker.
            os.killpg(self.process.pid, signal.SIGQUIT)
            try:
                self.process.wait(timeout=1.5)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def wait_dead(self, timeout: float) -> None:
        """Wait for the process to end by itself (a fault that kills it)."""
        wait_for(lambda: self.process is not None and self.process.poll() is not None, timeout,
                 "the worker to die")


def redis_reachable(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """A private ``redis-server`` on its own port, without persistence, that a test may stop."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port, self.workdir = port, workdir
        self.process: subprocess.Popen | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    def start(self) -> RedisServer:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: redis_reachable(port=self.port), timeout=10, what="redis-server")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
