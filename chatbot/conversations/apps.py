from django.apps import AppConfig
from django.http import HttpRequest


class ConversationsConfig(AppConfig):
    name = "chatbot.conversations"
    label = "conversations"

    def ready(self) -> None:
        from chatbot.dashboard import settings_sections
        from chatbot.dashboard.nav import EVERYONE, NavItem, register

        from .search import waiting_count
        from .settings import SECTIONS

        def waiting(request: HttpRequest) -> int:
            tenant = getattr(request, "tenant", None)
            return waiting_count(tenant) if tenant is not None else 0

        register(
            NavItem(
                "Inbox",
                "conversations:list",
                roles=EVERYONE,
                icon="inbox",
                order=15,
                badge=waiting,
            )
        )
        for section in SECTIONS:
            settings_sections.register(section)
