from django.urls import URLPattern, URLResolver, path

from . import views

app_name = "profiles"
urlpatterns: list[URLPattern | URLResolver] = [
    path("accounts/profile/", views.profile, name="profile"),
    path("avatars/<str:avatar_id>.png", views.avatar, name="avatar"),
]
