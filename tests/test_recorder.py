"""The recorder: off the request path, bounded, never raising; modes, filters, redaction, env."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sigcache import signature_cache
from sigcache.errors import ConfigError, RecordingError
from sigcache.observers import OperationEvent
from sigcache.recorder import Recorder, RecorderConfig
from sigcache.recording import RecordedEvent, read_recording
from sigcache.redaction import Redactor

START = 1_700_000_000.0
SIG = "E" + "q" * 99


def op(i: int, text: str = "some thinking", owner: str | None = None) -> OperationEvent:
    return OperationEvent(op="get_cached_signature", args={"thinking_text": text,
                          "owner_id": owner}, result=SIG, phase="LEGACY_ONLY",
                          t=START + i, latency_us=2.0)  # fmt: skip


def make(path: Path, **config: object) -> Recorder:
    settings = RecorderConfig(**config)  # type: ignore[arg-type]
    return Recorder(path, settings, clock=lambda: START, worker=lambda: "w1")


def read(path: Path) -> list[RecordedEvent]:
    return list(read_recording(path)[1])


@pytest.mark.parametrize("name", ["r.jsonl", "r.jsonl.gz"])
def test_records_every_operation_in_order(tmp_path: Path, name: str) -> None:
    recorder = make(tmp_path / name)
    for i in range(50):
        recorder(op(i))
    recorder.close()
    events = read(tmp_path / name)
    assert [e.seq for e in events] == list(range(50))
    assert events[3].t == 3.0
    assert events[3].worker == "w1"
    assert events[3].result == SIG
    assert recorder.stats().recorded == 50


def test_default_worker_names_host_pid_and_thread(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "r.jsonl", clock=lambda: START)
    thread = threading.Thread(target=recorder, args=(op(1),), name="req-7")
    thread.start()
    thread.join()
    recorder.close()
    assert read(tmp_path / "r.jsonl")[0].worker.endswith(":req-7")


def test_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    entered, release = threading.Event(), threading.Event()

    def slow(event: RecordedEvent) -> RecordedEvent:
        entered.set()
        release.wait(10)
        return event

    recorder = Recorder(tmp_path / "r.jsonl", RecorderConfig(queue_size=2), filters=[slow])
    recorder(op(0))
    assert entered.wait(10)
    for i in range(1, 10):
        recorder(op(i))  # returns at once although the writer is stuck
    release.set()
    recorder.close()
    stats = recorder.stats()
    assert (stats.recorded, stats.dropped_queue_full) == (3, 7)


def test_nothing_raises_into_the_caller(tmp_path: Path) -> None:
    def broken_worker() -> str:
        raise RuntimeError("boom")

    def broken_filter(event: RecordedEvent) -> RecordedEvent:
        raise RuntimeError("boom")

    recorder = Recorder(tmp_path / "a.jsonl", worker=broken_worker)
    recorder(op(0))
    recorder.close()
    recorder(op(1))  # after close: ignored
    assert recorder.stats().errors == 1
    recorder = Recorder(tmp_path / "b.jsonl", filters=[broken_filter])
    recorder(op(0))
    recorder.close()
    assert (recorder.stats().errors, read(tmp_path / "b.jsonl")) == (1, [])


def test_size_limit_stops_recording_and_keeps_a_valid_prefix(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    recorder = make(path, max_bytes=2_000)
    for i in range(100):
        recorder(op(i))
    recorder.close()
    events = read(path)
    assert 0 < len(events) < 100
    assert [e.seq for e in events] == list(range(len(events)))
    assert path.stat().st_size <= 2_000
    assert recorder.stats().dropped_over_limit == 100 - len(events)


def test_mode_once_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    make(path).close()
    with pytest.raises(RecordingError, match="never overwrites"):
        make(path, mode="once")


def test_mode_off_records_nothing(tmp_path: Path) -> None:
    recorder = make(tmp_path / "r.jsonl", mode="off")
    recorder(op(0))
    recorder.close()
    assert not (tmp_path / "r.jsonl").exists()


@pytest.mark.parametrize("name", ["r.jsonl", "r.jsonl.gz"])
def test_mode_append_continues_seq_and_time(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    first = make(path)
    first(op(0))
    first(op(1))
    first.close()
    again = Recorder(path, RecorderConfig(mode="append"), clock=lambda: START + 99)
    again(op(5))
    again.close()
    events = read(path)
    assert [(e.seq, e.t) for e in events] == [(0, 0.0), (1, 1.0), (2, 5.0)]


def test_append_refuses_a_different_redaction(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    make(path).close()
    with pytest.raises(RecordingError, match="redaction"):
        Recorder(path, RecorderConfig(mode="append"), redactor=Redactor(b"k"))


def test_filters_drop_or_scrub_before_anything_is_stored(tmp_path: Path) -> None:
    def no_secret_owner(event: RecordedEvent) -> RecordedEvent | None:
        return None if event.args.get("owner_id") == "secret" else event

    path = tmp_path / "r.jsonl"
    recorder = Recorder(path, filters=[no_secret_owner], clock=lambda: START)
    recorder(op(0, owner="secret"))
    recorder(op(1, owner="fine"))
    recorder.close()
    assert [e.args["owner_id"] for e in read(path)] == ["fine"]
    assert b"secret" not in path.read_bytes()
    assert recorder.stats().filtered == 1


def test_redacting_recorder_never_stores_the_text(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    redactor = Redactor(b"k")
    recorder = Recorder(path, redactor=redactor, clock=lambda: START)
    recorder(op(0, text="<think>my secret plan</think>"))
    recorder.close()
    header, events = read_recording(path)
    with events:
        assert header.redacted
        assert next(events).args["thinking_text"] == redactor.text("<think>my secret plan</think>")
    assert b"secret" not in path.read_bytes()


def test_ops_outside_the_format_are_skipped(tmp_path: Path) -> None:
    recorder = make(tmp_path / "r.jsonl")
    recorder(OperationEvent("get_tool_signature_fuzzy", {}, None, "LEGACY_ONLY", START, 1.0))
    recorder.close()
    assert (read(tmp_path / "r.jsonl"), recorder.stats().skipped_ops) == ([], 1)


def test_flush_makes_queued_events_readable(tmp_path: Path) -> None:
    recorder = make(tmp_path / "r.jsonl.gz", flush_interval=None)
    recorder(op(0))
    assert recorder.flush()
    assert len(list(read_recording(tmp_path / "r.jsonl.gz", skip_bad_lines=True)[1])) == 1  # closes
    recorder.close()


def test_from_env(tmp_path: Path) -> None:
    assert Recorder.from_env({}) is None
    assert Recorder.from_env({"SIGCACHE_RECORD": "x", "SIGCACHE_RECORD_MODE": "off"}) is None
    with pytest.raises(ConfigError, match="SIGCACHE_RECORD_MAX_BYTES"):
        Recorder.from_env({"SIGCACHE_RECORD": "x", "SIGCACHE_RECORD_MAX_BYTES": "-3"})
    with pytest.raises(ConfigError, match="SIGCACHE_RECORD_MODE"):
        Recorder.from_env({"SIGCACHE_RECORD": "x", "SIGCACHE_RECORD_MODE": "sometimes"})
    env = {"SIGCACHE_RECORD": str(tmp_path / "r.jsonl"), "SIGCACHE_RECORD_REDACT": "1",
           "SIGCACHE_RECORD_MAX_BYTES": "5000"}  # fmt: skip
    recorder = Recorder.from_env(env)
    assert recorder is not None
    assert recorder.config.max_bytes == 5000
    recorder.close()
    header, events = read_recording(tmp_path / "r.jsonl")
    events.close()
    assert header.redacted


def test_interpreter_exit_flushes(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl.gz"
    script = (
        "import sys\nfrom sigcache.recorder import Recorder\nfrom sigcache.observers import "
        "OperationEvent as E\nr = Recorder(sys.argv[1])\nfor i in range(500):\n"
        "    r(E('clear', {}, 0, 'LEGACY_ONLY', float(i), 1.0))\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=60)
    assert len(read(path)) == 500


@pytest.fixture
def module_api() -> Iterator[None]:
    signature_cache.reset_signature_cache(clock=lambda: START + 7)
    yield
    signature_cache.reset_signature_cache()


@pytest.mark.usefixtures("module_api")
def test_observes_the_module_api(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    recorder = make(path)
    signature_cache.add_observer(recorder)
    signature_cache.cache_signature("<think>plan</think>", SIG, model="m")
    signature_cache.get_cached_signature("plan")
    signature_cache.get_last_signature_with_text()
    recorder.close()
    events = read(path)
    assert [e.op for e in events] == ["cache_signature", "get_cached_signature",
                                      "get_last_signature_with_text"]  # fmt: skip
    assert events[1].result == SIG
    assert events[2].result == (SIG, "<think>plan</think>")
    assert events[0].t == 7.0
