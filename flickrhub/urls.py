from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from flickrhub import views
from flickrhub.metrics import metrics_view

urlpatterns = [
    path("", views.home, name="home"),
    path("health", views.health, name="health"),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("api/v1/", include("jobs.urls")),
    path("api/v1/auth/", include("accounts.api_urls")),
    path("", include("accounts.urls")),
    path(
        "api/schema/",
        SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]),
        name="schema",
    ),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="schema", authentication_classes=[], permission_classes=[]),
        name="api-docs",
    ),
    path("admin/", admin.site.urls),
]

if settings.BENCH_ENDPOINTS:
    urlpatterns.append(path("bench/", include("bench.urls")))

handler400 = "flickrhub.views.bad_request"
handler404 = "flickrhub.views.not_found"
handler500 = "flickrhub.views.server_error"
