"""pipeline.lifecycle.freeze_heap: the start-up heap leaves the cyclic collector's walks (a
full collection over TensorFlow's objects was a 250-300 ms pause on the worker's loop), its
garbage is freed first, and a model roll-out freezes the new model's objects too."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from pipeline.lifecycle import freeze_heap
from tests.unit.pipeline.test_pipeline_processor import FakeArtifact, FakeDetector
from tests.unit.pipeline.test_rollout import Registry, _setup


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test session collects as before


def _tracked_ids() -> set[int]:
    return {id(o) for o in gc.get_objects()}


def test_live_objects_are_frozen_and_no_longer_walked() -> None:
    alive = [[i] for i in range(50_000)]  # containers: tracked by the collector
    assert id(alive[123]) in _tracked_ids()
    frozen = freeze_heap()
    assert frozen >= 50_000 and frozen == gc.get_freeze_count()
    assert id(alive[123]) not in _tracked_ids()
    later = [[0]]  # created afterwards: collected as usual
    assert id(later[0]) in _tracked_ids()


def test_garbage_left_by_start_up_is_freed_not_frozen() -> None:
    a, b = _Node(), _Node()
    a.other, b.other = b, a  # a reference cycle: only the cyclic collector frees it
    ref = weakref.ref(a)
    del a, b
    freeze_heap()
    assert ref() is None


def test_a_model_switch_freezes_the_new_models_objects() -> None:
    v2 = FakeArtifact(FakeDetector(), version="v2")
    _, rollout, _ = _setup(Registry("v2", {"v2": v2}))
    assert gc.get_freeze_count() == 0
    assert rollout.check() == "switched"
    assert gc.get_freeze_count() > 0 and id(v2) not in _tracked_ids()
