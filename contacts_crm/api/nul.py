"""Refuses NUL characters (U+0000) in any API input, before a view reads it.

PostgreSQL cannot store a NUL in a text or jsonb value, nor take one as a query parameter: left
alone, a `?search=%00` or a `"first_name": "a\\u0000"` reaches the database and fails there as
an internal error. One check at the door answers 400 naming every such parameter and field.
"""

from __future__ import annotations

from rest_framework.exceptions import ValidationError

MESSAGE = "contains a NUL character (\\u0000), which cannot be stored."


def _shown(name: str) -> str:
    return name.replace("\x00", "\\u0000")


def nul_paths(value, path: str = ""):
    """The paths ("tags[0]", "custom_fields.plan") of every string in `value` holding a NUL."""
    if isinstance(value, str):
        if "\x00" in value:
            yield path or "non_field_errors"
    elif isinstance(value, dict):
        for key, item in value.items():
            key = _shown(str(key))
            if "\\u0000" in key:
                yield f"{path}.{key}" if path else key
            else:
                yield from nul_paths(item, f"{path}.{key}" if path else key)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from nul_paths(item, f"{path}[{index}]")


def reject_nul_characters(request) -> None:
    errors = {}
    for name, value in (getattr(request, "parser_context", None) or {}).get("kwargs", {}).items():
        if isinstance(value, str) and "\x00" in value:  # a path segment: /contacts/{id}/tags/a%00b
            errors[_shown(name)] = [MESSAGE]
    for name, values in request.query_params.lists():
        if "\x00" in name or any("\x00" in v for v in values):
            errors[_shown(name)] = [MESSAGE]
    if request.method in ("POST", "PUT", "PATCH"):
        data = request.data
        if hasattr(data, "lists"):  # a form or multipart body: a QueryDict of lists
            data = {name: values[0] if len(values) == 1 else values for name, values in data.lists()
                    if all(isinstance(v, str) for v in values)}
        for path in nul_paths(data):
            errors[path] = [MESSAGE]
    if errors:
        raise ValidationError(errors)
