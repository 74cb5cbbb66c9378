from __future__ import annotations

from django.db import connection
from django.http import JsonResponse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from .api.permissions import request_organization
from .jobs import queue_backend


def healthz(request):
    """Database and queue state; 200 when usable, 503 when a backend is down."""
    body = {"status": "ok", "database": {"vendor": connection.vendor}, "queue": {"backend": queue_backend()}}
    healthy = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        body["database"]["status"] = "ok"
    except Exception as exc:  # any failure means "down"; say why
        healthy = False
        body["database"].update(status="error", detail=str(exc)[:200])
    if queue_backend() == "inline":
        body["queue"]["status"] = "inline"
    else:
        try:
            from rq import Worker

            from .jobs import get_queue

            queue = get_queue()
            queue.connection.ping()
            body["queue"].update(
                status="ok", queued=queue.count, workers=Worker.count(connection=queue.connection)
            )
        except Exception as exc:
            healthy = False
            body["queue"].update(status="error", detail=str(exc)[:200])
    if not healthy:
        body["status"] = "error"
    return JsonResponse(body, status=200 if healthy else 503)


class OrganizationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()
    default_region = serializers.CharField()
    api_key = serializers.SerializerMethodField()

    def get_api_key(self, org) -> dict | None:
        key = self.context["request"].auth
        if key is None or not hasattr(key, "scope"):
            return None
        return {"name": key.name, "prefix": key.prefix, "scope": key.scope}


class OrganizationView(APIView):
    """The caller's organization (and key): a cheap way to check a key works."""

    @extend_schema(responses=OrganizationSerializer)
    def get(self, request):
        org = request_organization(request)
        return Response(OrganizationSerializer(org, context={"request": request}).data)
