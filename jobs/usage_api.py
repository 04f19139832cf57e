"""`GET /api/v1/usage`: the calling client's use of the Flickr quota over the last hour."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiClient
from flickrhub.api import envelope, enveloped
from jobs.api import ERROR_ENVELOPE
from jobs.usage import client_usage


class _Counts(serializers.Serializer):
    flickr_calls = serializers.IntegerField(help_text="calls made to Flickr for you")
    answered_without_flickr = serializers.IntegerField(
        help_text="jobs answered from the cache or by an identical call in flight: no quota spent"
    )
    quota_waits = serializers.IntegerField(help_text="jobs that had to wait for quota")
    waiting_for_quota_now = serializers.IntegerField()


class _KeyUsage(_Counts):
    flickr_app = serializers.CharField(help_text="the Flickr app (consumer key) your accounts are bound to")
    quota_per_hour = serializers.IntegerField()
    share_of_quota_percent = serializers.FloatField(
        help_text="your calls as a share of the key's hourly quota"
    )


class UsageOutput(_Counts):
    window_seconds = serializers.IntegerField()
    quota_weight = serializers.IntegerField(
        help_text="your share when calls wait for quota (set by the operator)"
    )
    quota_max_percent = serializers.IntegerField(
        allow_null=True, help_text="the most of a key's quota you may use (null: no cap)"
    )
    rejections = serializers.IntegerField(help_text="calls refused with 429 ERR_QUEUE_BUSY")
    unfinished_jobs = serializers.IntegerField()
    keys = _KeyUsage(many=True)


class UsageApi(APIView):
    @extend_schema(
        operation_id="usage_retrieve",
        summary="Your use of the Flickr quota over the last hour",
        responses={
            200: enveloped("UsageEnvelope", UsageOutput()),
            401: OpenApiResponse(ERROR_ENVELOPE, description="ERR_UNAUTHORIZED: missing or invalid API key"),
        },
    )
    def get(self, request: Request) -> Response:
        client = request.user
        assert isinstance(client, ApiClient)
        return envelope(request, client_usage(client))
