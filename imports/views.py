from __future__ import annotations

import csv

from django.db import transaction
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from contacts.views import OrgViewMixin
from contacts_crm.api.errors import Conflict
from contacts_crm.api.pagination import paginate, paging_parameters
from contacts_crm.api.permissions import request_actor
from contacts_crm.api.schema import page_serializer

from .models import ImportChange, ImportJob, ImportRowError
from .pipeline import ImportRefused, import_resume, start_import
from .serializers import ImportChangeSerializer, ImportCreateSerializer, ImportJobSerializer, ImportRowErrorSerializer


class Echo:
    def write(self, value):
        return value


def error_report_rows(job: ImportJob):
    """The error report: the original row plus the problems, one line per record (streamed).

    A person fixes the cells and re-uploads just these rows: the columns are the file's own.
    """
    header = list((job.preview or {}).get("header") or [])
    if job.format == "vcf" or not header:
        yield ["line", "column", "value", "severity", "message"]
        for e in job.row_errors.order_by("line", "id").iterator(chunk_size=2000):
            yield [e.line, e.column, e.value, e.severity, e.message]
        return
    yield [*header, "import_line", "import_errors"]
    current, cells, messages = None, None, []
    for e in job.row_errors.order_by("line", "id").iterator(chunk_size=2000):
        if e.line != current:
            if current is not None:
                yield [*_pad(cells, len(header)), current, "; ".join(messages)]
            current, cells, messages = e.line, e.cells or [], []
        if e.cells and not cells:
            cells = e.cells
        where = f"{e.column}: " if e.column else ""
        messages.append(f"{e.severity}: {where}{e.message}")
    if current is not None:
        yield [*_pad(cells, len(header)), current, "; ".join(messages)]


def _pad(cells, width):
    cells = list(cells or [])
    return cells + [""] * (width - len(cells)) if len(cells) < width else cells


class ImportViewSet(OrgViewMixin, viewsets.GenericViewSet):
    """Imports: upload a file, follow the job, download the error report."""

    serializer_class = ImportJobSerializer
    lookup_value_regex = r"[0-9]{1,18}"  # ASCII: \d also matches "٣"
    parser_classes = [MultiPartParser, FormParser]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ImportJob.objects.none()
        return ImportJob.objects.for_org(self.org).prefetch_related("partitions")

    @extend_schema(request={"multipart/form-data": ImportCreateSerializer},
                   responses={202: ImportJobSerializer, 400: OpenApiResponse(description="The file is refused.")},
                   description="Uploads a file and starts the import job (the RQ `default` queue). Answers 202 "
                   "with the job, the detected mapping and the first parsed rows (`preview`).")
    def create(self, request):
        serializer = ImportCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        org = self.org
        contact_list = None
        if data.get("list_id") is not None:
            from segments.models import ContactList

            contact_list = ContactList.objects.for_org(org).filter(pk=data["list_id"]).first()
            if contact_list is None:
                raise ValidationError({"list_id": [f"No list with id {data['list_id']} in this organization."]})
        actor = request_actor(request)
        upload = data["file"]
        try:
            with transaction.atomic():
                job = start_import(
                    org=org, uploaded=upload, file_name=upload.name, mode=data["mode"], has_header=data["has_header"],
                    mapping=data.get("mapping") or {}, custom_unmapped=data["custom_unmapped"],
                    default_region=data.get("default_region") or "", contact_list=contact_list,
                    dry_run=data["dry_run"], preview_limit=data["preview_limit"], user=actor.get("user"),
                    api_key=actor.get("api_key"), encoding=data.get("encoding") or "", sheet=data.get("sheet") or "",
                )
        except ImportRefused as exc:
            raise ValidationError({"file": [str(exc)]}) from None
        job.refresh_from_db()
        return Response(ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(parameters=paging_parameters(("-id", "id")), responses=page_serializer(ImportJobSerializer))
    def list(self, request):
        page = paginate(request, self.get_queryset(), sorts=("-id", "id"))
        return Response(page.body(ImportJobSerializer(page.items, many=True).data))

    def retrieve(self, request, pk=None):
        return Response(ImportJobSerializer(get_object_or_404(self.get_queryset(), pk=pk)).data)

    @extend_schema(parameters=[OpenApiParameter("severity", OpenApiTypes.STR, enum=["error", "warning"]),
                               *paging_parameters(("id", "-id"))],
                   responses=page_serializer(ImportRowErrorSerializer))
    @action(detail=True, methods=["get"])
    def errors(self, request, pk=None):
        job = get_object_or_404(self.get_queryset(), pk=pk)
        qs = ImportRowError.objects.filter(job=job)
        severity = request.query_params.get("severity")
        if severity is not None:
            if severity not in ("error", "warning"):
                raise ValidationError({"severity": [f"'{severity}' is not error or warning."]})
            qs = qs.filter(severity=severity)
        page = paginate(request, qs, sorts=("id", "-id"))
        return Response(page.body(ImportRowErrorSerializer(page.items, many=True).data))

    @extend_schema(parameters=paging_parameters(("id", "-id")), responses=page_serializer(ImportChangeSerializer),
                   description="What the import did to each contact it wrote: `before` and `after` hold the "
                   "changed fields' values (empty for a created contact), `tags_added` the tags it added.")
    @action(detail=True, methods=["get"])
    def changes(self, request, pk=None):
        job = get_object_or_404(self.get_queryset(), pk=pk)
        page = paginate(request, ImportChange.objects.filter(job=job), sorts=("id", "-id"))
        return Response(page.body(ImportChangeSerializer(page.items, many=True).data))

    @extend_schema(request=None, responses={202: ImportJobSerializer,
                                            409: OpenApiResponse(description="The import did not stop on an error.")},
                   description="Resumes an import that stopped on an error from its last committed chunk; it "
                   "ends in the state of an uninterrupted run.")
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        job = get_object_or_404(self.get_queryset(), pk=pk)
        try:
            job = import_resume(job)
        except ImportRefused as exc:
            raise Conflict(str(exc)) from None
        job.refresh_from_db()
        return Response(ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: ImportJobSerializer, 409: OpenApiResponse(
        description="The import is not finished, was a dry run, or is already reverted.")},
        description="Queues the undo of a finished import: contacts it created go to the trash, fields it "
        "updated get their old values back, the tags and list memberships it added are removed, unless they "
        "changed after it. An opt-out is never reverted. `GET /imports/{id}` then shows `reverted_at` and "
        "`revert` counters (reverted, kept, skipped).")
    @action(detail=True, methods=["post"])
    def revert(self, request, pk=None):
        from .revert import import_revert_start

        job = get_object_or_404(self.get_queryset(), pk=pk)
        try:
            job = import_revert_start(job)
        except ImportRefused as exc:
            raise Conflict(str(exc)) from None
        job.refresh_from_db()
        return Response(ImportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"], url_path="errors.csv")
    def errors_csv(self, request, pk=None):
        job = get_object_or_404(self.get_queryset(), pk=pk)
        return error_report_response(job)


def error_report_response(job: ImportJob) -> StreamingHttpResponse:
    writer = csv.writer(Echo())
    rows = (writer.writerow(row) for row in error_report_rows(job))
    body = _with_bom(rows)
    response = StreamingHttpResponse(body, content_type="text/csv; charset=utf-8")
    stem = job.file_name.rsplit(".", 1)[0] or "import"
    response["Content-Disposition"] = f'attachment; filename="{stem}-errors-{job.pk}.csv"'
    return response


def _with_bom(rows):
    yield "\ufeff"  # Excel reads accents right only with the BOM
    yield from rows
