from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "chatbot.tenants"
    label = "tenants"
    verbose_name = "Tenants"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from .actions import announce_log_out

        user_logged_out.connect(announce_log_out, dispatch_uid="parley.revoke.log_out")
