"""One poll by lemon24/reader, the peer ``bench_poll.py`` compares with (stdlib + reader only).

Runs under the interpreter given as ``--reader-python`` (reader 3.27 needs
Python >= 3.12), in its own process, which the caller times whole::

    python reader_child.py cold DB BASE N   # fresh DB: add_feed x N, update_feeds(workers=16)
    python reader_child.py warm DB BASE N   # the same DB again: every feed answers 304

Prints one JSON line: the seconds spent in ``update_feeds`` alone, the entries
stored and the feeds whose last update failed.
"""

from __future__ import annotations

import json
import sys
import time

from reader import make_reader


def main() -> None:
    mode, db, base, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    workers = int(sys.argv[5]) if len(sys.argv) > 5 else 16
    r = make_reader(db)
    if mode == "cold":
        for i in range(count):
            r.add_feed(f"{base}/feed/{i}.xml")
    started = time.perf_counter()
    # scheduled=False: every feed, due or not, as `news-monitor poll` does.
    r.update_feeds(workers=workers, scheduled=False)
    seconds = time.perf_counter() - started
    errors = sum(1 for f in r.get_feeds() if f.last_exception)
    entries = r.get_entry_counts().total
    r.close()
    print(json.dumps({"update_s": seconds, "entries": entries, "feed_errors": errors}))


if __name__ == "__main__":
    main()
