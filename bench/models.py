"""The baseline's table: what one minimal INSERT writes."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class BaselineRow(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    # Declared, not implied: the app is installed only with BENCH_ENDPOINTS=1, so the type
    # checker (which loads the default settings) does not see it as a model of the project.
    objects: models.Manager[BaselineRow] = models.Manager()

    def __str__(self) -> str:
        return str(self.id)
