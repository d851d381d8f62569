from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "chatbot.conversations"
    label = "conversations"

    def ready(self) -> None:
        from chatbot.dashboard import settings_sections
        from chatbot.dashboard.nav import EVERYONE, NavItem, register

        from .settings import SECTIONS

        register(NavItem("Inbox", "conversations:list", roles=EVERYONE, icon="inbox", order=15))
        for section in SECTIONS:
            settings_sections.register(section)
