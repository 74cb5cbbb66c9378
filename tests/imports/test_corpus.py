"""Every real-world file of ../shared/data imports without a crash (runs where the folder exists)."""

from __future__ import annotations

from pathlib import Path

import pytest

from contacts.models import Contact
from imports.models import ImportRowError
from imports.pipeline import ImportRefused

from ..conftest import SHARED_DATA as DATA
from .helpers import run_import_bytes

FILES = sorted(p for p in DATA.glob("*/*") if p.suffix.lower() in {".csv", ".xlsx", ".vcf"}) if DATA.exists() else []
REFUSED = {"tb_tab_comma_mixed.csv": "delimiter"}

pytestmark = [pytest.mark.django_db, pytest.mark.skipif(not DATA.exists(), reason="../shared/data is not here")]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_file_imports_and_every_phone_lands_or_is_reported(acme, path):
    if path.name in REFUSED:
        with pytest.raises(ImportRefused, match=REFUSED[path.name]):
            run_import_bytes(acme, path.read_bytes(), name=path.name)
        return
    job = run_import_bytes(acme, path.read_bytes(), name=path.name)
    assert job.status == "succeeded", job.error
    assert job.total == sum(getattr(job, n) for n in ("created", "updated", "unchanged", "merged", "skipped", "failed"))
    assert job.total >= 1
    reported = set(ImportRowError.objects.filter(job=job).values_list("line", flat=True))
    landed = Contact.objects.for_org(acme).count()
    assert landed == job.created
    assert job.failed == 0 or reported  # a failed row always has its reason in the report


def test_the_corpus_gives_the_expected_contacts(acme):
    def load(name):
        return run_import_bytes(acme, (DATA / name).read_bytes(), name=Path(name).name)

    job = load("vcard/ezvcard_John_Doe_GMAIL.vcf")
    assert job.created == 1
    assert Contact.objects.get(display_name="Mr. John Richter, James Doe Sr.")
    job = load("vcard/ezvcard_John_Doe_ANDROID.vcf")
    assert job.total == 6
    job = load("csv/tb_utf16_addressbook.csv")
    assert job.status == "succeeded" and job.created + job.updated == 1
    job = load("csv/roundcube_gmail_legacy.csv")
    assert ImportRowError.objects.filter(job=job, value="mobile", severity="warning").exists()
