from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from .views import OrganizationView, healthz

api_v1 = [
    path("organization", OrganizationView.as_view(), name="organization"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("", include("contacts.urls")),
    path("", include("segments.urls")),
    path("", include("imports.urls")),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
]

handler404 = "contacts_crm.api.errors.json_404"
handler500 = "contacts_crm.api.errors.json_500"
