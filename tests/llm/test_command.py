"""`manage.py llm check`: one clear diagnosis per failure, timings on success."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from tests.fixtures.llama import LlamaServer
from tests.fixtures.servers import free_port

Handler = Callable[[BaseHTTPRequestHandler], None]


@pytest.fixture
def http_server() -> Iterator[Callable[[Handler], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(handle: Handler) -> str:
        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                handle(self)

            do_GET = do_POST

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def json_reply(status: int, body: object) -> Handler:
    def handle(request: BaseHTTPRequestHandler) -> None:
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)

    return handle


def check(*args: str) -> str:
    out = StringIO()
    call_command("llm", "check", *args, stdout=out)
    return out.getvalue()


def check_fails(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        check(*args)
    return str(caught.value)


def test_connection_refused(db: None) -> None:
    message = check_fails(
        "--kind", "openai", "--url", f"http://127.0.0.1:{free_port()}", "--model", "m"
    )
    assert "connection refused" in message and "Is the server running" in message


def test_dns_failure(db: None) -> None:
    message = check_fails(
        "--kind", "ollama", "--url", "http://parley-no-such-host.invalid:11434", "--model", "m"
    )
    assert "does not resolve (DNS)" in message


def test_unauthorized(db: None, http_server: Callable[[Handler], str]) -> None:
    url = http_server(
        json_reply(401, {"error": {"message": "Invalid API Key", "type": "authentication_error"}})
    )
    message = check_fails("--kind", "openai", "--url", url, "--model", "m", "--api-key", "wrong")
    assert "refused the credentials (HTTP 401)" in message and "Check the API key" in message


def test_unknown_model(db: None, http_server: Callable[[Handler], str]) -> None:
    url = http_server(json_reply(404, {"error": 'model "llama9" not found, try pulling it first'}))
    message = check_fails("--kind", "ollama", "--url", url, "--model", "llama9")
    assert "does not know the model 'llama9'" in message and "ollama pull" in message


def test_first_token_timeout(db: None, http_server: Callable[[Handler], str]) -> None:
    def stall(request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "text/event-stream")
        request.end_headers()
        request.wfile.flush()
        time.sleep(2)

    url = http_server(stall)
    message = check_fails("--kind", "openai", "--url", url, "--model", "m", "--timeout", "0.3")
    assert "sent no token within 0.3s" in message and "slow or stuck" in message


def test_tls_to_a_plain_http_server(db: None, http_server: Callable[[Handler], str]) -> None:
    url = http_server(json_reply(200, {})).replace("http://", "https://")
    message = check_fails("--kind", "openai", "--url", url, "--model", "m")
    assert "TLS failed" in message


def test_a_named_endpoint_that_does_not_exist(db: None) -> None:
    with override_settings(LLM_ENDPOINTS_JSON="", LLM_ENDPOINTS_FILE=""):
        message = check_fails("nope")
    assert "no endpoint named 'nope'" in message


@pytest.mark.llama
def test_check_against_llama_server_reports_timings(db: None, llama_server: LlamaServer) -> None:
    endpoints = [
        {
            "name": "tiny",
            "kind": "openai",
            "url": llama_server.url,
            "model": llama_server.model,
            "auth": "bearer",
            "api_key": llama_server.key,
        }
    ]
    with override_settings(LLM_ENDPOINTS_JSON=json.dumps(endpoints), LLM_ENDPOINTS_FILE=""):
        out = check("tiny")
        listing = StringIO()
        call_command("llm", "list", stdout=listing)
    assert "reply: 'Hello from a tiny llama!'" in out
    assert "OK first token" in out and "tokens/s" in out
    assert "prompt " in out and "completion 7 tokens" in out and "finish stop" in out
    assert "tiny" in listing.getvalue() and "[config]" in listing.getvalue()
