"""The API's JSON parser: bounded before it parses.

DRF's JSONParser hands the body to json.load as it is: a body nested 1,000 deep raises
RecursionError, `1e999` becomes an infinity that neither database stores and a lone surrogate
("\\ud800") fails when PostgreSQL encodes it. This one decodes through
contacts.validation.BoundedJSONDecoder (depth pre-scan, finite numbers, storable strings), so
each of those is a 400 naming the field. A body over DATA_UPLOAD_MAX_MEMORY_SIZE is refused by
Django as DRF reads it (RequestDataTooBig), which the exception handler answers with a 413.
"""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

from contacts.validation import BoundedJSONDecoder, JSONInputError


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            raise ParseError(f"The JSON body is not valid {encoding}.") from None
        try:
            return json.loads(text, cls=BoundedJSONDecoder)
        except JSONInputError as exc:
            raise ValidationError(exc.errors) from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
