"""What the router needs to know about one endpoint, independent of where it was declared.

`EndpointSpec` is built from a `ModelEndpoint` row (operator file, admin, autodetection or a
tenant's own) or directly by `manage.py llm check --url ...`. It is frozen and hashable so
that per-endpoint runtime state (connection pool, concurrency slots, circuit breaker) can be
keyed by it: editing an endpoint in the admin gives a new spec, hence a fresh pool.

`parse_declared(...)` reads the operator's JSON (LLM_ENDPOINTS_FILE or LLM_ENDPOINTS) and fails
loudly, naming the endpoint and the field, when something is wrong.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

Kind = Literal["ollama", "openai", "bedrock"]
AuthKind = Literal["none", "bearer", "header", "aws"]
KINDS: tuple[Kind, ...] = ("ollama", "openai", "bedrock")
AUTH_KINDS: tuple[AuthKind, ...] = ("none", "bearer", "header", "aws")


@dataclass(frozen=True, slots=True)
class EndpointSpec:
    name: str
    kind: Kind
    base_url: str
    model: str
    auth: AuthKind = "none"
    api_key: str = field(default="", repr=False)  # bearer token, header value or AWS secret key
    auth_header: str = "api-key"
    aws_access_key_id: str = ""
    aws_session_token: str = field(default="", repr=False)
    region: str = ""
    connect_timeout: float = 5.0
    first_token_timeout: float = 60.0
    idle_timeout: float = 30.0
    queue_timeout: float = 10.0
    max_concurrency: int = 8
    context_window: int = 8192
    # Prompt budgeting without a tokenizer: how many characters make a token on this model.
    # ~3.5 for Llama 3 on English; 1 for byte-level toy models.
    chars_per_token: float = 3.0
    images: bool = False
    embeddings: bool = False
    embedding_model: str = ""
    breaker_failures: int = 3
    breaker_cooldown: float = 30.0
    # Tenant-brought endpoints go through the SSRF guard; operator endpoints may be local.
    guarded: bool = False
    key: str = ""  # stable identity for runtime state ("op:3", "tenant:7:12", "adhoc:...")

    @property
    def label(self) -> str:
        return self.name or self.model


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")

# JSON field -> spec attribute, for the few whose names differ.
_ALIASES = {"url": "base_url", "api_key_header": "auth_header"}
_SPEC_FIELDS = {f.name for f in fields(EndpointSpec)} - {"guarded", "key"}
_EXTRA_JSON_FIELDS = {"api_key_env", "aws_secret_access_key", "aws_secret_access_key_env"}


def normalize_base_url(kind: str, url: str, region: str = "") -> str:
    """The prefix every request path is appended to.

    openai: `.../v1` style prefix to which `/chat/completions` is added; a bare host gets `/v1`
    (llama-server, vLLM, LM Studio all serve there). ollama: the server root. bedrock: the
    runtime host for the region unless given.
    """
    url = (url or "").strip().rstrip("/")
    if kind == "bedrock" and not url:
        return f"https://bedrock-runtime.{region}.amazonaws.com" if region else ""
    if kind == "openai" and url and urlsplit(url).path in ("", "/"):
        return url + "/v1"
    if kind == "ollama" and url.endswith("/api"):
        return url[: -len("/api")]
    return url


def validate_url(url: str, where: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{where}: expected an http:// or https:// URL naming a host, got {url!r}")


def spec_from_mapping(data: dict[str, Any], where: str) -> EndpointSpec:
    """Build a spec from one JSON object, raising ValueError naming `where` and the field."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    values: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = _ALIASES.get(raw_key, raw_key)
        if key in _EXTRA_JSON_FIELDS:
            continue
        if key not in _SPEC_FIELDS:
            raise ValueError(f"{where}: unknown field {raw_key!r}")
        values[key] = value
    name = str(values.get("name", ""))
    if not _NAME.match(name):
        raise ValueError(
            f"{where}: 'name' must be 1-80 letters, digits, '.', '_' or '-', got {name!r}"
        )
    where = f"{where} ({name})"
    kind = values.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{where}: 'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
    if not values.get("model"):
        raise ValueError(f"{where}: 'model' is required (the model name the server knows)")
    # Secrets may come from the environment so the JSON file can be committed.
    for json_name, attr in (
        ("api_key_env", "api_key"),
        ("aws_secret_access_key_env", "api_key"),
    ):
        env_name = data.get(json_name)
        if env_name:
            secret = os.environ.get(str(env_name), "")
            if not secret:
                raise ValueError(f"{where}: {json_name} names {env_name!r}, which is not set")
            values[attr] = secret
    if data.get("aws_secret_access_key"):
        values["api_key"] = data["aws_secret_access_key"]
    auth = values.setdefault("auth", "aws" if kind == "bedrock" else "none")
    if auth not in AUTH_KINDS:
        raise ValueError(f"{where}: 'auth' must be one of {', '.join(AUTH_KINDS)}, got {auth!r}")
    if auth in ("bearer", "header") and not values.get("api_key"):
        raise ValueError(f"{where}: auth {auth!r} needs 'api_key' or 'api_key_env'")
    if auth == "aws" and kind != "bedrock":
        raise ValueError(f"{where}: auth 'aws' is only for kind 'bedrock'")
    if kind == "bedrock" and not values.get("region"):
        raise ValueError(f"{where}: 'region' is required for bedrock (e.g. us-west-2)")
    values["base_url"] = normalize_base_url(
        kind, str(values.get("base_url", "")), str(values.get("region", ""))
    )
    if not values["base_url"]:
        raise ValueError(f"{where}: 'url' is required")
    validate_url(values["base_url"], where)
    for number in (
        "connect_timeout",
        "first_token_timeout",
        "idle_timeout",
        "queue_timeout",
        "chars_per_token",
        "breaker_cooldown",
    ):
        if number in values:
            try:
                values[number] = float(values[number])
            except (TypeError, ValueError):
                raise ValueError(f"{where}: {number!r} must be a number") from None
            if values[number] <= 0:
                raise ValueError(f"{where}: {number!r} must be positive")
    for whole in ("max_concurrency", "context_window", "breaker_failures"):
        if whole in values and (not isinstance(values[whole], int) or values[whole] < 1):
            raise ValueError(f"{where}: {whole!r} must be a whole number of at least 1")
    for flag in ("images", "embeddings"):
        if flag in values and not isinstance(values[flag], bool):
            raise ValueError(f"{where}: {flag!r} must be true or false")
    return EndpointSpec(**values)


def parse_declared(text: str, source: str) -> list[EndpointSpec]:
    """Endpoints from the operator's JSON: a list, or {"endpoints": [...]}."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(f"{source}: not valid JSON: {exc}") from None
    if isinstance(data, dict):
        data = data.get("endpoints")
    if not isinstance(data, list):
        raise ImproperlyConfigured(f'{source}: expected a list or {{"endpoints": [...]}}')
    specs: list[EndpointSpec] = []
    seen: set[str] = set()
    for index, item in enumerate(data):
        try:
            spec = spec_from_mapping(item, f"{source}: endpoint #{index + 1}")
        except ValueError as exc:
            raise ImproperlyConfigured(str(exc)) from None
        if spec.name in seen:
            raise ImproperlyConfigured(f"{source}: the name {spec.name!r} is used twice")
        seen.add(spec.name)
        specs.append(spec)
    return specs


def declared_specs() -> list[EndpointSpec]:
    """The endpoints the operator declared in the environment (file first, then inline)."""
    from django.conf import settings

    specs: list[EndpointSpec] = []
    if settings.LLM_ENDPOINTS_FILE:
        path = Path(settings.LLM_ENDPOINTS_FILE)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ImproperlyConfigured(
                f"LLM_ENDPOINTS_FILE: cannot read {str(path)!r}: {exc.strerror}"
            ) from None
        specs += parse_declared(text, "LLM_ENDPOINTS_FILE")
    if settings.LLM_ENDPOINTS_JSON:
        inline = parse_declared(settings.LLM_ENDPOINTS_JSON, "LLM_ENDPOINTS")
        names = {s.name for s in specs}
        for spec in inline:
            if spec.name in names:
                raise ImproperlyConfigured(
                    f"LLM_ENDPOINTS: {spec.name!r} is also declared in LLM_ENDPOINTS_FILE"
                )
        specs += inline
    return specs
