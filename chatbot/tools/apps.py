from django.apps import AppConfig


class ToolsConfig(AppConfig):
    name = "chatbot.tools"
    label = "tools"
    verbose_name = "Actions and contacts"

    def ready(self) -> None:
        from chatbot.dashboard.nav import EVERYONE, ICONS, MANAGERS, NavItem, register

        ICONS.setdefault("bolt", "M13 2L4 14h7l-1 8 9-12h-7z")

        register(NavItem("Actions", "tools:list", roles=MANAGERS, icon="bolt", order=35))
        register(NavItem("Contacts", "tools:contacts", roles=EVERYONE, icon="users", order=40))
