"""The OpenAPI schema tells the truth (issue 11): paged lists are one object, every operation
documents the error envelope of each status it can answer, and a create links to the operations
that read, change and delete what it made (so schemathesis's stateful phase reaches them).

`ApiAutoSchema` is REST_FRAMEWORK's DEFAULT_SCHEMA_CLASS; `add_links` is a spectacular
post-processing hook.
"""

from __future__ import annotations

import re

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="validation_error, not_found, permission_denied, conflict, …")
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False,
                                   help_text='{"phone": ["…"]}: one list of messages per bad field.')


class ErrorSerializer(serializers.Serializer):
    """{"error": {"code", "message", "fields"}}: the one shape of every API error."""

    error = ErrorDetailSerializer()


ERROR_DESCRIPTIONS = {
    "400": "Invalid input (a bad field, parameter or cursor); `fields` names each culprit.",
    "401": "No API key, or a malformed, unknown or revoked one.",
    "403": "The key may not do this (a read key on a write, a member on an admin-only call).",
    "404": "No such object in your organization (another organization's object answers the same).",
    "405": "This path does not take this method.",
    "406": "The Accept header asks for a format this endpoint does not produce.",
    "409": "The phone and the email belong to two different contacts.",
    "413": "The request body is too large.",
    "415": "The body's Content-Type is not one this endpoint reads.",
    "429": "Too many requests for this key; retry after `Retry-After` seconds.",
    "503": "The database took longer than the request's statement timeout; retry or narrow the request.",
}


def _is_page(serializer) -> bool:
    """A `{results, next_cursor, total}` page serializer (named `…PageSerializer` by convention)."""
    cls = serializer if isinstance(serializer, type) else type(serializer)
    return isinstance(cls, type) and cls.__name__.endswith("PageSerializer")


class ApiAutoSchema(AutoSchema):
    def _is_list_view(self, serializer=None) -> bool:
        candidate = self.get_response_serializers() if serializer is None else serializer
        if isinstance(candidate, dict) and candidate:
            candidate = {str(code): s for code, s in candidate.items()}
            candidate = candidate[min(candidate)]
        if isinstance(candidate, OpenApiResponse):
            candidate = candidate.response
        if candidate is not None and _is_page(candidate):
            return False  # the page object itself, never an array of pages
        return super()._is_list_view(serializer)

    def get_operation_id(self) -> str:
        operation_id = super().get_operation_id()
        if getattr(self.view, "action", None) == "list" and operation_id.endswith("_retrieve"):
            operation_id = operation_id[: -len("_retrieve")] + "_list"
        return operation_id

    def _error_codes(self) -> list[str]:
        codes = ["400", "401", "404", "405", "406", "429", "503"]
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            codes.append("403")
        if self.method in ("POST", "PUT", "PATCH"):
            codes += ["413", "415"]
        if self.method in ("POST", "PUT", "PATCH") and "/contacts" in self.path:
            codes.append("409")
        return codes

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        codes = set(self._error_codes()) | {code for code in responses if code >= "400"}
        for code in sorted(codes):
            declared = responses.get(code)
            if declared and declared.get("content"):
                continue
            body = self._get_response_for_code(ErrorSerializer, code, ["application/json"], direction=direction)
            # A view's own words for the status (a 409's meaning) win over the generic ones.
            body["description"] = (declared or {}).get("description") or ERROR_DESCRIPTIONS.get(code, "")
            responses[code] = body
        return responses


# The id patterns of the integer-keyed viewsets (ASCII digits: `\d` also matches "٣").
INTEGER_ID_PATTERNS = {r"^\d+$", r"^[0-9]{1,18}$"}


def integer_ids(result, generator, request, public):
    """A `\\d+` path parameter is an integer id (spectacular describes it as a patterned string)."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for param in operation.get("parameters", []) if isinstance(operation, dict) else []:
                if param.get("in") == "path" and param.get("schema", {}).get("pattern") in INTEGER_ID_PATTERNS:
                    param["schema"] = {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}
    return result


_ID_PARAM = re.compile(r"\{(id|pk)\}")


def add_links(result, generator, request, public):
    """Links from each create (a 201 answer holding `id`) to the operations on `{id}` paths
    beneath it: get, update, delete and sub-resources (`/lists/{id}/members`)."""
    paths = result.get("paths", {})
    for path, operations in paths.items():
        create = operations.get("post")
        if not create or "{" in path:
            continue
        created = create.get("responses", {}).get("201")
        if not created:
            continue
        links = {}
        for other_path, other_ops in paths.items():
            if not other_path.startswith(path + "/{"):
                continue
            match = _ID_PARAM.search(other_path[len(path):])
            if not match or other_path[len(path):].count("{") != 1:
                continue
            name = match.group(1)
            for method, operation in other_ops.items():
                if method not in ("get", "put", "patch", "delete", "post") or "operationId" not in operation:
                    continue
                links[operation["operationId"]] = {
                    "operationId": operation["operationId"],
                    "parameters": {f"path.{name}": "$response.body#/id"},
                }
        if links:
            created["links"] = links
    return result


_PAGES: dict = {}


def page_serializer(item_serializer):
    """`{results: [item], next_cursor, total}`: the schema of one page of `item_serializer`
    (a class named `<Item>PageSerializer`, made once per item serializer)."""
    if item_serializer not in _PAGES:
        name = item_serializer.__name__.removesuffix("Serializer") + "PageSerializer"
        _PAGES[item_serializer] = type(name, (serializers.Serializer,), {
            "results": item_serializer(many=True),
            "next_cursor": serializers.CharField(allow_null=True, help_text="Pass it as ?cursor= for the next page."),
            "total": serializers.IntegerField(required=False, help_text="With include_total=true."),
            "__module__": item_serializer.__module__,
        })
    return _PAGES[item_serializer]
