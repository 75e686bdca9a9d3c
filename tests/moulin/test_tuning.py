"""The servers' garbage-collector settings (see `moulin.gc_tuning`)."""

from __future__ import annotations

import gc

from moulin.gc_tuning import YOUNG_THRESHOLD, tune_for_serving


def test_serving_freezes_the_start_up_heap_and_collects_the_young_less_often() -> None:
    before = gc.get_threshold()
    try:
        tune_for_serving()
        assert gc.get_freeze_count() > 10_000  # modules and the like, out of sight
        assert gc.get_threshold() == (YOUNG_THRESHOLD, before[1], before[2])
        garbage: list[object] = []
        garbage.append(garbage)  # a cycle made after start-up is still collected
        del garbage
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
