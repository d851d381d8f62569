"""Create (or refresh) the demo tenant, its owner and its demo bot. Safe to run repeatedly."""

from __future__ import annotations

from typing import Any

from allauth.account.models import EmailAddress
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from chatbot.bots.models import Bot
from chatbot.tenants.models import Membership, Role, Tenant, User

DEMO_EMAIL = "demo@parley.localhost"
DEMO_PASSWORD = "parley-demo"
DEMO_SLUG = "demo"
# The demo bot's widget: title, suggested questions and appearance (chatbot/bots/models.py).
DEMO_BOT_LOOK = {
    "title": "Demo Company help",
    "suggested_questions": [
        "What does Demo Company do?",
        "How do I get in touch with a person?",
        "Where can I read your prices?",
    ],
    "accent_color": "#0f766e",
    "position": "right",
    "theme": "auto",
    "launcher_icon": "chat",
    "default_locale": "en",
}


class Command(BaseCommand):
    help = "Seed the demo tenant, owner and bot (idempotent)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000, help="the platform's port")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        demo_port = options["port"] + 1
        tenant, _ = Tenant.objects.get_or_create(slug=DEMO_SLUG, defaults={"name": "Demo Company"})
        user = User.objects.filter(email=DEMO_EMAIL).first()
        if user is None:
            user = User.objects.create_user(DEMO_EMAIL, DEMO_PASSWORD, name="Demo Owner")
        EmailAddress.objects.update_or_create(
            user=user, email=DEMO_EMAIL, defaults={"verified": True, "primary": True}
        )
        Membership.objects.get_or_create(tenant=tenant, user=user, defaults={"role": Role.OWNER})
        host_origins = [f"http://127.0.0.1:{demo_port}", f"http://localhost:{demo_port}"]
        bot, created = Bot.objects.get_or_create(
            tenant=tenant,
            name="Demo assistant",
            defaults={
                "system_prompt": "You are the friendly assistant of Demo Company.",
                "greeting": "Hi! Ask me anything about Demo Company.",
                "allowed_origins": host_origins,
                **DEMO_BOT_LOOK,
            },
        )
        if not created:
            # Fill the widget's look on demo bots seeded before these fields existed.
            missing = {k: v for k, v in DEMO_BOT_LOOK.items() if not getattr(bot, k)}
            if missing:
                for key, value in missing.items():
                    setattr(bot, key, value)
                bot.save(update_fields=[*missing, "updated_at"])
            merged = list(dict.fromkeys([*bot.allowed_origins, *host_origins]))
            if merged != bot.allowed_origins:
                bot.allowed_origins = merged
                bot.save(update_fields=["allowed_origins", "updated_at"])
        seed_demo_actions(tenant, bot, demo_port)
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "  Parley demo is ready.",
                    f"  Platform:   {settings.SITE_URL}/",
                    f"  Dashboard:  {settings.SITE_URL}/dashboard/",
                    f"  Log in as:  {DEMO_EMAIL}",
                    f"  Password:   {DEMO_PASSWORD}",
                    f"  Demo site:  http://127.0.0.1:{demo_port}/"
                    "  (a host page embedding the demo bot)",
                    "",
                ]
            )
        )


def seed_demo_actions(tenant: Tenant, bot: Bot, demo_port: int) -> None:
    """The worked example of actions: look up an order (an endpoint the demo host page process
    serves, `/api/orders/<id>`) and capture a lead. Only created when missing: an owner's
    edits stay."""
    from chatbot.tools.actions import BUILTINS
    from chatbot.tools.models import Action, ActionKind

    find_order, _ = Action.objects.get_or_create(
        tenant=tenant,
        name="find_order",
        defaults={
            "kind": ActionKind.HTTP,
            "title": "Looking up your order",
            "description": "Look up a Demo Company order by its number (like D-1001) and tell "
            "the visitor its status and delivery date.",
            "parameters": {
                "type": "object",
                "properties": {
                    "order_id": {"type": "string", "description": "Order number, like D-1001"}
                },
                "required": ["order_id"],
            },
            "url": f"http://127.0.0.1:{demo_port}/api/orders/{{order_id}}",
            "method": "GET",
            "timeout_seconds": 5,
        },
    )
    lead, _ = Action.objects.get_or_create(
        tenant=tenant,
        name=BUILTINS[ActionKind.CAPTURE_LEAD]["name"],
        defaults={"kind": ActionKind.CAPTURE_LEAD, **BUILTINS[ActionKind.CAPTURE_LEAD]},
    )
    for action in (find_order, lead):
        action.bots.add(bot)
