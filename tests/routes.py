"""Walks every HTTP route of chatbot.urls, for the inventory and isolation tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse
from django.urls.converters import IntConverter, UUIDConverter
from django.urls.resolvers import RoutePattern


@dataclass(frozen=True)
class Route:
    name: str  # namespaced ("dashboard:key_revoke"); "" when the pattern has no name
    route: str  # the pattern as written, joined with its parents ("dashboard/keys/<int:key_id>/")
    callback: Any
    params: tuple[str, ...]
    converters: dict[str, Any]

    @property
    def takes_params(self) -> bool:
        return bool(self.params)

    def sample_kwargs(self) -> dict[str, Any]:
        """Values that fit the route's converters (and name no existing row)."""
        values: dict[str, Any] = {}
        for param in self.params:
            converter = self.converters.get(param)
            if isinstance(converter, IntConverter):
                values[param] = 2_000_000_000
            elif isinstance(converter, UUIDConverter):
                values[param] = uuid.UUID(int=0)
            else:
                values[param] = "x1"
        return values

    def url(self, **kwargs: Any) -> str:
        return reverse(self.name, kwargs=kwargs or None)

    def sample_url(self) -> str:
        try:
            return self.url(**self.sample_kwargs())
        except NoReverseMatch:
            # Regex patterns: try a few generic shapes.
            for value in ("1", "abc", "abc-1"):
                try:
                    return self.url(**dict.fromkeys(self.params, value))
                except NoReverseMatch:
                    continue
            raise


def _params(pattern: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    if isinstance(pattern, RoutePattern):
        converters = dict(pattern.converters)
        return tuple(converters), converters
    return tuple(pattern.regex.groupindex), {}


def iter_routes() -> Iterator[Route]:
    def walk(
        patterns: list[URLPattern | URLResolver],
        prefix: str,
        namespace: str,
        params: tuple[str, ...],
        converters: dict[str, Any],
    ) -> Iterator[Route]:
        for entry in patterns:
            own_params, own_converters = _params(entry.pattern)
            all_params = params + own_params
            all_converters = {**converters, **own_converters}
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                child_ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
                yield from walk(entry.url_patterns, route, child_ns, all_params, all_converters)
            else:
                name = f"{namespace}{entry.name}" if entry.name else ""
                yield Route(name, route, entry.callback, all_params, all_converters)

    yield from walk(get_resolver().url_patterns, "", "", (), {})
