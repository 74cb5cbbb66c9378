"""`/api/v1/exports`: background export jobs (contacts.export_jobs) — start, follow, download."""

from __future__ import annotations

from django.db import transaction
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.response import Response

from contacts_crm.api.pagination import paginate, paging_parameters
from contacts_crm.api.permissions import request_actor
from contacts_crm.api.schema import page_serializer

from .export_jobs import export_file, export_start
from .exports import CONTENT_TYPES, FORMATS
from .models import ExportJob
from .views import OrgViewMixin


def export_job_url(job: ExportJob) -> str:
    return f"/api/v1/exports/{job.pk}"


class ExportJobSerializer(serializers.ModelSerializer):
    filters = serializers.DictField(source="params", child=serializers.CharField(), read_only=True,
                                    help_text="The filters exported, as GET /contacts/export takes them.")
    progress = serializers.IntegerField(source="progress_percent", read_only=True, allow_null=True,
                                        help_text="Percent of rows_total written; null until the job counted.")
    url = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ExportJob
        fields = ["id", "format", "filters", "status", "rows_done", "rows_total", "progress", "error", "url",
                  "download_url", "created_at", "started_at", "finished_at", "expires_at"]

    def get_url(self, job) -> str:
        return export_job_url(job)

    def get_download_url(self, job) -> str | None:
        """The file, while the job has succeeded and its link has not expired; else null."""
        return f"{export_job_url(job)}/download" if job.is_downloadable else None


class ExportCreateSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=list(FORMATS), default="csv")
    filters = serializers.DictField(child=serializers.CharField(allow_blank=True, max_length=10_000), required=False,
                                    help_text='The filters of GET /contacts/export, e.g. {"tags": "vip", '
                                    '"state": "NC,SC"} or {"segment": "12"}.')


def export_job_accepted(job: ExportJob) -> Response:
    """202 with the job and its URL in Location."""
    response = Response(ExportJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)
    response["Location"] = export_job_url(job)
    return response


class ExportViewSet(OrgViewMixin, viewsets.GenericViewSet):
    """Background exports: any size, downloaded within EXPORT_LINK_HOURS of finishing."""

    serializer_class = ExportJobSerializer
    lookup_value_regex = r"[0-9]{1,18}"  # ASCII: \d also matches "٣"
    parser_classes = [JSONParser]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ExportJob.objects.none()
        return ExportJob.objects.for_org(self.org)

    @extend_schema(request=ExportCreateSerializer, responses={202: ExportJobSerializer, 400: OpenApiResponse(
        description="A bad format or filter, named in error.fields.")},
        description="Starts a background export of the contacts matching `filters` (any size). Answers 202 "
        "with the job; follow it at `url`, download the file from `download_url` once it has succeeded.")
    def create(self, request):
        serializer = ExportCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with transaction.atomic():
            job = export_start(org=self.org, actor=request_actor(request), fmt=data["format"],
                               params=data.get("filters") or {})
        return export_job_accepted(job)

    @extend_schema(parameters=paging_parameters(("-id", "id")), responses=page_serializer(ExportJobSerializer))
    def list(self, request):
        page = paginate(request, self.get_queryset(), sorts=("-id", "id"))
        return Response(page.body(ExportJobSerializer(page.items, many=True).data))

    def retrieve(self, request, pk=None):
        return Response(ExportJobSerializer(get_object_or_404(self.get_queryset(), pk=pk)).data)

    @extend_schema(responses={(200, content_type.split(";")[0]): OpenApiTypes.BINARY
                              for content_type in CONTENT_TYPES.values()}
                   | {409: OpenApiResponse(description="The export has not succeeded (queued, running or failed)."),
                      410: OpenApiResponse(description="The download link has expired; the file is deleted.")},
                   description="The exported file, while the link is valid (EXPORT_LINK_HOURS after it finished).")
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        return export_download_response(get_object_or_404(self.get_queryset(), pk=pk))


def export_download_response(job: ExportJob) -> FileResponse:
    """The job's file as an attachment (the API's and the admin's download). Raises as
    export_file does: contacts_crm/api/errors.py answers 410 or 409."""
    response = FileResponse(export_file(job), content_type=CONTENT_TYPES[job.format], as_attachment=True,
                            filename=job.file.name.rsplit("/", 1)[-1])
    response["Cache-Control"] = "no-store"  # personal data: no proxy or browser cache keeps a copy
    return response
