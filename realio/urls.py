from allauth.account.decorators import secure_admin_login
from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from realio import metrics, views

# The admin signs in through allauth's login: one rate-limited login (with MFA) for everyone.
admin.site.login = secure_admin_login(admin.site.login)
admin.site.site_header = "Realio admin"

# Swagger UI sets inline styles as it renders: styles only are relaxed there, scripts stay strict.
swagger_ui = csp_update({"style-src": [UNSAFE_INLINE]})(SpectacularSwaggerSplitView.as_view(url_name="api-schema"))
# ReDoc likewise, and runs its search index in a worker made from a blob (templates/drf_spectacular/redoc.html).
redoc = csp_update({"style-src": [UNSAFE_INLINE], "worker-src": ["'self'", "blob:"]})(
    SpectacularRedocView.as_view(url_name="api-schema"))

api_v1 = [
    path("", include("accounts.api")),
    path("", include("listings.api")),
    path("", include("search.api")),
    path("", include("bookings.api")),
    path("", include("recommendations.api")),
    path("", include("notifications.api")),
    path("", include("chat.api")),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("", include("accounts.urls")),
    path("", include("listings.urls")),
    path("", include("search.urls")),
    path("", include("bookings.urls")),
    path("", include("recommendations.urls")),
    path("", include("notifications.urls")),
    path("", include("chat.urls")),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", swagger_ui, name="api-docs"),
    path("api/redoc/", redoc, name="api-redoc"),
    path("i18n/", include("django.conf.urls.i18n")),
    # django-prometheus's metrics and Realio's (realio/metrics.py); the name is django-prometheus's.
    path("metrics", metrics.metrics_view, name="prometheus-django-metrics"),
]

if settings.SERVE_MEDIA:
    urlpatterns += [path("media/<path:path>", serve, {"document_root": settings.MEDIA_ROOT})]

handler404 = "realio.views.handler404"
handler500 = "realio.views.handler500"
