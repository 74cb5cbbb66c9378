"""`manage.py export_contacts --org SLUG --format csv|xlsx|vcf [--segment ID] [--filter NAME=VALUE] [-o FILE]`."""

from __future__ import annotations

import shutil
import sys

from django.core.management.base import BaseCommand, CommandError
from rest_framework.exceptions import APIException, ValidationError

from contacts.exports import FORMATS, export_stream
from contacts.filters import filter_contacts
from contacts.models import Contact
from contacts_crm.models import Organization


def _message(exc: APIException) -> str:
    detail = exc.detail
    if isinstance(detail, dict):
        return "; ".join(f"{name}: {' '.join(str(m) for m in messages)}" for name, messages in detail.items())
    return str(detail)


class Command(BaseCommand):
    help = ("Export an organization's contacts (all, a segment's, or those matching the API's filters) "
            "as CSV, XLSX or vCard; through the same exporter as the API and the admin.")

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Organization slug.")
        parser.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
        parser.add_argument("--segment", help="A segment id: export its members.")
        parser.add_argument("--filter", action="append", default=[], metavar="NAME=VALUE",
                            help="A contacts filter of the API (tags=vip, state=NC,SC, is_textable=true); repeatable.")
        parser.add_argument("-o", "--output", help="File to write; default stdout (csv and vcf only).")
        parser.add_argument("--no-bom", action="store_true", help="CSV without the UTF-8 BOM.")

    def handle(self, *args, org, fmt, segment, filter, output, no_bom, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organization with the slug '{org}'.")
        if fmt == "xlsx" and not output:
            raise CommandError("xlsx is a binary file: give -o FILE.")
        params = {}
        for item in filter:
            name, sep, value = item.partition("=")
            if not sep:
                raise CommandError(f"--filter '{item}': expected NAME=VALUE, e.g. tags=vip.")
            params[name.strip()] = value
        if segment is not None:
            params["segment"] = segment
        try:
            qs, ignored = filter_contacts(Contact.objects.for_org(organization), params, org=organization)
        except (ValidationError, APIException) as exc:
            raise CommandError(_message(exc)) from None
        if ignored:
            self.stderr.write(f"Ignored with --segment: {', '.join(ignored)}.")
        content, _ = export_stream(qs, org=organization, fmt=fmt, bom=not no_bom)
        if output:
            with open(output, "wb") as target:
                if fmt == "xlsx":
                    with content:
                        shutil.copyfileobj(content, target, 1024 * 1024)
                else:
                    for chunk in content:
                        target.write(chunk)
            self.stderr.write(f"Wrote {output}.")
            return
        binary = getattr(self.stdout._out, "buffer", None)
        stream = binary if binary is not None and self.stdout._out in (sys.stdout, sys.__stdout__) else None
        for chunk in content:
            if stream is not None:
                stream.write(chunk)
            else:  # a text stream (call_command(stdout=StringIO()))
                self.stdout._out.write(chunk.decode("utf-8"))
        if stream is not None:
            stream.flush()
