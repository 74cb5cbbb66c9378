"""Jobs the queue tests run (importable by a worker process started from the repo root)."""

from contacts_crm.models import Organization


def create_org_job(slug: str) -> str:
    Organization.objects.create(slug=slug, name=f"Made by a job ({slug})")
    return slug
