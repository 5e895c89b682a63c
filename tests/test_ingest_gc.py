"""The batch tunes the cyclic garbage collector only while it runs, and restores it, failure or not."""

from __future__ import annotations

import gc
from pathlib import Path

import orjson
import pytest

from medhub.ingest import pipeline
from medhub.lake.intake import ingest_paths


def test_gc_threshold_is_tuned_during_the_batch_and_restored(settings, tmp_path: Path) -> None:
    before = gc.get_threshold()
    f = tmp_path / "Patient.ndjson"
    f.write_bytes(orjson.dumps({"resourceType": "Patient", "id": "p1"}) + b"\n")
    seen = []

    def gate(item):  # noqa: ANN001, ANN202
        seen.append(gc.get_threshold()[0])
        return item

    s = ingest_paths(settings, "h1", [f], gate=gate, progress=False)
    assert s.accepted == 1
    assert seen == [pipeline.GC_THRESHOLD]
    assert gc.get_threshold() == before


def test_gc_threshold_is_restored_when_the_batch_fails(settings, tmp_path: Path) -> None:
    before = gc.get_threshold()
    f = tmp_path / "Patient.ndjson"
    f.write_bytes(orjson.dumps({"resourceType": "Patient", "id": "p1"}) + b"\n")

    def gate(item):  # noqa: ANN001, ANN202
        raise KeyboardInterrupt  # not an item error: the batch stops

    with pytest.raises(KeyboardInterrupt):
        ingest_paths(settings, "h1", [f], gate=gate, progress=False)
    assert gc.get_threshold() == before


def test_nested_batches_restore_the_setting_once_the_last_ends() -> None:
    before = gc.get_threshold()
    with pipeline._gc_tuned():
        with pipeline._gc_tuned():
            assert gc.get_threshold()[0] == pipeline.GC_THRESHOLD
        assert gc.get_threshold()[0] == pipeline.GC_THRESHOLD  # the outer batch still runs
    assert gc.get_threshold() == before


def test_what_lived_before_the_batch_is_set_aside_and_given_back(settings, tmp_path: Path) -> None:
    assert gc.get_freeze_count() == 0
    f = tmp_path / "Patient.ndjson"
    f.write_bytes(orjson.dumps({"resourceType": "Patient", "id": "p1"}) + b"\n")
    frozen = []

    def gate(item):  # noqa: ANN001, ANN202
        frozen.append(gc.get_freeze_count())
        return item

    ingest_paths(settings, "h1", [f], gate=gate, progress=False)
    assert frozen[0] > 0 and gc.get_freeze_count() == 0


def test_a_host_that_froze_objects_keeps_them_frozen(settings, tmp_path: Path) -> None:
    f = tmp_path / "Patient.ndjson"
    f.write_bytes(orjson.dumps({"resourceType": "Patient", "id": "p1"}) + b"\n")
    gc.freeze()
    try:
        held = gc.get_freeze_count()
        ingest_paths(settings, "h1", [f], progress=False)
        assert gc.get_freeze_count() > held // 2  # still frozen (less what died meanwhile)
    finally:
        gc.unfreeze()
