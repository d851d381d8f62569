from django.apps import AppConfig


class InstallsConfig(AppConfig):
    """Installation help: where the widget has been seen, "check my site", the guides."""

    name = "chatbot.installs"
    label = "installs"
