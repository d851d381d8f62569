"""The profile page: display name and avatar (what visitors see), language, notifications."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from chatbot.conversations import takeover
from chatbot.conversations.models import Message, Role
from chatbot.conversations.payloads import message_payload
from chatbot.profiles.models import Profile
from chatbot.tenants.models import User
from tests.inbox.helpers import chat, make_bot

pytestmark = pytest.mark.django_db


def picture(fmt: str = "JPEG", size: tuple[int, int] = (400, 250)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, "#d9480f").save(out, fmt)
    return out.getvalue()


def save(client: Client, **fields: Any) -> Any:
    data = {"name": "", "language": "", "notify_browser": "on", **fields}
    return client.post("/accounts/profile/", data)


def test_a_member_sets_a_display_name_and_avatar_that_visitors_see(
    client_for: Any, charlie: User, acme: Any
) -> None:
    client = client_for(charlie)
    assert client.get("/accounts/profile/").status_code == 200
    upload = SimpleUploadedFile("me.jpg", picture(), content_type="image/jpeg")
    response = save(client, name="Charlie Brown", avatar_file=upload)
    assert response.status_code == 302
    charlie.refresh_from_db()
    assert charlie.display_name == "Charlie Brown"
    profile = Profile.objects.get(user=charlie)
    with Image.open(io.BytesIO(bytes(profile.avatar))) as image:
        assert (image.format, image.size) == ("PNG", (128, 128))

    # The agent's messages carry the name and the avatar's public URL.
    conversation = chat(make_bot(acme, "Helper"), "Hi", reply=None)
    takeover.agent_reply(conversation, charlie, "Hello!")
    payload = message_payload(Message.objects.get(conversation=conversation, role=Role.AGENT))
    assert payload["author"] == "Charlie Brown"
    avatar = Client().get(payload["author_avatar"])  # anonymous: the visitor's frame
    assert avatar.status_code == 200 and avatar["Content-Type"] == "image/png"
    assert avatar["X-Content-Type-Options"] == "nosniff"
    assert "immutable" in avatar["Cache-Control"]

    # A new picture gets a new URL; removing it leaves none and the old URL is gone.
    old = payload["author_avatar"]
    save(client, name="Charlie Brown", remove_avatar="on")
    assert (
        message_payload(Message.objects.get(conversation=conversation, role=Role.AGENT))[
            "author_avatar"
        ]
        is None
    )
    assert Client().get(old).status_code == 404


def test_a_file_that_is_not_a_picture_is_refused(client_for: Any, charlie: User) -> None:
    upload = SimpleUploadedFile("me.png", b"<svg onload=alert(1)>", content_type="image/png")
    response = save(client_for(charlie), avatar_file=upload)
    assert response.status_code == 400
    assert not Profile.objects.filter(user=charlie).exclude(avatar_id="").exists()


def test_notification_settings_reach_the_dashboard_scripts(client_for: Any, charlie: User) -> None:
    client = client_for(charlie)
    page = client.get("/dashboard/").content.decode()
    # The defaults: browser notifications on, sound off.
    assert 'data-notify-browser="on"' in page and 'data-notify-sound="off"' in page
    save(client, notify_browser="", notify_sound="on")
    page = client.get("/dashboard/").content.decode()
    assert 'data-notify-browser="off"' in page and 'data-notify-sound="on"' in page
    assert f'data-user-id="{charlie.pk}"' in page


def test_the_profile_page_needs_a_login(client: Client) -> None:
    assert client.get("/accounts/profile/").status_code == 302


def test_the_inbox_entry_counts_waiting_visitors(client_for: Any, charlie: User, acme: Any) -> None:
    client = client_for(charlie)
    assert client.get("/conversations/waiting.json").json() == {"waiting": 0}
    chat(make_bot(acme, "Helper"), "Can I talk to a person?", reply=None)
    assert client.get("/conversations/waiting.json").json() == {"waiting": 1}
    page = client.get("/dashboard/").content.decode()
    assert 'data-nav-waiting="1"' in page


def test_the_workspace_chooses_how_visitors_see_its_team(
    client_for: Any, alice: User, charlie: User, acme: Any
) -> None:
    from chatbot.profiles.actions import update_profile

    update_profile(charlie, name="Charlie Brown", avatar=picture(), remove_avatar=False)
    conversation = chat(make_bot(acme, "Helper"), "Hi", reply=None)
    takeover.agent_reply(conversation, charlie, "Hello!")

    def seen() -> tuple[str, bool]:
        rows = Message.objects.filter(conversation=conversation).order_by("seq")
        joined, reply = (message_payload(m) for m in rows if m.role in (Role.SYSTEM, Role.AGENT))
        assert joined["author"] == reply["author"]
        return reply["author"], reply["author_avatar"] is not None

    assert seen() == ("Charlie Brown", True)
    client = client_for(alice)
    page = client.get("/dashboard/settings/").content.decode()
    assert "How visitors see your team" in page
    for policy, expected in (("first", ("Charlie", True)), ("team", ("Acme team", False))):
        response = client.post(
            "/dashboard/settings/", {"section": "agent_names", "agent_names-agent_names": policy}
        )
        assert response.status_code in (200, 302), response.content.decode()[:300]
        assert seen() == expected
    # Agents in the dashboard still see who answered.
    assert (
        "Charlie Brown" in client.get(f"/conversations/{conversation.public_id}/").content.decode()
    )
