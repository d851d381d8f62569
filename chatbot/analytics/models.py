"""Daily roll-ups, one set per tenant and day (the tenant's time zone), rebuilt whole.

Pages read only these rows, so a report costs the same at a million messages as at ten.
BotDay, EndpointDay and QuestionDay come from the messages, ActionDay from the recorded
calls of the bots' actions (chatbot.tools' ActionCall).
`rollup.roll_up(tenant, day)` deletes and rewrites a day's rows in one transaction: running
it twice, or on two workers, gives the same rows.
"""

from __future__ import annotations

from django.db import models

from chatbot.tenants.scoping import TenantScopedManager

# Upper edges (ms) of the latency histogram buckets; the last bucket is open-ended.
LATENCY_EDGES_MS = (250, 500, 1000, 2000, 4000, 8000, 15000, 30000, 60000)
# Upper edges (seconds) of the time-to-a-person's-first-reply buckets.
WAIT_EDGES_S = (30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600)


class BotDay(models.Model):
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    conversations = models.PositiveIntegerField(default=0)  # started that day
    visitors = models.PositiveIntegerField(default=0)  # distinct visitors who wrote
    visitor_messages = models.PositiveIntegerField(default=0)
    replies = models.PositiveIntegerField(default=0)  # bot replies (refusals excluded)
    reply_errors = models.PositiveIntegerField(default=0)
    refused = models.PositiveIntegerField(default=0)  # plan limit / suspended
    agent_messages = models.PositiveIntegerField(default=0)
    handoffs = models.PositiveIntegerField(default=0)  # of the conversations started that day
    resolved_by_bot = models.PositiveIntegerField(default=0)  # answered, no person involved
    feedback_up = models.PositiveIntegerField(default=0)
    feedback_down = models.PositiveIntegerField(default=0)
    tokens_in = models.PositiveBigIntegerField(default=0)
    tokens_out = models.PositiveBigIntegerField(default=0)
    # Visitor messages per hour of the day (24 counts, the tenant's time zone).
    hours = models.JSONField(default=list)
    # Time to a person's first reply after a handoff: counts per WAIT_EDGES_S bucket.
    first_agent_reply = models.JSONField(default=list)

    objects = TenantScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bot", "day"], name="bot_day_unique")]
        indexes = [models.Index(fields=["tenant", "day"])]

    def __str__(self) -> str:
        return f"{self.bot_id} {self.day}"


class EndpointDay(models.Model):
    """Replies per model endpoint and model: errors, tokens, time to first token."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    endpoint = models.CharField(max_length=200, blank=True)
    model = models.CharField(max_length=200, blank=True)
    replies = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    tokens_in = models.PositiveBigIntegerField(default=0)
    tokens_out = models.PositiveBigIntegerField(default=0)
    # Time to first token: counts per LATENCY_EDGES_MS bucket (percentiles of any period).
    ttft = models.JSONField(default=list)

    objects = TenantScopedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bot", "day", "endpoint", "model"], name="endpoint_day_unique"
            )
        ]
        indexes = [models.Index(fields=["tenant", "day"])]

    def __str__(self) -> str:
        return f"{self.bot_id} {self.day} {self.endpoint}"


class QuestionDay(models.Model):
    """Visitor questions of a day grouped by their words; `unanswered` counts the ones the
    bot could not answer (no knowledge found, thumbs down, or the visitor asked for a person)."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    key = models.CharField(max_length=200)
    sample = models.CharField(max_length=300)
    count = models.PositiveIntegerField(default=0)
    unanswered = models.PositiveIntegerField(default=0)

    objects = TenantScopedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bot", "day", "key"], name="question_day_unique")
        ]
        indexes = [models.Index(fields=["tenant", "day"])]

    def __str__(self) -> str:
        return f"{self.bot_id} {self.day} {self.key}"


class ActionDay(models.Model):
    """Calls of one action (by the name the model called) in one bot's conversations that
    day: how many, how they ended, and how long the finished ones took. `declined` is the
    visitor saying no to a confirmation (not a failure); calls still awaiting, confirmed or
    running at roll-up time are in `calls` only."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    name = models.CharField(max_length=48)
    kind = models.CharField(max_length=20, blank=True)
    calls = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    declined = models.PositiveIntegerField(default=0)
    # Sum and count of the recorded durations (mean = duration_ms / timed, over any period).
    duration_ms = models.PositiveBigIntegerField(default=0)
    timed = models.PositiveIntegerField(default=0)

    objects = TenantScopedManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bot", "day", "name"], name="action_day_unique")
        ]
        indexes = [models.Index(fields=["tenant", "day"])]

    def __str__(self) -> str:
        return f"{self.bot_id} {self.day} {self.name}"
