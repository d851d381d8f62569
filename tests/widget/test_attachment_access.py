"""Attachment capabilities: signed URLs expire, and one visitor's upload cannot be used by
another (neither sent in their message nor reached through a forged name)."""

from __future__ import annotations

import io
import threading
import time
from typing import Any
from unittest import mock

import pytest
from channels.db import database_sync_to_async
from django.core import signing
from django.test import Client

from chatbot.bots.models import Bot
from chatbot.conversations import actions
from chatbot.conversations.models import Attachment, Message
from chatbot.conversations.payloads import ATTACHMENT_SALT, attachment_url
from widget.views import ATTACHMENT_URL_MAX_AGE

from .conftest import ScriptedModel, receive, session_token
from .test_consumer import hello, make_token
from .test_http import SITE, small_png


@pytest.fixture
def media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = str(tmp_path)


def upload_for(bot: Bot) -> Attachment:
    return actions.store_attachment(actions.open_visitor(bot), small_png())


@pytest.mark.django_db
def test_a_signed_attachment_url_expires(acme_bot: Bot, media: None) -> None:
    url = attachment_url(upload_for(acme_bot))
    assert Client().get(url).status_code == 200
    later = time.time() + ATTACHMENT_URL_MAX_AGE + 60
    with mock.patch("django.core.signing.time.time", return_value=later):
        assert Client().get(url).status_code == 404
    almost = time.time() + ATTACHMENT_URL_MAX_AGE - 60
    with mock.patch("django.core.signing.time.time", return_value=almost):
        assert Client().get(url).status_code == 200


@pytest.mark.django_db
def test_a_name_signed_for_something_else_reaches_no_file(acme_bot: Bot, media: None) -> None:
    attachment = upload_for(acme_bot)
    for forged in (
        signing.dumps(attachment.public_id, salt="parley.widget.session"),  # another salt
        signing.dumps(attachment.public_id, salt=ATTACHMENT_SALT, key="not-the-secret-key"),
        attachment.public_id,  # the bare id
        attachment.stored_name.rsplit("/", 1)[1],  # the stored file's name
    ):
        assert Client().get(f"/widget/attachments/{forged}").status_code == 404


@pytest.mark.django_db(transaction=True)
async def test_another_visitors_attachment_ids_are_refused_in_message_send(
    acme_bot: Bot, media: None, model: ScriptedModel
) -> None:
    theirs = await database_sync_to_async(upload_for)(acme_bot)
    token, _me = await make_token(acme_bot)
    comm, _ready = await hello(acme_bot, token)
    await comm.send_json_to(
        {
            "type": "message.send",
            "client_id": "c1",
            "text": "look",
            "attachment_ids": [theirs.public_id],
        }
    )
    error = await receive(comm)
    assert (error["type"], error["code"]) == ("error", "not_found"), error
    await comm.disconnect()
    refreshed = await database_sync_to_async(Attachment.objects.get)(pk=theirs.pk)
    assert refreshed.message_id is None  # still unclaimed, still the other visitor's
    assert not await database_sync_to_async(Message.objects.exists)()
    assert model.calls == 0


@pytest.mark.django_db
def test_images_are_re_encoded_in_the_heavy_work_pool(
    acme_bot: Bot, media: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from widget import views

    threads: list[str] = []
    real = views.clean_image

    def recording(data: bytes) -> Any:
        threads.append(threading.current_thread().name)
        return real(data)

    monkeypatch.setattr(views, "clean_image", recording)
    monkeypatch.setattr(views, "route_accepts_images", lambda bot: True)
    token, _visitor = session_token(acme_bot)
    image = io.BytesIO(small_png())
    image.name = "p.png"
    response = Client().post(
        "/widget/api/attachments",
        {"file": image},
        headers={"Authorization": f"Bearer {token}", "Origin": SITE},
    )
    assert response.status_code == 201, response.content
    # Neither the event loop nor the thread that serves every tenant's database calls.
    assert len(threads) == 1 and threads[0].startswith("parley-heavy")
