"""Registrations for the auth/tenancy matrices (see tests/api_matrix.py, tests/admin_matrix.py)."""

from ..admin_matrix import AdminModel, register
from ..factories import make_contact


def _tag(org):
    from contacts.models import Tag

    return Tag.objects.create(organization=org, name="vip", key="vip")


def _custom_field(org):
    from contacts.models import CustomField

    return CustomField.objects.create(organization=org, key="plan", type="text")


def _export_job(org):
    from contacts.export_jobs import export_start, run_export

    make_contact(org, tags=["vip"])
    job = export_start(org=org, actor={}, fmt="csv", params={})
    run_export(job.pk)
    return job


register(
    AdminModel("contacts", "exportjob", _export_job, pages=("contacts_exportjob_download",)),
    AdminModel("contacts", "contact", lambda org: make_contact(org, tags=["vip"]), action="opt_out"),
    AdminModel("contacts", "contact", lambda org: make_contact(org, tags=["vip"]), action="merge_contacts"),
    AdminModel("contacts", "tag", _tag),
    AdminModel("contacts", "customfield", _custom_field),
)
