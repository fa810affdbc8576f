"""Dashboard queries over the progress read model; every answer says how fresh it is."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from statistics import median
from typing import Any
from uuid import UUID

from projections import docseal, metrics
from projections.database import Cursor
from projections.figures import Figures, figures_of
from projections.figures import loads as load_figures
from projections.progress import Doc
from projections.store import NAME, ProgressStore, Quarantine

SORTS = {
    "opened_at": "opened_at",
    "last_session_at": "last_session_at",
    "roi_pct": "roi_pct",
    "status": "status",
    "coach_id": "coach_id",
}
FILTERS = ("coach_id", "client_id", "sponsor_id", "status", "segment")


class NotFound(Exception):
    """No such engagement (or coach) in the caller's firm."""


class Quarantined(Exception):
    """The engagement's read model stopped at an event it could not fold."""

    def __init__(
        self, engagement_id: str, cause: str, event_type: str, position: int | None, version: int
    ) -> None:
        self.engagement_id = engagement_id
        self.cause = cause
        self.event_type = event_type
        self.position = position
        self.version = version
        super().__init__(
            f"The read model of engagement {engagement_id} is held in quarantine: {cause}."
            " Its dashboards answer again once an operator has run"
            " `coachlog projections retry` after a fix."
        )


@dataclass(frozen=True)
class Freshness:
    """The log position and recorded time an answer reflects, and its lag to the head."""

    position: int
    recorded_at: str | None
    head: int
    lag: int
    #: The relay's acknowledged position when events reach read models through Kafka.
    published: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "recorded_at": self.recorded_at,
            "head": self.head,
            "lag": self.lag,
            "published": self.published,
            "relay_lag": None if self.published is None else self.head - self.published,
        }


def engagement_summary(doc: Doc, now: datetime) -> dict[str, Any]:
    """One line of a list: who, where it stands, and whether it is off track."""
    counts = metrics.session_counts(doc)
    roi = metrics.roi(doc)
    return {
        "engagement_id": doc["engagement_id"],
        "client_id": doc["client_id"],
        "coach_id": doc["coach_id"],
        "sponsor_id": doc["sponsor_id"],
        "segment": doc["segment"],
        "delivery": doc["delivery"],
        "status": doc["status"],
        "opened_at": doc["opened_at"],
        "closed_at": doc["closed_at"],
        "sessions_held": counts["held"],
        "sessions_planned": counts["planned"],
        "days_since_last_session": metrics.days_since_last_session(doc, now.date()),
        "off_track": metrics.is_off_track(doc, now),
        "gas_t_score": _round(metrics.gas_t_score(doc["goals"].values())),
        "follow_through": _round(metrics.follow_through(doc["commitments"].values())),
        "follow_through_n": metrics.follow_through_n(doc["commitments"].values()),
        "roi_pct": roi["roi_pct"],
        "version": doc["version"],
    }


def engagement_dashboard(doc: Doc, now: datetime) -> dict[str, Any]:
    """Everything the engagement progress page shows."""
    commitments = doc["commitments"]
    today = now.date()
    gas = metrics.gas(doc["goals"].values())
    goals = [
        {
            "goal_id": goal_id,
            "title": goal["title"],
            "status": goal["status"],
            "weight": goal["weight"],
            "target_date": goal["target_date"],
            "latest_score": (goal.get("scores") or {}).get(gas["rater"] or "coach"),
            "scores": goal.get("scores") or {},
            "milestones_defined": len(goal["milestones"]),
            "milestones_hit": sum(1 for m in goal["milestones"].values() if m["hit_at"]),
            "milestones": [{"milestone_id": k, **v} for k, v in goal["milestones"].items()],
        }
        for goal_id, goal in doc["goals"].items()
    ]
    overdue = [
        {"commitment_id": k, "title": c["title"], "due_date": c["due_date"]}
        for k, c in commitments.items()
        if c["status"] == "open" and c["due_date"] < today.isoformat()
    ]
    return {
        **engagement_summary(doc, now),
        "firm_id": doc["firm_id"],
        "currency": doc["currency"],
        "cadence_days": doc["cadence_days"],
        "sessions": metrics.session_counts(doc),
        "held_at": doc["held_at"],
        **metrics.cadence(doc),
        "pauses": doc.get("pauses", []),
        "gas": gas,
        "gas_over_time": metrics.gas_over_time(doc["goals"].values()),
        "goals": goals,
        "time_to_first_milestone_days": metrics.time_to_first_milestone_days(doc),
        "commitments": {
            "open": sum(1 for c in commitments.values() if c["status"] == "open"),
            "kept": sum(1 for c in commitments.values() if c["status"] == "kept"),
            "missed": sum(1 for c in commitments.values() if c["status"] == "missed"),
            "overdue": overdue,
        },
        "wellbeing": metrics.wellbeing_trend(doc["wellbeing"]),
        "assessments_completed": doc["assessments"],
        "skills": doc["skills"],
        "money": metrics.money(doc),
        "roi": metrics.roi(doc),
        "outcomes": metrics.outcomes(doc),
        "reactions": doc["reactions"],
        "consents": doc["consents"],
    }


def group_stats(docs: Sequence[Doc], now: datetime) -> dict[str, Any]:
    """Portfolio figures over a set of engagements (a coach's, a segment's, a firm's)."""
    return _group_stats([figures_of(d) for d in docs], now)


def _grouped(figures: Sequence[Figures], key: str, now: datetime) -> dict[str, Any]:
    """Group figures by a document field (coach, segment), groups in sorted order."""
    groups: dict[str, list[Figures]] = defaultdict(list)
    for f in figures:
        groups[f.doc[key]].append(f)
    return {k: _group_stats(v, now) for k, v in sorted(groups.items())}


def _group_stats(figures: Sequence[Figures], now: datetime) -> dict[str, Any]:
    docs = [f.doc for f in figures]  # the FIELDS of projections/figures.py
    by_status = {
        s: sum(1 for d in docs if d["status"] == s) for s in ("active", "paused", "closed")
    }
    closed = [d for d in docs if d["status"] == "closed"]
    completed = [d for d in closed if d["close_reason"] == "completed"]
    lengths = [
        (datetime.fromisoformat(d["closed_at"]) - datetime.fromisoformat(d["opened_at"])).days
        for d in closed
    ]
    counts = [f.counts for f in figures]
    held = sum(c["held"] for c in counts)
    no_show = sum(c["no_show"] for c in counts)
    ended = held + no_show + sum(c["cancelled"] for c in counts)
    late = sum(c["late_cancelled"] for c in counts)
    latest_nps = [f.latest_nps for f in figures if f.latest_nps is not None]
    money = [f.money for f in figures]
    # Sums of money only mean something in one currency; a firm billing in several
    # gets them per currency instead (ROI % and BCR are ratios, comparable anyway).
    currencies = sorted({d["currency"] for d in docs})
    by_currency = {
        currency: {
            key: sum(
                (m[key] for m, d in zip(money, docs, strict=True) if d["currency"] == currency),
                Decimal(0),
            )
            for key in ("invoiced", "paid", "outstanding")
        }
        for currency in currencies
    }
    single = by_currency[currencies[0]] if len(currencies) == 1 else None
    return {
        "engagements": len(docs),
        **by_status,
        "off_track": sum(1 for f in figures if f.off_track(now)),
        "completion_rate": _round(len(completed) / len(closed)) if closed else None,
        "completion_rate_n": len(closed),
        "median_length_days": median(lengths) if lengths else None,
        "median_length_days_n": len(lengths),
        "sessions_held": held,
        "no_show_rate": _round(no_show / (held + no_show)) if held + no_show else None,
        "no_show_rate_n": held + no_show,
        "late_cancel_rate": _round(late / ended) if ended else None,
        "late_cancel_rate_n": ended,
        "nps": metrics.nps(latest_nps),
        "nps_n": len(latest_nps),
        "currency": currencies[0] if len(currencies) == 1 else None,
        "invoiced": None if single is None else single["invoiced"],
        "paid": None if single is None else single["paid"],
        "outstanding": None if single is None else single["outstanding"],
        "money_by_currency": by_currency,
        "roi": programme_roi(figures),
    }


def _pooled(benefit: Decimal, cost: Decimal) -> Decimal | None:
    return None if cost == 0 else ((benefit - cost) / cost * 100).quantize(Decimal("0.01"))


def _sum(rois: Sequence[dict[str, Any]], key: str) -> Decimal:
    return sum((Decimal(r[key]) for r in rois if r.get(key) is not None), Decimal(0))


def programme_roi(figures: Sequence[Figures]) -> dict[str, Any]:
    """ROI of a programme (the firm, a coach, a segment), docs/read-models.md "ROI".

    Every *closed* engagement counts — completed or not (dropouts), with or without
    improvement data (none: zero benefit, full costs) — in the sponsor's perspective
    (pooled and median) and in the firm's (margin). Active and paused engagements are
    reported apart, at planned cost and at cost to date, never mixed in. Money is summed
    per currency only; medians of ROI % and BCR (ratios) are over every currency.
    """
    closed = [f for f in figures if f.doc["status"] == "closed"]
    running = [f for f in figures if f.doc["status"] != "closed"]
    measured = [f.roi for f in closed if f.roi["roi_pct"] is not None]
    currencies = sorted({f.doc["currency"] for f in figures})
    by_currency: dict[str, Any] = {}
    for currency in currencies:
        done = [f.roi for f in closed if f.doc["currency"] == currency]
        now = [f.roi for f in running if f.doc["currency"] == currency]
        benefit, cost = _sum(done, "benefit"), _sum(done, "cost")
        fees, delivery = _sum(done, "fees"), _sum(done, "delivery_costs")
        with_data = [r for r in now if r["outcomes_counted"]]
        now_benefit = _sum(with_data, "benefit")
        by_currency[currency] = {
            "closed": {
                "n": len(done),
                "benefit": benefit,
                "cost": cost,
                "pooled_roi_pct": _pooled(benefit, cost),
                "fees": fees,
                "delivery_costs": delivery,
                "margin": fees - delivery,
                "margin_pct": (
                    None
                    if fees == 0
                    else ((fees - delivery) / fees * 100).quantize(Decimal("0.01"))
                ),
            },
            "active": {
                "n": len(now),
                "with_outcomes": len(with_data),
                "benefit": now_benefit,
                "planned_cost": _sum(with_data, "planned_cost"),
                "cost_to_date": _sum(with_data, "cost_to_date"),
                "pooled_roi_pct_at_planned_cost": _pooled(
                    now_benefit, _sum(with_data, "planned_cost")
                ),
                "pooled_roi_pct_to_date": _pooled(now_benefit, _sum(with_data, "cost_to_date")),
            },
        }
    single = by_currency[currencies[0]]["closed"] if len(currencies) == 1 else None
    active_measured = [f.roi for f in running if f.roi["roi_pct"] is not None]
    return {
        "closed_engagements": len(closed),
        "engagements_measured": len(measured),
        "engagements_with_outcomes": sum(1 for f in closed if f.roi["outcomes_counted"]),
        "no_data": sum(1 for f in closed if not f.roi["outcomes_counted"]),
        "dropouts": sum(1 for f in closed if f.doc["close_reason"] != "completed"),
        "roi_pct": _quartiles([float(r["roi_pct"]) for r in measured]),
        "bcr": _quartiles([float(r["bcr"]) for r in measured]),
        "currency": currencies[0] if len(currencies) == 1 else None,
        "benefit": None if single is None else single["benefit"],
        "cost": None if single is None else single["cost"],
        "pooled_roi_pct": None if single is None else single["pooled_roi_pct"],
        "margin": None if single is None else single["margin"],
        "margin_pct": None if single is None else single["margin_pct"],
        "by_currency": by_currency,
        "active": {
            "engagements": len(running),
            "engagements_measured": len(active_measured),
            "roi_pct_at_planned_cost": _quartiles([float(r["roi_pct"]) for r in active_measured]),
        },
    }


def sponsor_report(doc: Doc, now: datetime) -> dict[str, Any]:
    """What the sponsor may see: only sections both the agreement and consent allow."""
    views = set(doc["sponsor_may_see"])
    consents = set(doc["consents"])
    report: dict[str, Any] = {
        "engagement_id": doc["engagement_id"],
        "sponsor_id": doc["sponsor_id"],
        "status": doc["status"],
        "opened_at": doc["opened_at"],
        "closed_at": doc["closed_at"],
    }
    withheld: dict[str, str] = {}

    def allow(section: str, consent: str | None) -> bool:
        if section not in views:
            withheld[section] = "not in the signed agreement"
            return False
        if consent is not None and consent not in consents:
            withheld[section] = f"the client has not consented ({consent})"
            return False
        return True

    if allow("attendance", None):
        report["attendance"] = {
            **metrics.session_counts(doc),
            **metrics.cadence(doc),
        }
    if allow("goals", "share_goals_with_sponsor"):
        show_milestones = allow("milestones", "share_goals_with_sponsor")
        gas = metrics.gas(doc["goals"].values())
        report["goals"] = [
            {
                "title": g["title"],
                "status": g["status"],
                "latest_score": (g.get("scores") or {}).get(gas["rater"] or "coach"),
                "scores": g.get("scores") or {},
                **(
                    {
                        "milestones_hit": sum(1 for m in g["milestones"].values() if m["hit_at"]),
                        "milestones_defined": len(g["milestones"]),
                    }
                    if show_milestones
                    else {}
                ),
            }
            for g in doc["goals"].values()
        ]
        report["gas_t_score"] = gas["t_score"]
        report["gas"] = gas
    else:
        withheld.setdefault("milestones", withheld["goals"])
    if allow("outcomes", "share_outcomes"):
        report["outcomes"] = [
            {
                "kind": o["kind"],
                "annualized_value": o["annualized_value"],
                "verified": o["verified"],
                "status": metrics.outcome_status(o),
            }
            for o in doc["outcomes"].values()
            if o["excluded"] is None
        ]
    if allow("roi", "share_outcomes"):
        report["roi"] = {k: v for k, v in metrics.roi(doc).items() if k != "intangibles"}
    report["withheld"] = withheld
    return report


def _round(value: float | None, places: int = 4) -> float | None:
    return None if value is None else round(value, places)


def _quartiles(values: Sequence[float]) -> dict[str, Any] | None:
    q = metrics.quartiles(values)
    return (
        None
        if q is None
        else {k: _round(v, 2) if isinstance(v, float) else v for k, v in q.items()}
    )


def _quarantined(held: Quarantine) -> Quarantined:
    return Quarantined(
        held.engagement_id, held.describe(), held.event_type, held.position, held.version
    )


class Dashboards:
    """Queries over the live generation of the progress read model."""

    def __init__(
        self,
        store: ProgressStore,
        head: Callable[[], int],
        published: Callable[[Cursor], int | None] = lambda cur: None,
        *,
        head_sql: str | None = None,
        published_sql: str | None = None,
    ) -> None:
        """``head`` and ``published`` read the head of the log and the relay's position;
        ``head_sql`` and ``published_sql``, if given, are the same as scalar SELECTs,
        which lets one engagement's answer come from a single statement."""
        self.store = store
        self.head = head
        self.published = published
        self.head_sql = head_sql
        self.published_sql = published_sql
        self._live: int | None = None  # last live generation seen (checked on every read)

    def _read(self, cur: Cursor) -> tuple[str, Freshness]:
        generation = self.store.live_generation(cur)
        tracking = self.store.tracking(generation, cur)
        head = max(self.head(), tracking.position)
        fresh = Freshness(
            tracking.position,
            tracking.recorded_at,
            head,
            head - tracking.position,
            self.published(cur),
        )
        return self.store.table(generation), fresh

    def documents(self, firm_id: str) -> tuple[list[Doc], Freshness]:
        """Every progress document of the firm, with the freshness they share."""
        return self._select(firm_id)

    def _select(
        self, firm_id: str, where: str = "", params: Iterable[Any] = ()
    ) -> tuple[list[Doc], Freshness]:
        with self.store.db.read() as cur:
            table, fresh = self._read(cur)
            cur.execute(f"SELECT doc FROM {table} WHERE firm_id = %s{where}", (firm_id, *params))
            return [json.loads(row[0]) for row in cur.fetchall()], fresh

    def document(self, firm_id: str, engagement_id: str) -> tuple[Doc, Freshness]:
        """One engagement's progress document; NotFound outside the firm (Quarantined
        when the engagement is held in quarantine before it had a document)."""
        doc, fresh, _ = self._document(firm_id, engagement_id)
        return doc, fresh

    def _document(
        self, firm_id: str, engagement_id: str
    ) -> tuple[Doc, Freshness, Quarantine | None]:
        """One engagement's progress document and its quarantine, if it is held in one.

        With ``head_sql`` this is one statement (one round trip on PostgreSQL): the
        document from the generation last seen live, the generation live now (if a
        rebuild switched meanwhile, read again), its tracking, the head of the log
        and the relay position.
        """
        if self.head_sql is None:
            docs, fresh = self._select(firm_id, " AND engagement_id = %s", (engagement_id,))
            held = next(
                (
                    q
                    for q in self.store.quarantined()
                    if q.engagement_id == engagement_id and q.firm_id == firm_id
                ),
                None,
            )
            if not docs:
                if held is not None:
                    raise _quarantined(held)
                raise NotFound(f"engagement {engagement_id} not found (or not projected yet)")
            return docseal.unseal(docs[0], self.store.keys), fresh, held
        for _ in range(3):
            generation = self._live if self._live is not None else self.store.live_generation()
            seen = None if self.store.keys is None else self.store.keys.generation
            try:
                # With keys, the document's data key comes along (no query of its own).
                keyed = self.store.keys is not None
                row = self.store.db.read_row(
                    f"SELECT g.live, t.position, t.recorded_at, ({self.head_sql}),"
                    f" ({self.published_sql or 'SELECT NULL'}), d.doc,"
                    + (" e.key_id, k.wrapped_key," if keyed else " NULL, NULL,")
                    + " q.event_type, q.position, q.version, q.error"
                    + " FROM rm_generations g LEFT JOIN rm_tracking t ON t.name = %s"
                    " LEFT JOIN rm_quarantine q ON q.generation = g.live"
                    " AND q.firm_id = %s AND q.engagement_id = %s"
                    f" LEFT JOIN {self.store.table(generation)} d"
                    " ON d.firm_id = %s AND d.engagement_id = %s"
                    + (
                        " LEFT JOIN coachlog_engagement_keys e ON e.engagement_id = d.engagement_id"
                        " LEFT JOIN coachlog_data_keys k ON k.key_id = e.key_id"
                        if keyed
                        else ""
                    )
                    + " WHERE g.name = %s",
                    (
                        self.store.tracking_name(generation),
                        firm_id,
                        engagement_id,
                        firm_id,
                        engagement_id,
                        NAME,
                    ),
                )
            except Exception:
                if self._live is None:
                    raise
                self._live = None  # the generation read from was dropped: look again
                continue
            live = 1 if row is None else int(row[0])
            if live != generation:
                self._live = live
                continue
            self._live = live
            position = 0 if row[1] is None else int(row[1])
            head = max(int(row[3] or 0), position)
            published = None if row[4] is None else int(row[4])
            fresh = Freshness(position, row[2], head, head - position, published)
            held = None
            if row[8] is not None:
                held = Quarantine(engagement_id, firm_id, row[9], int(row[10]), row[8], row[11], 0)
            if row[5] is None:
                if held is not None:
                    raise _quarantined(held)
                raise NotFound(f"engagement {engagement_id} not found (or not projected yet)")
            if self.store.keys is not None and row[6] is not None:
                self.store.keys.remember(UUID(engagement_id), str(row[6]), row[7], seen)
            return self.store.open_doc(row[5]), fresh, held
        msg = "the live read-model generation kept changing"
        raise RuntimeError(msg)

    def engagement(
        self,
        firm_id: str,
        engagement_id: str,
        now: datetime,
        authorize: Callable[[Doc], None] | None = None,
    ) -> tuple[dict[str, Any], Freshness]:
        """The engagement progress dashboard; ``authorize`` may refuse (raise) on the
        document before anything is computed from it."""
        doc, fresh, held = self._document(firm_id, engagement_id)
        if authorize is not None:
            authorize(doc)
        if held is not None:
            raise _quarantined(held)
        return engagement_dashboard(doc, now), fresh

    def sponsor(
        self,
        firm_id: str,
        engagement_id: str,
        now: datetime,
        authorize: Callable[[Doc], None] | None = None,
    ) -> tuple[dict[str, Any], Freshness]:
        """The sponsor report of one engagement; ``authorize`` as for ``engagement``."""
        doc, fresh, held = self._document(firm_id, engagement_id)
        if authorize is not None:
            authorize(doc)
        if held is not None:
            raise _quarantined(held)
        if doc["sponsor_id"] is None:
            raise NotFound(f"engagement {engagement_id} has no sponsor")
        return sponsor_report(doc, now), fresh

    def list(
        self,
        firm_id: str,
        now: datetime,
        *,
        filters: dict[str, str] | None = None,
        off_track: bool | None = None,
        sort: str = "opened_at",
        descending: bool = True,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[dict[str, Any], Freshness]:
        """A page of engagements, filtered and sorted, with the total that match."""
        where, params = ["firm_id = %s"], [firm_id]
        for name, value in (filters or {}).items():
            if name not in FILTERS:
                msg = f"cannot filter on {name}"
                raise ValueError(msg)
            where.append(f"{name} = %s")
            params.append(value)
        epoch = now.timestamp()
        if off_track is True:
            where.append("off_track_after IS NOT NULL AND off_track_after < %s")
            params.append(epoch)  # type: ignore[arg-type]
        elif off_track is False:
            where.append("(off_track_after IS NULL OR off_track_after >= %s)")
            params.append(epoch)  # type: ignore[arg-type]
        column = SORTS[sort]
        direction = "DESC" if descending else "ASC"
        nulls = "NULLS LAST"
        clause = " AND ".join(where)
        with self.store.db.read() as cur:
            table, fresh = self._read(cur)
            cur.execute(f"SELECT COUNT(*) FROM {table} WHERE {clause}", params)
            total = int(cur.fetchone()[0])
            cur.execute(
                f"SELECT doc FROM {table} WHERE {clause}"
                f" ORDER BY {column} {direction} {nulls}, engagement_id LIMIT %s OFFSET %s",
                (*params, limit, offset),
            )
            docs = [json.loads(row[0]) for row in cur.fetchall()]
        page = {
            "total": total,
            "limit": limit,
            "offset": offset,
            "items": [engagement_summary(d, now) for d in docs],
        }
        return page, fresh

    def coach(self, firm_id: str, coach_id: str, now: datetime) -> tuple[dict[str, Any], Freshness]:
        """A coach's portfolio: figures, then engagements with off-track ones first."""
        docs, fresh = self._select(firm_id, " AND coach_id = %s", (coach_id,))
        if not docs:
            raise NotFound(f"coach {coach_id} has no engagements in this firm")
        summaries = sorted(
            (engagement_summary(d, now) for d in docs),
            key=lambda s: (not s["off_track"], s["status"] != "active", s["opened_at"]),
        )
        return {"coach_id": coach_id, **group_stats(docs, now), "items": summaries}, fresh

    def figures(self, firm_id: str) -> tuple[Sequence[Figures], Freshness]:
        """Every engagement's group figures in the firm (the small stored column; a row
        written before that column existed is computed from its document)."""
        with self.store.db.read() as cur:
            table, fresh = self._read(cur)
            cur.execute(
                "SELECT figures, off_track_after, CASE WHEN figures IS NULL THEN doc END"
                f" FROM {table} WHERE firm_id = %s",
                (firm_id,),
            )
            rows = cur.fetchall()
        return [
            load_figures(text, after) if text is not None else figures_of(json.loads(doc))
            for text, after, doc in rows
        ], fresh

    def firm(self, firm_id: str, now: datetime) -> tuple[dict[str, Any], Freshness]:
        """The firm overview: totals, then the same figures by coach and by segment."""
        figures, fresh = self.figures(firm_id)
        return {
            "firm_id": firm_id,
            **_group_stats(figures, now),
            "by_coach": _grouped(figures, "coach_id", now),
            "by_segment": _grouped(figures, "segment", now),
        }, fresh

    def roi(self, firm_id: str, group_by: str) -> tuple[dict[str, Any], Freshness]:
        """ROI per engagement, or its median and IQR per coach or per client segment."""
        figures, fresh = self.figures(firm_id)
        if group_by == "engagement":
            rows = [
                {
                    "engagement_id": f.doc["engagement_id"],
                    "coach_id": f.doc["coach_id"],
                    "segment": f.doc["segment"],
                    **f.roi,
                }
                for f in sorted(figures, key=lambda f: f.doc["engagement_id"])
            ]
            return {"group_by": group_by, "items": rows}, fresh
        key = "coach_id" if group_by == "coach" else "segment"
        grouped = _grouped(figures, key, datetime.now().astimezone())
        items = [{key: k, **stats["roi"]} for k, stats in grouped.items()]
        return {"group_by": group_by, "items": items}, fresh
