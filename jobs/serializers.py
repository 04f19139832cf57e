"""Input and output shapes of the jobs API, one set per endpoint."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.functional import cached_property
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail

from flickr.client import RESERVED_PARAMS
from jobs.callbacks import callback_url_problem
from jobs.models import Job, JobState, Priority, Target
from jobs.pagination import PAGINATED_METHODS

METHOD_RE = re.compile(r"^flickr(\.[A-Za-z][A-Za-z0-9_]*)+$")
PARAM_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_SCALARS = (str, int, float, bool)


def _required(name: str) -> dict[str, Any]:
    text = f"{name} is required"
    return {"required": text, "blank": text, "null": text}


def _encoded_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def target_of_url(url: str) -> str | None:
    """The target a Flickr endpoint URL names: the configured ones, or Flickr's own."""
    configured = {
        settings.FLICKR_REST_URL.rstrip("/"): Target.REST,
        settings.FLICKR_UPLOAD_URL.rstrip("/"): Target.UPLOAD,
        settings.FLICKR_REPLACE_URL.rstrip("/"): Target.REPLACE,
    }
    clean = url.split("?", 1)[0].rstrip("/")
    if clean in configured:
        return configured[clean]
    parts = urlsplit(clean)
    if parts.scheme in ("http", "https") and (parts.hostname or "").endswith("flickr.com"):
        return {
            "/services/rest": Target.REST,
            "/services/upload": Target.UPLOAD,
            "/services/replace": Target.REPLACE,
        }.get(parts.path)
    return None


# The fields Flickr's upload and replace endpoints take besides the file (FLICKR-API.md §3).
# Anything else is refused here: Flickr signs every field, and a misspelt one comes back as a
# cryptic signature error.
FILE_TARGET_FIELDS = {
    Target.UPLOAD: frozenset(
        {
            "title",
            "description",
            "tags",
            "is_public",
            "is_friend",
            "is_family",
            "safety_level",
            "content_type",
            "hidden",
            "async",
            "dedup_check",
        }
    ),
    Target.REPLACE: frozenset({"photo_id", "async"}),
}


class EnqueueInput(serializers.Serializer):
    """A Flickr call to queue. JSON for REST calls; multipart/form-data with a `photo` part for
    upload and replace (then `params` and `meta` are JSON strings). The serializer's context
    says which the request was: `{"multipart": bool}`."""

    method = serializers.CharField(required=False, allow_blank=True, max_length=100)
    user_id = serializers.CharField(max_length=100, error_messages=_required("user_id"))
    params = serializers.JSONField(required=False, allow_null=True)
    target = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=20)
    url = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=500)
    callback_url = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=2000)
    callback_secret = serializers.CharField(
        required=False, allow_blank=True, allow_null=True, max_length=256, trim_whitespace=False
    )
    meta = serializers.JSONField(required=False, allow_null=True)
    cache = serializers.BooleanField(required=False, allow_null=True, default=None)
    paginate = serializers.BooleanField(required=False, default=False)
    priority = serializers.ChoiceField(
        choices=Priority.choices,
        required=False,
        allow_null=True,
        default=None,
        help_text="high: served before this client's normal calls when the quota is short "
        "(default: high with ?wait, else normal)",
    )
    max_age = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=7 * 86400)
    photo = serializers.FileField(required=False, allow_empty_file=True, use_url=False)

    _fields_per_thread = threading.local()

    @cached_property
    def fields(self) -> Any:
        """The declared fields, bound once per thread. DRF deep-copies every declared field for
        each new serializer, which was the largest single cost of validating an enqueue's body
        (and the batch endpoint makes one serializer per call). These fields keep nothing of a
        request: the data, the errors and the context are the serializer's, and the `validate_*`
        methods run on it. So a thread's serializers share one set, bound to an empty template
        serializer (never to a request's, which would keep its body alive), and a thread never
        shares it with another."""
        fields = getattr(self._fields_per_thread, "fields", None)
        if fields is None:
            template = EnqueueInput(context={"multipart": False})
            fields = self._fields_per_thread.fields = super(EnqueueInput, template).fields
        return fields

    def validate_method(self, value: str) -> str:
        if value and not METHOD_RE.match(value):
            raise serializers.ValidationError(
                "method must be a Flickr method name such as flickr.photos.search"
            )
        return value

    def validate_params(self, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise serializers.ValidationError("params must be object")
        problems = []
        for key, item in value.items():
            if not PARAM_NAME_RE.match(key):
                problems.append(f"params key {key[:64]!r} is not a Flickr argument name")
            elif key in RESERVED_PARAMS or key.startswith("oauth_"):
                problems.append(f"params.{key} is set by the hub and cannot be sent")
            elif not (
                item is None
                or isinstance(item, _SCALARS)
                or (isinstance(item, list) and all(isinstance(v, _SCALARS) for v in item))
            ):
                problems.append(f"params.{key} must be a string, number, boolean or a list of those")
        if _encoded_size(value) > settings.JOB_PARAMS_MAX_BYTES:
            problems.append(f"params must be at most {settings.JOB_PARAMS_MAX_BYTES} bytes as JSON")
        if problems:
            raise serializers.ValidationError(problems)
        return value

    def validate_target(self, value: str | None) -> str:
        if not value:
            return ""
        if value not in Target.values:
            raise serializers.ValidationError("target must be rest|upload|replace")
        return value

    def validate_url(self, value: str | None) -> str:
        if not value:
            return ""
        if target_of_url(value) is None:
            raise serializers.ValidationError(
                f"url must be a Flickr REST, upload or replace endpoint (e.g. {settings.FLICKR_REST_URL})"
            )
        return value

    def validate_callback_url(self, value: str | None) -> str:
        if not value:
            return ""
        problem = callback_url_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def validate_meta(self, value: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise serializers.ValidationError("meta must be object")
        if _encoded_size(value) > settings.JOB_META_MAX_BYTES:
            raise serializers.ValidationError(
                f"meta must be at most {settings.JOB_META_MAX_BYTES} bytes as JSON"
            )
        return value

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as exc:
            # `method` is required for REST calls only, so its absence is judged after the
            # fields; report it with the fields' problems so every problem is listed at once.
            if (
                isinstance(exc.detail, dict)
                and isinstance(data, Mapping)
                and "method" not in exc.detail
                and not data.get("method")
                and data.get("target") not in (Target.UPLOAD, Target.REPLACE)
            ):
                exc.detail["method"] = [ErrorDetail("method is required", code="required")]
            raise

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        target = attrs.get("target") or ""
        url_target = target_of_url(attrs["url"]) if attrs.get("url") else None
        if target and url_target and target != url_target:
            raise serializers.ValidationError(f"target {target!r} and url (a {url_target} endpoint) disagree")
        attrs["target"] = target or url_target or Target.REST
        # cache: false → no cached answer (and no sharing an identical call in flight);
        # max_age → a cached answer at most that many seconds old; neither → CACHE_TTL_SECONDS.
        attrs["cache_max_age"] = 0 if attrs.pop("cache", None) is False else attrs.pop("max_age", None)
        attrs.pop("max_age", None)
        if attrs["target"] == Target.REST:
            return self._validate_rest(attrs)
        if attrs.get("paginate"):
            raise serializers.ValidationError("paginate is for REST list methods, not upload or replace")
        return self._validate_file_target(attrs)

    def _validate_rest(self, attrs: dict[str, Any]) -> dict[str, Any]:
        problems = []
        if not attrs.get("method"):
            problems.append("method is required")
        if attrs.get("paginate"):
            if attrs.get("method") not in PAGINATED_METHODS:
                problems.append("paginate works with list methods: " + ", ".join(sorted(PAGINATED_METHODS)))
            if "page" in (attrs.get("params") or {}):
                problems.append("paginate walks every page itself: leave params.page out")
        if attrs.get("photo") is not None:
            problems.append("a 'photo' file is sent only with target upload or replace")
        if problems:
            raise serializers.ValidationError(problems)
        return attrs

    def _validate_file_target(self, attrs: dict[str, Any]) -> dict[str, Any]:
        target = attrs["target"]
        if not self.context.get("multipart"):
            raise serializers.ValidationError(
                f"target {target} carries a file: send it as multipart/form-data with a 'photo' part"
            )
        problems = []
        photo = attrs.get("photo")
        if photo is None:
            problems.append(f"photo is required: target {target} needs the file as a 'photo' part")
        elif not photo.size:
            problems.append("photo is empty (0 bytes)")
        params = attrs.get("params") or {}
        allowed = FILE_TARGET_FIELDS[target]
        unknown = sorted(set(params) - allowed)
        if unknown:
            problems.append(
                f"params {', '.join(unknown)} are not {target} fields; "
                f"{target} takes {', '.join(sorted(allowed))}"
            )
        if target == Target.REPLACE and not str(params.get("photo_id") or "").isdigit():
            problems.append("params.photo_id is required for replace: the id of the photo to replace")
        if problems:
            raise serializers.ValidationError(problems)
        # The job is named after its endpoint: upload and replace are not REST methods.
        attrs["method"] = str(target)
        return attrs


class JobStatusInput(serializers.Serializer):
    job_id = serializers.CharField(max_length=100)
    user_id = serializers.CharField(max_length=100)


class EnqueueOutput(serializers.Serializer):
    job_id = serializers.UUIDField()
    state = serializers.CharField()
    queue = serializers.CharField()
    status_url = serializers.CharField()


class JobStatusOutput(serializers.Serializer):
    """The original's status fields (id, state, returnvalue, failedReason, queue) and ours."""

    id = serializers.UUIDField()
    state = serializers.ChoiceField(choices=JobState.choices)
    queue = serializers.CharField()
    method = serializers.CharField()
    user_id = serializers.UUIDField()
    target = serializers.CharField()
    attempts = serializers.IntegerField()
    max_attempts = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    returnvalue = serializers.JSONField(required=False)
    failedReason = serializers.CharField(required=False)
    error = serializers.JSONField(required=False)
    next_attempt_at = serializers.DateTimeField(required=False)
    waiting_for = serializers.ChoiceField(choices=["quota", "circuit_open", "coalesced"], required=False)
    finished_at = serializers.DateTimeField(required=False)
    meta = serializers.JSONField(required=False)
    progress = serializers.JSONField(required=False, help_text="paginated walks: pages_done, pages_total")

    @staticmethod
    def of(job: Job) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(job.id),
            "state": job.state,
            "queue": job.queue_name,
            "method": job.method,
            "user_id": str(job.account.user_id),
            "target": job.target,
            "attempts": job.attempts,
            "max_attempts": job.max_attempts,
            "created_at": job.created_at.isoformat(),
            "updated_at": job.updated_at.isoformat(),
        }
        if job.state == JobState.COMPLETED and job.result is not None:
            data["returnvalue"] = job.result
        if job.error and job.state in (JobState.FAILED, JobState.RETRYING):
            data["failedReason"] = job.error.get("message", "")
            data["error"] = job.error
        if job.state == JobState.RETRYING and job.next_attempt_at:
            data["next_attempt_at"] = job.next_attempt_at.isoformat()
        if job.state in (JobState.RETRYING, JobState.QUEUED) and job.wait_reason:
            # Not a failure: the job waits for the quota, an open circuit, or an identical call
            # (a new job parked for quota at enqueue is still `queued`).
            data["waiting_for"] = job.wait_reason
        if job.finished_at:
            data["finished_at"] = job.finished_at.isoformat()
        if job.meta is not None:
            data["meta"] = job.meta
        if job.paginate:
            progress = job.progress or {}
            data["progress"] = {
                "pages_done": progress.get("pages_done", 0),
                "pages_total": progress.get("pages_total"),
            }
        return data


class EnqueueWaitedOutput(JobStatusOutput):
    """Enqueue with `?wait=` when the job ended in time: its status and the enqueue fields."""

    job_id = serializers.UUIDField()
    status_url = serializers.CharField()
