"""The original service's JSON auth endpoints, behind the client's API key.

    POST /api/v1/auth/start     {api_key?, api_secret?, perms?, callback_url?}
                                -> {authorize_url, oauth_token, state, mode}
    POST /api/v1/auth/complete  {oauth_token, oauth_verifier, state?} -> {user_id, …}
    GET  /api/v1/auth/callback?oauth_token=…&oauth_verifier=…  -> {status: "ok", user_id, …}

Pending attempts are scoped to the client that started them: another client's request token is
answered exactly like an unknown one.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import flickr_oauth, pending
from accounts.models import ApiClient, FlickrAccount
from accounts.pending import PendingAuthorization
from accounts.problems import LinkError, Problem
from accounts.services import authorization_complete, authorization_start
from flickrhub.api import ApiError, envelope, enveloped

API_CHANNEL = "api"


_ERROR = enveloped("AuthErrorEnvelope", None)
_COMMON_ERRORS = {
    400: OpenApiResponse(
        _ERROR,
        description="ERR_INVALID_REQUEST (missing or bad fields), ERR_INVALID_STATE, ERR_INVALID_VERIFIER",
    ),
    401: OpenApiResponse(_ERROR, description="ERR_UNAUTHORIZED: missing or invalid API key"),
    502: OpenApiResponse(
        _ERROR, description="ERR_FLICKR_APP_REJECTED, ERR_FLICKR_SIGNATURE_REJECTED, ERR_FLICKR_BAD_RESPONSE"
    ),
    503: OpenApiResponse(_ERROR, description="ERR_FLICKR_UNREACHABLE, ERR_FLICKR_NOT_CONFIGURED"),
}


def _link_error(error: LinkError) -> ApiError:
    wording = error.wording
    if wording.code == "ERR_INVALID_STATE":
        # The original's message, so its clients' checks still match; the reason is new.
        return ApiError(
            status_code=400,
            code="ERR_INVALID_STATE",
            message="invalid_state_or_token",
            details={"reason": error.problem.value, "hint": f"{wording.happened} {wording.to_do}"},
        )
    headers = {"Retry-After": "30"} if error.problem is Problem.UNREACHABLE else None
    return ApiError(
        status_code=wording.status,
        code=wording.code,
        message=f"{wording.happened} {wording.to_do}",
        headers=headers,
    )


class StartInput(serializers.Serializer):
    api_key = serializers.CharField(required=False, allow_blank=True, max_length=64)
    api_secret = serializers.CharField(required=False, allow_blank=True, max_length=128)
    perms = serializers.ChoiceField(choices=flickr_oauth.PERMS, default="write")
    callback_url = serializers.URLField(
        required=False,
        allow_blank=True,
        max_length=500,
        help_text=(
            "Where Flickr sends the person after they approve (with oauth_token and oauth_verifier); "
            "pass those to /auth/callback or /auth/complete. Without it the flow is out-of-band."
        ),
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        key, secret = attrs.get("api_key", "").strip(), attrs.get("api_secret", "").strip()
        own_app = bool(key) and key != settings.FLICKR_API_KEY
        if own_app and not settings.CONNECT_ALLOW_USER_APPS:
            raise serializers.ValidationError(
                {
                    "api_key": "This hub links accounts through its own Flickr app; leave out api_key "
                    "and api_secret (the operator can allow other apps with CONNECT_ALLOW_USER_APPS)."
                }
            )
        if own_app and not secret:
            raise serializers.ValidationError({"api_secret": "api_key and api_secret go together."})
        if secret and not key:
            raise serializers.ValidationError({"api_key": "api_key and api_secret go together."})
        return attrs


class StartOutput(serializers.Serializer):
    authorize_url = serializers.URLField()
    oauth_token = serializers.CharField()
    state = serializers.CharField()
    mode = serializers.ChoiceField(choices=["oob", "callback"])


class CompleteInput(serializers.Serializer):
    oauth_token = serializers.CharField(max_length=200)
    oauth_verifier = serializers.CharField(max_length=200)
    state = serializers.CharField(required=False, allow_blank=True, max_length=64)


class LinkedOutput(serializers.Serializer):
    user_id = serializers.UUIDField()
    nsid = serializers.CharField()
    username = serializers.CharField()
    perms = serializers.CharField()
    created = serializers.BooleanField(
        help_text="False when the Flickr account was linked before (it keeps its user_id)."
    )


class CallbackOutput(LinkedOutput):
    status = serializers.CharField(default="ok")


def _linked(account: FlickrAccount, created: bool) -> dict[str, Any]:
    return {
        "user_id": str(account.user_id),
        "nsid": account.nsid,
        "username": account.username,
        "perms": account.perms,
        "created": created,
    }


def _complete(request: Request, data: Any) -> dict[str, Any]:
    """The shared body of /auth/complete and /auth/callback."""
    form = CompleteInput(data=data)
    if not form.is_valid():
        raise ApiError(
            status_code=400, code="ERR_INVALID_REQUEST", message="oauth_token and oauth_verifier are required"
        )
    fields = form.validated_data
    verifier = flickr_oauth.normalise_verifier(fields["oauth_verifier"])
    if verifier is None:
        raise ApiError(
            status_code=400,
            code="ERR_INVALID_REQUEST",
            message="oauth_verifier is not a Flickr verifier (a 123-456-789 code or the callback's value)",
        )
    client = request.user
    assert isinstance(client, ApiClient)
    attempt = _attempt_of(client, fields["oauth_token"], fields.get("state", ""))
    try:
        account, created = authorization_complete(attempt=attempt, verifier=verifier)
    except LinkError as error:
        raise _link_error(error) from None
    return _linked(account, created)


def _attempt_of(client: ApiClient, oauth_token: str, state: str) -> PendingAuthorization:
    attempt = pending.get(oauth_token)
    if attempt is None or attempt.channel != API_CHANNEL or attempt.client_id != str(client.pk):
        used = attempt is None and pending.was_used(oauth_token)
        raise _link_error(LinkError(Problem.USED if used else Problem.UNKNOWN))
    if state and state != attempt.state:
        raise _link_error(LinkError(Problem.UNKNOWN))
    return attempt


class AuthStartApi(APIView):
    @extend_schema(
        operation_id="auth_start",
        summary="Start linking a Flickr account (the original service's call)",
        request=StartInput,
        responses={200: enveloped("AuthStartEnvelope", StartOutput()), **_COMMON_ERRORS},
    )
    def post(self, request: Request) -> Response:
        form = StartInput(data=request.data)
        form.is_valid(raise_exception=True)
        fields = form.validated_data
        client = request.user
        assert isinstance(client, ApiClient)
        try:
            attempt = authorization_start(
                client=client,
                perms=fields["perms"],
                callback=fields.get("callback_url") or flickr_oauth.OOB,
                channel=API_CHANNEL,
                app_key=fields.get("api_key", ""),
                app_secret=fields.get("api_secret", ""),
            )
        except LinkError as error:
            raise _link_error(error) from None
        return envelope(
            request,
            {
                "authorize_url": flickr_oauth.authorize_url(attempt.oauth_token, attempt.perms),
                "oauth_token": attempt.oauth_token,
                "state": attempt.state,
                "mode": attempt.mode,
            },
        )


class AuthCompleteApi(APIView):
    @extend_schema(
        operation_id="auth_complete",
        summary="Finish linking with the verifier Flickr gave the person",
        request=CompleteInput,
        responses={200: enveloped("AuthCompleteEnvelope", LinkedOutput()), **_COMMON_ERRORS},
    )
    def post(self, request: Request) -> Response:
        return envelope(request, _complete(request, request.data))


class AuthCallbackApi(APIView):
    @extend_schema(
        operation_id="auth_callback",
        summary="Finish linking with the query Flickr's redirect carried",
        parameters=[
            OpenApiParameter("oauth_token", str, required=True),
            OpenApiParameter("oauth_verifier", str, required=True),
            OpenApiParameter("state", str, required=False),
        ],
        responses={200: enveloped("AuthCallbackEnvelope", CallbackOutput()), **_COMMON_ERRORS},
    )
    def get(self, request: Request) -> Response:
        return envelope(request, {"status": "ok", **_complete(request, request.query_params)})
