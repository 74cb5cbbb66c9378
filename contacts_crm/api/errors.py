"""One error envelope for every API error: {"error": {"code", "message", "fields"}}."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from contacts_crm.db import is_statement_timeout

logger = logging.getLogger("contacts_crm.api")

CODES = {
    exceptions.ValidationError: "validation_error",
    exceptions.ParseError: "parse_error",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database took too long to answer; try again or narrow the request."
    default_code = "statement_timeout"


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "Conflict."
    default_code = "conflict"


class Gone(exceptions.APIException):
    status_code = status.HTTP_410_GONE
    default_detail = "This is no longer available."
    default_code = "gone"


def _flatten(detail):
    """DRF error detail -> list of strings (nested lists/dicts flattened with their path)."""
    if isinstance(detail, dict):
        out = []
        for key, value in detail.items():
            out.extend(f"{key}: {msg}" for msg in _flatten(value))
        return out
    if isinstance(detail, list):
        out = []
        for item in detail:
            out.extend(_flatten(item))
        return out
    return [str(detail)]


def _fields(detail):
    """{"field": ["message", ...]} for a ValidationError's dict detail; nested paths use dots."""
    fields = {}

    def walk(prefix, value):
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), sub)
        elif isinstance(value, list) and value and all(isinstance(v, (dict, list)) for v in value):
            for index, sub in enumerate(value):
                if sub:
                    walk(f"{prefix}[{index}]", sub)
        elif isinstance(value, list):
            fields.setdefault(prefix or "non_field_errors", []).extend(str(v) for v in value)
        else:
            fields.setdefault(prefix or "non_field_errors", []).append(str(value))

    walk("", detail)
    return fields


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    body = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def envelope_for(exc: exceptions.APIException) -> dict:
    """The envelope for an APIException (also used per item by bulk endpoints)."""
    code = getattr(exc, "crm_code", None) or next(
        (c for cls, c in CODES.items() if isinstance(exc, cls)), getattr(exc, "default_code", "error")
    )
    detail = exc.detail
    if isinstance(exc, exceptions.ValidationError):
        fields = _fields(detail) if isinstance(detail, dict) else None
        messages = _flatten(detail)
        message = messages[0] if len(messages) == 1 else "; ".join(messages[:5]) if messages else "Invalid input."
        return error_body(code, message, fields)
    extra = getattr(exc, "crm_extra", None)
    body = error_body(code, " ".join(_flatten(detail)))
    if extra:
        body["error"].update(extra)
    return body


def api_exception_handler(exc, context):
    from contacts.export_jobs import ExportExpired, ExportNotReady, ExportRefused

    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif is_statement_timeout(exc):
        logger.warning("Statement timeout on %s", context["request"].path if context.get("request") else "?")
        exc = ServiceUnavailable()
    elif isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge(f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes.")
    elif isinstance(exc, TooManyFieldsSent):  # a form body with too many fields (was a 500)
        exc = exceptions.ParseError(f"Too many form fields (at most {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS}).")
    elif isinstance(exc, ExportExpired):
        exc = Gone(str(exc))
    elif isinstance(exc, ExportNotReady):
        exc = Conflict(str(exc))
    elif isinstance(exc, ExportRefused):
        exc = exceptions.ValidationError({"format": [str(exc)]})
    elif isinstance(exc, SuspiciousOperation):  # a form body with too many files, a malformed one
        exc = exceptions.ParseError(str(exc) or "Malformed request.")
    response = exception_handler(exc, context)
    if response is None:
        logger.exception("Unhandled API error", exc_info=exc)
        return Response(error_body("server_error", "Internal server error. It has been logged."), status=500)
    response.data = envelope_for(exc)
    return response


def json_404(request, exception=None):
    """Django-level 404 (an unknown URL): JSON envelope under /api/, the usual page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "No such endpoint."), status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def json_500(request):
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("server_error", "Internal server error. It has been logged."), status=500)
    from django.views.defaults import server_error

    return server_error(request)
