"""gunicorn settings for `make serve` (production profile; docs/deploy.md).

Sized for a 2-core machine: 2 worker processes x 4 threads. Requests spend most of their time
waiting on PostgreSQL, so threads (gthread) give 8 concurrent requests for ~2 processes' memory.
Every value can be overridden from the environment.
"""

import multiprocessing
import os

bind = os.environ.get("BIND", f"127.0.0.1:{os.environ.get('PORT', '8000')}")
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", max(2, multiprocessing.cpu_count())))
threads = int(os.environ.get("GUNICORN_THREADS", 4))
# A worker that stops answering its heartbeat for this long is restarted. With gthread a long
# request (a 300 s export) does not block the heartbeat; API statements stop at 10 s anyway.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 60))
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then (with jitter, so they do not all restart at once).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 5000))
max_requests_jitter = 500
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
# Behind a TLS-terminating proxy on the same host: trust its X-Forwarded-* headers.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
