"""Seeding for bench/tenant_flood, run in a subprocess with the same environment as `serve`.

python bench/tenant_flood/seed.py --origin https://shop.bench.test --visitors 40
    migrate, then two tenants ("Flood" and "Quiet"), each with its owner and a bot allowed on
    that origin; prints {"flood": {"bot", "tokens"}, "quiet": {"bot", "tokens"}} with a
    session token for each of `visitors` new visitors of each bot
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
from chatbot.conversations.models import Visitor  # noqa: E402
from chatbot.llm import registry  # noqa: E402
from chatbot.tenants.actions import create_tenant  # noqa: E402
from chatbot.tenants.models import User  # noqa: E402
from widget.tokens import issue_session_token  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--origin", required=True)
    parser.add_argument("--visitors", type=int, required=True)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    if not registry.operator_endpoints():
        raise SystemExit("seed: no model endpoint declared (LLM_ENDPOINTS)")
    out = {}
    for name in ("flood", "quiet"):
        owner = User.objects.create_user(f"owner@{name}.bench.test", "bench-password-123")
        tenant = create_tenant(name.title(), owner)
        bot = create_bot(tenant, owner, name=f"{name} bot", allowed_origins=[args.origin])
        visitors = Visitor.objects.bulk_create(Visitor(bot=bot) for _ in range(args.visitors))
        tokens = [issue_session_token(bot, v.public_id, args.origin)[0] for v in visitors]
        out[name] = {"bot": bot.public_key, "tokens": tokens}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
