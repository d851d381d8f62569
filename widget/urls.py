from django.urls import URLPattern, URLResolver, path

from . import views

app_name = "widget"
urlpatterns: list[URLPattern | URLResolver] = [
    path("widget.js", views.loader_js, name="loader"),
    path("widget/config/<str:key>", views.bot_config, name="config"),
    path("widget/frame/<str:key>", views.frame, name="frame"),
    path("widget/api/session", views.session, name="session"),
    path("widget/api/send", views.send, name="send"),
    path("widget/api/events", views.events, name="events"),
    path("widget/api/attachments", views.upload, name="upload"),
    path("widget/attachments/<str:signed>", views.attachment, name="attachment"),
]
