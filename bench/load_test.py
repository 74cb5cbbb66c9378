#!/usr/bin/env python
"""The load test (issue 13): N concurrent API clients against a running server, bounded in
time and in requests, traffic to 127.0.0.1 only. A small asyncio HTTP/1.1 client (keep-alive,
no dependency), so the figures measure the server, not a client library.

    # a server: SECRET_KEY=… DATABASE_URL=… REDIS_URL=… SECURE_SSL_REDIRECT=0 make serve PORT=8103
    .venv/bin/python bench/load_test.py --port 8103 --key ck_… --clients 30 --duration 300

Each client loops over a weighted mix: list (a page of 50), search, get by id, create/merge,
patch, opt-out, segment count. `--import-file F` uploads that file as an import when the run
starts and reports its final counters; `--kill-worker-pid P --kill-after S` SIGKILLs an RQ worker
once, with its whole process tree (RQ 3's work horse, which runs the import, leaves the worker's
process group: a kill of the worker alone leaves the horse running), `--kill-phase writing`
first waits until the import is writing; `--restart-worker CMD` starts a new one, which
requeues the import once its heartbeat is older than IMPORT_STALE_SECONDS. With
`--reference-digest F` (bench/import_digest.py of a quiet run of the same file on a copy of
the book) the import's final state is compared with it. Prints (and with `--out`, writes as
JSON) throughput, p50/p95/p99 per endpoint, status counts and the 5xx count (the goal: 0); exits
1 when there was a 5xx or the import did not end as the quiet run did.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict

MIX = [("list", 30), ("search", 15), ("get", 20), ("create", 10), ("patch", 10), ("opt_out", 5),
       ("segment_count", 10)]
SEARCH_TERMS = ["ann", "smith", "garcia", "919", "lee", "maria", "jon", "@example"]


class Client:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1."""

    def __init__(self, port: int, key: str):
        self.port, self.key = port, key
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        data = json.dumps(body).encode() if body is not None else b""
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {self.key}\r\n"
                f"Accept: application/json\r\nContent-Length: {len(data)}\r\n")
        if body is not None:
            head += "Content-Type: application/json\r\n"
        self.writer.write(head.encode() + b"\r\n" + data)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("closed")
        status = int(status_line.split()[1])
        length, chunked, close = 0, False, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and value.lower() == "close":
                close = True
        if chunked:
            payload = b""
            while (size := int((await self.reader.readline()).strip() or b"0", 16)):
                payload += await self.reader.readexactly(size + 2)
            await self.reader.readline()
        else:
            payload = await self.reader.readexactly(length) if length else b""
        if close:
            await self.close()
        return status, payload

    async def close(self):
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


class Run:
    def __init__(self, args, ids: list[str], segment_ids: list[int]):
        self.args, self.ids, self.segment_ids = args, ids, segment_ids
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, Counter] = defaultdict(Counter)
        self.requests = 0
        self.deadline = time.monotonic() + args.duration
        self.errors: list[str] = []

    def more(self) -> bool:
        return time.monotonic() < self.deadline and self.requests < self.args.max_requests

    async def client(self, number: int):
        rng = random.Random(self.args.seed + number)
        client = Client(self.args.port, self.args.key)
        names, weights = zip(*MIX, strict=True)
        while self.more():
            kind = rng.choices(names, weights)[0]
            method, path, body = self.pick(kind, rng)
            self.requests += 1
            started = time.perf_counter()
            try:
                status, payload = await asyncio.wait_for(client.request(method, path, body), timeout=60)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
                status, payload = 599, str(exc).encode()
                await client.close()
            self.latency[kind].append(time.perf_counter() - started)
            self.statuses[kind][status] += 1
            if status >= 500 and len(self.errors) < 20:
                self.errors.append(f"{method} {path} -> {status} {payload[:200]!r}")
            if kind == "create" and status in (200, 201):
                self.ids.append(json.loads(payload)["id"])
        await client.close()

    def pick(self, kind: str, rng: random.Random):
        if kind == "list":
            return "GET", "/api/v1/contacts?limit=50", None
        if kind == "search":
            return "GET", f"/api/v1/contacts?search={rng.choice(SEARCH_TERMS)}&limit=50", None
        if kind == "get":
            return "GET", f"/api/v1/contacts/{rng.choice(self.ids)}", None
        if kind == "create":
            # Half of them hit a phone that already exists (a merge), half are new.
            phone = f"+1919{rng.randrange(2_000_000, 9_999_999)}" if rng.random() < 0.5 else \
                f"+1984{rng.randrange(2_000_000, 9_999_999)}"
            return "POST", "/api/v1/contacts", {"phone": phone, "first_name": "Load", "tags": ["load"]}
        if kind == "patch":
            return "PATCH", f"/api/v1/contacts/{rng.choice(self.ids)}", {"city": rng.choice(["Raleigh", "Durham"])}
        if kind == "opt_out":
            return "POST", "/api/v1/contacts/opt-out", {"phone": f"+1984{rng.randrange(2_000_000, 9_999_999)}"}
        if self.segment_ids:
            return "GET", f"/api/v1/segments/{rng.choice(self.segment_ids)}/count", None
        return "GET", "/api/v1/contacts/count?tags=vip", None

    def report(self, elapsed: float) -> dict:
        out = {"clients": self.args.clients, "seconds": round(elapsed, 1), "requests": self.requests,
               "throughput_rps": round(self.requests / elapsed, 1), "endpoints": {}, "errors_5xx": 0}
        for kind, values in sorted(self.latency.items()):
            values = sorted(values)
            q = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
            out["endpoints"][kind] = {
                "requests": len(values), "p50_ms": round(q[49] * 1000, 1), "p95_ms": round(q[94] * 1000, 1),
                "p99_ms": round(q[98] * 1000, 1), "statuses": dict(sorted(self.statuses[kind].items())),
            }
            out["errors_5xx"] += sum(n for s, n in self.statuses[kind].items() if s >= 500)
        out["first_5xx"] = self.errors
        return out


async def setup(args) -> tuple[list[str], list[int]]:
    client = Client(args.port, args.key)
    status, payload = await client.request("GET", "/api/v1/contacts?limit=200")
    if status != 200:
        sys.exit(f"GET /api/v1/contacts answered {status}: {payload[:300]!r}")
    ids = [c["id"] for c in json.loads(payload)["results"]]
    segment_ids = []
    for name, rules in [("load vips", {"field": "tags", "operator": "contains_any", "value": ["vip"]}),
                        ("load NC", {"field": "state", "operator": "in", "value": ["NC", "SC"]})]:
        status, payload = await client.request("POST", "/api/v1/segments",
                                               {"name": f"{name} {uuid.uuid4().hex[:6]}", "rules": rules})
        if status == 201:
            segment_ids.append(json.loads(payload)["id"])
    await client.close()
    if not ids:
        sys.exit("The organization has no contacts: fill it first (bench/contacts_bench.py --fill).")
    return ids, segment_ids


def start_import(args) -> int | None:
    """Uploads --import-file with curl (multipart); returns the job id."""
    out = subprocess.run(["curl", "-s", "-H", f"Authorization: Bearer {args.key}", "-F",
                          f"file=@{args.import_file}", f"http://127.0.0.1:{args.port}/api/v1/imports"],
                         capture_output=True, text=True, check=False)
    try:
        return json.loads(out.stdout)["id"]
    except (ValueError, KeyError):
        print(f"import upload failed: {out.stdout[:300]}", file=sys.stderr)
        return None


async def main(args):
    ids, segment_ids = await setup(args)
    run = Run(args, ids, segment_ids)
    job_id = start_import(args) if args.import_file else None
    started = time.monotonic()

    async def chaos():
        if not args.kill_worker_pid:
            return
        await asyncio.sleep(args.kill_after)
        if args.kill_phase and job_id is not None:
            await wait_for_phase(args, job_id, args.kill_phase)
        killed = kill_tree(args.kill_worker_pid)
        report_chaos["killed_at_s"] = round(time.monotonic() - started, 1)
        report_chaos["killed_pids"] = killed
        if job_id is not None:
            report_chaos["job_when_killed"] = await job_state(args, job_id)
        print(f"killed worker tree {killed} at {report_chaos['killed_at_s']} s", file=sys.stderr)
        if args.restart_worker:
            subprocess.Popen(args.restart_worker, shell=True, start_new_session=True)  # noqa: S602 (the operator's own command)

    report_chaos: dict = {}

    await asyncio.gather(chaos(), *(run.client(n) for n in range(args.clients)))
    report = run.report(time.monotonic() - started)
    if report_chaos:
        report["chaos"] = report_chaos
    if job_id is not None:
        client = Client(args.port, args.key)
        give_up = time.monotonic() + args.import_wait
        while True:
            status, payload = await client.request("GET", f"/api/v1/imports/{job_id}")
            job = json.loads(payload) if status == 200 else {}
            if job.get("status") in ("succeeded", "failed") or time.monotonic() > give_up:
                break
            await asyncio.sleep(2)
        await client.close()
        report["import"] = {k: job.get(k) for k in ("id", "status", "stalled", "counters", "progress")}
        if args.reference_digest:
            report["import"]["same_as_quiet_run"] = same_as_reference(args, job_id)
    print(json.dumps(report, indent=2))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(report, handle, indent=2)
    failed = report["errors_5xx"] or (args.reference_digest and not report.get("import", {}).get("same_as_quiet_run"))
    sys.exit(1 if failed else 0)


def kill_tree(pid: int) -> list[int]:
    """SIGKILLs a worker and every descendant (the work horse) by pid, as when a machine dies."""
    import psutil

    tree = [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]
    for member in tree:
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return tree


async def job_state(args, job_id: int) -> dict:
    client = Client(args.port, args.key)
    status, payload = await client.request("GET", f"/api/v1/imports/{job_id}")
    await client.close()
    job = json.loads(payload) if status == 200 else {}
    return {"status": job.get("status"), "progress": job.get("progress")}


async def wait_for_phase(args, job_id: int, phase: str) -> None:
    """Polls the import until it is in `phase` with some progress (writing: a chunk committed)."""
    give_up = time.monotonic() + args.import_wait
    while time.monotonic() < give_up:
        progress = (await job_state(args, job_id)).get("progress") or {}
        if progress.get("phase") == phase and (phase != "writing" or progress.get("groups_done", 0) > 0):
            return
        await asyncio.sleep(0.5)


def same_as_reference(args, job_id: int) -> bool:
    """bench/import_digest.py of this import (the server's DATABASE_URL, in this environment)
    against the quiet run's digest."""
    from pathlib import Path

    here = Path(__file__).resolve().parent
    sys.path.insert(0, str(here))
    from import_digest import same_result

    out = subprocess.run([sys.executable, str(here / "import_digest.py"), "--job", str(job_id)],
                         capture_output=True, text=True, check=True)
    actual = json.loads(out.stdout)
    reference = json.loads(Path(args.reference_digest).read_text())
    if not same_result(actual, reference):
        print("the import differs from the quiet run:\n" + json.dumps({"run": actual, "quiet": reference}),
              file=sys.stderr)
        return False
    return True


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True, help="the server on 127.0.0.1 (nowhere else)")
    parser.add_argument("--key", required=True, help="a write API key of the bench organization")
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--duration", type=float, default=300, help="seconds (at most 600)")
    parser.add_argument("--max-requests", type=int, default=200_000, help="stop after this many requests")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--import-file", help="upload this file as an import when the run starts")
    parser.add_argument("--import-wait", type=float, default=600, help="seconds to wait for the import after")
    parser.add_argument("--kill-worker-pid", type=int, help="SIGKILL this RQ worker once")
    parser.add_argument("--kill-after", type=float, default=60)
    parser.add_argument("--kill-phase", choices=["reading", "writing"],
                        help="after --kill-after, also wait until the import is in this phase")
    parser.add_argument("--restart-worker", help="shell command that starts a new worker after the kill")
    parser.add_argument("--reference-digest", help="bench/import_digest.py output of a quiet run of the same file")
    parser.add_argument("--out", help="also write the report here (JSON)")
    arguments = parser.parse_args()
    if not 0 < arguments.duration <= 600 or not 0 < arguments.clients <= 200:
        sys.exit("--duration must be 1-600 s and --clients 1-200.")
    asyncio.run(main(arguments))
