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

from contacts_crm.admin_mixins import OrgScopedAdmin
from contacts_crm.tenancy import user_organization

from .mapping import CANONICAL_FIELDS, CHANNELS, MappingError
from .models import ImportJob
from .pipeline import ImportRefused, build_preview, launch_import, start_import
from .readers.delimited import ENCODINGS
from .views import error_report_response

TARGETS = [("", "— ignore —"), *[(f, f.replace("_", " ")) for f in CANONICAL_FIELDS], ("tags", "tags"),
           *[(f"opted_out.{c}", f"opted out of {c}") for c in CHANNELS],
           ("opted_out_if_set", "opted out (when not empty)"),
           *[(f"opted_out_if_set.{c}", f"opted out of {c} (when not empty)") for c in CHANNELS],
           *[(f"subscription_status.{c}", f"{c} subscription status") for c in CHANNELS]]


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
        for column in columns:
            choices = list(TARGETS)
            target = column.get("target") or ""
            if target.startswith("custom.") and (target, target) not in choices:
                choices.append((target, target))
            self.fields[f"col_{column['index']}"] = forms.ChoiceField(
                choices=choices, required=False, initial=target, label=column["header"])

    def mapping(self) -> dict:
        return {str(c["index"]): (self.cleaned_data.get(f"col_{c['index']}") or None) for c in self.columns}


@admin.register(ImportJob)
class ImportJobAdmin(OrgScopedAdmin):
    list_display = ["file_name", "status_badge", "progress_column", "created", "updated", "unchanged", "failed",
                    "who", "created_at"]
    list_filter = ["status", "format"]
    search_fields = ["file_name"]
    change_list_template = "admin/imports/importjob/change_list.html"
    change_form_template = "admin/imports/importjob/progress.html"

    def has_add_permission(self, request):
        return False  # the upload page creates jobs

    def has_change_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by", "created_by_key")

    @admin.display(description="Status")
    def status_badge(self, job):
        colors = {"succeeded": "#2a7", "failed": "#c33", "running": "#27c", "queued": "#888", "draft": "#aa7"}
        label = f"{job.get_status_display()}{' (dry run)' if job.dry_run else ''}"
        return format_html('<b style="color:{}">{}</b>', colors.get(job.status, "#333"), label)

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
                try:
                    with job.file.open("rb") as handle:
                        job.preview = build_preview(
                            handle, fmt=job.format, has_header=job.has_header, overrides=mapping,
                            custom_unmapped=form.cleaned_data["custom_unmapped"],
                            region=job.default_region or job.organization.default_region,
                            definitions={}, limit=10, encoding=job.encoding, sheet=job.sheet)
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
        return TemplateResponse(request, "admin/imports/importjob/confirm.html", self._context(
            request, job=job, form=form, rows=job.preview.get("rows", []), header=job.preview.get("header", []),
            column_fields=[form[f"col_{c['index']}"] for c in columns] if tabular else [],
            title=f"Import {job.file_name}: check the columns"))

    def status_view(self, request, pk):
        job = self._job(request, pk)
        return JsonResponse({
            "status": job.status, "status_display": job.get_status_display(), "phase": job.get_phase_display(),
            "percent": job.percent, "finished": job.is_finished, "error": job.error, "dry_run": job.dry_run,
            "rows_read": job.rows_read, "processed": job.processed,
            "counters": {"total": job.total if job.is_finished else sum(getattr(job, n) for n in job.COUNTERS),
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
        return TemplateResponse(request, self.change_form_template, self._context(
            request, job=job, title=f"Import {job.pk}: {job.file_name}",
            status_url=reverse("admin:imports_importjob_status", args=[job.pk]),
            errors=job.row_errors.order_by("line", "id")[:50]))


def _current_mapping(columns) -> dict:
    return {str(c["index"]): c.get("target") or None for c in columns}
