from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "chatbot.core"
    label = "core"
    verbose_name = "Parley core"
