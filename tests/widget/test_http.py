"""The widget's HTTP endpoints: loader, config, frame, session, fallback, attachments."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import Callable

import jwt
import pytest
from django.test import AsyncClient, Client
from PIL import Image

from chatbot.bots.models import Bot
from chatbot.conversations import actions
from chatbot.conversations.models import Attachment, Message, Visitor
from chatbot.tenants.models import User

from .conftest import SHOP, ScriptedModel, session_token

SITE = "http://127.0.0.1:8000"


def post_session(client: Client, body: dict, origin: str | None = SITE):
    headers = {"HTTP_ORIGIN": origin} if origin else {}
    return client.post(
        "/widget/api/session", json.dumps(body), content_type="application/json", **headers
    )


def identity_token(bot: Bot, **claims: object) -> str:
    payload = {
        "sub": "user-42",
        "name": "Dana",
        "email": "dana@shop.test",
        "exp": time.time() + 600,
    }
    payload.update(claims)
    return jwt.encode(payload, bot.identity_secret, algorithm="HS256")


class TestLoader:
    def test_it_serves_the_built_loader_with_a_short_cache_and_an_etag(self, db: None) -> None:
        client = Client()
        response = client.get("/widget.js")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/javascript")
        assert response["Cache-Control"] == "public, max-age=300"
        etag = response["ETag"]
        again = client.get("/widget.js", HTTP_IF_NONE_MATCH=etag)
        assert again.status_code == 304 and again.content == b""

    def test_gzip_is_served_and_fits_the_budget(self, db: None) -> None:
        response = Client().get("/widget.js", HTTP_ACCEPT_ENCODING="gzip, br")
        assert response["Content-Encoding"] == "gzip"
        assert len(response.content) <= 3000


class TestConfig:
    def test_an_allowed_origin_gets_the_config_with_cors(self, acme_bot: Bot) -> None:
        response = Client().get(f"/widget/config/{acme_bot.public_key}", HTTP_ORIGIN=SHOP)
        assert response.status_code == 200
        assert response["Access-Control-Allow-Origin"] == SHOP
        body = response.json()
        assert body["key"] == acme_bot.public_key
        assert body["appearance"]["position"] == "right"
        assert "identity_secret" not in json.dumps(body)
        assert acme_bot.identity_secret not in response.content.decode()

    @pytest.mark.parametrize("origin", [None, "https://evil.example", SHOP + ".evil.example"])
    def test_any_other_origin_gets_nothing(self, acme_bot: Bot, origin: str | None) -> None:
        headers = {"HTTP_ORIGIN": origin} if origin else {}
        response = Client().get(f"/widget/config/{acme_bot.public_key}", **headers)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "origin_not_allowed"
        assert "Access-Control-Allow-Origin" not in response


class TestFrame:
    def test_frame_ancestors_come_from_the_allowed_origins(self, acme_bot: Bot) -> None:
        acme_bot.allowed_origins = [SHOP, "https://www.acme.test"]
        acme_bot.save()
        response = Client().get(f"/widget/frame/{acme_bot.public_key}")
        assert response.status_code == 200
        csp = response["Content-Security-Policy"]
        assert "frame-ancestors https://shop.acme.test https://www.acme.test" in csp
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "X-Frame-Options" not in response
        config = response.content.decode()
        assert 'id="parley-config"' in config
        assert acme_bot.identity_secret not in config

    def test_a_bot_without_origins_may_be_framed_nowhere(self, acme_bot: Bot) -> None:
        acme_bot.allowed_origins = []
        acme_bot.save()
        response = Client().get(f"/widget/frame/{acme_bot.public_key}")
        assert "frame-ancestors 'none'" in response["Content-Security-Policy"]

    def test_an_unknown_key_is_404(self, db: None) -> None:
        assert Client().get("/widget/frame/pk_missing").status_code == 404

    def test_preview_is_for_the_tenants_managers_only(
        self,
        acme_bot: Bot,
        alice: User,
        bob: User,
        charlie: User,
        client_for: Callable[[User], Client],
    ) -> None:
        url = f"/widget/frame/{acme_bot.public_key}?preview=1"
        response = client_for(alice).get(url)
        assert response.status_code == 200
        assert "frame-ancestors 'self'" in response["Content-Security-Policy"]
        assert client_for(bob).get(url).status_code == 404
        assert client_for(charlie).get(url).status_code == 404
        assert Client().get(url).status_code == 404


class TestSession:
    def test_the_frame_gets_a_token_for_an_allowed_page(self, acme_bot: Bot) -> None:
        response = post_session(Client(), {"bot": acme_bot.public_key, "origin": SHOP})
        assert response.status_code == 200
        body = response.json()
        assert body["expires_in"] == 900
        assert body["visitor"]["verified"] is False
        assert response["Cache-Control"] == "no-store"
        claims = jwt.decode(body["token"], options={"verify_signature": False})
        assert claims["aud"] == SHOP and claims["bot"] == acme_bot.public_key

    def test_the_resume_secret_brings_the_same_visitor_back(self, acme_bot: Bot) -> None:
        client = Client()
        first = post_session(client, {"bot": acme_bot.public_key, "origin": SHOP}).json()
        again = post_session(
            client, {"bot": acme_bot.public_key, "origin": SHOP, "resume": first["resume"]}
        ).json()
        assert again["visitor"]["id"] == first["visitor"]["id"]
        tampered = post_session(
            client,
            {"bot": acme_bot.public_key, "origin": SHOP, "resume": first["resume"] + "x"},
        ).json()
        assert tampered["visitor"]["id"] != first["visitor"]["id"]

    @pytest.mark.parametrize(
        ("page", "request_origin"),
        [
            ("https://evil.example", SITE),  # page not allowed
            (SHOP + ".evil.example", SITE),  # look-alike
            (SHOP, "https://evil.example"),  # called from another page directly
            (SHOP, None),  # no Origin header at all
        ],
    )
    def test_other_origins_are_refused(
        self, acme_bot: Bot, page: str, request_origin: str | None
    ) -> None:
        response = post_session(
            Client(), {"bot": acme_bot.public_key, "origin": page}, origin=request_origin
        )
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "origin_not_allowed"

    def test_a_disabled_bot_is_refused(self, acme_bot: Bot) -> None:
        acme_bot.enabled = False
        acme_bot.save()
        response = post_session(Client(), {"bot": acme_bot.public_key, "origin": SHOP})
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "bot_disabled"

    def test_bad_bodies_are_400(self, acme_bot: Bot) -> None:
        client = Client()
        for raw in ("not json", "[]", json.dumps({"bot": 5, "origin": SHOP}), "[" * 5000):
            response = client.post(
                "/widget/api/session", raw, content_type="application/json", HTTP_ORIGIN=SITE
            )
            assert response.status_code == 400, raw[:20]

    def test_it_is_rate_limited_per_ip(self, acme_bot: Bot, settings: object) -> None:
        settings.WIDGET_RATE_LIMITS = {"session:ip": (2, 60)}  # type: ignore[attr-defined]
        client = Client()
        for _ in range(2):
            assert (
                post_session(client, {"bot": acme_bot.public_key, "origin": SHOP}).status_code
                == 200
            )
        response = post_session(client, {"bot": acme_bot.public_key, "origin": SHOP})
        assert response.status_code == 429
        assert int(response["Retry-After"]) >= 1
        assert response.json()["error"]["code"] == "rate_limited"


class TestIdentity:
    def test_a_valid_identity_gives_the_verified_visitor(self, acme_bot: Bot) -> None:
        client = Client()
        token = identity_token(acme_bot)
        body = post_session(
            client, {"bot": acme_bot.public_key, "origin": SHOP, "identity": token}
        ).json()
        assert body["visitor"] == {**body["visitor"], "verified": True, "name": "Dana"}
        again = post_session(
            client, {"bot": acme_bot.public_key, "origin": SHOP, "identity": token}
        ).json()
        assert again["visitor"]["id"] == body["visitor"]["id"]
        visitor = Visitor.objects.get(public_id=body["visitor"]["id"])
        assert (visitor.external_id, visitor.email) == ("user-42", "dana@shop.test")

    def test_wrong_empty_and_right_length_wrong_signatures_are_refused(self, acme_bot: Bot) -> None:
        good = identity_token(acme_bot)
        head, payload, signature = good.split(".")
        same_length = "A" * len(signature) if signature[0] != "A" else "B" * len(signature)
        candidates = [
            identity_token(acme_bot, exp=time.time() - 120),  # expired
            jwt.encode({"sub": "user-42", "exp": time.time() + 60}, "x" * 40, algorithm="HS256"),
            f"{head}.{payload}.",  # empty signature
            f"{head}.{payload}.{same_length}",
            jwt.encode({"sub": "user-42", "exp": time.time() + 60}, None, algorithm="none"),
            identity_token(acme_bot, exp=time.time() + 3 * 86400),  # lives too long
            identity_token(acme_bot, sub=""),
        ]
        for token in candidates:
            response = post_session(
                Client(), {"bot": acme_bot.public_key, "origin": SHOP, "identity": token}
            )
            assert response.status_code == 401, token
            assert response.json()["error"]["code"] == "bad_identity"
        assert not Visitor.objects.filter(verified=True).exists()

    def test_a_resume_secret_never_reaches_a_verified_visitor(self, acme_bot: Bot) -> None:
        client = Client()
        verified = post_session(
            client,
            {"bot": acme_bot.public_key, "origin": SHOP, "identity": identity_token(acme_bot)},
        ).json()
        anonymous = post_session(
            client, {"bot": acme_bot.public_key, "origin": SHOP, "resume": verified["resume"]}
        ).json()
        assert anonymous["visitor"]["id"] != verified["visitor"]["id"]
        assert anonymous["visitor"]["verified"] is False

    def test_an_anonymous_visitor_is_not_merged_into_the_verified_one(self, acme_bot: Bot) -> None:
        client = Client()
        anonymous = post_session(client, {"bot": acme_bot.public_key, "origin": SHOP}).json()
        visitor = Visitor.objects.get(public_id=anonymous["visitor"]["id"])
        actions.receive_visitor_message(visitor, None, client_id="a1", text="secret question")
        verified = post_session(
            client,
            {
                "bot": acme_bot.public_key,
                "origin": SHOP,
                "resume": anonymous["resume"],
                "identity": identity_token(acme_bot),
            },
        ).json()
        assert verified["visitor"]["id"] != anonymous["visitor"]["id"]
        assert not Message.objects.filter(
            conversation__visitor__public_id=verified["visitor"]["id"]
        ).exists()


def small_png(size: tuple[int, int] = (32, 24), mode: str = "RGBA") -> bytes:
    buffer = io.BytesIO()
    colour = {"RGBA": (200, 10, 10, 255), "RGB": (200, 10, 10), "L": 200}[mode]
    image = Image.new(mode, size, colour)
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.django_db(transaction=True)
class TestFallback:
    async def test_send_then_events_stream_the_reply(
        self, acme_bot: Bot, model: ScriptedModel
    ) -> None:
        from asgiref.sync import sync_to_async

        token, _ = await sync_to_async(session_token)(acme_bot)
        client = AsyncClient()
        auth = {"Authorization": f"Bearer {token}", "Origin": SITE}
        response = await client.post(
            "/widget/api/send",
            json.dumps({"type": "message.send", "client_id": "h1", "text": "Hello"}),
            content_type="application/json",
            headers=auth,
        )
        assert response.status_code == 200, response.content
        ack, message = response.json()["events"]
        assert ack["type"] == "ack" and ack["seq"] == 1
        assert message["message"]["text"] == "Hello"
        await actions.wait_for_replies()

        again = await client.post(
            "/widget/api/send",
            json.dumps({"type": "message.send", "client_id": "h1", "text": "Hello"}),
            content_type="application/json",
            headers=auth,
        )
        assert again.json()["events"][0]["duplicate"] is True

        stream = await client.get(
            f"/widget/api/events?conversation={ack['conversation']}&after=0",
            headers={"Accept": "text/event-stream", "Authorization": auth["Authorization"]},
        )
        assert stream["Content-Type"] == "text/event-stream"
        chunks: list[str] = []
        iterator = stream.streaming_content.__aiter__()  # type: ignore[union-attr]
        while sum(c.count("event: message") for c in chunks) < 2:
            chunk = await asyncio.wait_for(iterator.__anext__(), 5)
            chunks.append(chunk.decode() if isinstance(chunk, bytes) else chunk)
        await iterator.aclose()
        text = "".join(chunks)
        assert text.startswith("event: ready\n")
        assert "id: 1\n" in text and "id: 2\n" in text
        assert "Hello from Acme!" in text

    async def test_fallback_refuses_a_foreign_origin_and_missing_tokens(
        self, acme_bot: Bot
    ) -> None:
        from asgiref.sync import sync_to_async

        token, _ = await sync_to_async(session_token)(acme_bot)
        body = json.dumps({"type": "message.send", "client_id": "h1", "text": "Hello"})
        client = AsyncClient()
        foreign = {"Authorization": f"Bearer {token}", "Origin": "https://evil.example"}
        response = await client.post(
            "/widget/api/send", body, content_type="application/json", headers=foreign
        )
        assert response.status_code == 403
        response = await client.post(
            "/widget/api/send", body, content_type="application/json", headers={"Origin": SITE}
        )
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "bad_token"
        response = await client.get("/widget/api/events")
        assert response.status_code == 401


@pytest.mark.django_db(transaction=True)
class TestFallbackLimits:
    async def test_an_over_limit_send_is_429_with_retry_after(
        self, acme_bot: Bot, model: ScriptedModel, settings: object
    ) -> None:
        from asgiref.sync import sync_to_async

        settings.WIDGET_RATE_LIMITS = {"send:visitor": (1, 60)}  # type: ignore[attr-defined]
        token, _ = await sync_to_async(session_token)(acme_bot)
        auth = {"Authorization": f"Bearer {token}", "Origin": SITE}
        client = AsyncClient()
        statuses = []
        for n in range(2):
            response = await client.post(
                "/widget/api/send",
                json.dumps({"type": "message.send", "client_id": f"l{n}", "text": "hi"}),
                content_type="application/json",
                headers=auth,
            )
            statuses.append(response.status_code)
        assert statuses == [200, 429]
        assert int(response["Retry-After"]) >= 1
        assert response.json()["error"]["code"] == "rate_limited"
        await actions.wait_for_replies()


class TestAttachments:
    @pytest.fixture
    def images_on(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from widget import views

        monkeypatch.setattr(views, "route_accepts_images", lambda bot: True)

    def upload(self, bot: Bot, data: bytes, name: str = "photo.png"):
        token, _ = session_token(bot)
        return Client().post(
            "/widget/api/attachments",
            {"file": _named(data, name)},
            headers={"Authorization": f"Bearer {token}", "Origin": SITE},
        )

    def test_an_image_is_re_encoded_and_served_inert(
        self, acme_bot: Bot, images_on: None, settings: object, tmp_path: object
    ) -> None:
        settings.MEDIA_ROOT = str(tmp_path)  # type: ignore[attr-defined]
        response = self.upload(acme_bot, small_png())
        assert response.status_code == 201, response.content
        body = response.json()
        assert (body["width"], body["height"], body["content_type"]) == (32, 24, "image/png")
        row = Attachment.objects.get(public_id=body["id"])
        assert row.stored_name.startswith("widget-attachments/") and "photo" not in row.stored_name
        served = Client().get(body["url"])
        assert served.status_code == 200
        assert served["X-Content-Type-Options"] == "nosniff"
        assert served["Content-Disposition"].startswith("attachment")
        assert "default-src 'none'" in served["Content-Security-Policy"]
        assert Client().get(body["url"] + "x").status_code == 404

    @pytest.mark.parametrize(
        ("data", "code"),
        [
            (b"", "bad_request"),
            (
                b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
                "unsupported_media",
            ),
            (b"GIF89a<html><script>alert(1)</script></html>", "unsupported_media"),
            (b"\x89PNG\r\n\x1a\nnot really", "unsupported_media"),
        ],
    )
    def test_non_images_are_refused(
        self,
        acme_bot: Bot,
        images_on: None,
        data: bytes,
        code: str,
        settings: object,
        tmp_path: object,
    ) -> None:
        settings.MEDIA_ROOT = str(tmp_path)  # type: ignore[attr-defined]
        response = self.upload(acme_bot, data, name="../../etc/passwd.png")
        assert response.status_code in (400, 415), response.content
        assert response.json()["error"]["code"] == code
        assert not Attachment.objects.exists()

    def test_a_decompression_bomb_is_refused(
        self, acme_bot: Bot, images_on: None, settings: object, tmp_path: object
    ) -> None:
        settings.MEDIA_ROOT = str(tmp_path)  # type: ignore[attr-defined]
        bomb = small_png((10_000, 10_000), mode="L")  # 100 Mpx of one colour: a tiny file
        assert len(bomb) < 200_000
        response = self.upload(acme_bot, bomb)
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "too_large"

    def test_metadata_is_dropped(
        self, acme_bot: Bot, images_on: None, settings: object, tmp_path: object
    ) -> None:
        settings.MEDIA_ROOT = str(tmp_path)  # type: ignore[attr-defined]
        buffer = io.BytesIO()
        exif = Image.Exif()
        exif[0x010E] = "GPS: secret place"  # ImageDescription
        Image.new("RGB", (40, 40), (1, 2, 3)).save(buffer, format="JPEG", exif=exif)
        response = self.upload(acme_bot, buffer.getvalue(), name="me.jpg")
        assert response.status_code == 201
        row = Attachment.objects.get(public_id=response.json()["id"])
        from django.core.files.storage import default_storage

        stored = default_storage.open(row.stored_name).read()
        assert b"secret place" not in stored

    def test_bots_whose_route_takes_no_images_refuse_uploads(self, acme_bot: Bot) -> None:
        response = self.upload(acme_bot, small_png())
        assert response.status_code == 415
        assert response.json()["error"]["code"] == "images_not_supported"


def _named(data: bytes, name: str) -> io.BytesIO:
    handle = io.BytesIO(data)
    handle.name = name
    return handle
