from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "chatbot.knowledge"
    label = "knowledge"

    def ready(self) -> None:
        from chatbot.dashboard.nav import MANAGERS, NavItem, register

        from . import signals  # noqa: F401 (connects the receivers)

        register(NavItem("Knowledge", "knowledge:list", roles=MANAGERS, icon="book", order=30))
