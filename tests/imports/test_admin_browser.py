"""The admin import flow in a real browser: Debian's Chromium driven by Playwright.

Upload → mapping and first rows (one column re-mapped by hand) → start → the progress page
updates by itself until the counters and the error report link show.
"""

from __future__ import annotations

from contacts.models import Contact
from imports.models import ImportJob

from ..browser import BROWSER_MARKS  # the `page` fixture comes from tests/conftest.py
from .helpers import drain_queue

pytestmark = BROWSER_MARKS


def test_a_staff_member_imports_a_file_and_watches_it_finish(page, live_server, alice, tmp_path, settings):
    settings.JOBS_SYNC = False  # as under `make run`: the job runs in a background thread
    path = tmp_path / "people.csv"
    path.write_bytes(b"Cell,Mail,Given\r\n919-555-0101,ann@example.com,Ann\r\n919-555-0102,,Bob\r\nnope,,Cy\r\n")

    page.goto(f"{live_server.url}/admin/login/?next=/admin/imports/importjob/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pw-alice")
    page.click("input[type=submit]")
    page.click("#import-contacts")
    page.set_input_files("#id_file", str(path))
    page.click("#upload-submit")

    page.wait_for_selector("#confirm-form")
    assert page.input_value("select[name=col_0]") == "phone"
    assert page.input_value("select[name=col_1]") == "email"
    assert "919-555-0102" in page.inner_text("#mapping")
    page.select_option("select[name=col_2]", "last_name")
    page.click("#start-import")

    page.wait_for_selector("#bar")
    if settings.REDIS_URL:
        drain_queue()  # a real RQ worker (burst) picks the job up
    page.wait_for_function("document.getElementById('status').textContent.trim() === 'Finished with errors'", timeout=30000)
    page.wait_for_selector("#errors-link", state="visible")
    assert page.inner_text("#c-created") == "2"
    assert page.inner_text("#c-failed") == "1"
    page.screenshot(path=str(tmp_path / "progress.png"), full_page=True)

    job = ImportJob.objects.get()
    assert job.status == "succeeded" and job.created_by == alice
    assert Contact.objects.get(phone="+19195550101").last_name == "Ann"
    with page.expect_download() as download:
        page.click("#errors-link a")
    assert "nope" in open(download.value.path(), encoding="utf-8-sig").read()


def test_a_google_export_maps_a_column_to_a_custom_field_dry_runs_then_runs_for_real(
        page, live_server, alice, acme, tmp_path, settings):
    import csv
    import io

    from contacts.models import CustomField

    from ..browser import screenshot
    from .test_mapping import GOOGLE_LEGACY

    settings.JOBS_SYNC = False
    CustomField.objects.create(organization=acme, key="plan", label="Plan", type="choice", choices=["gold", "silver"])
    header = [*GOOGLE_LEGACY, "Tier"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    people = [("Ann", "Lee", "ann@example.com", "(919) 555-0101", "gold"),
              ("Bob", "Jones", "bob@example.com", "919.555.0102", "silver"),
              ("Cy", "Nope", "", "nope", "gold")]
    for first, last, email, phone, tier in people:
        row = dict.fromkeys(header, "")
        row.update({"Name": f"{first} {last}", "Given Name": first, "Family Name": last, "E-mail 1 - Type": "* Home",
                    "E-mail 1 - Value": email, "Phone 1 - Type": "Mobile", "Phone 1 - Value": phone,
                    "Group Membership": "* myContacts ::: Customers", "Tier": tier})
        writer.writerow([row[h] for h in header])
    path = tmp_path / "google.csv"
    path.write_text(out.getvalue(), encoding="utf-8")

    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"{live_server.url}/admin/login/?next=/admin/imports/importjob/upload/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "pw-alice")
    page.click("input[type=submit]")
    page.set_input_files("#id_file", str(path))
    page.click("#upload-submit")
    page.wait_for_selector("#mapping")
    assert page.locator("#mapping tbody tr, #mapping-empty tbody tr").count() == len(header)
    assert page.locator("#mapping tbody tr").count() < 15  # the empty columns wait folded below
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366  # no sideways scrolling
    assert "3 rows" in page.inner_text("#row-count")
    assert "1 of the first 3 rows would fail" in page.inner_text("#failing-count")
    tier = f"select[name=col_{len(header) - 1}]"
    options = page.eval_on_selector(tier, "s => [...s.options].map(o => o.value)")
    assert "custom.plan" in options and "custom.tier" in options
    page.select_option(tier, "custom.plan")
    screenshot(page, tmp_path, "import-mapping.png")
    page.click("#dry-run")

    page.wait_for_selector("#bar")
    if settings.REDIS_URL:
        drain_queue()
    page.wait_for_selector("#run-for-real", timeout=30000)
    assert not Contact.objects.exists()
    page.click("#run-for-real")
    page.wait_for_function("!document.getElementById('run-for-real') && document.getElementById('bar')")
    if settings.REDIS_URL:
        drain_queue()  # the real run, enqueued when its page was answered
    page.wait_for_function("document.getElementById('status').textContent.trim().startsWith('Finished')",
                           timeout=30000)
    page.wait_for_function("document.getElementById('c-created').textContent.trim() === '2'", timeout=30000)
    real = ImportJob.objects.get(dry_run=False)
    assert real.created_by == alice and real.failed == 1
    assert Contact.objects.get(phone="+19195550101").custom_fields["plan"] == "gold"
    assert Contact.objects.get(phone="+19195550102").custom_fields["plan"] == "silver"
