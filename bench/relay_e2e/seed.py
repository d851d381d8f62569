"""Seeding for bench/relay_e2e, run in a subprocess with the same environment as `serve`.

python bench/relay_e2e/seed.py setup --origin https://shop.bench.test
    migrate, then a tenant, its owner and a bot allowed on that origin, and the declared
    model endpoints synced (LLM_ENDPOINTS); prints {"bot": "<public key>"}
python bench/relay_e2e/seed.py tokens --bot pk_... --origin ... --count 10000
    that many new visitors of the bot and a session token for each, one JSON list;
    what a crowd of returning visitors' frames hold when they all reconnect at once
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from chatbot.bots.actions import create_bot  # noqa: E402
from chatbot.bots.models import Bot  # noqa: E402
from chatbot.conversations.models import Visitor  # noqa: E402
from chatbot.llm import registry  # noqa: E402
from chatbot.tenants.actions import create_tenant  # noqa: E402
from chatbot.tenants.models import User  # noqa: E402
from widget.tokens import issue_session_token  # noqa: E402


def setup(origin: str) -> dict[str, str]:
    call_command("migrate", verbosity=0)
    owner = User.objects.create_user("owner@bench.test", "bench-password-123")
    tenant = create_tenant("Bench", owner)
    bot = create_bot(tenant, owner, name="Bench bot", allowed_origins=[origin])
    endpoints = registry.operator_endpoints()
    if not endpoints:
        raise SystemExit("seed: no model endpoint declared (LLM_ENDPOINTS)")
    return {"bot": bot.public_key}


def tokens(bot_key: str, origin: str, count: int) -> list[str]:
    bot = Bot.objects.get(public_key=bot_key)
    visitors = Visitor.objects.bulk_create(Visitor(bot=bot) for _ in range(count))
    return [issue_session_token(bot, v.public_id, origin)[0] for v in visitors]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("setup")
    one.add_argument("--origin", required=True)
    many = sub.add_parser("tokens")
    many.add_argument("--bot", required=True)
    many.add_argument("--origin", required=True)
    many.add_argument("--count", type=int, required=True)
    args = parser.parse_args()
    if args.command == "setup":
        print(json.dumps(setup(args.origin)))
    else:
        print(json.dumps(tokens(args.bot, args.origin, args.count)))


if __name__ == "__main__":
    main()
