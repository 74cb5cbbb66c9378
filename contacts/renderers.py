"""Renderers named csv, xlsx and vcf, so that DRF's `?format=` override accepts them.

The export view answers with a streamed Django response, which DRF passes through without
rendering; these classes exist for content negotiation (and the OpenAPI media types). Should a
DRF Response reach one (the view renders its errors as JSON itself), bytes pass unchanged and
anything else becomes JSON rather than a broken file.
"""

from __future__ import annotations

import json

from rest_framework.renderers import BaseRenderer


class _FileRenderer(BaseRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, bytes):
            return data
        return json.dumps(data, default=str).encode("utf-8")


class CsvRenderer(_FileRenderer):
    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"


class XlsxRenderer(_FileRenderer):
    media_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    format = "xlsx"
    charset = None


class VcardRenderer(_FileRenderer):
    media_type = "text/vcard"
    format = "vcf"
    charset = "utf-8"
