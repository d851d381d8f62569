from django.apps import AppConfig


class KnowledgeConfig(AppConfig):
    name = "chatbot.knowledge"
    label = "knowledge"
