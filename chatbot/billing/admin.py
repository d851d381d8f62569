from django.contrib import admin

from .models import Plan


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "monthly_messages",
        "monthly_tokens",
        "max_bots",
        "max_seats",
        "max_knowledge_mb",
        "is_default",
    )
