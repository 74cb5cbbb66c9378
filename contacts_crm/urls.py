from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from .api.errors import error_body
from .views import OrganizationView, healthz


@csrf_exempt  # a DELETE to an unknown path is a 404, not Django's HTML CSRF page
def api_not_found(request, rest=""):
    """Any other path under /api/v1/: the JSON envelope, with DEBUG on too (Django's debug 404
    page would otherwise answer, in HTML). A trailing slash gets a hint: our paths have none."""
    message = "No such endpoint."
    if request.path.endswith("/") and len(request.path) > len("/api/v1/"):
        message += f" API paths have no trailing slash: try {request.path.rstrip('/')}"
    return JsonResponse(error_body("not_found", message), status=404)


api_v1 = [
    path("organization", OrganizationView.as_view(), name="organization"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("", include("contacts.urls")),
    path("", include("segments.urls")),
    path("", include("imports.urls")),
    re_path(r"^(?P<rest>.*)$", api_not_found),  # last: every path the routes above do not know
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
]

handler404 = "contacts_crm.api.errors.json_404"
handler500 = "contacts_crm.api.errors.json_500"
