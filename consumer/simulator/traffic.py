"""Synthetic dialer traffic: realistic ``CampaignInteraction`` snapshots, some stalling.

Pure: a :class:`Simulator` is driven by the caller's clock (``due(now)``) and returns
records; the command line paces it in real time to a topic, or renders it at once as
``kcat -J`` lines for ``replay``.

The scenario model. Interactions start as a Poisson process (``rate`` per second). Each
gets a dialing mode (mostly preview), a campaign, an agent and a queue, and a script of
*cumulative* snapshots, one per lifecycle step, each carrying every timestamp known so
far, published at the moment of its newest timestamp:

    preview:      created -> preview popped -> placed -> routed -> connected
                  -> conversation ended -> wrapped up (activePreviewCall false)
    other modes:  created -> placed -> routed -> connected -> conversation ended
                  -> wrapped up, activePreviewCall always false

A share of preview interactions stall, spread evenly over the kinds in
:data:`STALL_RULES`: the script stops at the stall point and nothing moves it on. Some
interactions host a second preview call (placed after the first wrap-up). Some snapshots
are published twice (duplicates) or swapped with their predecessor (out of order),
some ended interactions get a tombstone, some producers write snake_case, and a share
of records are malformed (not JSON, not UTF-8, an array, a wrongly typed field).

Realistic durations (agent think time seconds to a minute, talk up to minutes) are
divided by ``speed``, so a demo at speed 20 shows a whole call in seconds; its stall
thresholds should be divided by the same factor (see :func:`demo_thresholds`).
Phone numbers and names in the snapshots are fake, and exist to prove the monitor
never leaks them.
"""

from __future__ import annotations

import heapq
import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

from consumer.engine.model import WIRE_TIMES, iso
from consumer.engine.stalls import DEFAULT_THRESHOLDS

# stall kind -> the stall rule that must catch it
STALL_RULES: Final = {
    "not_popped": "created",
    "not_placed": "previewing",
    "not_routed": "placed",
    "not_connected": "routed",
    "open_after_wrapup": "wrapped_up",
    "open_after_conversation_end": "conversation_ended",
}
MODES: Final = (
    ("preview", 0.6),
    ("power", 0.1),
    ("predictive", 0.1),
    ("progressive", 0.1),
    ("agentless", 0.05),
    ("external", 0.05),
)
CAMPAIGNS: Final = tuple(
    (f"campaign-{n}", name)
    for n, name in enumerate(("Renewals", "Winback", "Surveys", "Collections", "Upsell", "Care"))
)


@dataclass(frozen=True)
class TrafficSettings:
    """What traffic to make. Shares are fractions of interactions (or of records)."""

    rate: float = 5.0
    speed: float = 1.0
    seed: int = 0
    stall_share: float = 0.1
    malformed_share: float = 0.02
    duplicate_share: float = 0.05
    out_of_order_share: float = 0.05
    tombstone_share: float = 0.2
    snake_case_share: float = 0.1
    multi_call_share: float = 0.05


class Simulated(NamedTuple):
    """One record to publish; ``value`` ``None`` is a tombstone. ``kind`` is for people."""

    key: bytes | None
    value: bytes | None
    kind: str


def demo_thresholds(speed: float) -> dict[str, float]:
    """The default stall thresholds, compressed by the same factor as the traffic."""
    return {rule: seconds / speed for rule, seconds in DEFAULT_THRESHOLDS.items()}


def _snake(value: Any) -> Any:
    if isinstance(value, dict):
        return {re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower(): _snake(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snake(v) for v in value]
    return value


class Simulator:
    """Makes the traffic of :class:`TrafficSettings`, starting at ``start`` (epoch seconds)."""

    def __init__(self, settings: TrafficSettings, start: float) -> None:
        self.settings = settings
        self.rng = random.Random(settings.seed)  # noqa: S311 - simulation, not secrets
        self.next_start = start
        self.started = 0
        self.stalls: Counter[str] = Counter()  # injected stalls, by kind
        self._queue: list[tuple[float, int, Simulated]] = []
        self._seq = 0

    def due(self, now: float, *, start_new: bool = True) -> list[tuple[float, Simulated]]:
        """(publication time, record) for every record due by ``now``, in time order.

        With ``start_new`` false no further interaction begins: what is scripted drains.
        """
        while start_new and self.next_start <= now:
            self._begin(self.next_start)
            self.next_start += self.rng.expovariate(self.settings.rate)
        records = []
        while self._queue and self._queue[0][0] <= now:
            moment, _, record = heapq.heappop(self._queue)
            records.append((moment, record))
        return records

    @property
    def pending(self) -> int:
        """Records scripted but not yet due."""
        return len(self._queue)

    # -- scripting one interaction ------------------------------------------------------

    def _at(self, moment: float, record: Simulated) -> None:
        heapq.heappush(self._queue, (moment, self._seq, record))
        self._seq += 1

    def _span(self, low: float, high: float) -> float:
        return self.rng.uniform(low, high) / self.settings.speed

    def _begin(self, start: float) -> None:
        s, rng = self.settings, self.rng
        self.started += 1
        if rng.random() < s.malformed_share:
            self._at(start, self._malformed())
        iid = f"sim-{s.seed}-{self.started:07d}"
        mode = rng.choices([m for m, _ in MODES], [w for _, w in MODES])[0]
        preview = mode == "preview"
        stall = rng.choice(list(STALL_RULES)) if preview and rng.random() < s.stall_share else None
        if stall is not None:
            self.stalls[stall] += 1
        steps = self._script(start, preview, stall)
        if preview and stall is None and rng.random() < s.multi_call_share:
            steps += self._script(steps[-1][0] + self._span(5, 30), True, None, again=steps[-1][1])
        base = self._base(iid, mode, snake=rng.random() < s.snake_case_share)
        kind = stall or "normal"
        published = [(at, self._render(base, fields), kind) for at, fields in steps]
        if len(published) > 1 and rng.random() < s.out_of_order_share:
            n = rng.randrange(1, len(published))
            (a, va, _), (b, vb, _) = published[n - 1], published[n]
            published[n - 1], published[n] = (a, vb, "out_of_order"), (b, va, "out_of_order")
        for at, value, what in published:
            self._at(at, Simulated(iid.encode(), value, what))
            if rng.random() < s.duplicate_share:
                self._at(at + self._span(0.5, 5), Simulated(iid.encode(), value, "duplicate"))
        if stall is None and rng.random() < s.tombstone_share:
            self._at(
                published[-1][0] + self._span(1, 10), Simulated(iid.encode(), None, "tombstone")
            )

    def _script(
        self,
        start: float,
        preview: bool,
        stall: str | None,
        again: dict[str, Any] | None = None,
    ) -> list[tuple[float, dict[str, Any]]]:
        """(publication time, snapshot fields) for each step, cumulative, up to any stall."""
        known: dict[str, Any] = dict(again or {"created": start})
        steps: list[tuple[float, dict[str, Any]]] = []
        clock = start

        def step(**changes: Any) -> None:
            known.update(changes)
            steps.append((clock, dict(known)))

        active = preview
        step(active=active)
        if stall == "not_popped":
            return steps
        if preview:
            clock += self._span(0.5, 2)
            step(previewing=clock)
            if stall == "not_placed":
                return steps
            clock += self._span(3, 60)  # agent think time
        else:
            clock += self._span(0.2, 2)
        step(placed=clock)
        if stall == "not_routed":
            return steps
        clock += self._span(1, 5)
        step(routed=clock)
        if stall == "not_connected":
            return steps
        clock += self._span(2, 20)
        step(connected=clock)
        clock += self._span(10, 180)  # talk time
        step(ended=clock)
        if stall == "open_after_conversation_end":
            return steps
        clock += self._span(5, 60)  # after-call work
        step(wrapped_up=clock, active=stall == "open_after_wrapup")
        return steps

    def _base(self, iid: str, mode: str, *, snake: bool) -> dict[str, Any]:
        rng = self.rng
        campaign_id, campaign_name = rng.choice(CAMPAIGNS)
        agent = rng.randrange(20)
        return {
            "id": iid,
            "campaign": {"id": campaign_id, "name": campaign_name},
            "agent": {"id": f"agent-{agent:02d}", "name": f"Agent {agent:02d}"},
            "contact": {"id": f"contact-{rng.randrange(10**6):06d}", "name": "Pat Example"},
            "queue": {"id": f"queue-{rng.randrange(3)}"},
            "destinationAddress": f"+1555{rng.randrange(10**7):07d}",
            "callerAddress": "+15550000000",
            "callerName": "Example Outbound",
            "dialingMode": mode.upper() if rng.random() < 0.5 else mode,
            "disposition": None,
            "skills": [{"id": "skill-english"}],
            "_snake": snake,
        }

    @staticmethod
    def _render(base: dict[str, Any], fields: dict[str, Any]) -> bytes:
        body = {k: v for k, v in base.items() if k != "_snake"}
        body["activePreviewCall"] = fields["active"]
        for name, wire in WIRE_TIMES.items():
            if name in fields:
                body[wire] = iso(fields[name])
        if "connected" in fields:
            body["conversation"] = {
                "id": "conv-" + body["id"],
                "startTime": iso(fields["placed"]),
                "endTime": iso(fields["ended"]) if "ended" in fields else None,
                "participants": [{"id": "p-dialer", "purpose": "dialer.system"}],
            }
            body["disposition"] = "LIVE_VOICE"
        return json.dumps(_snake(body) if base["_snake"] else body).encode()

    def _malformed(self) -> Simulated:
        junk = self.rng.choice(
            [
                b"this is not json",
                b"\xff\xfe\xfa not utf-8",
                b'["an", "array"]',
                b'{"id": "bad-1", "creationTime": 12345}',
                b'{"id": "bad-2", "campaign": "not an object"}',
            ]
        )
        return Simulated(b"malformed", junk, "malformed")


def kcat_lines(records: Iterable[tuple[float, Simulated]], topic: str) -> Iterator[bytes]:
    """Render (publication time, record) pairs as ``kcat -C -J`` lines for ``replay``.

    A value that is not UTF-8 cannot sit in a JSON string: its bytes are decoded with
    replacement characters, which leaves it invalid (no longer JSON) for the reader.
    """
    for offset, (moment, record) in enumerate(records):
        envelope = {
            "topic": topic,
            "partition": 0,
            "offset": offset,
            "tstype": "create",
            "ts": int(moment * 1000),
            "key": None if record.key is None else record.key.decode(),
            "payload": None if record.value is None else record.value.decode(errors="replace"),
        }
        yield json.dumps(envelope).encode() + b"\n"
