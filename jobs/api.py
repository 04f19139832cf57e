"""The jobs REST API: enqueue a Flickr call, read a job. Views parse, call a service, render."""

from __future__ import annotations

import uuid

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiClient
from accounts.selectors import account_for_client
from flickrhub.api import ApiError, envelope, request_id_of
from jobs.models import Job
from jobs.retention import job_expired
from jobs.serializers import EnqueueInput, EnqueueOutput, JobStatusInput, JobStatusOutput
from jobs.services import QueueUnavailable, job_enqueue
from jobs.uploads import UploadMultiPartParser


def _enveloped(name: str, data: serializers.Serializer | None) -> serializers.Serializer:
    return inline_serializer(
        name=name,
        fields={
            "request_id": serializers.CharField(),
            "data": data if data is not None else serializers.JSONField(allow_null=True),
            "error": serializers.JSONField(allow_null=True),
        },
    )


_ERROR = _enveloped("ErrorEnvelope", None)
_ERRORS = {
    400: OpenApiResponse(_ERROR, description="ERR_INVALID_REQUEST: details lists every problem"),
    401: OpenApiResponse(_ERROR, description="ERR_UNAUTHORIZED: missing or invalid API key"),
    413: OpenApiResponse(_ERROR, description="ERR_PAYLOAD_TOO_LARGE: body or file over its limit"),
    415: OpenApiResponse(
        _ERROR, description="ERR_UNSUPPORTED_MEDIA_TYPE: not JSON/multipart, or a file that is not a photo"
    ),
}


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
        responses={
            202: _enveloped("EnqueueEnvelope", EnqueueOutput()),
            **_ERRORS,
            404: OpenApiResponse(_ERROR, description="ERR_TOKEN_NOT_FOUND: unknown user_id"),
            503: OpenApiResponse(_ERROR, description="ERR_QUEUE_UNAVAILABLE: try again later"),
        },
    )
    def post(self, request: Request) -> Response:
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
        try:
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
            )
        except QueueUnavailable:
            raise ApiError(
                status_code=503,
                code="ERR_QUEUE_UNAVAILABLE",
                message="The job queue is unreachable, so the job was not accepted. Try again shortly.",
                headers={"Retry-After": "5"},
            ) from None
        status_url = request.build_absolute_uri(reverse("job-detail", args=[job.id]))
        return envelope(
            request,
            {"job_id": str(job.id), "state": job.state, "queue": job.queue_name, "status_url": status_url},
            status.HTTP_202_ACCEPTED,
            headers={"Location": status_url},
        )


class JobStatusApi(APIView):
    """The original's status call: POST {job_id, user_id}."""

    @extend_schema(
        operation_id="flickr_jobs_status",
        summary="Read a job by id and user_id (the original service's call)",
        request=JobStatusInput,
        responses={
            200: _enveloped("JobStatusEnvelope", JobStatusOutput()),
            **_ERRORS,
            404: OpenApiResponse(_ERROR, description="ERR_JOB_NOT_FOUND"),
            410: OpenApiResponse(_ERROR, description="ERR_JOB_EXPIRED: deleted by retention"),
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
        return envelope(request, JobStatusOutput.of(job))


class JobDetailApi(APIView):
    @extend_schema(
        operation_id="flickr_jobs_retrieve",
        summary="Read one of your jobs",
        responses={
            200: _enveloped("JobDetailEnvelope", JobStatusOutput()),
            401: _ERRORS[401],
            404: OpenApiResponse(_ERROR, description="ERR_JOB_NOT_FOUND"),
            410: OpenApiResponse(_ERROR, description="ERR_JOB_EXPIRED: deleted by retention"),
        },
    )
    def get(self, request: Request, job_id: str) -> Response:
        assert isinstance(request.user, ApiClient)
        job = _client_job(request.user, job_id)
        if job is None:
            raise _job_gone(request.user, job_id)
        return envelope(request, JobStatusOutput.of(job))
