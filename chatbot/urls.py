from django.contrib import admin
from django.urls import include, path

from chatbot.core import health, views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("demo", views.demo, name="demo"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", views.metrics, name="metrics"),
    path("accounts/", include("allauth.urls")),
    path("dashboard/", include("chatbot.dashboard.urls")),
    path("tenants/", include("chatbot.tenants.urls")),
    path("bots/", include("chatbot.bots.urls")),
    path("conversations/", include("chatbot.conversations.urls")),
    path("knowledge/", include("chatbot.knowledge.urls")),
    path("actions/", include("chatbot.tools.urls")),
    path("llm/", include("chatbot.llm.urls")),
    path("api/", include("chatbot.api.urls")),
    path("", include("widget.urls")),
    path("admin/", admin.site.urls),
]
