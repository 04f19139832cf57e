"""The jobs REST API: enqueue a Flickr call, read a job. Views parse, call a service, render."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiClient
from accounts.selectors import account_for_client
from flickrhub.api import ApiError, envelope, enveloped, request_id_of
from jobs import idempotency
from jobs.models import FINAL_STATES, Job, Priority
from jobs.retention import job_expired
from jobs.serializers import (
    EnqueueInput,
    EnqueueOutput,
    EnqueueWaitedOutput,
    JobStatusInput,
    JobStatusOutput,
)
from jobs.services import AccountGone, QueueBusy, QueueUnavailable, job_enqueue, job_wait
from jobs.uploads import UploadMultiPartParser

ERROR_ENVELOPE = enveloped("ErrorEnvelope", None)
ERRORS = {
    400: OpenApiResponse(ERROR_ENVELOPE, description="ERR_INVALID_REQUEST: details lists every problem"),
    401: OpenApiResponse(ERROR_ENVELOPE, description="ERR_UNAUTHORIZED: missing or invalid API key"),
    413: OpenApiResponse(ERROR_ENVELOPE, description="ERR_PAYLOAD_TOO_LARGE: body or file over its limit"),
    415: OpenApiResponse(
        ERROR_ENVELOPE,
        description="ERR_UNSUPPORTED_MEDIA_TYPE: not JSON/multipart, or a file that is not a photo",
    ),
    503: OpenApiResponse(ERROR_ENVELOPE, description="ERR_DATABASE_UNAVAILABLE: try again shortly"),
}


_WAIT = OpenApiParameter(
    "wait",
    float,
    required=False,
    description="Seconds (0 to API_MAX_WAIT_SECONDS) to hold the answer until the job ends: 200 with "
    "its status if it ends in time, else 202.",
)
_IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="1-255 printable characters: the same key and body answer the first request's job.",
)


def _job_not_found() -> ApiError:
    # The same answer for a job that does not exist, one of another client, and a user_id
    # that does not match: an answer never reveals that a job exists.
    return ApiError(status_code=404, code="ERR_JOB_NOT_FOUND", message="job_not_found")


def _job_gone(client: ApiClient, job_id: str, user_id: str | None = None) -> ApiError:
    """404, or 410 for a job of this client that retention deleted."""
    if job_expired(client=client, job_id=job_id, user_id=user_id):
        return ApiError(
            status_code=410,
            code="ERR_JOB_EXPIRED",
            message="job_expired: the job ended and was deleted after its retention period "
            "(JOB_TTL_COMPLETE_DAYS / JOB_TTL_FAIL_DAYS)",
        )
    return _job_not_found()


def _client_job(client: ApiClient, job_id: str) -> Job | None:
    try:
        parsed = uuid.UUID(str(job_id))
    except ValueError:
        return None
    return Job.objects.select_related("account").filter(pk=parsed, client=client).first()


class EnqueueApi(APIView):
    parser_classes = [JSONParser, UploadMultiPartParser]

    @extend_schema(
        operation_id="flickr_rest_enqueue",
        summary="Queue a Flickr API call for a linked account",
        description=(
            "REST calls are sent as JSON. Upload and replace (`target: upload|replace`) are sent "
            "as multipart/form-data with the file in a `photo` part and `params`/`meta` as JSON "
            "strings; the file is checked while it streams (413 over UPLOAD_MAX_BYTES, 415 when "
            "its bytes are not an image or video)."
        ),
        request={"application/json": EnqueueInput, "multipart/form-data": EnqueueInput},
        parameters=[_WAIT, _IDEMPOTENCY_KEY],
        responses={
            202: enveloped("EnqueueEnvelope", EnqueueOutput()),
            200: OpenApiResponse(
                enveloped("EnqueueWaitedEnvelope", EnqueueWaitedOutput()),
                description="With ?wait=, the job ended in time: its status and the enqueue fields",
            ),
            **ERRORS,
            404: OpenApiResponse(ERROR_ENVELOPE, description="ERR_TOKEN_NOT_FOUND: unknown user_id"),
            409: OpenApiResponse(
                ERROR_ENVELOPE, description="ERR_IDEMPOTENCY_IN_PROGRESS: retry in a second"
            ),
            422: OpenApiResponse(ERROR_ENVELOPE, description="ERR_IDEMPOTENCY_KEY_REUSED: another body"),
            429: OpenApiResponse(ERROR_ENVELOPE, description="ERR_QUEUE_BUSY: too many unfinished jobs"),
            503: OpenApiResponse(
                ERROR_ENVELOPE,
                description="ERR_QUEUE_UNAVAILABLE, ERR_DATABASE_UNAVAILABLE: try again shortly",
            ),
        },
    )
    def post(self, request: Request) -> Response:
        wait = wait_seconds(request)
        multipart = (request.content_type or "").startswith("multipart/form-data")
        data = EnqueueInput(data=request.data, context={"multipart": multipart})
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        client = request.user
        assert isinstance(client, ApiClient)
        account = account_for_client(client=client, user_id=fields["user_id"])
        if account is None:
            raise ApiError(
                status_code=404,
                code="ERR_TOKEN_NOT_FOUND",
                message="token_not_found",
                details={"userId": fields["user_id"][:100]},
            )
        claim = _idempotency_claim(request, client, fields)
        if claim.replay is not None:
            assert claim.replay.response is not None and claim.replay.job_id is not None
            return _accepted(request, claim.replay.job_id, claim.replay.response, wait, replayed=True)
        with accepting(claim):
            job = job_enqueue(
                client=client,
                account=account,
                method=fields["method"],
                params=fields["params"] if "params" in fields else {},
                target=fields["target"],
                callback_url=fields.get("callback_url") or "",
                callback_secret=fields.get("callback_secret") or "",
                meta=fields.get("meta"),
                request_id=request_id_of(request),
                photo=fields.get("photo"),
                cache_max_age=fields.get("cache_max_age"),
                paginate=bool(fields.get("paginate")),
                priority=fields.get("priority") or (Priority.HIGH if wait > 0 else Priority.NORMAL),
                answer_from_cache=wait > 0,
                awaited=wait > 0,
            )
        status_url = request.build_absolute_uri(reverse("job-detail", args=[job.id]))
        accepted = {
            "job_id": str(job.id),
            "state": job.state,
            "queue": job.queue_name,
            "status_url": status_url,
        }
        idempotency.finish(claim, job, accepted)
        return _accepted(request, job.id, accepted, wait, ended=job)


@contextmanager
def accepting(claim: idempotency.Claim) -> Iterator[None]:
    """Around the enqueue: a refused request frees its Idempotency-Key, a full or unreachable
    queue becomes the API's 429 or 503, and an account deleted meanwhile its 404."""
    try:
        yield
    except (QueueBusy, QueueUnavailable) as exc:
        idempotency.release(claim)
        raise queue_refusal(exc) from None
    except AccountGone:
        idempotency.release(claim)
        raise ApiError(
            status_code=404,
            code="ERR_TOKEN_NOT_FOUND",
            message="token_not_found: the account was unlinked as this request came; nothing was accepted",
        ) from None
    except BaseException:
        idempotency.release(claim)
        raise


def queue_refusal(exc: QueueBusy | QueueUnavailable) -> ApiError:
    """The API's answer when the job queue cannot take more: 429 or 503, nothing accepted."""
    if isinstance(exc, QueueBusy):
        return ApiError(
            status_code=429,
            code="ERR_QUEUE_BUSY",
            message=(
                f"You have {exc.in_flight} unfinished jobs; a client may have at most "
                f"{settings.JOB_MAX_IN_FLIGHT_PER_CLIENT} (JOB_MAX_IN_FLIGHT_PER_CLIENT). Wait for "
                "some to finish, then send again."
            ),
            headers={"Retry-After": str(exc.retry_after)},
        )
    return ApiError(
        status_code=503,
        code="ERR_QUEUE_UNAVAILABLE",
        message="The job queue is unreachable, so nothing was accepted. Try again shortly.",
        headers={"Retry-After": "5"},
    )


def _idempotency_claim(request: Request, client: ApiClient, fields: dict[str, Any]) -> idempotency.Claim:
    key = request.headers.get(idempotency.HEADER)
    if key is None:
        return idempotency.Claim()
    photo = fields.get("photo")
    body = {name: value for name, value in fields.items() if name != "photo"}
    print_ = idempotency.fingerprint(body, getattr(photo, "sha256", None) if photo is not None else None)
    return idempotency.claim(client, idempotency.validate_key(key), print_)


def _accepted(
    request: Request,
    job_id: uuid.UUID,
    accepted: dict[str, Any],
    wait: float,
    *,
    replayed: bool = False,
    ended: Job | None = None,
) -> Response:
    """202 with the job id; with `?wait=`, the finished job's status (200) if it ends in time
    (`ended`: a job that ended as it was accepted, answered from the cache)."""
    headers = {"Location": accepted["status_url"]}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    if wait > 0:
        if ended is not None and ended.state in FINAL_STATES:
            job: Job | None = ended
        else:  # the job was written awaited, unless this answer replays an earlier request's
            job = job_wait(job_id, wait, awaited=not replayed)
        if job is not None and job.state in FINAL_STATES:
            return envelope(request, {**accepted, **JobStatusOutput.of(job)}, headers=headers)
    return envelope(request, accepted, status.HTTP_202_ACCEPTED, headers=headers)


def wait_seconds(request: Request) -> float:
    """`?wait=N`: how long the caller will wait for the job to end, capped at API_MAX_WAIT_SECONDS."""
    raw = request.query_params.get("wait")
    if raw is None or raw == "":
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (value >= 0) or value == float("inf"):
        raise ApiError(
            status_code=400,
            code="ERR_INVALID_REQUEST",
            message=f"wait must be a number of seconds from 0 to {settings.API_MAX_WAIT_SECONDS}",
        )
    return min(value, float(settings.API_MAX_WAIT_SECONDS))


def _status_answer(request: Request, job: Job, wait: float) -> Response:
    if wait > 0 and job.state not in FINAL_STATES:
        job = job_wait(job.id, wait) or job
        if job.state not in FINAL_STATES:
            url = request.build_absolute_uri(reverse("job-detail", args=[job.id]))
            return envelope(
                request, JobStatusOutput.of(job), status.HTTP_202_ACCEPTED, headers={"Location": url}
            )
    return envelope(request, JobStatusOutput.of(job))


class JobStatusApi(APIView):
    """The original's status call: POST {job_id, user_id}."""

    @extend_schema(
        operation_id="flickr_jobs_status",
        summary="Read a job by id and user_id (the original service's call)",
        request=JobStatusInput,
        parameters=[_WAIT],
        responses={
            200: enveloped("JobStatusEnvelope", JobStatusOutput()),
            202: OpenApiResponse(
                enveloped("JobStatusWaitedEnvelope", JobStatusOutput()),
                description="With ?wait=, the job had not ended in time: its status so far",
            ),
            **ERRORS,
            404: OpenApiResponse(ERROR_ENVELOPE, description="ERR_JOB_NOT_FOUND"),
            410: OpenApiResponse(ERROR_ENVELOPE, description="ERR_JOB_EXPIRED: deleted by retention"),
        },
    )
    def post(self, request: Request) -> Response:
        data = JobStatusInput(data=request.data)
        if not data.is_valid():
            raise ApiError(
                status_code=400, code="ERR_INVALID_REQUEST", message="job_id and user_id are required"
            )
        assert isinstance(request.user, ApiClient)
        job = _client_job(request.user, data.validated_data["job_id"])
        if job is None:
            raise _job_gone(request.user, data.validated_data["job_id"], data.validated_data["user_id"])
        if str(job.account.user_id) != data.validated_data["user_id"].strip().lower():
            raise _job_not_found()
        return _status_answer(request, job, wait_seconds(request))


class JobDetailApi(APIView):
    @extend_schema(
        operation_id="flickr_jobs_retrieve",
        summary="Read one of your jobs",
        parameters=[_WAIT],
        responses={
            200: enveloped("JobDetailEnvelope", JobStatusOutput()),
            202: OpenApiResponse(
                enveloped("JobDetailWaitedEnvelope", JobStatusOutput()),
                description="With ?wait=, the job had not ended in time: its status so far",
            ),
            400: OpenApiResponse(
                ERROR_ENVELOPE, description="ERR_INVALID_REQUEST: a wait that is not a number"
            ),
            401: ERRORS[401],
            404: OpenApiResponse(ERROR_ENVELOPE, description="ERR_JOB_NOT_FOUND"),
            503: ERRORS[503],
            410: OpenApiResponse(ERROR_ENVELOPE, description="ERR_JOB_EXPIRED: deleted by retention"),
        },
    )
    def get(self, request: Request, job_id: str) -> Response:
        assert isinstance(request.user, ApiClient)
        job = _client_job(request.user, job_id)
        if job is None:
            raise _job_gone(request.user, job_id)
        return _status_answer(request, job, wait_seconds(request))
