from django.contrib import admin
from django.urls import include, path

from chatbot.core import health, views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("demo", views.demo, name="demo"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    # /accounts/profile/ (ours) before allauth's /accounts/ pages.
    path("", include("chatbot.profiles.urls")),
    path("accounts/", include("allauth.urls")),
    path("dashboard/", include("chatbot.dashboard.urls")),
    path("tenants/", include("chatbot.tenants.urls")),
    path("bots/", include("chatbot.bots.urls")),
    path("installs/", include("chatbot.installs.urls")),
    path("conversations/", include("chatbot.conversations.urls")),
    path("knowledge/", include("chatbot.knowledge.urls")),
    path("actions/", include("chatbot.tools.urls")),
    path("llm/", include("chatbot.llm.urls")),
    path("api/", include("chatbot.api.urls")),
    path("webhooks/", include("chatbot.webhooks.urls")),
    path("analytics/", include("chatbot.analytics.urls")),
    path("usage/", include("chatbot.billing.urls")),
    path("operator/", include("chatbot.billing.operator_urls")),
    path("", include("widget.urls")),
    path("admin/", admin.site.urls),
]
