from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "chatbot.analytics"
    label = "analytics"

    def ready(self) -> None:
        from chatbot.dashboard.nav import MANAGERS, NavItem, register

        register(NavItem("Analytics", "analytics:report", roles=MANAGERS, icon="chart", order=12))
