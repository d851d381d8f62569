"""Processes a topology test owns: its own Redis, its own PostgreSQL cluster, Parley's
commands from the fresh venv. Every one runs in its own session (process group), logs to a
file, and is killed by whoever started it, always.

The machine's Redis and PostgreSQL are shared with other test runs: these tests never touch
them. They start throw-away servers on free ports and restart those.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.fixtures.install import ROOT
from tests.fixtures.servers import free_port


def wait_for[T](
    check: Callable[[], T | None],
    *,
    what: str,
    timeout: float = 60.0,
    every: float = 0.1,
    pause: Callable[[float], None] = time.sleep,
) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout`.

    The timeout is a generous cap for a loaded 2-core machine, not an expectation."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except AssertionError:
            raise  # the check saw something that will not get better
        except Exception as exc:  # the thing polled may not answer yet
            last_error = exc
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        pause(every)


def clean_env(**values: str) -> dict[str, str]:
    """An environment with nothing of the test run's own configuration in it (no
    PARLEY_TESTING, DATABASE_URL, REDIS_URL...): only what a service manager would give."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "TZ")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(values)
    return env


@dataclass
class OwnedProcess:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        """SIGKILL the process and everything it started (a crash, as the OS would do it)."""
        self.signal_group(signal.SIGKILL)
        self.process.wait()

    def stop(self, grace: float = 10.0) -> None:
        if self.alive():
            self.signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=grace)
        # Children that outlived their parent go too.
        self.signal_group(signal.SIGKILL)
        if self.alive():
            self.process.wait()

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Processes:
    """Starts processes into `logs` and stops them all at the end, whatever happened."""

    logs: Path
    started: list[OwnedProcess] = field(default_factory=list)

    def start(
        self,
        name: str,
        command: Sequence[str],
        env: Mapping[str, str],
        cwd: Path = ROOT,
    ) -> OwnedProcess:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            out.write(f"$ {' '.join(command)}\n".encode())
            out.flush()
            process = subprocess.Popen(
                list(command),
                cwd=cwd,
                env=dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own group: killpg reaches its children too
            )
        owned = OwnedProcess(name=name, process=process, log=log)
        self.started.append(owned)
        return owned

    def stop_all(self) -> None:
        for owned in reversed(self.started):
            owned.stop(grace=5)
        self.started.clear()

    def report(self) -> str:
        return "\n".join(f"--- {p.name} (pid {p.pid}) ---\n{p.tail()}" for p in self.started)


# --- Redis ------------------------------------------------------------------------------------


@dataclass
class PrivateRedis:
    """A redis-server of our own on a free port, without persistence."""

    processes: Processes
    port: int = 0
    current: OwnedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self.port = self.port or free_port()
        self.current = self.processes.start(
            "redis",
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            env=clean_env(),
        )  # fmt: skip
        wait_for(self.ping, what=f"redis-server on port {self.port}", timeout=20)

    def ping(self) -> bool:
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        finally:
            client.close()

    def stop(self) -> None:
        """Stop it for real (SIGKILL: nothing persisted, every connection drops)."""
        if self.current is not None:
            self.current.kill()
            self.current = None

    def restart(self) -> None:
        self.stop()
        self.start()


# --- PostgreSQL -------------------------------------------------------------------------------


def _postgres_bin(name: str) -> str:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    found = candidates[0] if candidates else shutil.which(name)
    assert found, f"PostgreSQL's {name} is not installed"
    return found


def _as_postgres_user(command: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root; CI runs as root, a developer may not.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@dataclass
class PrivateCluster:
    """A throw-away PostgreSQL cluster in `directory`, on a free port, trusting local users."""

    processes: Processes
    directory: Path
    port: int = 0
    current: OwnedProcess | None = None

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        self.port = self.port or free_port()
        self.directory.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        data = self.directory / "data"
        subprocess.run(
            _as_postgres_user(
                [_postgres_bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                 "--no-sync", "-E", "UTF8", "--locale", "C"]
            ),
            check=True,
            capture_output=True,
        )  # fmt: skip

    def start(self) -> None:
        """Run the server in the foreground (as our child), so that stopping it is ours."""
        data = self.directory / "data"
        self.current = self.processes.start(
            "postgres",
            _as_postgres_user(
                [_postgres_bin("postgres"), "-D", str(data), "-p", str(self.port),
                 "-h", "127.0.0.1", "-k", str(self.directory), "-c", "fsync=off",
                 "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                 "-c", "max_connections=200"]
            ),
            env=clean_env(),
        )  # fmt: skip
        wait_for(self.ready, what=f"PostgreSQL on port {self.port}", timeout=30)

    def ready(self) -> bool:
        import psycopg

        with psycopg.connect(self.url("postgres"), connect_timeout=1) as conn:
            conn.execute("SELECT 1")
        return True

    def stop(self) -> None:
        """A fast shutdown (SIGINT): connections are cut, as when the server restarts."""
        if self.current is None:
            return
        # runuser passes signals on to postgres; the group gets it in any case.
        self.current.signal_group(signal.SIGINT)
        try:
            self.current.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.current.kill()
        self.current = None

    def create_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
