"""What a bot can do besides talking: actions, the record of each call, captured contacts.

An `Action` belongs to a tenant and is used by some of its bots. It is either a call to the
tenant's HTTPS endpoint or one of the built-ins (capture a lead, hand off to a person, search
the knowledge base, show a card). An `ActionCall` records one call the model asked for, in a
conversation (deleted with it by retention and erasure). A `Contact` is a lead captured by the
built-in action (erased with its visitor). Every write goes through `chatbot.tools.actions`.
"""

from __future__ import annotations

import re
import secrets

from django.db import models

from chatbot.bots.models import Bot
from chatbot.conversations.models import Conversation, Message, Visitor
from chatbot.tenants.models import Tenant
from chatbot.tenants.scoping import TenantScopedManager

# What function names the model sees: the OpenAI, Ollama and Bedrock shapes all accept this.
ACTION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
MAX_TIMEOUT_SECONDS = 30
MAX_HEADERS = 10


def new_call_id() -> str:
    return "ac_" + secrets.token_urlsafe(12)


class ActionKind(models.TextChoices):
    HTTP = "http", "Call your endpoint"
    CAPTURE_LEAD = "capture_lead", "Capture a lead"
    HANDOFF = "handoff", "Hand off to a person"
    SEARCH_KNOWLEDGE = "search_knowledge", "Search the knowledge base"
    SHOW_CARD = "show_card", "Show a card"


class HttpMethod(models.TextChoices):
    GET = "GET", "GET"
    POST = "POST", "POST"
    PUT = "PUT", "PUT"
    PATCH = "PATCH", "PATCH"
    DELETE = "DELETE", "DELETE"


class Action(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="actions")
    kind = models.CharField(max_length=20, choices=ActionKind.choices, default=ActionKind.HTTP)
    # The function name the model calls (unique in the workspace).
    name = models.CharField(max_length=48)
    # What the visitor sees while it runs ("Looking up your order") and on confirmation cards.
    title = models.CharField(max_length=80)
    # For the model: when to call it and what it does.
    description = models.TextField(max_length=1000)
    # JSON Schema (an object) of the arguments.
    parameters = models.JSONField(default=dict, blank=True)
    url = models.URLField(max_length=2000, blank=True)
    method = models.CharField(max_length=6, choices=HttpMethod.choices, default=HttpMethod.POST)
    # {"Header-Name": "value"} as JSON, encrypted (chatbot.lib.crypto): values are secrets.
    headers_encrypted = models.TextField(blank=True)
    timeout_seconds = models.PositiveSmallIntegerField(default=10)
    # It changes something (books, orders, cancels): the visitor confirms each call first.
    needs_confirmation = models.BooleanField(default=False)
    enabled = models.BooleanField(default=True)
    bots = models.ManyToManyField(Bot, related_name="actions", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="action_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class CallStatus(models.TextChoices):
    AWAITING = "awaiting_confirmation", "Waiting for the visitor to confirm"
    CONFIRMED = "confirmed", "Confirmed, about to run"
    DECLINED = "declined", "Declined by the visitor"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ActionCall(models.Model):
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="action_calls"
    )
    # The reply during which the model asked for it.
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="action_calls"
    )
    action = models.ForeignKey(
        Action, null=True, blank=True, on_delete=models.SET_NULL, related_name="calls"
    )
    public_id = models.CharField(max_length=24, unique=True, default=new_call_id)
    call_id = models.CharField(max_length=100, blank=True)  # the model's id for the call
    name = models.CharField(max_length=48)
    title = models.CharField(max_length=80, blank=True)
    kind = models.CharField(max_length=20, choices=ActionKind.choices)
    arguments = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=24, choices=CallStatus.choices)
    # What the model was given back (secrets redacted), and a card for the visitor.
    result = models.JSONField(null=True, blank=True)
    card = models.JSONField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    confirmed_by = models.CharField(max_length=40, blank=True)  # the visitor's public id
    confirmed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedManager("conversation__bot__tenant")

    class Meta:
        indexes = [
            models.Index(fields=["conversation", "created_at"]),
            # The analytics roll-up reads one day's calls of a tenant (ActionDay).
            models.Index(fields=["created_at"], name="action_call_created_at"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class Contact(models.Model):
    """A lead the bot captured: the tenant's Contacts list."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="contacts")
    bot = models.ForeignKey(Bot, null=True, on_delete=models.SET_NULL, related_name="contacts")
    # Erasing the visitor erases what they left.
    visitor = models.ForeignKey(
        Visitor, null=True, blank=True, on_delete=models.CASCADE, related_name="contacts"
    )
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.SET_NULL, related_name="contacts"
    )
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    message = models.TextField(max_length=2000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedManager()

    class Meta:
        indexes = [models.Index(fields=["tenant", "-created_at"])]

    def __str__(self) -> str:
        return self.email or self.phone or self.name
