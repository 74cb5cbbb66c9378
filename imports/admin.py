"""The admin's "Import contacts" flow: upload → detected mapping and first rows (editable) →
start or dry run → a live progress bar → counters and the error report."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.http import Http404, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from contacts.normalize import slugify_custom_key
from contacts.validation import custom_field_definitions
from contacts_crm.admin_mixins import OrgScopedAdmin, admin_datetime, admin_time_zone_name
from contacts_crm.tenancy import user_organization

from .mapping import CANONICAL_FIELDS, CHANNELS, MappingError
from .models import ImportJob
from .pipeline import ImportRefused, build_preview, launch_import, open_source, start_import
from .readers.delimited import ENCODINGS
from .views import error_report_response

TARGETS = [("", "— ignore —"), *[(f, f.replace("_", " ")) for f in CANONICAL_FIELDS], ("tags", "tags"),
           *[(f"opted_out.{c}", f"opted out of {c}") for c in CHANNELS],
           ("opted_out_if_set", "opted out (when not empty)"),
           *[(f"opted_out_if_set.{c}", f"opted out of {c} (when not empty)") for c in CHANNELS],
           *[(f"subscription_status.{c}", f"{c} subscription status") for c in CHANNELS]]
SAMPLES_PER_COLUMN = 3
PREVIEW_ROWS = 10
# The mapping page counts the file's records up to this many (the reader's speed: ~0.3 s for
# 100k CSV rows); past it, it says "more than".
ROW_COUNT_CAP = 100_000
# Fields the vCard preview shows first, in this order; the others follow by name.
VCARD_FIRST = ["first_name", "last_name", "display_name", "phone", "email", "company"]


def import_status(job: ImportJob) -> tuple[str, str]:
    """(css key, label) of a job as staff read it. A finished job with failed rows is "Finished
    with errors", not a green "Succeeded": computed from the counters, nothing stored."""
    label = job.get_status_display()
    key = job.status
    if job.status == ImportJob.Status.SUCCEEDED and job.failed:
        written = job.created + job.updated + job.unchanged
        key, label = "errors", "Finished with errors" + ("" if written else " (nothing written)")
    elif job.is_stalled:  # its worker died: the stale-import check requeues it (issue 13 item 4)
        key, label = "stalled", "Stalled, resuming"
    if job.dry_run:
        label += " (dry run)"
    return key, label


def count_records(job: ImportJob, *, cap: int = ROW_COUNT_CAP) -> tuple[int, bool]:
    """(records in the job's file up to `cap`, whether there are more). One read of the file."""
    count = 0
    with job.file.open("rb") as handle:
        source = open_source(handle, fmt=job.format, has_header=job.has_header, overrides=job.mapping or None,
                             custom_unmapped=job.custom_unmapped,
                             region=job.default_region or job.organization.default_region,
                             encoding=job.encoding, sheet=job.sheet)
        for _ in source.records:
            count += 1
            if count > cap:
                return cap, True
    return count, False


def readable_contact(contact: dict) -> list[tuple[str, str]]:
    """A previewed contact as (field, text) pairs: names first, lists joined, no Python dicts."""
    def text(value):
        if isinstance(value, dict):
            return ", ".join(f"{k}: {text(v)}" for k, v in value.items())
        if isinstance(value, (list, tuple)):
            return ", ".join(map(text, value))
        return "" if value is None else str(value)

    keys = [k for k in VCARD_FIRST if contact.get(k)] + sorted(
        k for k in contact if k not in VCARD_FIRST and contact.get(k) not in (None, "", [], {}))
    return [(key.replace("_", " "), text(contact[key])) for key in keys]


def target_choices(definitions: dict, header: str, current: str = "") -> list:
    """The mapping select: canonical fields, tags, the organization's custom fields and
    "new custom field from this column" (custom.<the header as a key>)."""
    custom = [(f"custom.{key}", f"{d.label or key} (custom.{key})") for key, d in definitions.items()]
    new_key = slugify_custom_key(header) if header else ""
    if new_key and new_key not in definitions:
        custom.append((f"custom.{new_key}", f"New custom field: custom.{new_key}"))
    if current.startswith("custom.") and current not in {value for value, _ in custom}:
        custom.append((current, current))
    return [*TARGETS, ("Custom fields", custom)] if custom else list(TARGETS)


class UploadForm(forms.Form):
    file = forms.FileField(help_text="CSV, TSV/TXT, XLSX, XLS, ODS or vCard (.vcf).")
    has_header = forms.BooleanField(required=False, initial=True, label="The first row holds column names")
    default_region = forms.RegexField(r"^[A-Za-z]{2}$", required=False, max_length=2,
                                      help_text="Phone region for numbers without a country code (default: "
                                      "the organization's).")
    # imports2: the caller's encoding and sheet (kept small: the admin's look is another helper's)
    encoding = forms.ChoiceField(choices=[("", "detect")] + [(e, e) for e in ENCODINGS], required=False,
                                 help_text="Text encoding of a CSV/TSV file.")
    sheet = forms.CharField(required=False, max_length=100,
                            help_text="Workbook sheet (name or number); default: the first with contacts.")


class ConfirmForm(forms.Form):
    mode = forms.ChoiceField(choices=ImportJob.Mode.choices, initial=ImportJob.Mode.CREATE_UPDATE)
    contact_list = forms.ModelChoiceField(queryset=None, required=False, empty_label="— no list —",
                                          label="Add the contacts to the list")
    custom_unmapped = forms.BooleanField(required=False, label="Keep unmapped columns as custom fields")

    def __init__(self, *args, org, columns, **kwargs):
        super().__init__(*args, **kwargs)
        from segments.models import ContactList

        self.fields["contact_list"].queryset = ContactList.objects.for_org(org)
        self.columns = columns
        definitions = custom_field_definitions(org)
        for column in columns:
            target = column.get("target") or ""
            self.fields[f"col_{column['index']}"] = forms.ChoiceField(
                choices=target_choices(definitions, column.get("header") or "", target), required=False,
                initial=target, label=column.get("label") or column.get("header") or f"column {column['index'] + 1}")

    def mapping(self) -> dict:
        return {str(c["index"]): (self.cleaned_data.get(f"col_{c['index']}") or None) for c in self.columns}


class ImportStateFilter(admin.SimpleListFilter):
    """The states staff read (import_status): "Finished with errors" apart from "Succeeded"."""

    title = "status"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("succeeded", "Succeeded"), ("errors", "Finished with errors"), *[
            (value, label) for value, label in ImportJob.Status.choices if value != ImportJob.Status.SUCCEEDED]]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "succeeded":
            return queryset.filter(status=value, failed=0)
        if value == "errors":
            return queryset.filter(status=ImportJob.Status.SUCCEEDED, failed__gt=0)
        if value in ImportJob.Status.values:
            return queryset.filter(status=value)
        return queryset


@admin.register(ImportJob)
class ImportJobAdmin(OrgScopedAdmin):
    list_display = ["file_name", "status_badge", "progress_column", "created", "updated", "unchanged", "failed",
                    "who", "started"]
    list_filter = [ImportStateFilter, "format", "dry_run"]
    search_fields = ["file_name"]
    change_list_template = "admin/imports/importjob/change_list.html"
    change_form_template = "admin/imports/importjob/progress.html"

    actions = ["resume_imports", "revert_imports"]

    @admin.action(description="Resume the selected imports that stopped on an error")
    def resume_imports(self, request, queryset):
        from .pipeline import import_resume

        self._each(request, queryset, import_resume, "queued to resume")

    @admin.action(description="Revert (undo) the selected finished imports")
    def revert_imports(self, request, queryset):
        from .revert import import_revert_start

        self._each(request, queryset, import_revert_start, "queued to be reverted (opt-outs stay)")

    def _each(self, request, queryset, start, done: str):
        for job in queryset:
            try:
                start(job)
                self.message_user(request, f"{job}: {done}.", messages.SUCCESS)
            except ImportRefused as exc:
                self.message_user(request, f"{job}: {exc}", messages.ERROR)

    def has_add_permission(self, request):
        return False  # the upload page creates jobs

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by", "created_by_key")

    @admin.display(description="Status", ordering="status")
    def status_badge(self, job):
        colors = {"succeeded": "#2a7", "failed": "#c33", "running": "#27c", "queued": "#888", "draft": "#aa7",
                  "errors": "#c60", "stalled": "#c60"}
        key, label = import_status(job)
        return format_html('<b style="color:{}" class="import-status status-{}">{}</b>', colors.get(key, "#333"),
                           key, label)

    @admin.display(description="Started", ordering="created_at")
    def started(self, job):
        return admin_datetime(job.created_at)

    @admin.display(description="Progress")
    def progress_column(self, job):
        return f"{job.percent}%"

    @admin.display(description="Run by")
    def who(self, job):
        if job.created_by_id:
            return job.created_by.get_username()
        if job.created_by_key_id:
            return f"API key {job.created_by_key.name}"
        return "command line"

    def get_urls(self):
        urls = [
            path("upload/", self.admin_site.admin_view(self.upload_view), name="imports_importjob_upload"),
            path("<int:pk>/confirm/", self.admin_site.admin_view(self.confirm_view), name="imports_importjob_confirm"),
            path("<int:pk>/status/", self.admin_site.admin_view(self.status_view), name="imports_importjob_status"),
            path("<int:pk>/errors.csv", self.admin_site.admin_view(self.errors_view),
                 name="imports_importjob_errors"),
            path("<int:pk>/run-for-real/", self.admin_site.admin_view(self.run_for_real_view),
                 name="imports_importjob_run_for_real"),
        ]
        return urls + super().get_urls()

    def _job(self, request, pk) -> ImportJob:
        job = self.get_queryset(request).filter(pk=pk).first()
        if job is None:
            raise Http404("No such import.")
        return job

    def _context(self, request, **extra):
        return {**self.admin_site.each_context(request), "opts": self.model._meta, **extra}

    def upload_view(self, request):
        if not self.has_view_permission(request):
            raise Http404
        org = user_organization(request.user)
        if org is None:
            messages.error(request, "Only staff of an organization can import contacts (superusers: log in as one).")
            return redirect("admin:imports_importjob_changelist")
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                with transaction.atomic():
                    job = start_import(org=org, uploaded=upload, file_name=upload.name,
                                       has_header=form.cleaned_data["has_header"],
                                       default_region=form.cleaned_data["default_region"] or "",
                                       user=request.user, launch=False, encoding=form.cleaned_data["encoding"],
                                       sheet=form.cleaned_data["sheet"])
            except ImportRefused as exc:
                form.add_error("file", str(exc))
            else:
                count, more = count_records(job)
                job.preview = {**job.preview, "row_count": count, "row_count_more": more}
                job.save(update_fields=["preview"])
                return redirect("admin:imports_importjob_confirm", job.pk)
        return TemplateResponse(request, "admin/imports/importjob/upload.html",
                                self._context(request, form=form, title="Import contacts"))

    def confirm_view(self, request, pk):
        job = self._job(request, pk)
        if job.status != ImportJob.Status.DRAFT:
            return redirect("admin:imports_importjob_change", job.pk)
        columns = job.preview.get("mapping", [])
        tabular = job.format != "vcf"
        form = ConfirmForm(request.POST or None, org=job.organization, columns=columns if tabular else [])
        if request.method == "POST" and form.is_valid():
            mapping = form.mapping() if tabular else {}
            if "_preview" in request.POST or mapping != _current_mapping(columns):
                previous = job.preview
                try:
                    with job.file.open("rb") as handle:
                        job.preview = build_preview(
                            handle, fmt=job.format, has_header=job.has_header, overrides=mapping,
                            custom_unmapped=form.cleaned_data["custom_unmapped"],
                            region=job.default_region or job.organization.default_region,
                            definitions=custom_field_definitions(job.organization), limit=PREVIEW_ROWS,
                            encoding=job.encoding, sheet=job.sheet)
                    job.preview["row_count"] = previous.get("row_count")
                    job.preview["row_count_more"] = previous.get("row_count_more")
                    job.mapping = mapping
                    job.custom_unmapped = form.cleaned_data["custom_unmapped"]
                    job.save(update_fields=["preview", "mapping", "custom_unmapped"])
                except (ImportRefused, MappingError) as exc:
                    messages.error(request, str(exc))
                if "_preview" in request.POST:
                    return redirect("admin:imports_importjob_confirm", job.pk)
            contact_list = form.cleaned_data.get("contact_list")
            with transaction.atomic():
                launch_import(job, mode=form.cleaned_data["mode"], dry_run="_dry_run" in request.POST,
                              contact_list_id=contact_list.pk if contact_list else None,
                              custom_unmapped=form.cleaned_data["custom_unmapped"])
            return redirect("admin:imports_importjob_change", job.pk)
        rows = job.preview.get("rows", [])
        column_rows = []
        if tabular:
            for c in columns:
                values = [row["cells"][c["index"]] for row in rows
                          if c["index"] < len(row.get("cells", [])) and str(row["cells"][c["index"]]).strip()]
                column_rows.append({"header": c.get("header") or c.get("label") or f"column {c['index'] + 1}",
                                    "samples": values[:SAMPLES_PER_COLUMN], "field": form[f"col_{c['index']}"]})
        failing = [row for row in rows if row.get("status") == "error"]
        return TemplateResponse(request, "admin/imports/importjob/confirm.html", self._context(
            request, job=job, form=form, rows=rows, column_rows=column_rows, failing=failing, tabular=tabular,
            empty_columns=sum(1 for c in column_rows if not c["samples"]),
            cards=[{**row, "fields": readable_contact(row.get("contact") or {})} for row in rows],
            row_count=job.preview.get("row_count"), row_count_more=job.preview.get("row_count_more"),
            title=f"Import {job.file_name}: check the columns"))

    def status_view(self, request, pk):
        job = self._job(request, pk)
        return JsonResponse({
            "status": job.status, "status_display": job.get_status_display(), "phase": job.get_phase_display(),
            "percent": job.percent, "finished": job.is_finished, "error": job.error, "dry_run": job.dry_run,
            "rows_read": job.rows_read, "processed": job.processed,
            "partitions": job.partitions.count(), "partitions_done": job.partitions.filter(done=True).count(),
            # Mid-run "rows" is what was read so far: the written counters catch up with it.
            "status_key": import_status(job)[0], "status_label": import_status(job)[1],
            "counters": {"total": job.total if job.is_finished else job.rows_read,
                         **{n: getattr(job, n) for n in job.COUNTERS}, "warnings": job.warnings},
            "errors_url": reverse("admin:imports_importjob_errors", args=[job.pk]),
            "has_errors": job.row_errors.exists(),
        })

    def errors_view(self, request, pk):
        return error_report_response(self._job(request, pk))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_queryset(request).filter(pk=object_id).first() if str(object_id).isdigit() else None
        if job is None:
            # Django's own answer to a missing object (another organization's job is missing to you).
            return self._get_obj_does_not_exist_redirect(request, self.model._meta, str(object_id))
        if job.status == ImportJob.Status.DRAFT:
            return redirect("admin:imports_importjob_confirm", job.pk)
        status_key, status_label = import_status(job)
        return TemplateResponse(request, self.change_form_template, self._context(
            request, job=job, title=f"Import {job.pk}: {job.file_name}",
            status_key=status_key, status_label=status_label, time_zone_name=admin_time_zone_name(),
            partitions_done=job.partitions.filter(done=True).count(),
            started=admin_datetime(job.started_at or job.created_at), finished=admin_datetime(job.finished_at),
            can_run_for_real=_can_run_for_real(job), real_run=_real_run_of(job),
            status_url=reverse("admin:imports_importjob_status", args=[job.pk]),
            errors=job.row_errors.order_by("line", "id")[:50]))

    def run_for_real_view(self, request, pk):
        """A finished dry run started again for real, from the same stored file and choices."""
        job = self._job(request, pk)
        if request.method != "POST":
            return redirect("admin:imports_importjob_change", job.pk)
        if not _can_run_for_real(job):
            messages.error(request, "Only a finished dry run can be started for real, once.")
            return redirect("admin:imports_importjob_change", job.pk)
        # lead: a pipeline-level "start_import_from(job)" would let the API offer this too.
        with transaction.atomic():
            real = ImportJob.objects.create(
                organization=job.organization, file=job.file.name, file_name=job.file_name, file_size=job.file_size,
                format=job.format, mode=job.mode, has_header=job.has_header, mapping=job.mapping,
                custom_unmapped=job.custom_unmapped, default_region=job.default_region,
                contact_list_id=job.contact_list_id, preview=job.preview, status=ImportJob.Status.DRAFT,
                created_by=request.user if request.user.pk else None)
            launch_import(real, dry_run=False)
        return redirect("admin:imports_importjob_change", real.pk)


def _can_run_for_real(job: ImportJob) -> bool:
    return job.dry_run and job.status == ImportJob.Status.SUCCEEDED and _real_run_of(job) is None


def _real_run_of(job: ImportJob) -> ImportJob | None:
    """The real import started from this dry run's file, if any (one query)."""
    if not job.dry_run or not job.file:
        return None
    return ImportJob.objects.filter(organization=job.organization_id, file=job.file.name, dry_run=False,
                                    created_at__gte=job.created_at).order_by("created_at").first()


def _current_mapping(columns) -> dict:
    return {str(c["index"]): c.get("target") or None for c in columns}
