"""Writes to the llm domain: a tenant brings (or removes) its own model endpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction

from chatbot.lib import outbound
from chatbot.tenants import audit

from .models import Auth, Kind, ModelEndpoint, Source
from .spec import normalize_base_url, spec_from_mapping

if TYPE_CHECKING:
    from chatbot.tenants.models import Tenant


class EndpointInvalid(ValueError):
    """The endpoint cannot be saved; the message says why, for the form."""


def check_tenant_endpoint(
    *, name: str, kind: str, base_url: str, model: str, api_key: str, auth: str
) -> str:
    """Validate a tenant's endpoint; returns the normalized base URL."""
    if kind not in (Kind.OLLAMA, Kind.OPENAI):
        # Bedrock needs AWS credentials and a region: operator-level only.
        raise EndpointInvalid("Choose Ollama or OpenAI-compatible.")
    if auth not in (Auth.NONE, Auth.BEARER, Auth.HEADER):
        raise EndpointInvalid("Choose no authentication, a bearer token or an API key header.")
    try:
        spec = spec_from_mapping(
            {
                "name": name,
                "kind": kind,
                "url": base_url,
                "model": model,
                "auth": auth,
                "api_key": api_key,
            },
            "endpoint",
        )
    except ValueError as exc:
        raise EndpointInvalid(
            str(exc).removeprefix("endpoint: ").removeprefix(f"endpoint ({name}): ")
        ) from None
    # Tenants' URLs must not reach into the platform's own network.
    try:
        outbound.check_url(spec.base_url)
    except outbound.BlockedURL as exc:
        raise EndpointInvalid(f"This URL cannot be used: {exc}") from None
    return normalize_base_url(kind, spec.base_url)


def add_tenant_endpoint(
    tenant: Tenant,
    *,
    name: str,
    kind: str,
    base_url: str,
    model: str,
    api_key: str = "",
    auth: str = Auth.BEARER,
    images: bool = False,
    context_window: int = 8192,
    actor: Any = None,
) -> ModelEndpoint:
    if not 256 <= context_window <= 2_000_000:
        raise EndpointInvalid("The context window must be between 256 and 2,000,000 tokens.")
    base_url = check_tenant_endpoint(
        name=name, kind=kind, base_url=base_url, model=model, api_key=api_key, auth=auth
    )
    endpoint = ModelEndpoint(
        tenant=tenant,
        name=name,
        kind=kind,
        base_url=base_url,
        model=model,
        auth=auth,
        auth_header="api-key",
        images=images,
        context_window=context_window,
        source=Source.TENANT,
        max_concurrency=4,
    )
    endpoint.set_secret(api_key)
    try:
        with transaction.atomic():
            endpoint.save()
            # The key is never part of the audit details.
            audit.record(
                tenant, actor, "model_endpoint.added", target=name, kind=kind, url=base_url
            )
    except IntegrityError:
        raise EndpointInvalid(f"An endpoint named {name!r} already exists.") from None
    return endpoint


def delete_tenant_endpoint(tenant: Tenant, endpoint_id: int, actor: Any = None) -> None:
    """Remove a tenant's own endpoint; bots routed to it fall back to the rest of their
    route (or the operator's default)."""
    endpoint = ModelEndpoint.objects.get_for_tenant_or_404(tenant, pk=endpoint_id)
    with transaction.atomic():
        endpoint.delete()
        audit.record(tenant, actor, "model_endpoint.removed", target=endpoint.name)
