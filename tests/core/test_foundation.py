"""The foundation: settings fail loudly, probes, landing page, logs, the demo seed."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import Client

from chatbot import settings as parley_settings
from chatbot.core.logging import LineFormatter, RequestIdFilter, request_id_var

ROOT = Path(__file__).resolve().parents[2]


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    outside = ("DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")
    clean = {k: v for k, v in os.environ.items() if k not in outside}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, "PARLEY_TESTING": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


class TestEnvironmentHelpers:
    def test_env_bool_rejects_yes_ish_values(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("SOME_FLAG", "maybe")
        with pytest.raises(ImproperlyConfigured, match="SOME_FLAG: expected true/false"):
            parley_settings.env_bool("SOME_FLAG")

    def test_env_bool_reads_true_and_false(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("SOME_FLAG", "On")
        assert parley_settings.env_bool("SOME_FLAG") is True
        monkeypatch.setenv("SOME_FLAG", "0")
        assert parley_settings.env_bool("SOME_FLAG", True) is False

    def test_env_int_names_the_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("SOME_NUMBER", "ten")
        with pytest.raises(ImproperlyConfigured, match="SOME_NUMBER: expected a whole number"):
            parley_settings.env_int("SOME_NUMBER", 1)

    def test_secrets_can_come_from_a_file(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        secret = tmp_path / "secret"
        secret.write_text("from-a-file\n")
        monkeypatch.setenv("SOME_SECRET_FILE", str(secret))
        assert parley_settings.env_str("SOME_SECRET", secret=True) == "from-a-file"

    def test_only_secrets_are_read_from_a_name_file_twin(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        # LLM_ENDPOINTS_FILE means a file of endpoints, not "LLM_ENDPOINTS, from a file".
        declared = tmp_path / "endpoints.json"
        declared.write_text("[]")
        monkeypatch.setenv("SOME_SETTING", "inline")
        monkeypatch.setenv("SOME_SETTING_FILE", str(declared))
        assert parley_settings.env_str("SOME_SETTING") == "inline"

    def test_env_url_rejects_a_url_without_a_host(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("SITE_URL", "https://")
        with pytest.raises(ImproperlyConfigured, match="SITE_URL: expected a URL"):
            parley_settings.env_url("SITE_URL")

    def test_env_rate_limits_reads_scopes_over_the_defaults(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SOME_LIMITS", '{"send:ip": [100000, 60], "connect:ip": [5, 1]}')
        limits = parley_settings.env_rate_limits("SOME_LIMITS", ["send:ip", "connect:ip"])
        assert limits == {"send:ip": (100000, 60), "connect:ip": (5, 1)}
        monkeypatch.setenv("SOME_LIMITS", "")
        assert parley_settings.env_rate_limits("SOME_LIMITS", ["send:ip"]) == {}

    @pytest.mark.parametrize(
        ("raw", "complaint"),
        [
            ("100000", "expected a JSON object"),
            ("{send:ip: 1}", "expected JSON like"),
            ('{"send:everything": [1, 60]}', "unknown scope 'send:everything'; known: send:ip"),
            ('{"send:ip": [0, 60]}', "'send:ip' must be [count, window seconds]"),
            ('{"send:ip": [true, 60]}', "'send:ip' must be [count, window seconds]"),
            ('{"send:ip": [1.5, 60]}', "'send:ip' must be [count, window seconds]"),
            ('{"send:ip": 60}', "'send:ip' must be [count, window seconds]"),
        ],
    )
    def test_env_rate_limits_names_what_is_wrong(
        self, monkeypatch: pytest.MonkeyPatch, raw: str, complaint: str
    ) -> None:
        monkeypatch.setenv("SOME_LIMITS", raw)
        with pytest.raises(ImproperlyConfigured) as caught:
            parley_settings.env_rate_limits("SOME_LIMITS", ["send:ip"])
        assert str(caught.value).startswith("SOME_LIMITS: ")
        assert complaint in str(caught.value)


class TestBadConfigurationStopsStartup:
    def test_malformed_database_url_is_one_clear_line(self) -> None:
        result = run_manage("check", DATABASE_URL="mysql//nonsense")
        assert result.returncode == 2
        assert result.stderr.strip().count("\n") == 0, result.stderr
        assert "DATABASE_URL" in result.stderr
        assert "Traceback" not in result.stderr

    def test_unreachable_redis_is_one_clear_line(self) -> None:
        # Port 9 on loopback: nothing listens there.
        result = run_manage("serve", "--port", "0", REDIS_URL="redis://127.0.0.1:9/0")
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("parley: cannot start: REDIS_URL: Redis does not answer")

    def test_bad_boolean_names_the_variable(self) -> None:
        result = run_manage("check", DEBUG="perhaps")
        assert result.returncode == 2
        assert result.stderr.strip() == (
            "parley: configuration error: DEBUG: expected true/false (or 1/0), got 'perhaps'"
        )

    def test_production_requires_a_secret_key(self) -> None:
        result = run_manage("check", SITE_URL="https://chat.example.com", PARLEY_TESTING="0")
        assert result.returncode == 2
        assert "SECRET_KEY: must be set in production" in result.stderr


@pytest.mark.django_db
class TestProbes:
    def test_healthz_answers_ok(self, client: Client) -> None:
        response = client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    def test_readyz_checks_the_database(self, client: Client) -> None:
        response = client.get("/readyz")
        assert response.status_code == 200
        assert response.json()["checks"]["database"] == "ok"

    def test_readyz_names_the_failing_part(
        self, client: Client, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from chatbot.core import health

        monkeypatch.setattr(health, "check_database", lambda: "OperationalError: gone")
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["failing"] == ["database"]
        assert response.json()["checks"]["database"] == "OperationalError: gone"


@pytest.mark.django_db
class TestLandingPage:
    def test_it_says_what_parley_is_and_links_onward(self, client: Client) -> None:
        response = client.get("/")
        assert response.status_code == 200
        body = response.content.decode()
        assert "Llama" in body
        for link in ('href="/accounts/signup/"', 'href="/accounts/login/"', 'href="/demo"'):
            assert link in body

    def test_every_response_carries_a_request_id(self, client: Client) -> None:
        response = client.get("/healthz", HTTP_X_REQUEST_ID="abcdef0123456789")
        assert response["X-Request-ID"] == "abcdef0123456789"
        response = client.get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces")
        assert response["X-Request-ID"] != "bad id with spaces"
        assert len(response["X-Request-ID"]) == 16


class TestLogs:
    def test_a_log_record_is_one_line_with_the_request_id(self) -> None:
        token = request_id_var.set("req-1234567")
        try:
            record = logging.makeLogRecord(
                {"name": "parley.x", "levelname": "INFO", "msg": "hello\nworld", "path": "/a b"}
            )
            RequestIdFilter().filter(record)
            line = LineFormatter().format(record)
        finally:
            request_id_var.reset(token)
        assert "\n" not in line
        assert "request_id=req-1234567" in line
        assert 'msg="hello\\nworld"' in line
        assert 'path="/a b"' in line


@pytest.mark.django_db
class TestDemoSeed:
    def test_seeding_twice_does_not_duplicate(self) -> None:
        from chatbot.bots.models import Bot
        from chatbot.tenants.models import Membership, Tenant, User

        call_command("seed_demo", stdout=io.StringIO())
        call_command("seed_demo", stdout=io.StringIO())
        assert Tenant.objects.filter(slug="demo").count() == 1
        assert User.objects.filter(email="demo@parley.localhost").count() == 1
        assert Membership.objects.count() == 1
        assert Bot.objects.count() == 1

    def test_the_demo_login_works(self, client: Client) -> None:
        call_command("seed_demo", stdout=io.StringIO())
        response = client.post(
            "/accounts/login/",
            {"login": "demo@parley.localhost", "password": "parley-demo"},
        )
        assert response.status_code == 302
        assert response["Location"] == "/dashboard/"
        dashboard = client.get("/dashboard/")
        assert dashboard.status_code == 200
        assert "Demo Company" in dashboard.content.decode()


def test_a_bad_allowed_range_names_the_variable() -> None:
    result = run_manage("check", OUTBOUND_ALLOW_CIDRS="10.0.0.0/8,not-a-range")
    assert result.returncode == 2
    assert "OUTBOUND_ALLOW_CIDRS: 'not-a-range' is not an address range" in result.stderr


def test_widget_rate_limits_come_from_the_environment() -> None:
    show = "from django.conf import settings; print(sorted(settings.WIDGET_RATE_LIMITS.items()))"
    result = run_manage("shell", "-c", show, WIDGET_RATE_LIMITS='{"send:ip": [100000, 60]}')
    assert result.returncode == 0, result.stderr
    assert "[('send:ip', (100000, 60))]" in result.stdout
    result = run_manage("check", WIDGET_RATE_LIMITS='{"send:ip": [100000]}')
    assert result.returncode == 2
    assert result.stderr.startswith("parley: configuration error: WIDGET_RATE_LIMITS: 'send:ip'")


def test_production_settings_pass_the_deploy_check(tmp_path: Path) -> None:
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        PARLEY_TESTING="0",
        SITE_URL="https://chat.example.com",
        SECRET_KEY="x" * 20 + "production-secret-key-with-enough-entropy-1234567890",
        PARLEY_VAR_DIR=str(tmp_path),
        EMAIL_URL="smtp://parley:secret@smtp.example.com:587",
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.redis
@pytest.mark.django_db
def test_with_redis_configured_every_part_uses_it(client: Client) -> None:
    from channels.layers import get_channel_layer
    from django.conf import settings

    from chatbot.celery import app

    assert client.get("/readyz").json()["checks"] == {"database": "ok", "redis": "ok"}
    assert type(get_channel_layer()).__name__ == "RedisChannelLayer"
    assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    assert app.conf.task_always_eager is False
    assert app.conf.broker_url == settings.REDIS_URL


@pytest.mark.postgres
@pytest.mark.django_db
def test_with_database_url_the_database_is_postgresql() -> None:
    from django.db import connection

    assert connection.vendor == "postgresql"


@pytest.mark.embedded
@pytest.mark.django_db
def test_the_embedded_defaults_need_no_services() -> None:
    from django.conf import settings
    from django.db import connection

    assert connection.vendor == "sqlite"
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"
    assert settings.CELERY_TASK_ALWAYS_EAGER is True
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"].endswith("InMemoryChannelLayer")
