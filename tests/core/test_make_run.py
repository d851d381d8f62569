"""What `make run` does, end to end in a scratch directory: migrate, collect static files,
seed the demo, serve with uvicorn; then the pages, probes, compressed static files and the
demo log-in answer over real HTTP."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served_platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    var_dir = tmp_path_factory.mktemp("var")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        PARLEY_TESTING="0",
        PARLEY_VAR_DIR=str(var_dir),
        SITE_URL=f"http://127.0.0.1:{port}",
        LLM_AUTODETECT="false",
    )

    def manage(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    manage("migrate", "--noinput")
    manage("collectstatic", "--noinput", "--verbosity", "0")
    first = manage("seed_demo", "--port", str(port))
    second = manage("seed_demo", "--port", str(port))
    assert "demo@parley.localhost" in first and first == second

    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/healthz").status_code == 200:
                break
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            output = server.stdout.read() if server.stdout else ""
            pytest.fail(f"the server did not come up:\n{output}")
        time.sleep(0.2)
    yield url
    server.terminate()
    server.wait(timeout=20)


def test_the_landing_page_and_probes_answer(served_platform: str) -> None:
    assert httpx.get(served_platform + "/").status_code == 200
    assert httpx.get(served_platform + "/healthz").json() == {"status": "ok"}
    assert httpx.get(served_platform + "/readyz").status_code == 200


def test_static_files_are_hashed_and_compressed(served_platform: str) -> None:
    page = httpx.get(served_platform + "/").text
    match = re.search(r'href="(/static/css/parley\.[0-9a-f]{12}\.css)"', page)
    assert match, "the stylesheet link should carry a content hash"
    for encoding in ("br", "gzip"):
        response = httpx.get(
            served_platform + match.group(1), headers={"Accept-Encoding": encoding}
        )
        assert response.status_code == 200
        assert response.headers["Content-Encoding"] == encoding
        assert "immutable" in response.headers["Cache-Control"]


def test_the_demo_login_reaches_the_dashboard(served_platform: str) -> None:
    with httpx.Client(base_url=served_platform, follow_redirects=False) as browser:
        form = browser.get("/accounts/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
        assert token
        response = browser.post(
            "/accounts/login/",
            data={
                "csrfmiddlewaretoken": token.group(1),
                "login": "demo@parley.localhost",
                "password": "parley-demo",
            },
            headers={"Referer": served_platform + "/accounts/login/"},
        )
        assert response.status_code == 302, response.text[:500]
        dashboard = browser.get(response.headers["Location"])
        assert dashboard.status_code == 200
        assert "Demo Company" in dashboard.text
