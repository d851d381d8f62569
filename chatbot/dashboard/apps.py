from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "chatbot.dashboard"
    label = "dashboard"
