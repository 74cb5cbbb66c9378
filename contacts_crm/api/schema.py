"""OpenAPI post-processing: every operation documents the error answers it can give, all in the
one envelope of contacts_crm/api/errors.py (issue 13 item 15)."""

from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {
        "type": "object",
        "required": ["code", "message"],
        "properties": {
            "code": {"type": "string", "example": "validation_error"},
            "message": {"type": "string"},
            "fields": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}},
                       "description": "Per field (dotted paths for nested values): the messages."},
        },
    }},
}
ERRORS = {
    "400": "Invalid input: a bad parameter or body value (named in `fields`), malformed or too deeply "
           "nested JSON, a number out of range.",
    "401": "No API key, or an invalid or revoked one.",
    "403": "The key may not do this (a read key on a write, a member on an admin-only call).",
    "404": "No such object in your organization (another organization's answers the same).",
    "409": "The phone and the email belong to two different contacts.",
    "413": "The request body is larger than the upload limit.",
    "429": "Too many requests for this key: see Retry-After.",
    "503": "The database took longer than the request's statement timeout; retry or narrow the request.",
}
BODY_METHODS = {"post", "put", "patch"}


def add_error_responses(result, generator, request, public):
    """drf-spectacular POSTPROCESSING_HOOKS entry: adds the ErrorEnvelope component and, to each
    operation, the error statuses it can answer (those it documents itself are kept)."""
    result.setdefault("components", {}).setdefault("schemas", {})["ErrorEnvelope"] = ERROR_SCHEMA
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
    public_paths = {"/api/v1/schema/", "/api/v1/docs/"}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            statuses = ["400", "429", "503"]
            if path not in public_paths:
                statuses += ["401", "403"]
            if "{" in path:
                statuses.append("404")
            if method in BODY_METHODS:
                statuses.append("413")
            responses = operation.setdefault("responses", {})
            for status in sorted(statuses):
                entry = responses.setdefault(status, {"description": ERRORS[status]})
                entry.setdefault("content", ref)
            if "409" in responses:
                responses["409"].setdefault("content", ref)
    return result
