from django.apps import AppConfig


class LlmConfig(AppConfig):
    name = "chatbot.llm"
    label = "llm"
    verbose_name = "Models"

    def ready(self) -> None:
        import sys

        from django.conf import settings

        # Probe for a local Ollama / llama-server in the background when serving, so the
        # first request finds the answer cached. Never during tests or one-off commands.
        serving = any(word in " ".join(sys.argv) for word in ("serve", "uvicorn", "daphne", "asgi"))
        if settings.LLM_AUTODETECT and serving and not settings.TESTING:
            from . import detect

            detect.start_background()
