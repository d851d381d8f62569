from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "chatbot.api"
    label = "api"
