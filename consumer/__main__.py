"""``python -m consumer``: the same command line as ``interaction-consumer``."""

import sys

from consumer.commands.cli import main

sys.exit(main())
