import json
import logging
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from contacts_crm.models import Organization
from imports.models import ImportJob
from imports.pipeline import ImportRefused, start_import

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Import a CSV/TSV/XLSX/XLS/ODS/vCard file into an organization, synchronously."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--org", required=True, help="Organization slug.")
        parser.add_argument("--list", dest="list_name", help="Add every imported contact to this list (by name).")
        parser.add_argument("--mode", default="create_update", choices=[m.value for m in ImportJob.Mode])
        parser.add_argument("--no-header", action="store_true", help="The first row is data, not a header.")
        parser.add_argument("--region", default="", help="Phone region for numbers without a country code.")
        parser.add_argument("--dry-run", action="store_true", help="Report what would happen; write nothing.")
        parser.add_argument("--json", action="store_true", help="Print exactly one JSON object on stdout.")
        parser.add_argument("--encoding", default="", help="Text encoding of a CSV/TSV file (default: detected), "
                            "e.g. mac_roman, cp1252, cp1251, utf-8.")
        parser.add_argument("--sheet", default="", help="Workbook sheet to read: its name or 1-based number "
                            "(default: the first sheet whose header names a phone or email column).")

    def handle(self, *args, json: bool, **options):
        if not json:
            return self._handle(json=False, **options)
        # --json: stdout holds exactly one JSON object whatever happens (design §6), so a script
        # can always parse it; an unexpected error becomes {"status": "failed", "error": ...}.
        try:
            return self._handle(json=True, **options)
        except (SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:
            logger.exception("import_contacts failed")
            return self._refused(True, f"{type(exc).__name__}: {exc}")

    def _handle(self, *, file, org, list_name, mode, no_header, region, dry_run, json: bool, encoding="", sheet="",
                **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            if json:
                return self._refused(json, f"No organization with slug '{org}'.")
            raise CommandError(f"No organization with slug '{org}'.")
        path = Path(file)
        if not path.is_file():
            return self._refused(json, f"No such file: {file}")
        contact_list = None
        if list_name:
            from segments.models import ContactList

            contact_list, _ = ContactList.objects.for_org(organization).get_or_create(
                organization=organization, name=list_name)
        progress = sys.stderr.isatty() and not json
        try:
            with path.open("rb") as handle:
                job = start_import(org=organization, uploaded=handle, file_name=path.name, mode=mode,
                                   has_header=not no_header, default_region=region, dry_run=dry_run,
                                   contact_list=contact_list, run_now=True, encoding=encoding, sheet=sheet)
        except ImportRefused as exc:
            return self._refused(json, str(exc))
        if progress:
            sys.stderr.write("\n")
        errors = [
            {"line": e.line, "column": e.column, "value": e.value, "message": e.message, "severity": e.severity}
            for e in job.row_errors.order_by("line", "id")[:100]
        ]
        result = {"status": job.status, "total": job.total, **{n: getattr(job, n) for n in ImportJob.COUNTERS},
                  "errors": errors}
        if job.status == ImportJob.Status.FAILED:
            result["error"] = job.error
        if json:
            self.stdout.write(_dumps(result))
        else:
            self.stdout.write(
                f"{'Dry run: ' if dry_run else ''}{job.status}: {job.total} rows — created {job.created}, "
                f"updated {job.updated}, unchanged {job.unchanged}, restored {job.restored}, merged {job.merged}, "
                f"skipped {job.skipped}, "
                f"failed {job.failed}; {job.warnings} warning(s)."
            )
            for e in errors[:20]:
                self.stdout.write(f"  line {e['line']} {e['column']}: {e['message']} [{e['severity']}]")
            if job.error:
                self.stdout.write(f"  {job.error}")
        if job.status == ImportJob.Status.FAILED:
            sys.exit(1)

    def _refused(self, as_json, message):
        if as_json:
            self.stdout.write(_dumps({"status": "failed", "error": message, "total": 0, "created": 0, "updated": 0,
                                      "unchanged": 0, "restored": 0, "merged": 0, "skipped": 0, "failed": 0, "errors": []}))
        else:
            self.stderr.write(f"Refused: {message}")
        sys.exit(1)


def _dumps(obj):
    # allow_nan=False: a NaN would print as `NaN`, which is not JSON.
    return json.dumps(obj, ensure_ascii=False, default=str, allow_nan=False)
