"""Visitors, their conversations with a bot, the messages and their attachments.

Every write goes through `chatbot.conversations.actions`.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from chatbot.bots.models import Bot
from chatbot.tenants.scoping import TenantScopedManager


def _public_id(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(12)


def new_visitor_id() -> str:
    return _public_id("v_")


def new_conversation_id() -> str:
    return _public_id("c_")


def new_attachment_id() -> str:
    return _public_id("a_")


class Visitor(models.Model):
    """Someone on a host site. Anonymous unless the host signed their identity."""

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="visitors")
    public_id = models.CharField(max_length=24, unique=True, default=new_visitor_id)
    # The host site's user id; set only from a verified identity token.
    external_id = models.CharField(max_length=200, blank=True)
    verified = models.BooleanField(default=False)
    name = models.CharField(max_length=200, blank=True)
    email = models.EmailField(blank=True)
    locale = models.CharField(max_length=10, blank=True)
    # Where and with what the visitor last opened the widget (shown to agents).
    page_url = models.CharField(max_length=500, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    # A member trying the bot in the dashboard's live preview, not a customer.
    preview = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedManager("bot__tenant")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bot", "external_id"],
                condition=Q(verified=True),
                name="one_verified_visitor_per_host_user",
            )
        ]

    def __str__(self) -> str:
        return self.name or self.public_id

    @property
    def label(self) -> str:
        """How the dashboard names this visitor."""
        from django.utils.translation import gettext

        if self.preview:
            return gettext("Preview (your team)")
        return self.name or self.email or gettext("Anonymous visitor")


class Status(models.TextChoices):
    BOT = "bot", "Answered by the bot"
    WAITING = "waiting", "Waiting for a person"
    AGENT = "agent", "With an agent"
    CLOSED = "closed", "Closed"


class Conversation(models.Model):
    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="conversations")
    visitor = models.ForeignKey(Visitor, on_delete=models.CASCADE, related_name="conversations")
    public_id = models.CharField(max_length=24, unique=True, default=new_conversation_id)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.BOT)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_conversations",
    )
    # The highest seq handed out; the next message takes last_seq + 1 under a row lock.
    last_seq = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Set when a visitor asked for a person outside office hours and left an address.
    followup_email = models.EmailField(blank=True)

    objects = TenantScopedManager("bot__tenant")

    class Meta:
        indexes = [
            models.Index(fields=["visitor", "-updated_at"]),
            models.Index(fields=["bot", "status", "-updated_at"]),
            models.Index(fields=["-updated_at"]),
        ]

    def __str__(self) -> str:
        return self.public_id

    @property
    def group_name(self) -> str:
        """The channel group of everyone watching this conversation (built from the id)."""
        return f"conv.{self.pk}"


class Role(models.TextChoices):
    VISITOR = "visitor", "Visitor"
    ASSISTANT = "assistant", "Assistant"
    AGENT = "agent", "Agent"
    NOTE = "note", "Internal note"
    SYSTEM = "system", "System"


class MessageStatus(models.TextChoices):
    COMPLETE = "complete", "Complete"
    STREAMING = "streaming", "Streaming"
    INCOMPLETE = "incomplete", "Incomplete"
    FAILED = "failed", "Failed"


class Feedback(models.TextChoices):
    NONE = "", "None"
    UP = "up", "Helpful"
    DOWN = "down", "Not helpful"


class Message(models.Model):
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    seq = models.PositiveIntegerField()
    # NULL (not ""): messages without a client id (replies, agents) must not collide in the
    # (conversation, client_id) unique constraint.
    client_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    role = models.CharField(max_length=9, choices=Role.choices)
    text = models.TextField(blank=True)
    status = models.CharField(
        max_length=10, choices=MessageStatus.choices, default=MessageStatus.COMPLETE
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Reply metadata (assistant messages).
    model = models.CharField(max_length=200, blank=True)
    endpoint = models.CharField(max_length=200, blank=True)
    tokens_in = models.PositiveIntegerField(null=True, blank=True)
    tokens_out = models.PositiveIntegerField(null=True, blank=True)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    feedback = models.CharField(max_length=4, choices=Feedback.choices, blank=True, default="")
    citations = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedManager("conversation__bot__tenant")

    class Meta:
        ordering = ("conversation", "seq")
        # The analytics roll-up reads one day of messages at a time (chatbot/analytics).
        indexes = [models.Index(fields=["created_at"], name="message_created_at")]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="message_seq_unique"),
            models.UniqueConstraint(
                fields=["conversation", "client_id"],
                condition=Q(client_id__isnull=False),
                name="message_client_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.conversation_id}#{self.seq} {self.role}"


class Attachment(models.Model):
    """An image a visitor uploaded, validated by content and re-encoded."""

    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="attachments")
    visitor = models.ForeignKey(Visitor, on_delete=models.CASCADE, related_name="attachments")
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments"
    )
    public_id = models.CharField(max_length=24, unique=True, default=new_attachment_id)
    content_type = models.CharField(max_length=40)
    size = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    stored_name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedManager("bot__tenant")

    def __str__(self) -> str:
        return self.public_id


class RetentionDays(models.IntegerChoices):
    DAYS_30 = 30, "30 days"
    DAYS_90 = 90, "90 days"
    DAYS_365 = 365, "365 days"
    FOREVER = 0, "Forever"


class AgentNames(models.TextChoices):
    FULL = "full", "Their display name and avatar"
    FIRST = "first", "Their first name and avatar"
    TEAM = "team", "The workspace's name only (“Acme team”)"


class InboxSettings(models.Model):
    """A workspace's live-chat settings: office hours and how long conversations are kept.

    Edited through two sections of the settings page (chatbot/conversations/settings.py).
    """

    tenant = models.OneToOneField(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="inbox_settings"
    )
    retention_days = models.PositiveIntegerField(
        choices=RetentionDays.choices,
        default=RetentionDays.FOREVER,
        help_text="Conversations not updated for this long are deleted with their attachments.",
    )
    office_hours_enabled = models.BooleanField(
        default=False,
        help_text="Off: live chat is offered at any time. On: only during the hours below.",
    )
    # Weekdays as ISO numbers (1 = Monday ... 7 = Sunday), in the tenant's time zone.
    office_days = models.JSONField(default=list, blank=True)
    office_start = models.TimeField(null=True, blank=True)
    office_end = models.TimeField(null=True, blank=True)
    offline_message = models.CharField(
        max_length=300,
        blank=True,
        default="Our team is away right now. Leave your email address here and we will "
        "get back to you.",
    )

    # How visitors see the person who answers them.
    agent_names = models.CharField(
        max_length=5, choices=AgentNames.choices, default=AgentNames.FULL
    )

    objects = TenantScopedManager()

    def __str__(self) -> str:
        return f"inbox settings of {self.tenant_id}"


class CannedResponse(models.Model):
    """A saved reply agents insert with a shortcut."""

    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="canned_responses"
    )
    shortcut = models.SlugField(max_length=40)
    text = models.TextField(max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "shortcut"], name="canned_shortcut_unique")
        ]

    def __str__(self) -> str:
        return self.shortcut
