from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "chatbot.tenants"
    label = "tenants"
    verbose_name = "Tenants"
