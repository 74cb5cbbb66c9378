from __future__ import annotations

import json

from rest_framework import serializers

from .models import ImportJob, ImportRowError


class ImportCreateSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV, TSV/TXT, XLSX, XLS, ODS or vCard (.vcf).")
    mode = serializers.ChoiceField(choices=ImportJob.Mode.choices, default=ImportJob.Mode.CREATE_UPDATE)
    has_header = serializers.BooleanField(default=True)
    list_id = serializers.IntegerField(required=False, allow_null=True, help_text="Add the contacts to this list.")
    mapping = serializers.CharField(
        required=False, allow_blank=True,
        help_text='JSON object: column header (or 0-based index) → field, e.g. {"Cell": "phone", "Notes": null}.',
    )
    custom_unmapped = serializers.BooleanField(default=False, help_text="Unmapped columns become custom fields.")
    default_region = serializers.RegexField(r"^[A-Za-z]{2}$", required=False, allow_blank=True,
                                            help_text="Phone region for numbers without a country code.")
    preview_limit = serializers.IntegerField(default=10, min_value=0, max_value=100)
    dry_run = serializers.BooleanField(default=False, help_text="Report what would happen; write nothing.")

    def validate_mapping(self, value):
        if not value:
            return {}
        try:
            mapping = json.loads(value)
        except ValueError:
            raise serializers.ValidationError("mapping must be a JSON object.") from None
        if not isinstance(mapping, dict) or not all(isinstance(v, (str, type(None))) for v in mapping.values()):
            raise serializers.ValidationError('mapping must be a JSON object of column → field (or null).')
        return mapping


class ImportJobSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    counters = serializers.SerializerMethodField()
    list_id = serializers.IntegerField(source="contact_list_id", read_only=True, allow_null=True)
    errors_url = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = ["id", "file_name", "format", "mode", "has_header", "mapping", "custom_unmapped", "default_region",
                  "list_id", "dry_run", "status", "error", "progress", "counters", "preview", "result",
                  "errors_url", "created_at", "started_at", "finished_at"]

    def get_progress(self, job) -> dict:
        return {"phase": job.phase, "percent": job.percent, "rows_read": job.rows_read,
                "processed": job.processed, "groups_total": job.groups_total, "groups_done": job.groups_done}

    def get_counters(self, job) -> dict:
        counters = {name: getattr(job, name) for name in ImportJob.COUNTERS}
        return {"total": job.total if job.is_finished else sum(counters.values()), **counters,
                "warnings": job.warnings}

    def get_errors_url(self, job) -> str:
        return f"/api/v1/imports/{job.pk}/errors.csv"


class ImportRowErrorSerializer(serializers.ModelSerializer):
    class Meta:
        model = ImportRowError
        fields = ["id", "line", "column", "value", "message", "severity", "code"]
