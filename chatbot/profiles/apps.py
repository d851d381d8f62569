from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    """A person's own settings: display name, avatar, language, notifications."""

    name = "chatbot.profiles"
    label = "profiles"
