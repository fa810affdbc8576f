"""Audit: recompute every engagement's hash chain, and anchor the heads of all chains.

A chain alone proves that no stored event was changed, removed or reordered *inside*
a stream, but not that a whole stream (or its tail) was not rewritten or cut off.
Anchors close that gap: ``anchor()`` records, in an append-only table, the head
(version and link) of every chain that moved since the last anchor, together with a
running digest ``d(n) = SHA-256(d(n−1) ‖ n ‖ position ‖ heads)``. Verification then
also demands that each anchored head is still there, unchanged — so truncating or
rewriting a stream after it was anchored is caught — and recomputes the running digest,
so editing the anchors is caught too. Publishing the latest digest outside the database
(an auditor's notes, a ticket, a log shipped elsewhere) makes even a full rewrite of
database and anchors detectable: ``verify(expect_digest=...)``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain.keys import SqlTables, retrying
from domain.storage import GENESIS, as_uuid, chain_link, split_state

ZERO_DIGEST = "0" * 64
PAGE = 1000

_TABLES = [
    """CREATE TABLE IF NOT EXISTS {p}coachlog_audit_anchors (
        seq BIGINT PRIMARY KEY,
        position BIGINT NOT NULL,
        anchored_at DOUBLE PRECISION NOT NULL,
        heads TEXT NOT NULL,
        digest TEXT NOT NULL
    )""",
]


class FirmIndex(Protocol):
    """Which firm an engagement belongs to, kept apart from the events."""

    def firm_of(self, engagement_id: UUID) -> str | None: ...

    def engagements_of_firm(self, firm_id: str) -> list[UUID]: ...


@dataclass(frozen=True)
class Anchor:
    """One anchoring: the heads that moved up to a log position, and the running digest."""

    seq: int
    position: int
    anchored_at: float
    heads: dict[str, list[Any]]  # engagement id -> [version, link hex, firm id]
    digest: str


def anchor_digest(
    previous: str,
    seq: int,
    position: int,
    heads: dict[str, list[Any]],
    anchored_at: float | None = None,
) -> str:
    """The running digest after anchoring ``heads`` as anchor ``seq`` at ``position``
    and time ``anchored_at`` (covered since anchors record it; None: as older anchors,
    which did not cover it, were made)."""
    canonical = json.dumps(heads, sort_keys=True, separators=(",", ":"))
    if anchored_at is None:
        payload = f"{previous}|{seq}|{position}|{canonical}"
    else:
        payload = f"v2|{previous}|{seq}|{position}|{float(anchored_at)!r}|{canonical}"
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class Break:
    """A place where the history is not what was stored and anchored."""

    engagement_id: str
    version: int
    problem: str
    detail: str


@dataclass
class AuditReport:
    """What a verification found."""

    engagements: int = 0
    events: int = 0
    anchors: int = 0
    anchored_position: int | None = None
    digest: str | None = None
    breaks: list[Break] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every chain and every anchor checks out."""
        return not self.breaks

    def first_break(self, engagement_id: str) -> Break | None:
        """The first problem found in one engagement's history."""
        found = [b for b in self.breaks if b.engagement_id == engagement_id]
        return min(found, key=lambda b: b.version) if found else None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (for the CLI and the API)."""
        return {
            "ok": self.ok,
            "engagements": self.engagements,
            "events": self.events,
            "anchors": self.anchors,
            "anchored_position": self.anchored_position,
            "digest": self.digest,
            "breaks": [asdict(b) for b in self.breaks],
        }


class _Stream:
    """The verification state of one engagement while its events go by in order."""

    __slots__ = ("count", "firm_id", "link", "version")

    def __init__(self) -> None:
        self.version = 0
        self.link = GENESIS
        self.count = 0
        self.firm_id: str | None = None


def firm_of_payload(payload: bytes) -> str | None:
    """The firm a stored event's payload names (read without opening anything sealed)."""
    try:
        value = json.loads(payload).get("firm_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


class AnchorStore(SqlTables):
    """The append-only anchor table."""

    @retrying
    def create_tables(self) -> None:
        """Create the anchor table if it does not exist."""
        with self._cursor(commit=True) as cur:
            for statement in _TABLES:
                cur.execute(self.sql(statement))

    @retrying
    def all(self) -> list[Anchor]:
        """Every anchor, oldest first."""
        with self._cursor() as cur:
            cur.execute(
                self.sql(
                    "SELECT seq, position, anchored_at, heads, digest"
                    " FROM {p}coachlog_audit_anchors ORDER BY seq"
                )
            )
            rows = [self._row(r) for r in cur.fetchall()]
        return [
            Anchor(int(r[0]), int(r[1]), float(r[2]), json.loads(r[3]), str(r[4]))
            for r in rows
            if r is not None
        ]

    @retrying
    def latest(self) -> Anchor | None:
        """The most recent anchor."""
        with self._cursor() as cur:
            cur.execute(
                self.sql(
                    "SELECT seq, position, anchored_at, heads, digest"
                    " FROM {p}coachlog_audit_anchors ORDER BY seq DESC LIMIT 1"
                )
            )
            r = self._row(cur.fetchone())
        if r is None:
            return None
        return Anchor(int(r[0]), int(r[1]), float(r[2]), json.loads(r[3]), str(r[4]))

    @retrying
    def add(self, anchor: Anchor) -> bool:
        """Append an anchor; False if another anchorer took that number first."""
        with self._cursor(commit=True) as cur:
            cur.execute(
                self.sql(
                    "INSERT INTO {p}coachlog_audit_anchors (seq, position, anchored_at, heads,"
                    " digest) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
                ),
                (
                    anchor.seq,
                    anchor.position,
                    anchor.anchored_at,
                    json.dumps(anchor.heads, sort_keys=True, separators=(",", ":")),
                    anchor.digest,
                ),
            )
            cur.execute(
                self.sql("SELECT digest FROM {p}coachlog_audit_anchors WHERE seq = %s"),
                (anchor.seq,),
            )
            return bool(self._first(cur.fetchone()) == anchor.digest)


class MemoryAnchorStore:
    """Anchors in memory (for the in-memory event store)."""

    def __init__(self) -> None:
        self.anchors: list[Anchor] = []
        self.lock = threading.Lock()

    def create_tables(self) -> None:
        return None

    def all(self) -> list[Anchor]:
        return list(self.anchors)

    def latest(self) -> Anchor | None:
        return self.anchors[-1] if self.anchors else None

    def add(self, anchor: Anchor) -> bool:
        with self.lock:
            if self.anchors and self.anchors[-1].seq >= anchor.seq:
                return False
            self.anchors.append(anchor)
            return True


class Auditor:
    """Verifies the chains of an application's event store and anchors their heads."""

    def __init__(
        self,
        recorder: Any,
        anchors: AnchorStore | MemoryAnchorStore,
        firms: FirmIndex | None = None,
    ) -> None:
        self.recorder = recorder
        self.anchors = anchors
        #: Which firm an engagement belongs to, kept apart from its events (the keys'
        #: table): a deleted or edited stream still counts for its firm.
        self.firms = firms

    # -- anchoring ----------------------------------------------------------------------

    def _notifications(self, start: int, stop: int) -> Iterator[Any]:
        while start <= stop:
            page = self.recorder.select_notifications(start, PAGE, stop=stop)
            if not page:
                return
            yield from page
            start = page[-1].id + 1

    def anchor(self, now: float | None = None) -> Anchor | None:
        """Anchor the heads of every chain that moved since the last anchor (None if
        nothing moved, or another anchorer got there first)."""
        last = self.anchors.latest()
        start = (last.position if last else 0) + 1
        head = self.recorder.max_notification_id() or 0
        heads: dict[str, list[Any]] = {}
        for notification in self._notifications(start, head):
            link, payload = split_state(notification.state)
            heads[str(as_uuid(notification.originator_id))] = [
                notification.originator_version,
                link.hex() if link is not None else None,
                firm_of_payload(payload),
            ]
        if not heads:
            return None
        seq = (last.seq if last else 0) + 1
        at = time.time() if now is None else now
        digest = anchor_digest(last.digest if last else ZERO_DIGEST, seq, head, heads, at)
        anchor = Anchor(seq, head, at, heads, digest)
        return anchor if self.anchors.add(anchor) else None

    # -- verification -------------------------------------------------------------------

    def _expected_heads(
        self, report: AuditReport, anchored_firms: dict[str, str] | None = None
    ) -> dict[str, tuple[int, str | None, int]]:
        expected: dict[str, tuple[int, str | None, int]] = {}
        digest = ZERO_DIGEST
        covers_time = False  # once an anchor covers its time, every later one must
        for number, anchor in enumerate(self.anchors.all(), start=1):
            recomputed = anchor_digest(
                digest, anchor.seq, anchor.position, anchor.heads, anchor.anchored_at
            )
            if recomputed == anchor.digest:
                covers_time = True
            elif not covers_time:
                recomputed = anchor_digest(digest, anchor.seq, anchor.position, anchor.heads)
            if anchor.seq != number or recomputed != anchor.digest:
                report.breaks.append(
                    Break(
                        "",
                        anchor.seq,
                        "anchor_tampered",
                        f"anchor {anchor.seq} does not follow from the anchors before it",
                    )
                )
            digest = anchor.digest
            for engagement_id, head in anchor.heads.items():
                version, link = head[0], head[1]
                expected[engagement_id] = (int(version), link, anchor.seq)
                if anchored_firms is not None and len(head) > 2 and isinstance(head[2], str):
                    anchored_firms[engagement_id] = head[2]
            report.anchors = number
            report.anchored_position = anchor.position
            report.digest = anchor.digest
        return expected

    def _check(
        self,
        stream: _Stream,
        engagement_id: str,
        stored: Any,
        expected: dict[str, tuple[int, str | None, int]],
        report: AuditReport,
    ) -> None:
        version = stored.originator_version
        link, payload = split_state(stored.state)
        if stream.firm_id is None:
            stream.firm_id = firm_of_payload(payload)
        if version != stream.version + 1:
            missing = (
                f"version {stream.version + 1}"
                if version == stream.version + 2
                else f"versions {stream.version + 1}-{version - 1}"
            )
            report.breaks.append(
                Break(
                    engagement_id,
                    stream.version + 1,
                    "missing_event",
                    f"{missing} missing before version {version}",
                )
            )
        previous = stream.link
        if link is None:
            report.breaks.append(
                Break(engagement_id, version, "unchained", f"version {version} has no link")
            )
        elif version == stream.version + 1:
            recomputed = chain_link(
                previous, as_uuid(stored.originator_id), version, stored.topic, payload
            )
            if recomputed != link:
                report.breaks.append(
                    Break(
                        engagement_id,
                        version,
                        "content_changed",
                        f"version {version} does not match its link: its stored content "
                        "or its link was changed",
                    )
                )
        stream.version = version
        stream.link = link or b""
        stream.count += 1
        anchored = expected.get(engagement_id)
        if anchored is not None and anchored[0] == version and anchored[1] != (link or b"").hex():
            report.breaks.append(
                Break(
                    engagement_id,
                    version,
                    "anchor_mismatch",
                    f"version {version} differs from what anchor {anchored[2]} recorded",
                )
            )

    def _finish(
        self,
        streams: dict[str, _Stream],
        expected: dict[str, tuple[int, str | None, int]],
        report: AuditReport,
        only: Iterable[str] | None = None,
    ) -> None:
        wanted = set(expected) if only is None else set(only) & set(expected)
        for engagement_id in sorted(wanted):
            version, _, seq = expected[engagement_id]
            stream = streams.get(engagement_id)
            if stream is None:
                report.breaks.append(
                    Break(
                        engagement_id,
                        1,
                        "stream_missing",
                        f"anchor {seq} recorded version {version}, but no event is stored",
                    )
                )
            elif stream.version < version:
                report.breaks.append(
                    Break(
                        engagement_id,
                        stream.version + 1,
                        "truncated",
                        f"the stream ends at version {stream.version}, but anchor {seq} "
                        f"recorded version {version}",
                    )
                )
        report.engagements = len(streams)
        report.events = sum(s.count for s in streams.values())
        report.breaks.sort(key=lambda b: (b.engagement_id, b.version))

    def verify(self, expect_digest: str | None = None, firm_id: str | None = None) -> AuditReport:
        """Recompute every chain in log order and check every anchor (optionally only
        the engagements of one firm, and against a digest kept outside the database)."""
        report = AuditReport()
        anchored_firms: dict[str, str] = {}
        expected = self._expected_heads(report, anchored_firms)
        streams: dict[str, _Stream] = {}
        head = self.recorder.max_notification_id() or 0
        for notification in self._notifications(1, head):
            engagement_id = str(as_uuid(notification.originator_id))
            stream = streams.setdefault(engagement_id, _Stream())
            self._check(stream, engagement_id, notification, expected, report)
        if firm_id is not None:
            # A stream is the firm's if its events, an anchor or its key says so: one
            # deleted, or whose firm_id was edited, still shows in the firm's report.
            mine = {e for e, s in streams.items() if s.firm_id == firm_id}
            mine |= {e for e, f in anchored_firms.items() if f == firm_id}
            if self.firms is not None:
                mine |= {str(e) for e in self.firms.engagements_of_firm(firm_id)}
            # Anchor breaks (no engagement) concern every firm: they are kept.
            report.breaks = [b for b in report.breaks if b.engagement_id in mine | {""}]
            streams = {e: s for e, s in streams.items() if e in mine}
            self._finish(streams, expected, report, only=mine)
        else:
            self._finish(streams, expected, report)
        self._check_digest(report, expect_digest)
        return report

    def verify_engagement(
        self, engagement_id: UUID, expect_digest: str | None = None
    ) -> AuditReport:
        """Recompute one engagement's chain and check it against the anchors."""
        report = AuditReport()
        expected = self._expected_heads(report)
        key = str(engagement_id)
        streams: dict[str, _Stream] = {}
        for stored in self._in_log_order(engagement_id):
            stream = streams.setdefault(key, _Stream())
            self._check(stream, key, stored, expected, report)
        self._finish(streams, expected, report, only=[key])
        self._check_digest(report, expect_digest)
        return report

    @staticmethod
    def _check_digest(report: AuditReport, expect_digest: str | None) -> None:
        if expect_digest is not None and expect_digest != report.digest:
            report.breaks.append(
                Break(
                    "",
                    report.anchors,
                    "digest_mismatch",
                    f"the latest anchor digest is {report.digest}, not the {expect_digest} "
                    "recorded outside the database",
                )
            )

    def _in_log_order(self, engagement_id: UUID) -> list[Any]:
        """One engagement's stored events in the order of the log (as ``verify`` reads
        them), not of their versions: events swapped in the log are found here too."""
        datastore = getattr(self.recorder, "datastore", None)
        if datastore is None or not isinstance(self.anchors, AnchorStore):
            return list(self.recorder.select_events(engagement_id))
        table = self.recorder.events_table_name
        if self.anchors.dialect == "postgres":
            statement = (
                "SELECT originator_id, originator_version, topic, state"
                f' FROM {self.anchors.prefix}"{table}" WHERE originator_id = %s'
                " ORDER BY notification_id"
            )
            key: Any = engagement_id
        else:
            statement = (
                "SELECT originator_id, originator_version, topic, state"
                f" FROM {table} WHERE originator_id = ? ORDER BY rowid"
            )
            key = engagement_id.hex
        with datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (key,))
            rows = [self.anchors._row(row) for row in cursor.fetchall()]
        return [
            StoredEvent(
                originator_id=row[0], originator_version=row[1], topic=row[2], state=bytes(row[3])
            )
            for row in rows
            if row is not None
        ]

    def firms_of(self, engagement_id: UUID) -> set[str]:
        """Every firm an engagement is said to belong to: by its first stored event, by
        the anchors, by its key (one, unless someone edited the database)."""
        firms: set[str] = set()
        rows = self.recorder.select_events(engagement_id, limit=1)
        if rows:
            firm = firm_of_payload(split_state(rows[0].state)[1])
            if firm is not None:
                firms.add(firm)
        key = str(engagement_id)
        for anchor in self.anchors.all():
            head = anchor.heads.get(key)
            if head is not None and len(head) > 2 and isinstance(head[2], str):
                firms.add(head[2])
        if self.firms is not None:
            firm = self.firms.firm_of(engagement_id)
            if firm is not None:
                firms.add(firm)
        return firms


class Anchoring:
    """Anchor every ``seconds`` in a background thread (log each anchor's digest, so a
    copy of it lives outside the database wherever the logs are shipped)."""

    def __init__(self, auditor: Auditor, seconds: float) -> None:
        self.auditor = auditor
        self.seconds = seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_forever(self) -> None:
        """Anchor now and then every ``seconds`` until stopped; survive database outages."""
        log = logging.getLogger("coachlog.audit")
        while not self._stop.is_set():
            try:
                anchor = self.auditor.anchor()
            except Exception as error:  # a database outage must not end the loop
                log.warning("anchoring failed, retrying: %s", error)
            else:
                if anchor is not None:
                    log.info(
                        "anchor %d at position %d: %d chain heads, digest %s",
                        anchor.seq,
                        anchor.position,
                        len(anchor.heads),
                        anchor.digest,
                    )
            self._stop.wait(self.seconds)

    def start(self) -> None:
        """Run in a daemon thread."""
        self._thread = threading.Thread(target=self.run_forever, name="anchoring", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current anchoring."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
