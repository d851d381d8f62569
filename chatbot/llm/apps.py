import sys

from django.apps import AppConfig


class LlmConfig(AppConfig):
    name = "chatbot.llm"
    label = "llm"
    verbose_name = "Models"

    def ready(self) -> None:
        from django.conf import settings

        from chatbot.dashboard.nav import MANAGERS, NavItem, register

        from .spec import declared_specs

        register(NavItem("Models", "llm:endpoints", roles=MANAGERS, icon="cpu", order=70))

        # A malformed LLM_ENDPOINTS(_FILE) stops start-up with a line naming the endpoint and
        # the field, like every other setting (parsing only: no database, no network).
        declared_specs()
        # Probe for a local Ollama / llama-server in the background when serving, so the
        # first request finds the answer cached. Never during tests or one-off commands.
        command = " ".join(sys.argv)
        serving = any(word in command for word in ("serve", "uvicorn", "daphne", "gunicorn"))
        if settings.LLM_AUTODETECT and serving and not settings.TESTING:
            from . import detect

            detect.start_background()
