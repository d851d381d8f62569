"""Plans (defined by the operator), each tenant's account (its plan, suspension) and usage.

Live usage for the current month lives in Redis (`meter.py`): that is what quotas are
checked against, atomically, on the reply path. The rows here are the durable record,
the messages themselves (per day and endpoint: chatbot.analytics' roll-up, EndpointDay), so
a lost Redis key is restored from them (`meter.reconcile`); knowledge kept per day is
StorageDay, written by the same roll-up.
"""

from __future__ import annotations

from django.db import models

from chatbot.tenants.scoping import TenantScopedManager


class Plan(models.Model):
    """What a tenant may use each calendar month (UTC). An empty limit means unlimited."""

    name = models.CharField(max_length=60, unique=True)
    monthly_messages = models.PositiveIntegerField(
        null=True, blank=True, help_text="Bot replies per month (model calls)."
    )
    monthly_tokens = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Prompt + completion tokens per month."
    )
    max_bots = models.PositiveIntegerField(null=True, blank=True)
    max_seats = models.PositiveIntegerField(null=True, blank=True, help_text="Members.")
    max_knowledge_mb = models.PositiveIntegerField(
        null=True, blank=True, help_text="Text stored in the knowledge base, in MB."
    )
    allowed_endpoints = models.JSONField(
        default=list,
        blank=True,
        help_text="Names of the operator's model endpoints this plan may use; empty means all.",
    )
    is_default = models.BooleanField(
        default=False, help_text="Given to new workspaces (at most one plan)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("name",)
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="one_default_plan",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def allows_endpoint(self, name: str) -> bool:
        return not self.allowed_endpoints or name in self.allowed_endpoints


class Account(models.Model):
    """A tenant's plan and standing. Created with the tenant (a post_save receiver)."""

    tenant = models.OneToOneField(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="billing"
    )
    plan = models.ForeignKey(
        Plan, null=True, blank=True, on_delete=models.PROTECT, related_name="accounts"
    )
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspended_reason = models.CharField(max_length=300, blank=True)
    # "YYYY-MM" of the last month for which each warning email went out (sent once a month).
    warned_80 = models.CharField(max_length=7, blank=True)
    warned_100 = models.CharField(max_length=7, blank=True)

    objects = TenantScopedManager()

    def __str__(self) -> str:
        return f"{self.tenant_id}: {self.plan or 'no plan'}"

    @property
    def suspended(self) -> bool:
        return self.suspended_at is not None


class StorageDay(models.Model):
    """Knowledge kept by one tenant at the end of a day: text size, documents, crawled pages."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    knowledge_bytes = models.PositiveBigIntegerField(default=0)
    documents = models.PositiveIntegerField(default=0)
    crawled_pages = models.PositiveIntegerField(default=0)

    objects = TenantScopedManager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "day"], name="storage_day_unique")]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.day}"
