"""Issue 13 item 1 in imports: a non-finite or huge number in a number custom field is a warning
and the row still lands, quickly; `import_contacts --json` prints exactly one JSON object."""

from __future__ import annotations

import io
import json
import time

import pytest
from django.core.management import call_command

from contacts.models import Contact, CustomField

from .helpers import csv_bytes, run_import_bytes

pytestmark = pytest.mark.django_db

BAD_NUMBERS = ["Infinity", "-Infinity", "NaN", "sNaN", "1e5000", "1e999999", "9" * 400]


def test_a_bad_number_cell_is_a_warning_and_the_row_lands(acme):
    CustomField.objects.create(organization=acme, key="score", type="number")
    rows = "\n".join(f"+1919555{1000 + i},{value}" for i, value in enumerate(BAD_NUMBERS))
    started = time.perf_counter()
    job = run_import_bytes(acme, csv_bytes(f"phone,score\n{rows}\n+19195559999,42\n"),
                           mapping={"phone": "phone", "score": "custom.score"})
    assert time.perf_counter() - started < 30  # before the fix one 1e999999 cell alone took 24-37 s
    assert job.status == "succeeded", job.error
    assert job.created == len(BAD_NUMBERS) + 1
    warnings = list(job.row_errors.filter(severity="warning").values_list("value", flat=True))
    assert sorted(warnings) == sorted(v[:200] for v in BAD_NUMBERS)
    assert Contact.objects.get(phone="+19195559999").custom_fields == {"score": 42}
    assert Contact.objects.get(phone="+19195551005").custom_fields == {}


def _json_stdout(*args) -> tuple[dict, int]:
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command("import_contacts", *args, "--json", stdout=out, stderr=err)
    except SystemExit as exc:
        code = exc.code
    text = out.getvalue()
    decoder = json.JSONDecoder()
    obj, end = decoder.raw_decode(text.strip())
    assert text.strip()[end:].strip() == "", f"more than one JSON object on stdout: {text!r}"
    return obj, code


def test_import_contacts_json_prints_one_object_for_an_unknown_organization(tmp_path, acme):
    path = tmp_path / "c.csv"
    path.write_bytes(b"phone\r\n9195550100\r\n")
    obj, code = _json_stdout(str(path), "--org", "nobody")
    assert code == 1
    assert obj["status"] == "failed" and "nobody" in obj["error"]
    assert {"total", "created", "updated", "unchanged", "merged", "skipped", "failed", "errors"} <= set(obj)


def test_import_contacts_json_prints_one_object_for_a_refused_file_and_for_a_good_one(tmp_path, acme):
    bad = tmp_path / "c.csv"
    bad.write_bytes(b"PK\x03\x04 not really a csv")
    obj, code = _json_stdout(str(bad), "--org", "acme")
    assert (obj["status"], code) == ("failed", 1)
    CustomField.objects.create(organization=acme, key="score", type="number")
    good = tmp_path / "good.csv"
    good.write_bytes(b"phone,score\r\n9195550100,1e999999\r\n")
    obj, code = _json_stdout(str(good), "--org", "acme")
    assert (obj["status"], code, obj["created"]) == ("succeeded", 0, 1)
