"""The SSE codec both sides share: what goes out is what comes back in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asst_magic.sse import SSEDecoder, encode_done, encode_error, encode_event

VECTORS = Path(__file__).parent / "vectors" / "assistants"


def decode_all(raw: bytes, chunk_size: int) -> list[tuple[str, str]]:
    decoder = SSEDecoder()
    events: list[tuple[str, str]] = []
    for start in range(0, len(raw), chunk_size):
        events += decoder.feed(raw[start : start + chunk_size])
    return events + decoder.flush()


def test_encoded_event_is_one_event_line_and_one_data_line() -> None:
    raw = encode_event("thread.message.delta", {"id": "msg_1", "text": "a\nb"})
    assert raw == b'event: thread.message.delta\ndata: {"id":"msg_1","text":"a\\nb"}\n\n'


def test_done_is_the_literal_unquoted_marker() -> None:
    assert encode_done() == b"event: done\ndata: [DONE]\n\n"
    assert decode_all(encode_done(), 3) == [("done", "[DONE]")]


def test_error_event_wraps_the_error_object() -> None:
    [(name, data)] = decode_all(encode_error("boom", code="server_error"), 1000)
    assert name == "error"
    assert json.loads(data) == {
        "error": {"message": "boom", "type": "server_error", "param": None, "code": "server_error"}
    }


@pytest.mark.parametrize("chunk_size", [1, 7, 4096])
def test_recorded_stream_decodes_the_same_at_any_split(chunk_size: int) -> None:
    raw = (VECTORS / "text-run.2.sse").read_bytes()
    events = decode_all(raw, chunk_size)
    assert [name for name, _ in events].count("thread.message.delta") == 33
    assert events[-1] == ("done", "[DONE]")
    assert events == decode_all(raw, len(raw))


def test_split_inside_a_multibyte_character_is_reassembled() -> None:
    raw = encode_event("x", {"t": "héllo ✓"})
    assert decode_all(raw, 1) == [("x", '{"t":"héllo ✓"}')]


def test_crlf_comments_and_multiline_data() -> None:
    raw = b": keep-alive\r\nevent: a\r\ndata: line1\r\ndata: line2\r\n\r\ndata: x\n\n"
    assert decode_all(raw, 5) == [("a", "line1\nline2"), ("message", "x")]


def test_event_without_trailing_blank_line_is_returned_by_flush() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"event: done\ndata: [DONE]") == []
    assert decoder.flush() == [("done", "[DONE]")]
