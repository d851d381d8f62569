"""Stored files go with their source, however the source is deleted (by a manager, or with its
bot or its whole tenant): after the commit, so a rolled-back delete keeps its file."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import Source


@receiver(post_delete, sender=Source)
def delete_stored_file(sender: type[Source], instance: Source, **kwargs: Any) -> None:
    if not instance.file:
        return
    storage, name = instance.file.storage, instance.file.name
    if name:
        transaction.on_commit(lambda: storage.delete(name))
