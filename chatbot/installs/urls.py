from django.urls import URLPattern, URLResolver, path

from . import views

app_name = "installs"
urlpatterns: list[URLPattern | URLResolver] = [
    path("<int:bot_id>/check", views.check, name="check"),
    path("<int:bot_id>/guides", views.guides, name="guides"),
]
