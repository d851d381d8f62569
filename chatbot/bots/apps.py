from django.apps import AppConfig


class BotsConfig(AppConfig):
    name = "chatbot.bots"
    label = "bots"
