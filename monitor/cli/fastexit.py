"""Ending a one-shot command without the interpreter's teardown: speed machinery.

Python's teardown of every imported module (SQLAlchemy's among some 500) took
about 30 ms of a 0.3 s quiet poll (bench/README.md, item 10). Once a command
has returned, :func:`finish` does what the teardown would still have done that
matters (the logs and the output are flushed, and a failure to flush is said)
and ends the process with :func:`os._exit`, as the forked fetch child already
does. With a thread still running it leaves the usual way, so nothing is cut
short; the daemon (``run``) has such threads and never leaves through here.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn

from monitor.cli import common


def finish(code: int) -> NoReturn:
    """End the process with exit status ``code`` (1 if the output cannot be flushed)."""
    # Looked up, not imported: a command that never imported threading started
    # no thread, one that never imported logging has no log to flush, and
    # importing them here would cost ``hits`` a few modules more to start.
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        sys.exit(code)
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            pass  # the reader went away: nothing left to say to it
        except OSError as e:  # as main() says it when the command itself writes
            if stream is sys.stdout:
                common.say_os_error(e)
            code = code or 1
    os._exit(code)
