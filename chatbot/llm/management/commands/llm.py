"""`manage.py llm`: list the model endpoints, detect local servers, check one end to end.

python manage.py llm list
python manage.py llm detect
python manage.py llm check NAME
python manage.py llm check --kind openai --url http://127.0.0.1:8080 --model x --api-key K
"""

from __future__ import annotations

import asyncio
import logging
from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from chatbot.llm import detect, registry
from chatbot.llm.check import CheckResult, check_endpoint
from chatbot.llm.models import ModelEndpoint
from chatbot.llm.routing import close_pools
from chatbot.llm.spec import KINDS, EndpointSpec, spec_from_mapping


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
        return spec

    def _check(self, options: dict[str, Any]) -> None:
        spec = self._spec(options)
        # The diagnosis is printed below; the router's own log lines would repeat it.
        logging.getLogger("chatbot.llm.routing").setLevel(logging.ERROR)
        self.stdout.write(f"Checking {spec.label}: {spec.kind} {spec.base_url} model {spec.model}")
        result = asyncio.run(_check(spec, options["max_tokens"], options["timeout"]))
        if result.error is not None:
            raise CommandError(f"{result.summary()}\n  {result.hint}".rstrip())
        self.stdout.write(f"  reply: {result.reply[:200]!r}")
        self.stdout.write(self.style.SUCCESS("OK ") + result.summary())


async def _check(spec: EndpointSpec, max_tokens: int, timeout: float) -> CheckResult:
    try:
        return await check_endpoint(spec, max_tokens=max_tokens, first_token_timeout=timeout)
    finally:
        await close_pools()
