"""Building conversations for inbox tests with the real actions (as the widget would)."""

from __future__ import annotations

import itertools
from typing import Any

from chatbot.bots.models import Bot
from chatbot.conversations import actions
from chatbot.conversations.models import Conversation, Message, MessageStatus, Visitor
from chatbot.tenants.models import Tenant

_client_ids = itertools.count(1)


def make_bot(tenant: Tenant, name: str = "Helper") -> Bot:
    return Bot.objects.create(tenant=tenant, name=name, allowed_origins=["https://shop.test"])


def chat(
    bot: Bot,
    *texts: str,
    visitor: Visitor | None = None,
    reply: str | None = "Sure, happy to help.",
    **visitor_fields: Any,
) -> Conversation:
    """A visitor writes `texts` (one message each); the bot answers each with `reply`."""
    visitor = visitor or actions.open_visitor(bot)
    if visitor_fields:
        Visitor.objects.filter(pk=visitor.pk).update(**visitor_fields)
    conversation: Conversation | None = None
    for text in texts:
        received = actions.receive_visitor_message(
            visitor, conversation, client_id=f"m{next(_client_ids)}", text=text
        )
        conversation = received.conversation
        if reply is not None and received.reply_wanted:
            message = actions.create_reply_message(conversation.pk)
            assert message is not None
            actions.finish_reply(
                message.pk,
                text=reply,
                status=MessageStatus.COMPLETE,
                model="tiny-llama",
                tokens_in=12,
                tokens_out=7,
                ttft_ms=40,
                duration_ms=90,
            )
    assert conversation is not None
    conversation.refresh_from_db()
    return conversation


def transcript(conversation: Conversation) -> list[tuple[str, str]]:
    return list(
        Message.objects.filter(conversation=conversation)
        .order_by("seq")
        .values_list("role", "text")
    )
