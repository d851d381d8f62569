from __future__ import annotations

import secrets

from django.db import models

from chatbot.tenants.models import Tenant
from chatbot.tenants.scoping import TenantScopedManager


def new_public_key() -> str:
    return "pk_" + secrets.token_urlsafe(18)


def new_identity_secret() -> str:
    return "is_" + secrets.token_urlsafe(32)


class Bot(models.Model):
    """An assistant a tenant puts on its websites."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="bots")
    name = models.CharField(max_length=80)
    system_prompt = models.TextField(blank=True)
    greeting = models.CharField(max_length=500, blank=True)
    allowed_origins = models.JSONField(default=list, blank=True)
    public_key = models.CharField(max_length=40, unique=True, default=new_public_key)
    identity_secret = models.CharField(max_length=64, default=new_identity_secret)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedManager()

    def __str__(self) -> str:
        return self.name
