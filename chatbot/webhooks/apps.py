from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "chatbot.webhooks"
    label = "webhooks"

    def ready(self) -> None:
        from chatbot.dashboard.nav import MANAGERS, NavItem, register
        from chatbot.lib import events

        from .dispatch import has_endpoints, on_event

        events.listen(on_event, wants=has_endpoints)
        register(NavItem("Webhooks", "webhooks:list", roles=MANAGERS, icon="webhook", order=87))
