from __future__ import annotations

from rest_framework import serializers

from contacts.validation import JSON_INT_RANGE, JSONInputError, loads_json

from .models import ImportChange, ImportJob, ImportRowError
from .readers.base import ReaderError
from .readers.delimited import ENCODINGS, check_encoding


class ImportCreateSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="CSV, TSV/TXT, XLSX, XLS, ODS or vCard (.vcf).")
    mode = serializers.ChoiceField(choices=ImportJob.Mode.choices, default=ImportJob.Mode.CREATE_UPDATE)
    has_header = serializers.BooleanField(default=True)
    list_id = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=JSON_INT_RANGE - 1,
                                       help_text="Add the contacts to this list.")
    mapping = serializers.CharField(
        required=False, allow_blank=True,
        help_text='JSON object: column header (or 0-based index) → field, e.g. {"Cell": "phone", "Notes": null}.',
    )
    custom_unmapped = serializers.BooleanField(default=False, help_text="Unmapped columns become custom fields.")
    default_region = serializers.RegexField(r"^[A-Za-z]{2}$", required=False, allow_blank=True,
                                            help_text="Phone region for numbers without a country code.")
    preview_limit = serializers.IntegerField(default=10, min_value=0, max_value=100)
    dry_run = serializers.BooleanField(default=False, help_text="Report what would happen; write nothing.")
    encoding = serializers.CharField(required=False, allow_blank=True, max_length=32,
                                     help_text="Text encoding of a CSV/TSV file, detected when omitted: one of "
                                     f"{', '.join(ENCODINGS)}.")
    sheet = serializers.CharField(required=False, allow_blank=True, max_length=100,
                                  help_text="Workbook sheet: its name or 1-based number; default: the first "
                                  "sheet whose header names a phone or email column.")

    def validate_encoding(self, value):
        if not value:
            return ""
        try:
            return check_encoding(value)
        except ReaderError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate_mapping(self, value):
        if not value:
            return {}
        try:
            mapping = loads_json(value)  # bounded: depth checked before parsing, numbers finite
        except JSONInputError as exc:
            raise serializers.ValidationError(f"mapping: {exc}") from None
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
    revert = serializers.SerializerMethodField()
    stalled = serializers.BooleanField(source="is_stalled", read_only=True,
                                       help_text="Running, but its worker stopped answering: it is being resumed.")

    class Meta:
        model = ImportJob
        fields = ["id", "file_name", "format", "mode", "has_header", "mapping", "custom_unmapped", "default_region",
                  "list_id", "dry_run", "encoding", "sheet", "status", "stalled", "error", "progress", "counters",
                  "preview", "result", "errors_url", "created_at", "started_at", "finished_at", "heartbeat_at", "reverted_at", "revert"]

    def get_progress(self, job) -> dict:
        """Phase and counts; `partitions`: the writing phase's shares (docs/imports.md), each with
        its groups and how many workers wrote it."""
        return {"phase": job.phase, "percent": job.percent, "rows_read": job.rows_read,
                "processed": job.processed, "groups_total": job.groups_total, "groups_done": job.groups_done,
                "partitions": [{"number": p.number, "groups_total": p.groups_total, "groups_done": p.groups_done,
                                "done": p.done, "workers": len(p.runners)} for p in job.partitions.all()]}

    def get_counters(self, job) -> dict:
        counters = {name: getattr(job, name) for name in ImportJob.COUNTERS}
        return {"total": job.total if job.is_finished else sum(counters.values()), **counters,
                "warnings": job.warnings}

    def get_revert(self, job) -> dict | None:
        """The undo: {"status": queued|running|done, "reverted", "kept", "skipped"}, or null."""
        if not job.revert_status:
            return None
        return {"status": job.revert_status, **job.revert_counters}

    def get_errors_url(self, job) -> str:
        return f"/api/v1/imports/{job.pk}/errors.csv"


class ImportRowErrorSerializer(serializers.ModelSerializer):
    class Meta:
        model = ImportRowError
        fields = ["id", "line", "column", "value", "message", "severity", "code"]


class ImportChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = ImportChange
        fields = ["id", "contact_id", "outcome", "before", "after", "tags_added"]
