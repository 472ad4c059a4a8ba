"""LinkBuffer: text goes out as it comes, except while it ends in a link that may grow."""

from __future__ import annotations

from asst_magic.server.runs.links import LinkBuffer, link_spans


def feed_all(chunks: list[str]) -> list[str]:
    """What is sent after each chunk, then the flush."""
    buffer = LinkBuffer()
    return [buffer.feed(chunk) for chunk in chunks] + [buffer.flush()]


def test_plain_text_goes_out_chunk_by_chunk() -> None:
    assert feed_all(["The results ", "are in", "."]) == ["The results ", "are in", ".", ""]


def test_a_link_split_across_chunks_goes_out_whole_with_its_text() -> None:
    sent = feed_all(["See [it](sand", "box:/mnt/data/", "a.csv", ") now"])
    assert sent == ["", "", "", "See [it](sandbox:/mnt/data/a.csv) now", ""]


def test_a_link_at_the_end_goes_out_with_the_flush() -> None:
    assert feed_all(["Here: ", "sandbox:/mnt/data/a.csv"]) == [
        "Here: ",
        "",
        "sandbox:/mnt/data/a.csv",
    ]


def test_a_word_ending_in_s_is_not_held() -> None:
    assert feed_all(["results", " and s", "o on"]) == ["results", "", " and so on", ""]


def test_trailing_punctuation_is_not_part_of_the_link() -> None:
    text = "Saved sandbox:/mnt/data/out.v2.csv. Also [b](sandbox:/mnt/data/b%20c.png)!"
    found = [text[start:end] for start, end in link_spans(text)]
    assert found == ["sandbox:/mnt/data/out.v2.csv", "sandbox:/mnt/data/b%20c.png"]
    assert link_spans("sandbox:/mnt/data/ is the folder") == []
