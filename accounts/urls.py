"""The linking pages under /connect/."""

from django.urls import path

from accounts import views

urlpatterns = [
    path("connect/", views.connect_start, name="connect-start"),
    path("connect/callback/", views.connect_callback, name="connect-callback"),
    path("connect/code/<str:oauth_token>/", views.connect_code, name="connect-code"),
    path("connect/done/", views.connect_done, name="connect-done"),
    path("connect/invite/<str:token>/", views.connect_invitation, name="connect-invitation"),
    path("connect/login/", views.ConnectLoginView.as_view(), name="connect-login"),
    path("connect/logout/", views.ConnectLogoutView.as_view(), name="connect-logout"),
]
