from django.apps import AppConfig


class BotsConfig(AppConfig):
    name = "chatbot.bots"
    label = "bots"

    def ready(self) -> None:
        try:
            from chatbot.dashboard.nav import MANAGERS, NavItem, register
        except ImportError:  # the dashboard shell is not installed yet
            return
        register(NavItem("Bots", "bots:list", roles=MANAGERS, icon="bot", order=20))
