"""Interpreter settings for the long-running servers (`moulin serve`, `moulin camera-node`):
the garbage collector, and how often threads take turns.

The garbage collector.

Measured with `bench/stream.py` at 1,000 viewers of one camera: with CPython's defaults
the collector ran about 30 young collections a second and a full collection every five
seconds or so, each full one 0.2 to 0.5 s long on a 2-core machine, all of it on the
event loop, so that every viewer lost two to four frames each time. The full collections
came from the streams themselves: each viewer has a few objects in flight at any moment
(the coroutine waiting for the next frame), alive whenever a young collection runs, so
they are promoted and die old, and enough of them make the collector look at the whole
heap again.

So, once the application is built: what exists then (modules, routes, templates, the app:
about 165,000 objects, which live as long as the process) is frozen out of the
collector's sight, so that a full collection, when one comes, walks 225,000 objects
rather than 390,000 at 1,000 viewers; and the young generation is collected after
10,000 new objects rather than 700, so that promotions, and with them full collections,
are some fifteen times rarer (none in a thirty-second window at 1,000 viewers, against
six). Reference counting still frees almost everything at once; only cycles wait for
a collection.

Taking turns. A server runs Python on more than one thread: the event loop, the till's
writer (`cardpay.group_commit`), camera capture. One thread runs Python at a time, and
a thread waiting for its turn gets it when the running one blocks, or after the switch
interval, 5 ms by default. So when the writer came back from a commit's fsync while the
loop was busy reading requests, it waited up to 5 ms before telling the tills their
verdicts. `bench/till.py --quick` (8 tills, 100 taps/s): p99 16-19 ms with 5 ms,
8.5 ms with 1 ms, and more taps per second unthrottled (243-253 against 289-303).
"""

from __future__ import annotations

import gc
import sys

YOUNG_THRESHOLD = 10_000  # new container objects between young collections (CPython: 700)
SWITCH_INTERVAL_S = 0.001  # the longest a thread waits for its turn (CPython: 0.005)


def tune_for_serving() -> None:
    """Call once the application is built, before serving."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    sys.setswitchinterval(SWITCH_INTERVAL_S)
