"""`manage.py llm`: list the model endpoints, detect local servers, check one end to end.

python manage.py llm list
python manage.py llm detect
python manage.py llm check NAME
python manage.py llm check --kind openai --url http://127.0.0.1:8080 --model x --api-key K
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from chatbot.llm import detect, registry
from chatbot.llm.models import ModelEndpoint
from chatbot.llm.prompt import build_request
from chatbot.llm.routing import close_pools, stream_route
from chatbot.llm.spec import KINDS, EndpointSpec, spec_from_mapping
from chatbot.llm.types import ChatMessage, Finish, Routed, StreamError, TextDelta, Usage

PROMPT = "Say hello in five words."

HINTS = {
    "connect": "Is the server running, and is the URL (host and port) right?",
    "timeout": "The server is reachable but slow or stuck; check its load, or raise the "
    "first_token_timeout / connect_timeout of the endpoint.",
    "auth": "Check the API key and the auth kind (bearer, or header with the right header name).",
    "not_found": "For Ollama: `ollama pull MODEL`. For OpenAI-compatible servers: list the model "
    "ids with GET URL/models, and check that the URL ends where /chat/completions goes.",
    "context": "Lower max tokens or raise the endpoint's context window on the server.",
    "unsupported": "Declare the endpoint without images, or give the server a vision projector.",
    "rate_limited": "The provider is throttling this key; try later or raise its limits.",
    "upstream": "The server failed on its side; look at its logs.",
    "overloaded": "All streams are in use; raise max_concurrency or add a fallback endpoint.",
}


class Command(BaseCommand):
    help = "List, detect and check model endpoints."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="the operator's endpoints")
        sub.add_parser("detect", help="look for Ollama and llama-server on this machine")
        check = sub.add_parser("check", help="stream a short reply and report timings")
        check.add_argument("name", nargs="?", help="a configured endpoint's name")
        check.add_argument("--kind", choices=KINDS)
        check.add_argument("--url")
        check.add_argument("--model")
        check.add_argument("--api-key", default="")
        check.add_argument("--auth", choices=("none", "bearer", "header"))
        check.add_argument("--region", default="")
        check.add_argument("--max-tokens", type=int, default=32)
        check.add_argument("--timeout", type=float, default=30.0, help="first-token timeout")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "list":
            self._list()
        elif action == "detect":
            self._detect()
        else:
            self._check(options)

    def _list(self) -> None:
        try:
            rows = registry.operator_endpoints()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        if not rows:
            self.stdout.write(
                "No endpoint is configured or detected. See README: Connecting a model."
            )
        for endpoint in rows:
            flags = ", ".join(
                f
                for f, on in (("images", endpoint.images), ("embeddings", endpoint.embeddings))
                if on
            )
            self.stdout.write(
                f"{endpoint.name:24} {endpoint.kind:8} {endpoint.model:32} {endpoint.base_url} "
                f"[{endpoint.source}{', ' + flags if flags else ''}]"
            )

    def _detect(self) -> None:
        found = detect.detected(force=True)
        for spec in found.specs:
            self.stdout.write(f"found {spec.name}: {spec.kind} {spec.base_url} model {spec.model}")
        for note in found.notes:
            self.stdout.write(note)
        if not found.specs:
            self.stdout.write(
                "Nothing answers on 127.0.0.1:11434 (Ollama) or 127.0.0.1:8080 (llama-server)."
            )

    def _spec(self, options: dict[str, Any]) -> EndpointSpec:
        if options["name"]:
            try:
                registry.ensure_ready()
            except ImproperlyConfigured as exc:
                raise CommandError(str(exc)) from None
            endpoint = (
                ModelEndpoint.objects.filter(name=options["name"]).order_by("tenant_id").first()
            )
            if endpoint is None:
                names = ", ".join(
                    ModelEndpoint.objects.filter(tenant__isnull=True).values_list("name", flat=True)
                )
                raise CommandError(
                    f"no endpoint named {options['name']!r} (known: {names or 'none'})"
                )
            spec = endpoint.spec()
        else:
            missing = [f"--{n}" for n in ("kind", "url", "model") if not options[n]]
            if options["kind"] == "bedrock" and "--url" in missing:
                missing.remove("--url")
            if missing:
                raise CommandError(f"give an endpoint name, or {' '.join(missing)}")
            data: dict[str, Any] = {
                "name": "check",
                "kind": options["kind"],
                "url": options["url"] or "",
                "model": options["model"],
                "api_key": options["api_key"],
                "region": options["region"],
            }
            if options["auth"] or options["api_key"]:
                data["auth"] = options["auth"] or "bearer"
            try:
                spec = spec_from_mapping(data, "check")
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        # A fresh key: the check must not be skipped by this process's breaker.
        return dataclasses.replace(
            spec, first_token_timeout=options["timeout"], key=f"check:{time.monotonic_ns()}"
        )

    def _check(self, options: dict[str, Any]) -> None:
        spec = self._spec(options)
        self.stdout.write(f"Checking {spec.label}: {spec.kind} {spec.base_url} model {spec.model}")
        error, stats = asyncio.run(_run_check(spec, options["max_tokens"], self.stdout.write))
        if error is not None:
            hint = HINTS.get(error.code, "")
            raise CommandError(f"{error.message}\n  {hint}".rstrip())
        self.stdout.write(self.style.SUCCESS("OK ") + stats)


async def _run_check(
    spec: EndpointSpec, max_tokens: int, write: Any
) -> tuple[StreamError | None, str]:
    history = [ChatMessage.text("user", PROMPT)]
    started = time.monotonic()
    text: list[str] = []
    usage: Usage | None = None
    finish: Finish | None = None
    first_at: float | None = None
    try:
        async for event in stream_route(
            [spec], lambda s: build_request(s, system="", history=history, max_tokens=max_tokens)
        ):
            if isinstance(event, Routed):
                continue
            if isinstance(event, TextDelta):
                first_at = first_at or time.monotonic()
                text.append(event.text)
            elif isinstance(event, Usage):
                usage = event
            elif isinstance(event, Finish):
                finish = event
    finally:
        await close_pools()
    ended = time.monotonic()
    assert finish is not None
    if finish.error is not None:
        return finish.error, ""
    reply = "".join(text).strip().replace("\n", " ")
    write(f"  reply: {reply[:200]!r}")
    ttft = (first_at - started) * 1000 if first_at else None
    tokens = usage.completion_tokens if usage and usage.completion_tokens else len(text)
    generation = ended - (first_at or started)
    rate = (
        f"{tokens / generation:.1f} tokens/s" if generation > 0 and tokens > 1 else "n/a tokens/s"
    )
    usage_text = (
        f"prompt {usage.prompt_tokens} + completion {usage.completion_tokens} tokens"
        if usage and (usage.prompt_tokens or usage.completion_tokens)
        else "usage not reported by the server"
    )
    ttft_text = f"{ttft:.0f} ms" if ttft is not None else "n/a"
    return None, (
        f"first token {ttft_text}, {rate}, total {(ended - started) * 1000:.0f} ms, "
        f"{usage_text}, finish {finish.reason}"
    )
