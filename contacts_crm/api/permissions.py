"""Scopes: a read key may GET; a write key may do everything. Session users act for their org."""

from __future__ import annotations

from rest_framework import exceptions, permissions

from ..models import ApiKey, Membership
from ..tenancy import user_organization, user_role


def request_organization(request):
    """The organization every query of this request is scoped to (raises if there is none)."""
    org = getattr(request, "_crm_org", None)
    if org is not None:
        return org
    if isinstance(request.auth, ApiKey):
        org = request.auth.organization
    else:
        org = user_organization(request.user)
    if org is None:
        raise exceptions.PermissionDenied("Your account does not belong to an organization.")
    request._crm_org = org
    return org


def request_actor(request) -> dict:
    """Who made a change, for the timeline: {'user': ..., 'api_key': ...}."""
    if isinstance(request.auth, ApiKey):
        return {"api_key": request.auth}
    return {"user": request.user}


class HasOrgScope(permissions.BasePermission):
    """Authenticated, in an organization, with the scope the method needs.

    Views may set `admin_only = True` (bulk deletion): a session member is refused, a write key
    is allowed.
    """

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False
        request_organization(request)
        if request.method in permissions.SAFE_METHODS:
            return True
        if isinstance(request.auth, ApiKey):
            if request.auth.scope != ApiKey.Scope.WRITE:
                raise exceptions.PermissionDenied("This API key is read-only; this call needs a write key.")
            return True
        if getattr(view, "admin_only", False) and user_role(request.user) != Membership.Role.ADMIN:
            raise exceptions.PermissionDenied("Only organization admins may do this.")
        return True
