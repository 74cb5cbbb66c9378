"""Export endpoints (issue 6) in the auth/tenancy matrix: one entry per format."""

from ..api_matrix import Endpoint, register
from ..factories import make_contact


def _contact(org):
    make_contact(org, tags=["vip"])
    return {}


register(
    Endpoint("GET", "/api/v1/contacts/export", write=False, make=_contact),
    Endpoint("GET", "/api/v1/contacts/export?format=csv&tags=vip", write=False, make=_contact),
    Endpoint("GET", "/api/v1/contacts/export?format=xlsx", write=False, make=_contact),
    Endpoint("GET", "/api/v1/contacts/export?format=vcf", write=False, make=_contact),
)


def _export_job(org):
    """A finished background export of `org` (issue 14), run here: the matrix commits nothing."""
    from contacts.export_jobs import export_start, run_export

    make_contact(org, tags=["vip"])
    job = export_start(org=org, actor={}, fmt="csv", params={"tags": "vip"})
    run_export(job.pk)
    return {"id": job.pk}


register(
    Endpoint("GET", "/api/v1/exports", write=False),
    Endpoint("POST", "/api/v1/exports", write=True, body={"format": "csv", "filters": {"tags": "vip"}}),
    Endpoint("GET", "/api/v1/exports/{id}", write=False, make=_export_job),
    Endpoint("GET", "/api/v1/exports/{id}/download", write=False, make=_export_job),
)
