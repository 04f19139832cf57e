"""What retention leaves behind: a small marker per purged job, so that its status answers
410 `ERR_JOB_EXPIRED` ("it existed, and it is gone") instead of 404. Imported by
`jobs/models.py`, which registers it in the `jobs` app."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import ApiClient


class PurgedJob(models.Model):
    # Only what answering its status needs: whose it was, and for which user_id.
    job_id = models.UUIDField(primary_key=True)
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="+")
    user_id = models.UUIDField()
    purged_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"purged job {self.job_id}"
