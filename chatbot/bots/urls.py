from django.urls import URLPattern, URLResolver, path

from . import views

app_name = "bots"
urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.bot_list, name="list"),
    path("new", views.bot_create, name="create"),
    path("<int:bot_id>/", views.bot_edit, name="edit"),
    path("<int:bot_id>/rotate-secret", views.bot_rotate_secret, name="rotate_secret"),
    path("<int:bot_id>/delete", views.bot_delete, name="delete"),
]
