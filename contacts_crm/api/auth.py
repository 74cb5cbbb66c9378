"""`Authorization: Bearer <api key>` authentication."""

from __future__ import annotations

import hmac
import re

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from ..models import ApiKey, hash_api_key

KEY_RE = re.compile(r"^(ck_[A-Za-z0-9]{8})\.[A-Za-z0-9]{32}$")


class ApiPrincipal:
    """Who calls the API with a key: authenticated, not a Django user, bound to one organization."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, api_key: ApiKey):
        self.api_key = api_key
        self.organization = api_key.organization

    def __str__(self):
        return f"API key {self.api_key.prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request)
        if not header:
            return None
        parts = header.split()
        if parts[0].lower() != self.keyword.lower().encode():
            return None  # another scheme (Basic, Token): let the other classes decide
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: use 'Bearer <api key>'.")
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid API key.") from None
        match = KEY_RE.match(raw)
        if not match:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        key = ApiKey.by_prefix(match.group(1))
        if key is None or not hmac.compare_digest(key.hashed_secret, hash_api_key(raw)):
            raise exceptions.AuthenticationFailed("Invalid API key.")
        if key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
        key.touch()
        return ApiPrincipal(key), key

    def authenticate_header(self, request):
        return self.keyword


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "contacts_crm.api.auth.ApiKeyAuthentication"
    name = "ApiKeyBearer"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An API key created in the admin."}
