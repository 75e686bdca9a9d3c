"""The servers' interpreter settings (see `moulin.tuning`)."""

from __future__ import annotations

import gc
import sys

from moulin.tuning import SWITCH_INTERVAL_S, YOUNG_THRESHOLD, tune_for_serving


def test_serving_freezes_the_start_up_heap_and_collects_the_young_less_often() -> None:
    before, interval = gc.get_threshold(), sys.getswitchinterval()
    try:
        tune_for_serving()
        assert gc.get_freeze_count() > 10_000  # modules and the like, out of sight
        assert gc.get_threshold() == (YOUNG_THRESHOLD, before[1], before[2])
        assert sys.getswitchinterval() == SWITCH_INTERVAL_S < interval
        garbage: list[object] = []
        garbage.append(garbage)  # a cycle made after start-up is still collected
        del garbage
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
        sys.setswitchinterval(interval)
