from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from chatbot.lib.crypto import UndecryptableSecret, decrypt_str, encrypt_str
from chatbot.tenants.models import Tenant
from chatbot.tenants.scoping import TenantScopedManager

from .spec import EndpointSpec, normalize_base_url


class Kind(models.TextChoices):
    OLLAMA = "ollama", "Ollama (/api/chat)"
    OPENAI = "openai", "OpenAI-compatible (/v1/chat/completions)"
    BEDROCK = "bedrock", "AWS Bedrock (ConverseStream)"


class Auth(models.TextChoices):
    NONE = "none", "None"
    BEARER = "bearer", "Bearer token"
    HEADER = "header", "API key header"
    AWS = "aws", "AWS credentials (SigV4)"


class Source(models.TextChoices):
    CONFIG = "config", "Declared in the environment"
    ADMIN = "admin", "Added in the admin"
    AUTODETECT = "autodetect", "Detected on this machine"
    TENANT = "tenant", "Brought by a tenant"


class ModelEndpoint(models.Model):
    """A model server Parley relays to.

    Operator endpoints have no tenant: declared in LLM_ENDPOINTS(_FILE) (re-synced at start),
    added in the admin, or autodetected. A tenant may add its own (tenant set): its URL passes
    the outbound SSRF guard and its key is encrypted at rest.
    """

    tenant = models.ForeignKey(
        Tenant, null=True, blank=True, on_delete=models.CASCADE, related_name="model_endpoints"
    )
    name = models.CharField(max_length=80)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    base_url = models.CharField(
        max_length=500,
        blank=True,
        help_text="openai: the prefix before /chat/completions (a bare host gets /v1); "
        "ollama: the server root; bedrock: empty for the region's runtime host.",
    )
    model = models.CharField(max_length=200)
    auth = models.CharField(max_length=10, choices=Auth.choices, default=Auth.NONE)
    auth_header = models.CharField(max_length=80, default="api-key", blank=True)
    secret_encrypted = models.TextField(blank=True, editable=False)
    aws_access_key_id = models.CharField(max_length=128, blank=True)
    region = models.CharField(max_length=40, blank=True)
    connect_timeout = models.FloatField(default=5.0, validators=[MinValueValidator(0.1)])
    first_token_timeout = models.FloatField(default=60.0, validators=[MinValueValidator(0.1)])
    idle_timeout = models.FloatField(default=30.0, validators=[MinValueValidator(0.1)])
    queue_timeout = models.FloatField(default=10.0, validators=[MinValueValidator(0.01)])
    max_concurrency = models.PositiveIntegerField(default=8, validators=[MinValueValidator(1)])
    context_window = models.PositiveIntegerField(default=8192, validators=[MinValueValidator(64)])
    chars_per_token = models.FloatField(default=3.0, validators=[MinValueValidator(0.5)])
    images = models.BooleanField(default=False, help_text="The model accepts image parts.")
    embeddings = models.BooleanField(default=False, help_text="The server offers embeddings.")
    embedding_model = models.CharField(max_length=200, blank=True)
    breaker_failures = models.PositiveIntegerField(default=3, validators=[MinValueValidator(1)])
    breaker_cooldown = models.FloatField(default=30.0, validators=[MinValueValidator(0.1)])
    enabled = models.BooleanField(default=True)
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.ADMIN)
    # Order of operator endpoints in the default route (primary first).
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedManager()

    class Meta:
        ordering = ("position", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=Q(tenant__isnull=True), name="llm_operator_name_unique"
            ),
            models.UniqueConstraint(fields=["tenant", "name"], name="llm_tenant_name_unique"),
        ]

    def __str__(self) -> str:
        owner = self.tenant.name if self.tenant_id and self.tenant else "operator"
        return f"{self.name} ({self.kind}, {self.model}, {owner})"

    @property
    def secret(self) -> str:
        return decrypt_str(self.secret_encrypted)

    def set_secret(self, value: str) -> None:
        self.secret_encrypted = encrypt_str(value)

    @property
    def is_operator(self) -> bool:
        return self.tenant_id is None

    def secret_problem(self) -> str | None:
        """Why the stored secret cannot be used, or None."""
        try:
            decrypt_str(self.secret_encrypted)
        except UndecryptableSecret as exc:
            return str(exc)
        return None

    def spec(self, *, strict: bool = True) -> EndpointSpec:
        """The runtime view of this endpoint. strict=False (status displays) tolerates a secret
        that cannot be decrypted; requests use strict and skip such an endpoint."""
        try:
            secret = self.secret
        except UndecryptableSecret:
            if strict:
                raise
            secret = ""
        owner = f"tenant:{self.tenant_id}" if self.tenant_id else "op"
        return EndpointSpec(
            name=self.name,
            kind=self.kind,  # type: ignore[arg-type]
            base_url=normalize_base_url(self.kind, self.base_url, self.region),
            model=self.model,
            auth=self.auth,  # type: ignore[arg-type]
            api_key=secret,
            auth_header=self.auth_header or "api-key",
            aws_access_key_id=self.aws_access_key_id,
            region=self.region,
            connect_timeout=self.connect_timeout,
            first_token_timeout=self.first_token_timeout,
            idle_timeout=self.idle_timeout,
            queue_timeout=self.queue_timeout,
            max_concurrency=self.max_concurrency,
            context_window=self.context_window,
            chars_per_token=self.chars_per_token,
            images=self.images,
            embeddings=self.embeddings,
            embedding_model=self.embedding_model,
            breaker_failures=self.breaker_failures,
            breaker_cooldown=self.breaker_cooldown,
            guarded=not self.is_operator,
            # The update time is part of the identity: an edit gets a fresh pool and breaker.
            key=f"{owner}:{self.pk}:{self.updated_at.timestamp() if self.updated_at else 0}",
        )


class BotRoute(models.Model):
    """One step of a bot's model route: position 0 is the primary, then the fallbacks."""

    bot = models.ForeignKey("bots.Bot", on_delete=models.CASCADE, related_name="llm_route")
    endpoint = models.ForeignKey(ModelEndpoint, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField()

    objects = TenantScopedManager("bot__tenant")

    class Meta:
        ordering = ("bot", "position")
        constraints = [
            models.UniqueConstraint(fields=["bot", "position"], name="llm_route_position_unique"),
            models.UniqueConstraint(fields=["bot", "endpoint"], name="llm_route_endpoint_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.bot_id} #{self.position}: {self.endpoint_id}"
