"""Sentence spans: pysbd boundaries, spans that always give the text back."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from harmtrace.moderate.sentences import split_many, split_spans


def test_abbreviations_do_not_end_sentences():
    text = "Dr. Smith met Mr. Jones at 3 p.m. on Friday. They talked."
    assert [s.text.strip() for s in split_spans(text)] == [
        "Dr. Smith met Mr. Jones at 3 p.m. on Friday.",
        "They talked.",
    ]


def test_spans_partition_the_text_with_whitespace_kept():
    text = "  First one!  Second one?\n\nThird."
    spans = split_spans(text)
    assert [s.text for s in spans] == ["  First one!  ", "Second one?\n\n", "Third."]
    assert [(s.start, s.end) for s in spans] == [(0, 14), (14, 27), (27, 33)]
    assert all(text[s.start : s.end] == s.text for s in spans)


def test_blank_text_has_no_sentences():
    assert split_spans("") == []
    assert split_spans("   \n") == []


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["Hello.", "Dr.", "U.S.", "!", "?", " ", "\n", "wait", "1.", "...", '"Hi."', "é"]
        ),
        max_size=25,
    )
)
def test_joining_spans_always_gives_the_text_back(parts):
    text = "".join(parts)
    spans = split_spans(text)
    if text.strip():
        assert "".join(s.text for s in spans) == text
        assert spans[0].start == 0 and spans[-1].end == len(text)
        assert all(a.end == b.start for a, b in itertools.pairwise(spans))
    else:
        assert spans == []


def test_split_many_matches_single_and_parallel_runs():
    texts = [f"Sentence {i}. Another one {i}!" for i in range(250)] + ["Same. Same."] * 3
    single = split_many(texts)
    assert single == [split_spans(t) for t in texts]
    assert split_many(texts, workers=2) == single
