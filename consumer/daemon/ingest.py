"""What one record goes through between its bytes and the tracker. Pure.

    its bytes -> size   (over ``kafka.max_record_bytes``: ``too_large``, unread)
              -> decode (a snapshot, a tombstone, or an :class:`Invalid` and nothing more:
                         what cannot be read is no evidence of time, and moves no clock)
              -> its time: its timestamp; without one (0 or less: a Kafka record can carry
                         -1, a bare line of a dump carries none) a snapshot's newest
                         lifecycle time (its ``version``), a tombstone none
              -> the clock: a credible time moves it; one further ahead of the wall clock
                         than the skew moves nothing (:meth:`PartitionClock.record`)
              -> believed?: not when from the future, nor when a snapshot's own times run
                         more than the skew ahead of the clock (or of its own credible
                         time): the record is applied all the same, counted and warned about

The daemon's batch step (:mod:`consumer.daemon.step`) and ``replay``
(:mod:`consumer.commands.replay`) both run it, so each check exists once and a replay shows
what the daemon would do. Each keeps its own concerns around it: the daemon its heartbeat
sources' lanes, the key check and its outputs; replay its input lines, its warning about a
jump of the clock and its summary. This is the daemon's hot path (mypyc compiles it): plain
functions, nothing allocated beyond the decoded record.
"""

from __future__ import annotations

from consumer.engine.clock import PartitionClock
from consumer.engine.model import Invalid, decode_record
from consumer.engine.snapshot import Snapshot, Tombstone


def decode(
    key: bytes | str | None, value: bytes | None, bucket: int, max_bytes: int
) -> Snapshot | Tombstone | Invalid:
    """The record as the engine takes it, ``bucket`` the list its headers name.

    A value over ``max_bytes`` is ``too_large`` whatever it holds: it is not read.
    """
    if value is not None and len(value) > max_bytes:
        detail = f"value of {len(value)} bytes exceeds kafka.max_record_bytes"
        return Invalid("too_large", detail)
    return decode_record(key, value, bucket)


def believed(
    clock: PartitionClock, stamped: float, item: Snapshot | Tombstone, wall: float
) -> bool:
    """The clock passes to the record's time (``stamped``, seconds); whether it is believed.

    ``stamped`` of 0 or less is no timestamp: a snapshot's own newest time stands in.
    """
    if isinstance(item, Tombstone):
        return clock.record(stamped, wall)
    seconds = stamped if stamped > 0 else item.version
    credible = clock.record(seconds, wall)
    # its own credible timestamp vouches for a snapshot's times too
    now = clock.now
    reference = seconds if credible and seconds > now else now
    if item.version > reference + clock.max_skew:
        return False
    return credible
