from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import SimpleRateThrottle

from ..models import ApiKey, api_cache


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Per API key (else per user, else per IP), API_THROTTLE_RATE requests a period.

    With Redis (the "api" cache, settings.CACHES): a fixed window, one round trip a request —
    INCR of the window's counter and its EXPIRE in one MULTI pipeline — shared by every process.
    A window starts at a multiple of the period (12:00:00, 12:01:00 for "…/min"): a key may make
    the rate's requests at the end of one window and again at the start of the next. Without
    Redis: DRF's sliding window (a list of timestamps) in this process's memory, counted per
    process. Either way a refused request is a 429 whose Retry-After says when to try again."""

    scope = "api"
    cache = api_cache
    window_ends = None  # set by the Redis path: when the current window ends (epoch seconds)

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

    def allow_request(self, request, view):
        backend = caches["api"]  # the backend behind api_cache (a proxy)
        if self.rate is None or not isinstance(backend, RedisCache):
            return super().allow_request(request, view)
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_ends = (window + 1) * self.duration
        key = backend.make_and_validate_key(f"{self.key}:{window}")
        # The counter outlives its window by up to one period (each request renews the EXPIRE):
        # harmless, the next window counts under another key.
        pipe = backend._cache.get_client(key, write=True).pipeline()
        pipe.incr(key)
        pipe.expire(key, self.duration)
        count, _ = pipe.execute()
        if count > self.num_requests:
            return self.throttle_failure()
        return True

    def wait(self):
        if self.window_ends is None:
            return super().wait()
        return self.window_ends - self.now  # > 0; DRF sends its ceiling as Retry-After

