from django.urls import URLPattern, URLResolver

app_name = "llm"
urlpatterns: list[URLPattern | URLResolver] = []
