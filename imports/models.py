from __future__ import annotations

from django.conf import settings
from django.db import models

from contacts_crm.models import Organization
from contacts_crm.tenancy import OrgQuerySet


def upload_path(job, filename):
    return f"imports/{job.organization_id}/{filename}"


class ImportJob(models.Model):
    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        TSV = "tsv", "Tab-separated"
        XLSX = "xlsx", "Excel (.xlsx)"
        XLS = "xls", "Excel 97-2003 (.xls)"
        ODS = "ods", "OpenDocument (.ods)"
        VCF = "vcf", "vCard"

    class Mode(models.TextChoices):
        CREATE_UPDATE = "create_update", "Create new and update existing"
        CREATE_ONLY = "create_only", "Create new only"
        UPDATE_ONLY = "update_only", "Update existing only"

    class Status(models.TextChoices):
        DRAFT = "draft", "Previewed, not started"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Phase(models.TextChoices):
        QUEUED = "queued", "Queued"
        READING = "reading", "Reading the file"
        WRITING = "writing", "Writing contacts"
        DONE = "done", "Done"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="imports")
    file = models.FileField(upload_to=upload_path, max_length=300)
    file_name = models.CharField(max_length=255, help_text="The name the file was uploaded with.")
    file_size = models.BigIntegerField(default=0)
    format = models.CharField(max_length=8, choices=Format.choices)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.CREATE_UPDATE)
    has_header = models.BooleanField(default=True)
    mapping = models.JSONField(default=dict, blank=True, help_text="Column overrides: header or index → field.")
    custom_unmapped = models.BooleanField(default=False, help_text="Unmapped columns become custom fields.")
    default_region = models.CharField(max_length=2, blank=True, default="", help_text="Phone region for this file.")
    contact_list_id = models.BigIntegerField(null=True, blank=True, help_text="Add every imported contact to this list.")
    dry_run = models.BooleanField(default=False)
    encoding = models.CharField(max_length=16, blank=True, default="",
                                help_text="Text encoding the caller chose for a delimited file; empty: detected.")
    sheet = models.CharField(max_length=100, blank=True, default="",
                             help_text="The workbook sheet read (the caller's choice, else the first with contacts).")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    phase = models.CharField(max_length=16, choices=Phase.choices, default=Phase.QUEUED)
    error = models.TextField(blank=True, default="", help_text="Why the whole file was refused.")
    # progress
    bytes_read = models.BigIntegerField(default=0)
    rows_read = models.IntegerField(default=0)
    groups_total = models.IntegerField(default=0)
    groups_done = models.IntegerField(default=0, help_text="Groups written and committed.")
    # counters (design §6): contacts for created/updated/unchanged, rows for the rest
    total = models.IntegerField(default=0)
    processed = models.IntegerField(default=0)
    created = models.IntegerField(default=0)
    updated = models.IntegerField(default=0)
    unchanged = models.IntegerField(default=0)
    merged = models.IntegerField(default=0)
    restored = models.IntegerField(default=0, help_text="Contacts taken out of the trash by a row.")
    skipped = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    warnings = models.IntegerField(default=0)
    preview = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True, help_text="Dry run: what would happen, per row.")
    attempts = models.IntegerField(default=0)
    reverted_at = models.DateTimeField(null=True, blank=True, help_text="When an undo of this import finished.")
    revert_status = models.CharField(max_length=16, blank=True, default="",
                                     help_text="queued | running | done: the undo job (POST /imports/{id}/revert).")
    revert_counters = models.JSONField(default=dict, blank=True,
                                       help_text="The undo's counters: reverted, kept (changed since), skipped.")
    runner = models.CharField(max_length=36, blank=True, default="", editable=False,
                              help_text="The token of the process running the job; a requeued job gets a new one.")
    heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False,
                                        help_text="Last sign of life of the running job (each chunk, while reading).")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by_key = models.ForeignKey(
        "contacts_crm.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = OrgQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"Import {self.pk}: {self.file_name}"

    COUNTERS = ("created", "updated", "unchanged", "restored", "merged", "skipped", "failed")

    @property
    def percent(self) -> int:
        """Reading is the first 30% of the bar, writing the rest."""
        if self.status in (self.Status.SUCCEEDED, self.Status.FAILED):
            return 100
        if self.phase == self.Phase.READING:
            return int(30 * min(1.0, self.bytes_read / self.file_size)) if self.file_size else 0
        if self.phase == self.Phase.WRITING:
            return 30 + int(70 * (self.groups_done / self.groups_total)) if self.groups_total else 30
        return 0

    @property
    def is_stalled(self) -> bool:
        """Running, but its worker has given no sign of life for IMPORT_STALE_SECONDS: it is
        requeued by the next stale-import check and resumes by itself."""
        from datetime import timedelta

        from django.conf import settings
        from django.utils import timezone

        beat = self.heartbeat_at or self.started_at
        return (self.status == self.Status.RUNNING and beat is not None
                and beat < timezone.now() - timedelta(seconds=settings.IMPORT_STALE_SECONDS))

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)


class ImportRowError(models.Model):
    class Severity(models.TextChoices):
        ERROR = "error", "Error"
        WARNING = "warning", "Warning"

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="row_errors")
    line = models.IntegerField(help_text="Line (or card) where the record starts.")
    column = models.CharField(max_length=255, blank=True, default="")
    value = models.TextField(blank=True, default="")
    message = models.TextField()
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.ERROR)
    code = models.CharField(max_length=32, blank=True, default="")
    cells = models.JSONField(null=True, blank=True, help_text="The record's original cells (first error of a line).")

    class Meta:
        ordering = ["line", "id"]
        indexes = [models.Index(fields=["job", "line", "id"], name="import_error_by_line")]

    def __str__(self):
        return f"line {self.line} {self.column}: {self.message}"


class ImportPartition(models.Model):
    """One share of an import's writing phase: the fold groups whose first row's seq lies in
    [first_seq, last_seq]. Workers claim partitions (`runner`), so several RQ workers write one
    import at once; each partition resumes from its own last committed chunk (`resume_seq`)."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="partitions")
    number = models.SmallIntegerField()
    first_seq = models.IntegerField(help_text="The first group's seq in this partition.")
    last_seq = models.IntegerField(help_text="The last group's seq in this partition.")
    groups_total = models.IntegerField(default=0)
    groups_done = models.IntegerField(default=0)
    resume_seq = models.IntegerField(default=-1, help_text="Resume point: the last committed group's first row.")
    done = models.BooleanField(default=False)
    runner = models.CharField(max_length=36, blank=True, default="",
                              help_text="The token of the runner writing this partition; empty: free to claim.")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    chunks = models.IntegerField(default=0, help_text="Chunks committed (over every runner).")
    runners = models.JSONField(default=list, blank=True, help_text="The workers that wrote chunks of it (hostname:pid).")

    class Meta:
        ordering = ["job", "number"]
        constraints = [models.UniqueConstraint(fields=["job", "number"], name="import_partition_unique")]

    def __str__(self):
        return f"{self.job_id}/{self.number}"


class StagedRow(models.Model):
    """One normalized row of a running import (deleted when the job ends).

    Staging lets the whole file fold by phone and email in SQL, in constant memory, and lets a
    retried job resume after the rows already written.
    """

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="+")
    seq = models.IntegerField(help_text="Order in the file.")
    line = models.IntegerField()
    phone = models.CharField(max_length=20, null=True)
    email_key = models.CharField(max_length=254, null=True)
    group_seq = models.IntegerField(null=True, help_text="The seq of the first row of its fold group.")
    data = models.JSONField()
    cells = models.JSONField(default=list, help_text="The original cells, for the error report.")

    class Meta:
        indexes = [
            models.Index(fields=["job", "phone"], name="staged_by_phone"),
            models.Index(fields=["job", "email_key"], name="staged_by_email"),
            models.Index(fields=["job", "group_seq", "seq"], name="staged_by_group"),
        ]
        constraints = [models.UniqueConstraint(fields=["job", "seq"], name="staged_unique_seq")]

    def __str__(self):
        return f"{self.job_id}:{self.seq}"


class ImportChange(models.Model):
    """Provenance for undo: what one import did to one contact, written in the chunk's own
    transaction. `before`/`after` hold the changed fields' values ({} for a created contact)."""

    class Outcome(models.TextChoices):
        CREATED = "created"
        UPDATED = "updated"
        RESTORED = "restored", "restored from the trash"

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="changes")
    contact_id = models.UUIDField(help_text="The contact written (no foreign key: the record outlives a purge).")
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    tags_added = models.JSONField(default=list, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["job", "id"], name="import_change_by_job"),
            models.Index(fields=["contact_id"], name="import_change_by_contact"),
        ]

    def __str__(self):
        return f"{self.job_id}: {self.outcome} {self.contact_id}"
