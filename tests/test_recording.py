"""Recording format v1: encode/decode, writer, streaming reader, errors by line."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sigcache.errors import RecordingError
from sigcache.recording import (
    VALID_OPS,
    RecordedEvent,
    RecordingHeader,
    RecordingWriter,
    decode_event,
    decode_header,
    encode_event,
    encode_header,
    read_recording,
    restore_result,
)

HEADER = RecordingHeader(created_at="2026-01-01T00:00:00+00:00", source="test")
SIG = "E" + "A" * 99


def events() -> list[RecordedEvent]:
    return [
        RecordedEvent(0, 0.0, "cache_signature", {"thinking_text": "héllo", "signature": SIG,
                      "model": None, "owner_id": "ab"}, True, "w:1:Main", "LEGACY_ONLY", 3.5),
        RecordedEvent(1, 1.25, "get_cached_signature", {"thinking_text": "héllo",
                      "owner_id": None}, SIG, "w:1:Main", "LEGACY_ONLY", 1.0),
        RecordedEvent(2, 2.5, "get_last_signature_with_text", {}, (SIG, "héllo"), "w", "P", 0.0),
        RecordedEvent(3, 3.0, "get_session_signature_with_text", {"session_id": "s"}, None,
                      "w", "P", 0.0),
        RecordedEvent(4, 4.0, "cache_signature", {"thinking_text": "lone \ud800 surrogate",
                      "signature": SIG}, False, "w", "P", 0.0),
    ]  # fmt: skip


def write(path: Path, evs: list[RecordedEvent]) -> None:
    with RecordingWriter(path, HEADER) as writer:
        for event in evs:
            writer.write(event)


@pytest.mark.parametrize("name", ["rec.jsonl", "rec.jsonl.gz"])
def test_round_trip_restores_pairs_and_surrogates(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    write(path, events())
    header, reader = read_recording(path)
    assert header == HEADER
    assert list(reader) == events()
    assert events()[2].result == (SIG, "héllo")


def test_gzip_output_is_byte_reproducible(tmp_path: Path) -> None:
    write(tmp_path / "a.jsonl.gz", events())
    write(tmp_path / "b.jsonl.gz", events())
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()


def test_append_writes_a_readable_second_gzip_member(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl.gz"
    write(path, events()[:2])
    with RecordingWriter(path, HEADER, mode="a") as writer:
        writer.write(events()[2])
    assert [e.seq for e in read_recording(path)[1]] == [0, 1, 2]


def test_lines_are_the_design_shape(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    write(path, events()[:1])
    lines = path.read_bytes().splitlines()
    assert lines[0].startswith(b'{"format":"sigcache-recording","version":1,')
    assert lines[1].startswith(b'{"seq":0,"t":0.0,"op":"cache_signature","args":{')


@given(
    st.builds(
        RecordedEvent,
        seq=st.integers(0, 2**40),
        t=st.floats(0, 1e9),
        op=st.sampled_from(sorted(VALID_OPS)),
        args=st.dictionaries(st.text(max_size=5), st.none() | st.text() | st.integers(-9, 9)),
        result=st.none() | st.booleans() | st.text(),
        worker=st.text(),
        phase=st.text(),
        latency_us=st.floats(0, 1e6),
    )
)
def test_encode_decode_is_identity(event: RecordedEvent) -> None:
    assert decode_event(encode_event(event)) == event


def test_restore_result_only_touches_pair_ops() -> None:
    assert restore_result("get_recent_signature_with_text", ["s", "t"]) == ("s", "t")
    assert restore_result("get_cached_signature", ["s", "t"]) == ["s", "t"]


def test_unknown_major_version_is_rejected_at_line_1(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(encode_header(HEADER).replace(b'"version":1', b'"version":2'))
    with pytest.raises(RecordingError, match="unsupported major version 2") as info:
        read_recording(path)
    assert info.value.line == 1


@pytest.mark.parametrize("content", [b"", b"not json\n", b'{"format":"other"}\n'])
def test_bad_header_is_line_1(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(content)
    with pytest.raises(RecordingError) as info:
        read_recording(path)
    assert info.value.line == 1


BAD_LINES = [
    (b"{not json", "not valid JSON"),
    (b'{"seq":1,"t":0,"op":"frobnicate","args":{},"result":null,"worker":"w","phase":"p",'
     b'"latency_us":0}', "unknown op"),
    (b'{"seq":1,"t":0,"op":"clear","args":{},"worker":"w","phase":"p","latency_us":0}',
     "missing 'result'"),
    (b'{"seq":-1,"t":0,"op":"clear","args":{},"result":0,"worker":"w","phase":"p",'
     b'"latency_us":0}', "'seq'"),
    (b"[]", "JSON object"),
]  # fmt: skip


@pytest.mark.parametrize(("bad", "why"), BAD_LINES)
def test_bad_line_reports_its_number_and_why(tmp_path: Path, bad: bytes, why: str) -> None:
    path = tmp_path / "r.jsonl"
    write(path, events()[:2])
    with path.open("ab") as f:
        f.write(bad + b"\n")
    f2 = events()[2]
    with RecordingWriter(path, HEADER, mode="a") as writer:
        writer.write(f2)
    reader = read_recording(path)[1]
    assert next(reader).seq == 0
    assert next(reader).seq == 1
    with pytest.raises(RecordingError, match=why) as info:
        next(reader)
    assert info.value.line == 4
    assert str(info.value).startswith("line 4: ")

    reader = read_recording(path, skip_bad_lines=True)[1]
    assert [e.seq for e in reader] == [0, 1, 2]
    assert reader.skipped_lines == 1


def truncated(tmp_path: Path) -> Path:
    path = tmp_path / "r.jsonl.gz"
    write(path, events() * 200)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


def test_truncated_gzip_is_reported_clearly(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="truncated gzip"):
        list(read_recording(truncated(tmp_path))[1])


def test_truncated_gzip_with_skip_keeps_what_was_complete(tmp_path: Path) -> None:
    reader = read_recording(truncated(tmp_path), skip_bad_lines=True)[1]
    read = list(reader)
    assert len(read) > 10
    assert reader.truncated
    assert reader.skipped_lines >= 1


def test_header_decoding_is_pure() -> None:
    assert decode_header(encode_header(HEADER)) == HEADER
    with pytest.raises(RecordingError, match="boolean 'redacted'"):
        decode_header(b'{"format":"sigcache-recording","version":1,"created_at":"x","source":"s"}')


def test_reader_streams_lazily(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl.gz"
    write(path, events())
    with gzip.open(path, "ab") as f:  # garbage after valid events: only found when reached
        f.write(b"garbage\n")
    reader = read_recording(path)[1]
    assert next(reader).seq == 0
    reader.close()
