"""Where exports are asked for: `GET /api/v1/contacts/export` and the admin's export actions.

All of them hand a queryset to contacts.exports.export_response, or over EXPORT_STREAM_MAX_ROWS
contacts start a background job (contacts.export_jobs.export_start); none formats a cell itself.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IncorrectLookupParameters
from django.http import Http404, HttpResponseRedirect
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from contacts_crm.api.permissions import request_actor, request_organization
from contacts_crm.tenancy import user_organization

from .export_job_views import ExportJobSerializer, export_job_accepted
from .export_jobs import export_is_big, export_params, export_start
from .exports import CONTENT_TYPES, FORMATS, export_response
from .filters import filter_contacts, filter_parameters
from .models import Contact
from .renderers import CsvRenderer, VcardRenderer, XlsxRenderer
from .views import OrgViewMixin


class ContactExportView(OrgViewMixin, APIView):
    """`GET /api/v1/contacts/export?format=csv|xlsx|vcf&<contacts filters>`: the file, streamed.

    `format` is DRF's URL format override, answered by the renderers below (an Accept header of
    text/csv, the xlsx type or text/vcard works too; nothing asked for means CSV). Errors are
    JSON in the usual envelope whatever format was asked for.
    """

    renderer_classes = [CsvRenderer, XlsxRenderer, VcardRenderer]

    def perform_content_negotiation(self, request, force=False):
        if request.query_params.get("format") == "" and not force:  # apiparity: empty is not "the default"
            raise ValidationError({"format": [f"format is empty; use one of {', '.join(FORMATS)}."]})
        try:
            return super().perform_content_negotiation(request, force=force)
        except Http404:
            # DRF answers an unknown ?format= with a bare 404; say what is wrong instead.
            value = request.query_params.get("format", "")
            raise ValidationError({"format": [f"'{value}' is not an export format; use one of "
                                              f"{', '.join(FORMATS)}."]}) from None

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(response, Response):  # errors and the 202 of a job are DRF Responses: JSON
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = "application/json"
        return response

    @extend_schema(
        operation_id="contacts_export",
        parameters=[
            OpenApiParameter("format", OpenApiTypes.STR, enum=list(FORMATS),
                             description="csv (UTF-8 with BOM, default), xlsx or vcf (vCard 3.0)."),
            *filter_parameters(),
        ],
        responses={(200, content_type.split(";")[0]): OpenApiTypes.BINARY for content_type in CONTENT_TYPES.values()}
        | {(202, "application/json"): OpenApiResponse(
            ExportJobSerializer, description="More than EXPORT_STREAM_MAX_ROWS contacts match: a background "
            "export job was started instead (its URL in Location); download the file from its download_url.")}
        | {400: OpenApiResponse(description="A bad filter or format, named in error.fields.")},
        description="Every contact matching the filters (the same as GET /contacts; `segment` wins over the "
        "others, which are then named in the X-Ignored-Filters header), as a file. Columns: every contact field, "
        "tags, list names, channel preferences, custom fields as custom.<key>; headers our importer maps back. "
        "Cells a spreadsheet would run as formulas start with a quote. A read key may export. Up to "
        "EXPORT_STREAM_MAX_ROWS contacts (default 50,000) stream in the answer; more start a background job "
        "(202, see /exports).",
    )
    def get(self, request, *args, **kwargs):
        org = request_organization(request)
        qs, ignored = filter_contacts(Contact.objects.for_org(org), request.query_params, org=org)
        fmt = request.accepted_renderer.format
        if export_is_big(qs):
            job = export_start(org=org, actor=request_actor(request), fmt=fmt,
                               params=export_params(request.query_params))
            response = export_job_accepted(job)
        else:
            response = export_response(qs, org=org, fmt=fmt)
        if ignored:
            response["X-Ignored-Filters"] = ",".join(ignored)
        return response


# --- admin --------------------------------------------------------------------------------------
class ExportRefused(Exception):
    """The admin cannot export this selection; the message is shown to the user."""


def _admin_export_org(request, queryset):
    """The one organization an admin export covers: the user's, or for a superuser the only one
    among the selected contacts (one query). Raises ExportRefused when there is none or several."""
    if not request.user.is_superuser:
        org = user_organization(request.user)
        if org is None:
            raise ExportRefused("Your account does not belong to an organization.")
        return org
    from contacts_crm.models import Organization

    org_ids = list(queryset.order_by().values_list("organization_id", flat=True).distinct()[:2])
    if len(org_ids) != 1:
        raise ExportRefused("Export the contacts of one organization at a time: filter by organization first."
                            if org_ids else "There is nothing to export.")
    return Organization.objects.get(pk=org_ids[0])


def _admin_query(request) -> str:
    """The changelist query string that selects what an admin export covers: the selected ids
    (an action without "Select all"), else the changelist's own filters and search."""
    if request.method == "POST" and request.POST.get("select_across") != "1":
        return urlencode({"id__in": ",".join(request.POST.getlist(ACTION_CHECKBOX_NAME))})
    return request.GET.urlencode()


def admin_changelist_queryset(*, user, query: str):
    """The contacts changelist's queryset for `query` as `user` sees it (the admin's scoping,
    filters and search): what a background admin export (contacts.export_jobs) reads again.
    Raises export_jobs.ExportRefused when the filters no longer hold."""
    from django.contrib import admin
    from django.contrib.admin.options import IncorrectLookupParameters
    from django.http import HttpRequest, QueryDict
    from django.urls import reverse

    from .export_jobs import ExportRefused as JobRefused

    request = HttpRequest()
    request.method = "GET"
    request.path = reverse("admin:contacts_contact_changelist")
    request.GET = QueryDict(query)
    request.user = user
    modeladmin = admin.site.get_model_admin(Contact)
    if not modeladmin.has_view_permission(request):
        raise JobRefused("The user who started this export may no longer see contacts.")
    try:
        return modeladmin.get_changelist_instance(request).get_queryset(request)
    except IncorrectLookupParameters:
        raise JobRefused("The contacts list's filters of this export are no longer valid.") from None


def admin_export_response(modeladmin, request, queryset, fmt: str):
    """The export of `queryset` (already scoped by the admin's get_queryset) as a download; over
    EXPORT_STREAM_MAX_ROWS contacts a background export job instead, with a message linking to
    it. None after a message when there is nothing to download now."""
    from django.urls import reverse
    from django.utils.html import format_html

    try:
        org = _admin_export_org(request, queryset)
    except ExportRefused as exc:
        modeladmin.message_user(request, str(exc), level=messages.ERROR)
        return None
    if export_is_big(queryset):
        job = export_start(org=org, actor={"user": request.user}, fmt=fmt, admin_query=_admin_query(request))
        link = reverse("admin:contacts_exportjob_change", args=[job.pk])
        modeladmin.message_user(request, format_html(
            'More than {} contacts: the export runs in the background. <a href="{}">Follow it and download '
            "the file from Exports</a>.", f"{settings.EXPORT_STREAM_MAX_ROWS:,}", link), level=messages.SUCCESS)
        return None
    return export_response(queryset, org=org, fmt=fmt)


def export_selected(modeladmin, request, queryset):
    """Admin action: the selected contacts as CSV ("Select all" exports every contact matching
    the current filters and search)."""
    return admin_export_response(modeladmin, request, queryset, "csv")


def export_selected_xlsx(modeladmin, request, queryset):
    return admin_export_response(modeladmin, request, queryset, "xlsx")


def export_selected_vcf(modeladmin, request, queryset):
    return admin_export_response(modeladmin, request, queryset, "vcf")


export_selected.short_description = "Export selected contacts (CSV)"
export_selected_xlsx.short_description = "Export selected contacts (Excel)"
export_selected_vcf.short_description = "Export selected contacts (vCard)"
for _action in (export_selected, export_selected_xlsx, export_selected_vcf):
    _action.allowed_permissions = ("view",)

EXPORT_FORMAT_PARAM = "_export_format"


def export_matching_view(modeladmin, request):
    """Admin view: every contact matching the changelist's current filters and search, as
    `?_export_format=csv|xlsx|vcf` (default csv). The rest of the query string is the
    changelist's own, so a link to this view is the changelist URL's query plus the format.

    Scoping is the changelist's: ModelAdmin.get_queryset (the user's organization), then its
    filters. Wire it with ModelAdmin.get_urls and admin_site.admin_view (see docs/exports.md).
    """
    from django.core.exceptions import PermissionDenied

    if not modeladmin.has_view_permission(request):
        raise PermissionDenied
    params = request.GET.copy()
    fmt = params.pop(EXPORT_FORMAT_PARAM, ["csv"])[-1]
    changelist_url = "../"
    if fmt not in FORMATS:
        modeladmin.message_user(request, f"'{fmt}' is not an export format; use one of {', '.join(FORMATS)}.",
                                level=messages.ERROR)
        return HttpResponseRedirect(changelist_url)
    request.GET = params
    try:
        changelist = modeladmin.get_changelist_instance(request)
    except IncorrectLookupParameters:
        modeladmin.message_user(request, "Those filters are not valid; export from the contacts list.",
                                level=messages.ERROR)
        return HttpResponseRedirect(changelist_url)
    response = admin_export_response(modeladmin, request, changelist.get_queryset(request), fmt)
    return response or HttpResponseRedirect(changelist_url + ("?" + params.urlencode() if params else ""))
