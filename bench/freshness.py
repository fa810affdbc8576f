"""Section 4: end-to-end freshness through Kafka, command committed → visible in the dashboard.

Real processes on a scratch database and a run-unique topic and consumer group:
``coachlog serve --workers 2``, ``coachlog relay`` and ``coachlog project --source
kafka``. One client sends ``POST /engagements/{id}/celebrate-win`` (If-Match) and, once
the response arrived (the event is committed), polls ``GET /engagements/{id}/dashboard``
every 2 ms until the read model shows the new version; the next command follows after
a random 20–250 ms (a fixed gap locks the samples to the relay's poll timer). The
figure is the time from the response to the first dashboard answer that shows it. There
is no ratio target; the store-direct projector (``--source store``, LISTEN/NOTIFY) is
measured the same way as the same-run reference. The relay is started first and the
projector only once the relay has published (and so created the topic).
"""

from __future__ import annotations

import random
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.commands import WIN
from bench.common import (
    EXE,
    Check,
    Child,
    Http,
    Report,
    admin_token,
    child_env,
    free_port,
    open_engagements,
    percentile,
    say,
    services,
    wait_http,
)

FIRM = "firm-fresh"
ENGAGEMENTS = 8


def kafka_answers(host: str = "127.0.0.1", port: int = 9092) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return False
    return True


def wait_relayed(svc: Any, timeout: float) -> None:
    """Wait until the relay has published the log's head (so the topic exists)."""
    head = svc.engagements.recorder.max_notification_id() or 0
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        with svc.db.read() as cur:
            cur.execute("SELECT MIN(position) FROM relay_tracking")
            row = cur.fetchone()
        if row is not None and row[0] is not None and row[0] >= head:
            return
        time.sleep(0.1)
    msg = f"the relay did not publish up to {head} within {timeout:.0f} s"
    raise TimeoutError(msg)


def dashboard_version(client: Http, eid: uuid.UUID) -> int:
    status, _, body = client.request("GET", f"/engagements/{eid}/dashboard")
    return int(body["data"]["version"]) if status == 200 else 0


def measure(
    port: int, token: str, ids: list[uuid.UUID], samples: int, seconds: float
) -> tuple[list[float], int]:
    writer, reader = Http(port, token), Http(port, token)
    versions = {}
    deadline = time.perf_counter() + 120
    for eid in ids:  # wait until the projector has every engagement (group join, catch-up)
        while dashboard_version(reader, eid) < 1:
            if time.perf_counter() > deadline:
                msg = "the projector did not show the opened engagements within 120 s"
                raise TimeoutError(msg)
            time.sleep(0.05)
        versions[eid] = 1
    latencies: list[float] = []
    timeouts = 0
    rng = random.Random(4)
    stop = time.perf_counter() + seconds
    for n in range(samples):
        if time.perf_counter() > stop:
            break
        eid = ids[n % len(ids)]
        status, headers, body = writer.request(
            "POST",
            f"/engagements/{eid}/celebrate-win",
            {"win": WIN},
            {"If-Match": f'"{versions[eid]}"'},
        )
        committed = time.perf_counter()
        if status != 200:
            msg = f"HTTP {status}: {body!r}"[:300]
            raise RuntimeError(msg)
        versions[eid] = int(headers["etag"].strip('"'))
        give_up = committed + 15
        while dashboard_version(reader, eid) < versions[eid]:
            if time.perf_counter() > give_up:
                timeouts += 1
                break
            time.sleep(0.002)
        else:
            latencies.append(time.perf_counter() - committed)
        # One command at a time, at a random phase: a fixed gap would lock the samples
        # to the relay's 0.2 s poll timer and measure one point of its cycle.
        time.sleep(rng.uniform(0.02, 0.25))
    writer.close()
    reader.close()
    return latencies, timeouts


def run(report: Report, admin_url: str, quick: bool, scratch: Any) -> None:
    samples, secs = (30, 20.0) if quick else (250, 100.0)
    rows = []
    results = {}
    for source in ("kafka", "store"):
        if source == "kafka" and not kafka_answers():
            report.note("4", "no broker on 127.0.0.1:9092 (scripts/ensure-kafka.sh): skipped")
            continue
        with scratch(admin_url, f"fresh{source}") as url:
            svc = services(url)
            token = admin_token(svc, FIRM)
            ids = open_engagements(svc, FIRM, ENGAGEMENTS)
            run_id = uuid.uuid4().hex[:8]
            env = child_env(
                url,
                COACHLOG_KAFKA_TOPIC=f"coachlog-bench-{run_id}",
                COACHLOG_KAFKA_GROUP=f"coachlog-bench-{run_id}",
            )
            port = free_port()
            tmp = Path(tempfile.gettempdir())
            children = [
                Child(
                    [EXE, "serve", "--port", str(port), "--workers", "2", "--no-projections"],
                    env,
                    tmp / f"coachlog-bench-fresh-serve-{run_id}.log",
                )
            ]
            if source == "kafka":
                children.append(
                    Child([EXE, "relay"], env, tmp / f"coachlog-bench-relay-{run_id}.log")
                )
                # The relay creates the topic with its partitions; a consumer subscribing
                # first would have an auto-creating broker make it with its own default.
                wait_relayed(svc, timeout=60)
            children.append(
                Child(
                    [EXE, "project", "--source", source],
                    env,
                    tmp / f"coachlog-bench-project-{run_id}.log",
                )
            )
            try:
                wait_http(port)
                latencies, timeouts = measure(port, token, ids, samples, secs)
            finally:
                for child in reversed(children):
                    child.stop()
                svc.close()
        results[source] = latencies
        rows.append(
            [
                "relay → Kafka → projector" if source == "kafka" else "projector on the store",
                f"{len(latencies)}",
                f"{percentile(latencies, 50) * 1000:.1f}",
                f"{percentile(latencies, 99) * 1000:.1f}",
                f"{max(latencies) * 1000:.1f}" if latencies else "—",
                str(timeouts),
            ]
        )
        say(f"  {source}: {len(latencies)} samples, {timeouts} timeouts (15 s)")
    report.table("4", ["path", "samples", "p50 ms", "p99 ms", "max ms", "timeouts"], rows)
    if results.get("kafka"):
        k = results["kafka"]
        s = results.get("store") or []
        report.check(
            Check(
                "4",
                "freshness through Kafka",
                f"p50 {percentile(k, 50) * 1000:.0f} ms, p99 {percentile(k, 99) * 1000:.0f} ms",
                f"store projector p99 {percentile(s, 99) * 1000:.0f} ms" if s else "—",
                percentile(k, 99) / percentile(s, 99) if s else None,
                "none set (reported)",
                None,
            )
        )
