"""Chunking: exact offsets, token budgets, heading paths, and overlap only at splits."""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasonrag.ingest import (
    MAX_CHARS_PER_TOKEN,
    Chunk,
    Document,
    chunk_document,
    chunk_documents,
    headings,
    whitespace_token_count,
)


def words(text: str) -> int:
    return len(text.split())


def quarter_chars(text: str) -> int:
    return len(text) // 4


BLANK_LINE = re.compile(r"\n[ \t]*\n")


def chunk(text: str, max_tokens: int, overlap: int = 0, count=words) -> list[Chunk]:
    doc = Document(id="doc", title="Doc", text=text, source="doc.md")
    return chunk_document(doc, max_tokens=max_tokens, overlap_tokens=overlap, count_tokens=count)


def overlaps(chunks: list[Chunk]) -> list[str]:
    return [b.text[: a.end - b.start] for a, b in pairwise(chunks) if b.start < a.end]


def check_invariants(
    text: str, chunks: list[Chunk], max_tokens: int, count: Callable[[str], int]
) -> None:
    assert [c.id for c in chunks] == [f"doc#{i}" for i in range(len(chunks))]
    assert [c.index for c in chunks] == list(range(len(chunks)))
    covered = [False] * len(text)
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert c.text and c.text == c.text.strip()
        assert count(c.text) <= max_tokens or len(c.text) == 1, c.text
        assert len(c.text) <= max_tokens * MAX_CHARS_PER_TOKEN
        assert (c.doc_id, c.title, c.source) == ("doc", "Doc", "doc.md")
        covered[c.start : c.end] = [True] * (c.end - c.start)
    assert all(covered[i] for i, char in enumerate(text) if not char.isspace())
    for a, b in pairwise(chunks):
        assert a.start < b.start and a.end < b.end
        if b.start < a.end:  # overlap only where a paragraph was split
            assert not BLANK_LINE.search(text[b.start : a.end])
            assert not BLANK_LINE.match(text, a.end)


WORD = st.text(alphabet="abcdefghij", min_size=1, max_size=8)
SENTENCE = st.builds(
    lambda ws, end: " ".join(ws) + end,
    st.lists(WORD, min_size=1, max_size=14),
    st.sampled_from([".", "!", "?", ".)", ""]),
)
PARAGRAPH = st.builds(
    lambda ss, sep: sep.join(ss),
    st.lists(SENTENCE, min_size=1, max_size=6),
    st.sampled_from([" ", "\n"]),
)
HEADING = st.builds(
    lambda level, ws: "#" * level + " " + " ".join(ws),
    st.integers(1, 4),
    st.lists(WORD, min_size=1, max_size=4),
)
FENCE = st.builds(lambda body: f"```\n# {body}\n```", WORD)
STRUCTURED = st.builds(
    lambda blocks, sep: sep.join(blocks),
    st.lists(st.one_of(PARAGRAPH, PARAGRAPH, HEADING, FENCE), min_size=1, max_size=10),
    st.sampled_from(["\n\n", "\n\n\n", "\n \n"]),
)
RAW = st.text(alphabet="ab .!?#`\n\t", max_size=200)
LONG_WORDS = st.builds(
    " ".join, st.lists(st.text(alphabet="abc.", min_size=1, max_size=120), max_size=8)
)
COUNTERS = st.sampled_from([words, whitespace_token_count, quarter_chars])


@settings(max_examples=150, deadline=None)
@given(text=st.one_of(STRUCTURED, RAW, LONG_WORDS), max_tokens=st.integers(1, 40), data=st.data())
def test_invariants_hold_on_generated_text(text: str, max_tokens: int, data: st.DataObject):
    count = data.draw(COUNTERS)
    overlap = data.draw(st.integers(0, max_tokens - 1))
    chunks = chunk(text, max_tokens, overlap, count)
    check_invariants(text, chunks, max_tokens, count)
    assert chunks == chunk(text, max_tokens, overlap, count)
    if not text.strip():
        assert chunks == []


def test_short_document_is_one_chunk_equal_to_the_text():
    text = "# Guide\n\nInstall it.\n\n## Use\n\nRun it daily."
    (only,) = chunk(text, max_tokens=50, overlap=10)
    assert (only.text, only.start, only.end, only.id) == (text, 0, len(text), "doc#0")
    assert only.headings == ("Guide",)


def test_whole_paragraphs_are_packed_without_overlap():
    paragraphs = [f"Paragraph {i} has words." for i in range(6)]  # 4 words each
    chunks = chunk("\n\n".join(paragraphs), max_tokens=9, overlap=3)
    assert [c.text for c in chunks] == ["\n\n".join(paragraphs[i : i + 2]) for i in (0, 2, 4)]
    assert overlaps(chunks) == []


def test_long_paragraph_splits_at_sentences_with_overlap():
    text = " ".join(f"Sentence number {i} here." for i in range(10))  # 4 words each
    chunks = chunk(text, max_tokens=10, overlap=3)
    check_invariants(text, chunks, 10, words)
    assert len(chunks) > 4
    assert all(c.text.endswith(".") for c in chunks)  # the overlap never forces a mid-sentence cut
    shared = overlaps(chunks)
    assert len(shared) == len(chunks) - 1
    assert all(1 <= words(s) <= 3 for s in shared)


def test_splitting_without_overlap_budget_has_no_overlap():
    text = " ".join(f"Sentence number {i} here." for i in range(10))
    chunks = chunk(text, max_tokens=10, overlap=0)
    assert [c.text for c in chunks] == [
        " ".join(f"Sentence number {i} here." for i in (j, j + 1)) for j in range(0, 10, 2)
    ]


def test_a_sentence_longer_than_the_budget_splits_at_words():
    text = " ".join(f"w{i}" for i in range(25))
    chunks = chunk(text, max_tokens=10)
    assert [words(c.text) for c in chunks] == [10, 10, 5]
    assert chunks[1].text.startswith("w10 ")


def test_a_word_longer_than_the_budget_is_cut_into_pieces_that_fit():
    text = "tiny " + "x" * 40 + " tail"
    chunks = chunk(text, max_tokens=3, count=quarter_chars)
    assert [c.text for c in chunks] == ["tiny", "x" * 15, "x" * 15, "x" * 10 + " tail"]
    check_invariants(text, chunks, 3, quarter_chars)


def test_no_chunk_is_longer_than_the_character_cap():
    # Tokenizers may count a long unbroken string as one unknown token.
    text = "word " + "x" * 100_000 + " end"
    chunks = chunk(text, max_tokens=10, count=words)
    check_invariants(text, chunks, 10, words)
    assert max(len(c.text) for c in chunks) == 10 * MAX_CHARS_PER_TOKEN


def test_heading_paths():
    text = "\n\n".join(
        [
            "Preface text.",
            "# A",
            "a text.",
            "## A1",
            "a1 text.",
            "### A1x",
            "deep.",
            "## A2",
            "a2 text.",
            "# B",
            "b text.",
        ]
    )
    chunks = chunk(text, max_tokens=5)
    assert [(c.text.split("\n")[0], c.headings) for c in chunks] == [
        ("Preface text.", ()),
        ("# A", ("A",)),
        ("## A1", ("A", "A1")),
        ("### A1x", ("A", "A1", "A1x")),
        ("## A2", ("A", "A2")),
        ("# B", ("B",)),
    ]


def test_continuation_chunks_keep_the_heading_path():
    text = "# Top\n\n## Sub\n\n" + " ".join(f"Fact {i} stated." for i in range(12))
    chunks = chunk(text, max_tokens=12, overlap=2)
    assert chunks[0].text.startswith("# Top\n\n## Sub\n\nFact 0")
    assert {c.headings for c in chunks} == {("Top", "Sub")}


def test_section_that_fits_starts_a_fresh_chunk():
    head = "Zero one two.\n\n# H\n\nAlpha beta."
    small = chunk(head + "\n\nGamma delta epsilon.", max_tokens=8)
    assert [c.text for c in small] == [
        "Zero one two.",
        "# H\n\nAlpha beta.\n\nGamma delta epsilon.",
    ]
    assert small[1].headings == ("H",)
    # A section too big for one chunk gains nothing from moving the break: pack greedily.
    big = chunk(head + "\n\nGamma delta epsilon zeta eta theta.", max_tokens=8)
    assert [c.text for c in big] == [head, "Gamma delta epsilon zeta eta theta."]


def test_hash_lines_in_code_fences_are_not_headings():
    text = "# Real\n\n```bash\n# install\npip install x\n```\n\n~~~\n## still code\n~~~\n\n## Next"
    assert headings(text) == [(1, "Real"), (2, "Next")]
    assert headings("## Closed ##\n\n#NoSpace\n\n####### seven") == [(2, "Closed")]
    (only,) = chunk(text, max_tokens=100)
    assert only.headings == ("Real",)


def test_chunk_documents_keeps_each_documents_ids():
    docs = [Document(id=f"d{i}", title=f"T{i}", text="One. Two. Three.") for i in range(2)]
    chunks = chunk_documents(docs, max_tokens=2, overlap_tokens=0, count_tokens=words)
    assert [(c.id, c.title, c.text) for c in chunks] == [
        (f"d{i}#{j}", f"T{i}", text)
        for i in range(2)
        for j, text in enumerate(["One. Two.", "Three."])
    ]


def test_invalid_budgets_are_rejected():
    with pytest.raises(ValueError, match="max_tokens"):
        chunk("text", max_tokens=0)
    with pytest.raises(ValueError, match="overlap_tokens"):
        chunk("text", max_tokens=10, overlap=10)


def test_whitespace_token_count():
    assert whitespace_token_count("") == 0
    assert whitespace_token_count("one two three") == 4
    assert whitespace_token_count(" ".join(["w"] * 10)) == 13


class CountingCounter:
    """A token counter that records how many characters it was given in all."""

    def __init__(self, count: Callable[[str], int] = whitespace_token_count) -> None:
        self.count = count
        self.chars = 0

    def __call__(self, text: str) -> int:
        self.chars += len(text)
        return self.count(text)


def one_line(size: int) -> str:
    return " ".join(f"w{i % 97}" for i in range(size // 4))[:size].strip()


def prose(size: int) -> str:
    sentences = [
        " ".join(f"word{(i * j) % 13}" for j in range(3 + i % 17)) + "." for i in range(999)
    ]
    paragraphs = [" ".join(sentences[i : i + 1 + i % 7]) for i in range(0, 999, 7)]
    text = "\n\n".join(paragraphs)
    return (text * (size // len(text) + 1))[:size].strip()


@pytest.mark.parametrize("make", [one_line, prose, lambda size: "x" * size])
def test_the_text_counted_grows_linearly_and_stays_near_the_input(make: Callable[[int], str]):
    # Counting is nearly all the cost of chunking with a real tokenizer, and unlike time
    # it does not depend on how busy the machine is.
    ratios = []
    for size in (50_000, 200_000):
        counter = CountingCounter()
        text = make(size)
        chunks = chunk(text, max_tokens=200, overlap=32, count=counter)
        assert chunks[-1].end == len(text)
        assert max(len(c.text) for c in chunks) <= 200 * MAX_CHARS_PER_TOKEN
        ratios.append(counter.chars / len(text))
    # About two or three counts of each chunk, plus its overlap; searching from the chunk
    # start at every probe used to count 14 (prose) to 29 (one line) times the input.
    assert max(ratios) < 5, ratios
    assert ratios[1] < ratios[0] * 1.1, ratios


def test_progress_adds_up_to_the_characters_of_each_document():
    docs = [
        Document(id="big", title="", text=one_line(300_000)),
        Document(id="small", title="", text="Two words."),
    ]
    told: list[int] = []
    chunks = chunk_documents(
        docs, max_tokens=50, overlap_tokens=5, count_tokens=words, on_progress=told.append
    )
    assert sum(told) == sum(len(d.text) for d in docs)
    assert told[-1] == len("Two words.")  # the small document at its end
    longest = max(len(c.text) for c in chunks)
    assert len(told) >= 300_000 // 65_536 and max(told) <= 65_536 + longest


def test_chunks_fit_the_real_tokenizer_even_where_it_sees_one_unknown_token():
    from transformers import AutoTokenizer

    from reasonrag.embed.sentence_transformers import embedded_model_path

    tokenizer = AutoTokenizer.from_pretrained(str(embedded_model_path()))

    def count(text: str) -> int:
        return len(tokenizer.tokenize(text))

    text = prose(8_000) + " " + "x" * 5_000 + " " + one_line(8_000)  # the x's: one [UNK]
    chunks = chunk(text, max_tokens=128, overlap=16, count=count)
    check_invariants(text, chunks, 128, count)


@pytest.mark.timeout(10)
def test_heading_lines_with_long_runs_of_spaces_parse_in_linear_time():
    # The heading pattern used to backtrack over every space: hours for a megabyte.
    line = "# title" + " \t" * 500_000 + "#x"
    assert headings(line + "\n\ntext") == [(1, "title" + " \t" * 500_000 + "#x")]
    assert headings("## closed" + " " * 500_000 + "##") == [(2, "closed")]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="# \tab\r", max_size=20))
def test_heading_titles_follow_the_atx_rules(line: str):
    # The pattern the parser replaced, fine on short lines.
    atx = re.fullmatch(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*", line)
    expected = [] if atx is None else [(len(atx.group(1)), atx.group(2) or "")]
    assert headings(line) == expected
