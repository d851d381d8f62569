"""The one way to reach tenant-owned rows.

Every model that belongs to a tenant uses `TenantScopedManager` and is read through
`Model.objects.for_tenant(tenant)`. Looking a row up by id through that queryset makes a
foreign id behave exactly like a missing one (404), which is the isolation promise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.http import Http404

if TYPE_CHECKING:
    from .models import Tenant

M = TypeVar("M", bound=models.Model)


class TenantScopedQuerySet(models.QuerySet[M]):
    # The lookup path from the model to its tenant; models that hang off another tenant-owned
    # row set `tenant_path` on their manager (e.g. "conversation__bot__tenant").
    tenant_path = "tenant"

    def for_tenant(self, tenant: Tenant) -> TenantScopedQuerySet[M]:
        if tenant is None:  # a missing tenant must never mean "every tenant"
            return self.none()
        return self.filter(**{self.tenant_path: tenant})

    def get_for_tenant_or_404(self, tenant: Tenant, **lookup: Any) -> M:
        try:
            return self.for_tenant(tenant).get(**lookup)
        except (ObjectDoesNotExist, ValueError, TypeError):
            raise Http404("Not found") from None


class TenantScopedManager(models.Manager[M]):
    def __init__(self, tenant_path: str = "tenant") -> None:
        super().__init__()
        self.tenant_path = tenant_path

    def deconstruct(self) -> Any:
        # Keep migrations free of this manager's argument.
        return super().deconstruct()

    def get_queryset(self) -> TenantScopedQuerySet[M]:
        queryset: TenantScopedQuerySet[M] = TenantScopedQuerySet(self.model, using=self._db)
        queryset.tenant_path = self.tenant_path
        return queryset

    def for_tenant(self, tenant: Tenant) -> TenantScopedQuerySet[M]:
        return self.get_queryset().for_tenant(tenant)

    def get_for_tenant_or_404(self, tenant: Tenant, **lookup: Any) -> M:
        return self.get_queryset().get_for_tenant_or_404(tenant, **lookup)
