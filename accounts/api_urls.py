"""/api/v1/auth/… — the original service's auth endpoints."""

from django.urls import path

from accounts.api import AuthCallbackApi, AuthCompleteApi, AuthStartApi

urlpatterns = [
    path("start", AuthStartApi.as_view(), name="auth-start"),
    path("complete", AuthCompleteApi.as_view(), name="auth-complete"),
    path("callback", AuthCallbackApi.as_view(), name="auth-callback"),
]
