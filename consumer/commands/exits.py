"""The exit statuses every command shares (docs/operate/logs.md#logs-levels-and-exit-statuses).

One convention for ``run``, ``poll``, ``replay``, ``simulate`` and ``check-config``, so a
supervisor (Kubernetes, systemd) reads a status the same way whichever command ran.
"""

from __future__ import annotations

from typing import Final

OK: Final = 0
# run: shutdown overran runtime.shutdown_grace_seconds, the task was cancelled
GRACE_EXCEEDED: Final = 1
# a bad setting or flag, or a file that cannot be read or written: named on stderr; argparse
# uses 2 for the usage errors it finds itself
USAGE: Final = 2
# never connected: the broker (run, poll) or the Genesys login (poll) could not be reached,
# trusted or authenticated; the log line names the cause and the setting
NOT_CONNECTED: Final = 3
# run: a background task whose failure stops the daemon (a restore, a commit) raised
TASK_FAILED: Final = 4
