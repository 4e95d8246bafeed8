"""``python -m consumer``: the same command line as ``interaction-consumer``."""

import sys

from consumer.cli import main

sys.exit(main())
