"""The build: pure Python, or with the engine's hot path compiled by mypyc.

``CONSUMER_USE_MYPYC=1`` compiles the modules below into C extensions (it needs a C
compiler and the Python headers), as black and mypy ship themselves; the wheel then holds
both the extensions and the same ``.py`` sources. Without it the package is pure Python:
it installs anywhere and behaves the same, only slower (docs/performance.md). The
variable is not an ``INTERACTION_CONSUMER_`` setting on purpose: the daemon refuses
unknown settings, and this one only means something while building.
"""

from __future__ import annotations

import os

from setuptools import setup

# Everything a record goes through between its bytes and the tracker's state, and the
# changelog codec a restore runs a million times: the pure core, mypy --strict clean, and
# the daemon's batch step around it (pure too: its per-record loop is the hot path's), with
# the modules it is made of, so that its calls into them stay native.
# Modules whose msgspec structs msgspec decodes (wire, formats, heartbeat) stay Python:
# msgspec reads the annotations, which a compiled module does not keep as written.
COMPILED = [
    "consumer/daemon/heartbeats.py",
    "consumer/daemon/ingest.py",
    "consumer/daemon/notices.py",
    "consumer/daemon/ownership.py",
    "consumer/daemon/saving.py",
    "consumer/daemon/step.py",
    "consumer/daemon/step_settings.py",
    "consumer/engine/alerting.py",
    "consumer/engine/buckets.py",
    "consumer/formats/changelog.py",
    "consumer/engine/clock.py",
    "consumer/engine/interaction.py",
    "consumer/engine/lifecycle.py",
    "consumer/engine/limits.py",
    "consumer/engine/lists.py",
    "consumer/engine/model.py",
    "consumer/engine/observations.py",
    "consumer/engine/snapshot.py",
    "consumer/engine/stages.py",
    "consumer/engine/stalls.py",
    "consumer/engine/timers.py",
    "consumer/engine/tracker.py",
    "consumer/engine/watch.py",
]


def extensions() -> list[object]:
    """The mypyc extensions, when asked for."""
    if os.environ.get("CONSUMER_USE_MYPYC") != "1":
        return []
    from mypyc.build import mypycify  # a build requirement, needed only here

    return list(mypycify(COMPILED, opt_level="3"))


setup(ext_modules=extensions())
