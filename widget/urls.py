from django.urls import URLPattern, URLResolver

app_name = "widget"
urlpatterns: list[URLPattern | URLResolver] = []
