"""JSON values of the type the schema names, or a 400.

DRF coerces: a CharField takes 12 as "12", a BooleanField takes "yes" and 1, an IntegerField
"7". The OpenAPI schema says string, boolean, integer, and a generated client (or schemathesis)
holds the server to it. `StrictJSONMixin` refuses a JSON value of another type and an unknown
key, naming the field; form and multipart bodies (all strings) keep DRF's parsing.
"""

from __future__ import annotations

from rest_framework import serializers


def _type_error(field, value) -> str | None:
    if value is None:
        return None  # allow_null decides
    if isinstance(field, serializers.BooleanField):
        return None if isinstance(value, bool) else "Expected true or false."
    if isinstance(field, serializers.IntegerField):
        return None if isinstance(value, int) and not isinstance(value, bool) else "Expected a whole number."
    if isinstance(field, serializers.ChoiceField):
        return None if isinstance(value, str) else "Expected a string."
    if isinstance(field, serializers.CharField):
        if not isinstance(value, str):
            return "Expected a string."
        # As sent: DRF trims first, so "  " + 200 characters would pass a max_length of 200.
        if field.max_length is not None and len(value) > field.max_length:
            return f"At most {field.max_length} characters (got {len(value)})."
        return None
    if isinstance(field, serializers.ListField) and isinstance(value, list):
        for item in value:
            message = _type_error(field.child, item)
            if message:
                return message
    return None


class StrictJSONMixin:
    def to_internal_value(self, data):
        if isinstance(data, dict) and not hasattr(data, "getlist"):
            # An unknown key is refused, never silently dropped (a typo like "nmae" must not pass).
            errors = {key: [f"Unknown field '{key}'."] for key in data if key not in self.fields}
            for name, field in self.fields.items():
                if field.read_only or name not in data:
                    continue
                message = _type_error(field, data[name])
                if message:
                    errors[name] = [message]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)
