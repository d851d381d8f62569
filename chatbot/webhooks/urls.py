from django.urls import URLPattern, URLResolver, path

from . import views

app_name = "webhooks"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.webhook_list, name="list"),
    path("<str:webhook_id>/", views.webhook_detail, name="detail"),
    path("<str:webhook_id>/toggle/", views.webhook_toggle, name="toggle"),
    path("<str:webhook_id>/rotate/", views.webhook_rotate, name="rotate"),
    path("<str:webhook_id>/delete/", views.webhook_delete, name="delete"),
    path(
        "<str:webhook_id>/deliveries/<str:delivery_id>/send-again/",
        views.delivery_send_again,
        name="send_again",
    ),
]
