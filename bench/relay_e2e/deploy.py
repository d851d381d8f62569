"""The processes of one benchmark run: the stand-in model, the bare socket app, and Parley.

Parley runs as an operator would run it: `manage.py serve` subprocesses of the checkout this
file lives in, configured only through the environment (README, "Configuration"):

- `embedded`: the defaults, SQLite and the in-memory layer in a fresh PARLEY_VAR_DIR;
- `postgres`: DATABASE_URL and REDIS_URL, the named database dropped and created afresh,
  the Redis database flushed (use scratch ones).

Both modes migrate, then seed a tenant and a bot allowed on the benchmark's origin, whose
model is the stand-in declared in LLM_ENDPOINTS (OUTBOUND_ALLOW_CIDRS lets the SSRF guard
through to loopback). The widget's rate limits are lifted with WIDGET_RATE_LIMITS: every
simulated visitor comes from 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.lib.procs import free_port, stop, wait_http

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
ORIGIN = "https://shop.bench.test"
# Every scope of widget/ratelimit.py, far above what one run sends.
UNLIMITED = {
    scope: [10_000_000, 60]
    for scope in (
        "send:visitor",
        "send:ip",
        "send:bot",
        "session:ip",
        "connect:ip",
        "upload:visitor",
        "typing:visitor",
    )
}
# Variables of the caller's shell that would change what is measured.
INHERITED_OUT = (
    "DATABASE_URL",
    "REDIS_URL",
    "PARLEY_TESTING",
    "PARLEY_VAR_DIR",
    "DEBUG",
    "LLM_ENDPOINTS",
    "LLM_ENDPOINTS_FILE",
    "WIDGET_RATE_LIMITS",
    "DJANGO_SETTINGS_MODULE",
)


def python() -> str:
    """The checkout's virtualenv when there is one, else this interpreter."""
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


@dataclass
class Process:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"


def start(
    name: str, command: list[str], port: int, ready_path: str, env: dict[str, str]
) -> Process:
    log = Path(tempfile.mkstemp(prefix=f"relay-e2e-{name}-", suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    wait_http(f"http://127.0.0.1:{port}{ready_path}", process, log, timeout=120)
    return Process(name, process, port, log)


def start_standin(tokens: int, interval_ms: float) -> Process:
    port = free_port()
    command = [python(), str(HERE / "standin.py"), "--port", str(port), "--tokens", str(tokens)]
    command += ["--interval-ms", str(interval_ms)]
    return start("standin", command, port, "/health", dict(os.environ))


def start_bare_app() -> Process:
    port = free_port()
    command = [python(), str(HERE / "bare_ws.py"), "--port", str(port)]
    return start("bare", command, port, "/healthz", dict(os.environ))


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@dataclass
class Parley:
    mode: str  # "embedded" or "postgres"
    standin: Process
    postgres_url: str = ""
    redis_url: str = ""
    var_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="relay-e2e-")))
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(50))
    bot_key: str = ""
    servers: list[Process] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in INHERITED_OUT}
        endpoint = {
            "name": "standin",
            "kind": "openai",
            "url": f"{self.standin.http}/v1",
            "model": "standin",
            # As many streams as visitors: the relay, not the endpoint's queue, is measured.
            "max_concurrency": 512,
            "queue_timeout": 120,
            "first_token_timeout": 120,
        }
        env.update(
            DJANGO_SETTINGS_MODULE="chatbot.settings",
            PARLEY_VAR_DIR=str(self.var_dir),
            SECRET_KEY=self.secret_key,
            LLM_ENDPOINTS=json.dumps({"endpoints": [endpoint]}),
            LLM_AUTODETECT="false",
            OUTBOUND_ALLOW_CIDRS="127.0.0.0/8",
            WIDGET_RATE_LIMITS=json.dumps(UNLIMITED),
            # Parley's work, not its access log, is measured (a line per socket otherwise).
            LOG_LEVEL=os.environ.get("LOG_LEVEL", "WARNING"),
            PYTHONUNBUFFERED="1",
        )
        if self.mode == "postgres":
            env["DATABASE_URL"] = self.postgres_url
            env["REDIS_URL"] = self.redis_url
        return env

    def prepare(self) -> None:
        """Fresh database, migrations, the bench tenant and bot."""
        if self.mode == "postgres":
            reset_postgres(self.postgres_url)
            reset_redis(self.redis_url)
        result = subprocess.run(
            [python(), str(HERE / "seed.py"), "setup", "--origin", ORIGIN],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"seeding failed:\n{result.stdout}\n{result.stderr}")
        self.bot_key = json.loads(result.stdout.strip().splitlines()[-1])["bot"]

    def tokens(self, count: int) -> list[str]:
        """Session tokens of `count` new visitors, minted like the session endpoint does."""
        result = subprocess.run(
            [
                *(python(), str(HERE / "seed.py"), "tokens", "--bot", self.bot_key),
                *("--origin", ORIGIN, "--count", str(count)),
            ],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"minting tokens failed:\n{result.stderr}")
        tokens: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
        return tokens

    def start(self, processes: int = 1) -> list[Process]:
        self.stop()
        for n in range(processes):
            port = free_port()
            command = [python(), "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port)]
            self.servers.append(start(f"serve{n}", command, port, "/readyz", self.env()))
        return self.servers

    def stop(self) -> None:
        for server in self.servers:
            stop(server.process)
            server.log.unlink(missing_ok=True)
        self.servers = []


def reset_postgres(url: str) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    if not name or not name.replace("_", "").isalnum():
        raise SystemExit(f"--postgres must name a plain scratch database, got {url!r}")
    with psycopg.connect(with_database(url, "postgres"), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def reset_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
