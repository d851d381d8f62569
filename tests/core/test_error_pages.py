"""Styled 404 and 500 pages (Parley's layout, no request or database needed for the 500)."""

from __future__ import annotations

import pytest
from django.test import Client, RequestFactory
from django.views.defaults import server_error

from chatbot.tenants.models import User


@pytest.mark.django_db
def test_a_missing_page_gets_parleys_404(client: Client) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    body = response.content.decode()
    assert "This page does not exist" in body and "/static/css/parley.css" in body
    assert 'href="/dashboard/"' in body


@pytest.mark.django_db
def test_another_workspaces_id_gets_the_same_styled_404(client_for: object, bob: User) -> None:
    response = client_for(bob).get("/bots/2000000000/")  # type: ignore[operator]
    assert response.status_code == 404
    assert "This page does not exist" in response.content.decode()


def test_the_500_page_renders_without_a_request_context() -> None:
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    body = response.content.decode()
    assert "Something went wrong on our side" in body and "/static/css/parley.css" in body
