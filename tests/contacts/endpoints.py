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
