from django.apps import AppConfig


class LlmConfig(AppConfig):
    name = "chatbot.llm"
    label = "llm"
