# The widget tests' bot and scripted model, shared with the quota tests.
from tests.widget.conftest import acme_bot, model  # noqa: F401
