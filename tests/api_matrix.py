"""Every API endpoint, listed once, so that auth and tenancy are tested for each of them.

A new endpoint joins the matrix by being added to ENDPOINTS: tests/test_api_matrix.py then checks
that it answers 401 without a key / with a malformed or revoked key, 403 to a read key when it
writes, 404 for another organization's object, and works for its own organization.
`make(org)` builds what the path needs in `org` and returns the values for `path.format(**...)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    write: bool
    make: Callable | None = None
    body: Callable | dict | None = None
    fmt: str = "json"
    ok_statuses: tuple = field(default=(200, 201, 202, 204))

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    def build(self, org) -> tuple[str, dict | None]:
        values = self.make(org) if self.make else {}
        body = self.body(values) if callable(self.body) else self.body
        return self.path.format(**values), body


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/api/v1/organization", write=False),
]


def register(*endpoints: Endpoint) -> None:
    ENDPOINTS.extend(endpoints)
