"""The callback signing secret of the calling API client: read it, or rotate it."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import ApiClient
from flickrhub.api import envelope
from jobs.webhooks import SecretView, callback_secret_get, callback_secret_rotate


class CallbackSecretOutput(serializers.Serializer):
    secret = serializers.CharField(help_text="whsec_… — verify callbacks' webhook-signature with it")
    created_at = serializers.DateTimeField()
    rotated_at = serializers.DateTimeField(allow_null=True)
    previous_secret_valid_until = serializers.DateTimeField(
        allow_null=True, help_text="After a rotation, the previous secret also signs until then."
    )

    @staticmethod
    def of(view: SecretView) -> dict[str, str | None]:
        return {
            "secret": view.secret,
            "created_at": view.created_at.isoformat(),
            "rotated_at": view.rotated_at.isoformat() if view.rotated_at else None,
            "previous_secret_valid_until": (
                view.previous_valid_until.isoformat() if view.previous_valid_until else None
            ),
        }


_ENVELOPE = inline_serializer(
    name="CallbackSecretEnvelope",
    fields={
        "request_id": serializers.CharField(),
        "data": CallbackSecretOutput(),
        "error": serializers.JSONField(allow_null=True),
    },
)
_UNAUTHORIZED = OpenApiResponse(description="ERR_UNAUTHORIZED: missing or invalid API key")


def _private(response: Response) -> Response:
    # A secret must not linger in a proxy's or a browser's cache.
    response["Cache-Control"] = "no-store"
    return response


class CallbackSecretApi(APIView):
    @extend_schema(
        operation_id="flickr_callbacks_secret_retrieve",
        summary="Your callback signing secret (created on first request)",
        responses={200: _ENVELOPE, 401: _UNAUTHORIZED},
    )
    def get(self, request: Request) -> Response:
        assert isinstance(request.user, ApiClient)
        return _private(envelope(request, CallbackSecretOutput.of(callback_secret_get(client=request.user))))

    @extend_schema(
        operation_id="flickr_callbacks_secret_rotate",
        summary="Rotate your callback signing secret",
        description="The previous secret keeps signing, beside the new one, for 24 hours.",
        request=None,
        responses={200: _ENVELOPE, 401: _UNAUTHORIZED},
    )
    def post(self, request: Request) -> Response:
        assert isinstance(request.user, ApiClient)
        return _private(
            envelope(request, CallbackSecretOutput.of(callback_secret_rotate(client=request.user)))
        )
