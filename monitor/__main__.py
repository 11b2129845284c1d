"""``python -m monitor`` is ``news-monitor``."""

import sys

from monitor.cli import main

sys.exit(main())
