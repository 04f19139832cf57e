"""POST /api/v1/flickr/batch — many REST calls in one request, all accepted or none."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiClient
from accounts.selectors import account_for_client
from flickrhub.api import ApiError, envelope, enveloped, flatten_errors, request_id_of
from jobs import idempotency
from jobs.api import ERROR_ENVELOPE, ERRORS, accepting
from jobs.models import Priority, Target
from jobs.serializers import EnqueueInput, EnqueueOutput
from jobs.services import AccountGone, Call, jobs_enqueue_batch

BATCH_MAX_CALLS = 500


class BatchInput(serializers.Serializer):
    calls = serializers.ListField(child=EnqueueInput(), min_length=1, max_length=BATCH_MAX_CALLS)


class BatchOutput(serializers.Serializer):
    jobs = EnqueueOutput(many=True)


class BatchApi(APIView):
    @extend_schema(
        operation_id="flickr_batch_enqueue",
        summary="Queue up to 500 Flickr REST calls at once",
        description=(
            "Every call is validated before any job is created: one bad call refuses the whole "
            "batch with a 400 whose details name each bad call by its index. Accepted, the answer "
            "lists the job ids in the order of the calls. Upload and replace are not batched. "
            "`Idempotency-Key` applies to the whole batch."
        ),
        request=BatchInput,
        responses={
            202: enveloped("BatchEnvelope", BatchOutput()),
            **ERRORS,
            429: OpenApiResponse(
                ERROR_ENVELOPE, description="ERR_QUEUE_BUSY: the batch would pass your in-flight cap"
            ),
            503: OpenApiResponse(ERROR_ENVELOPE, description="ERR_QUEUE_UNAVAILABLE: nothing was accepted"),
        },
    )
    def post(self, request: Request) -> Response:
        client = request.user
        assert isinstance(client, ApiClient)
        calls = _validated_calls(request, client)
        claim = _claim(request, client)
        if claim.replay is not None:
            assert claim.replay.response is not None
            return envelope(
                request,
                claim.replay.response,
                status.HTTP_202_ACCEPTED,
                headers={"Idempotent-Replayed": "true"},
            )
        with accepting(claim):
            try:
                jobs = jobs_enqueue_batch(client=client, calls=calls, request_id=request_id_of(request))
            except AccountGone:
                # An account was deleted since it was read (maybe a second ago, from what
                # accounts/lookups.py keeps, now forgotten): checked again, the calls that name
                # it are refused with their index, as for any unknown account.
                calls = _validated_calls(request, client)
                jobs = jobs_enqueue_batch(client=client, calls=calls, request_id=request_id_of(request))
        accepted = {
            "jobs": [
                {
                    "job_id": str(job.id),
                    "state": job.state,
                    "queue": job.queue_name,
                    "status_url": request.build_absolute_uri(reverse("job-detail", args=[job.id])),
                }
                for job in jobs
            ]
        }
        idempotency.finish(claim, jobs[0], accepted)
        return envelope(request, accepted, status.HTTP_202_ACCEPTED)


def _validated_calls(request: Request, client: ApiClient) -> list[Call]:
    """Every call checked, every problem reported with its call's index; nothing half-accepted."""
    body = request.data
    if not isinstance(body, dict) or not isinstance(body.get("calls"), list):
        raise ApiError(
            status_code=400,
            code="ERR_INVALID_REQUEST",
            message='Send {"calls": [...]}: a list of 1 to 500 calls, each shaped like a /flickr/rest body.',
        )
    items = body["calls"]
    if not 1 <= len(items) <= BATCH_MAX_CALLS:
        raise ApiError(
            status_code=400,
            code="ERR_INVALID_REQUEST",
            message=f"A batch holds 1 to {BATCH_MAX_CALLS} calls; this one has {len(items)}.",
        )
    problems: list[str] = []
    calls: list[Call] = []
    for index, item in enumerate(items):
        prefix = f"calls[{index}]"
        data = EnqueueInput(data=item, context={"multipart": False})
        if not data.is_valid():
            problems.extend(flatten_errors(data.errors, prefix))
            continue
        fields: dict[str, Any] = data.validated_data
        if fields["target"] != Target.REST:
            problems.append(f"{prefix}: upload and replace are sent one at a time to /flickr/rest")
            continue
        account = account_for_client(client=client, user_id=fields["user_id"])
        if account is None:
            problems.append(f"{prefix}.user_id: not one of your linked accounts")
            continue
        calls.append(
            Call(
                account=account,
                method=fields["method"],
                params=fields.get("params") or {},
                callback_url=fields.get("callback_url") or "",
                callback_secret=fields.get("callback_secret") or "",
                meta=fields.get("meta"),
                cache_max_age=fields.get("cache_max_age"),
                priority=fields.get("priority") or Priority.NORMAL,
                paginate=bool(fields.get("paginate")),
            )
        )
    if problems:
        raise ApiError(
            status_code=400,
            code="ERR_INVALID_REQUEST",
            message=f"{len(items) - len(calls)} of {len(items)} calls are invalid; no job was created.",
            details=problems,
        )
    return calls


def _claim(request: Request, client: ApiClient) -> idempotency.Claim:
    key = request.headers.get(idempotency.HEADER)
    if key is None:
        return idempotency.Claim()
    print_ = idempotency.fingerprint({"batch": request.data})
    return idempotency.claim(client, idempotency.validate_key(key), print_)
