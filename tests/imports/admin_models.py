"""Registrations for the admin tenancy matrix (tests/admin_matrix.py): import jobs and their pages."""

from django.core.files.base import ContentFile

from ..admin_matrix import AdminModel, register


def _job(org):
    from imports.models import ImportJob

    job = ImportJob(organization=org, file_name="people.csv", file_size=20, format="csv", dry_run=True,
                    status=ImportJob.Status.SUCCEEDED, phase=ImportJob.Phase.DONE)
    job.file.save("people.csv", ContentFile(b"phone\r\n9195550101\r\n"), save=False)
    job.save()
    return job


register(
    AdminModel("imports", "importjob", _job, pages=(
        "imports_importjob_confirm", "imports_importjob_status", "imports_importjob_errors",
        "imports_importjob_run_for_real")),
)
