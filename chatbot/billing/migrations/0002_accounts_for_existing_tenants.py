from typing import Any

from django.db import migrations


def open_accounts(apps: Any, schema_editor: Any) -> None:
    Tenant = apps.get_model("tenants", "Tenant")
    Account = apps.get_model("billing", "Account")
    have = set(Account.objects.values_list("tenant_id", flat=True))
    Account.objects.bulk_create(
        Account(tenant_id=pk) for pk in Tenant.objects.values_list("pk", flat=True) if pk not in have
    )


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_plans_accounts_storage")]
    operations = [migrations.RunPython(open_accounts, migrations.RunPython.noop)]
