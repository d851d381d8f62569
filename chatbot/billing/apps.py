from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "chatbot.billing"
    label = "billing"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from chatbot.dashboard.nav import MANAGERS, NavItem, register
        from chatbot.tenants.models import Tenant

        from .actions import open_account

        post_save.connect(open_account, sender=Tenant, dispatch_uid="billing.open_account")
        register(NavItem("Usage", "billing:usage", roles=MANAGERS, icon="chart", order=70))
