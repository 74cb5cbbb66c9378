"""Imports endpoints in the auth/tenancy matrix."""

from django.core.files.uploadedfile import SimpleUploadedFile

from ..api_matrix import Endpoint, register


def _job(org):
    from imports.models import ImportJob, ImportRowError

    job = ImportJob.objects.create(organization=org, file_name="x.csv", format="csv", status="succeeded",
                                   phase="done", preview={"header": ["phone"]})
    ImportRowError.objects.create(job=job, line=2, column="phone", value="x", message="bad", cells=["x"])
    return {"id": job.pk}


def _failed_job(org):
    from imports.models import ImportJob

    job = ImportJob.objects.create(organization=org, file_name="x.csv", format="csv", status="failed",
                                   phase="writing", error="crashed")
    return {"id": job.pk}


register(
    Endpoint("GET", "/api/v1/imports", write=False),
    Endpoint("GET", "/api/v1/imports/{id}/changes", write=False, make=_job),
    Endpoint("POST", "/api/v1/imports/{id}/resume", write=True, make=_failed_job, ok_statuses=(202,)),
    Endpoint("POST", "/api/v1/imports/{id}/revert", write=True, make=_job, ok_statuses=(202,)),
    Endpoint("POST", "/api/v1/imports", write=True, fmt="multipart", ok_statuses=(202,),
             body=lambda v: {"file": SimpleUploadedFile("c.csv", b"phone\r\n9195550100\r\n")}),
    Endpoint("GET", "/api/v1/imports/{id}", write=False, make=_job),
    Endpoint("GET", "/api/v1/imports/{id}/errors", write=False, make=_job),
    Endpoint("GET", "/api/v1/imports/{id}/errors.csv", write=False, make=_job),
)


def _admin_job(org):
    from imports.models import ImportJob

    return ImportJob.objects.create(organization=org, file_name="x.csv", format="csv", status="succeeded",
                                    phase="done")


from ..admin_matrix import AdminModel  # noqa: E402
from ..admin_matrix import register as register_admin  # noqa: E402

register_admin(AdminModel("imports", "importjob", _admin_job))
