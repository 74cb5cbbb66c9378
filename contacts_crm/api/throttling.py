from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from ..models import ApiKey, api_cache


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Per API key (else per user, else per IP); state in the "api" cache: Redis, or this
    process's memory when there is no Redis (settings.CACHES)."""

    scope = "api"
    cache = api_cache

    def get_rate(self):
        # Read at request time, not import time, so the rate follows settings overrides.
        return settings.API_THROTTLE_RATE

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiKey):
            ident = f"key:{request.auth.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return f"throttle:{self.scope}:{ident}"
