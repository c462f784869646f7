"""Split documents into token-bounded chunks with exact character offsets.

Chunks are packed from whole paragraphs (blank-line separated blocks) and prefer to break
before a Markdown heading, so a section starts a fresh chunk instead of being cut after its
heading. Only a paragraph that does not fit in an empty chunk is split, at sentence (or
line) ends, and a sentence that alone is too long at word ends.

Overlap is added only where such a split happened: the next chunk then repeats about
``overlap_tokens`` of trailing words from the previous one, so a sentence cut in the middle
keeps its context on both sides. Breaks between whole paragraphs are natural boundaries,
so packed paragraphs are never repeated (repeating them would only duplicate text in the
index).
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from reasonrag.ingest.records import Chunk, Document

TokenCounter = Callable[[str], int]

_HEADING = re.compile(r" {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
# A sentence ends at . ! or ? (plus closing quotes/brackets) before whitespace; a line end
# counts too, which keeps list items and code lines whole.
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s)|\S(?=[ \t]*\n)")
_WORD = re.compile(r"\S+")
# Break levels, best first.
_PARAGRAPH, _SENTENCE, _IN_SENTENCE, _OVERSIZED = range(4)


def whitespace_token_count(text: str) -> int:
    """Approximate subword tokens as ``ceil(words * 1.3)``.

    A cheap stand-in for callers without a tokenizer: English prose averages about 1.3
    subword tokens per whitespace-separated word, so budgets stay roughly comparable."""
    return math.ceil(len(text.split()) * 1.3)


@dataclass(frozen=True)
class _Block:
    """A paragraph or heading line; ``text[start:end]`` has no surrounding whitespace."""

    start: int
    end: int
    heading: tuple[int, str] | None = None


def _blocks(text: str) -> list[_Block]:
    """Paragraphs and heading lines in order; ``#`` lines inside code fences are not headings."""
    blocks: list[_Block] = []
    para: tuple[int, int] | None = None
    fence: str | None = None
    pos = 0
    for line in text.split("\n"):
        line_start, pos = pos, pos + len(line) + 1
        body = line.strip()
        start = line_start + len(line) - len(line.lstrip())
        end = start + len(body)
        marker = _FENCE.match(line)
        heading = _HEADING.match(line) if fence is None and marker is None else None
        if marker and fence is None:
            fence = marker.group(1)
        elif marker and fence and marker.group(1).startswith(fence):  # same char, as long
            fence = None
        if body and heading is None:
            para = (para[0] if para else start, end)
            continue
        if para:
            blocks.append(_Block(*para))
            para = None
        if heading:
            blocks.append(_Block(start, end, (len(heading.group(1)), heading.group(2) or "")))
    if para:
        blocks.append(_Block(*para))
    return blocks


def headings(text: str) -> list[tuple[int, str]]:
    """The Markdown ATX headings of ``text`` as ``(level, title)``, outside code fences."""
    return [b.heading for b in _blocks(text) if b.heading is not None]


def _heading_paths(blocks: list[_Block]) -> list[tuple[str, ...]]:
    """For each block, the heading titles in force after it, outermost first."""
    stack: list[tuple[int, str]] = []
    paths = []
    for block in blocks:
        if block.heading is not None:
            while stack and stack[-1][0] >= block.heading[0]:
                stack.pop()
            stack.append(block.heading)
        paths.append(tuple(title for _, title in stack))
    return paths


_Candidates = Callable[[int], int | None]
"""The k-th candidate offset, or None past the last one."""


def _listed(offsets: Sequence[int]) -> _Candidates:
    return lambda k: offsets[k] if k < len(offsets) else None


def _word_ends(text: str, pos: int) -> _Candidates:
    """Ends of the words after ``pos``, scanned only as far as they are asked for."""
    matches = _WORD.finditer(text, pos)
    ends: list[int] = []

    def get(k: int) -> int | None:
        while len(ends) <= k:
            match = next(matches, None)
            if match is None:
                return None
            ends.append(match.end())
        return ends[k]

    return get


def _last_fit(cand: _Candidates, fits: Callable[[int], bool]) -> int | None:
    """The last candidate that fits, given that once one fails all later ones do.

    Gallops from the first, so it looks at most about twice as far as the answer: the text
    counted stays proportional to one chunk, not to the rest of the document."""
    ok, probe = 0, 0  # candidates before ``ok`` fit
    while (c := cand(probe)) is not None and fits(c):
        ok, probe = probe + 1, 2 * probe + 1
    bad = probe  # fails or does not exist
    while ok < bad:
        mid = (ok + bad) // 2
        c = cand(mid)
        if c is not None and fits(c):
            ok = mid + 1
        else:
            bad = mid
    return cand(ok - 1) if ok else None


class _Packer:
    def __init__(self, text: str, max_tokens: int, overlap_tokens: int, count: TokenCounter):
        self.text = text
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens
        self.count = count
        self.blocks = _blocks(text)
        self.paths = _heading_paths(self.blocks)
        self.starts = [b.start for b in self.blocks]
        self.block_ends = [b.end for b in self.blocks]
        # A heading belongs to the text below it, so no chunk may end right after one
        # (except at the very end of the document).
        self.ends = [b.end for b in self.blocks[:-1] if b.heading is None] + self.block_ends[-1:]

    def spans(self) -> Iterator[tuple[int, int]]:
        if not self.blocks:
            return
        start = self.blocks[0].start
        end, _ = self._plain_end(start)
        while True:
            yield start, end
            if end == self.block_ends[-1]:
                return
            start, end = self._next_chunk(start, end)

    def headings_at(self, start: int, end: int) -> tuple[str, ...]:
        """Heading path at the chunk start, including headings that open the chunk."""
        i = bisect_right(self.starts, start) - 1
        while (
            self.blocks[i].heading is not None
            and i + 1 < len(self.blocks)
            and self.blocks[i + 1].start < end
        ):
            i += 1
        return self.paths[i]

    def _next_chunk(self, prev_start: int, prev_end: int) -> tuple[int, int]:
        start = self._resume(prev_end)
        end, level = self._plain_end(start)
        split = self._block_ending_at(prev_end) is None
        overlap = self._overlap_starts(prev_start, prev_end) if split else []
        if not overlap:
            return start, end
        found = self._farthest_end(overlap[-1], prev_end)
        if found is not None and found[1] <= level:
            return overlap[-1], found[0]
        # The full overlap would force a worse break (mid-sentence, say): keep the break
        # and overlap only what still fits.
        wider = _last_fit(
            _listed(overlap), lambda w: self.count(self.text[w:end]) <= self.max_tokens
        )
        return (start, end) if wider is None else (wider, end)

    def _plain_end(self, start: int) -> tuple[int, int]:
        """End and break level of a chunk from ``start`` with no overlap.

        A single word longer than the budget becomes a chunk of its own."""
        return self._farthest_end(start, start) or (self._word_from(start).end(), _OVERSIZED)

    def _farthest_end(self, start: int, floor: int) -> tuple[int, int] | None:
        """The best end after ``floor`` for a chunk from ``start``, with its break level,
        or None if not even one word after ``floor`` fits.

        Token counts are taken to grow with the text, so every break up to the farthest
        word end that fits also fits: only that word end is searched for by counting."""
        reach = _last_fit(
            _word_ends(self.text, floor),
            lambda end: self.count(self.text[start:end]) <= self.max_tokens,
        )
        if reach is None:
            return None
        first, stop = bisect_right(self.ends, floor), bisect_right(self.ends, reach)
        if stop > first:
            return self._break_before_heading(start, self.ends[stop - 1]), _PARAGRAPH
        # The paragraph after ``floor`` does not fit whole: split it, keeping headings that
        # open the chunk together with at least one sentence where possible.
        limit = self.ends[first]
        body_start = self.starts[bisect_left(self.block_ends, limit)]
        # Scanning one character past ``reach`` lets the lookahead see the space after a
        # sentence ending exactly there; scanning on to ``limit`` could cost a whole paragraph.
        scan = _SENTENCE_END.finditer(self.text, max(floor, body_start), min(reach + 1, limit))
        sentence = max((m.end() for m in scan), default=None)
        return (reach, _IN_SENTENCE) if sentence is None else (sentence, _SENTENCE)

    def _break_before_heading(self, start: int, end: int) -> int:
        """End before the last section that starts inside the chunk instead of cutting it,
        provided the whole section then fits in the next chunk."""
        i = bisect_left(self.block_ends, end)
        if i + 1 == len(self.blocks) or self.blocks[i + 1].heading is not None:
            return end  # not cutting a section
        for j in range(i, bisect_right(self.starts, start) - 1, -1):
            if self.blocks[j].heading is not None and self.blocks[j - 1].heading is None:
                k = i + 1
                while k < len(self.blocks) and self.blocks[k].heading is None:
                    k += 1
                section = self.text[self.starts[j] : self.block_ends[k - 1]]
                return self.blocks[j - 1].end if self.count(section) <= self.max_tokens else end
        return end

    def _overlap_starts(self, start: int, end: int) -> list[int]:
        """Starts of the words of the chunk ``start..end`` in its last paragraph whose text
        to ``end`` fits the overlap budget, nearest first (the first word excluded)."""
        if not self.overlap_tokens:
            return []
        block_start = self.starts[bisect_right(self.starts, end) - 1]
        matches = _WORD.finditer(self.text, max(block_start, start), end)
        words = [m.start() for m in matches if m.start() > start][::-1]
        widest = _last_fit(
            _listed(words), lambda w: self.count(self.text[w:end]) <= self.overlap_tokens
        )
        return [] if widest is None else words[: words.index(widest) + 1]

    def _block_ending_at(self, end: int) -> int | None:
        i = bisect_left(self.block_ends, end)
        return i if i < len(self.blocks) and self.block_ends[i] == end else None

    def _resume(self, end: int) -> int:
        """Where the text after a chunk ending at ``end`` starts."""
        i = self._block_ending_at(end)
        if i is not None:
            return self.starts[i + 1]
        return self._word_from(end).start()

    def _word_from(self, pos: int) -> re.Match[str]:
        match = _WORD.search(self.text, pos)
        assert match is not None, "only called before the document's last word"
        return match


def chunk_document(
    doc: Document, *, max_tokens: int, overlap_tokens: int, count_tokens: TokenCounter
) -> list[Chunk]:
    """Split ``doc`` into chunks of at most ``max_tokens`` under ``count_tokens``.

    A chunk exceeds the budget only when it is a single word that does. ``count_tokens``
    must not shrink when words are appended (true of subword tokenizers); the search for
    the farthest fitting break relies on it. See the module docstring for where chunks
    break and when they overlap. ``doc.text[c.start:c.end]``
    equals ``c.text``; ``c.headings`` is the heading path at the chunk start, including
    headings that open the chunk."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    if not 0 <= overlap_tokens < max_tokens:
        raise ValueError(
            f"overlap_tokens must be in [0, max_tokens={max_tokens}), got {overlap_tokens}"
        )
    packer = _Packer(doc.text, max_tokens, overlap_tokens, count_tokens)
    return [
        Chunk(
            id=f"{doc.id}#{index}",
            doc_id=doc.id,
            index=index,
            text=doc.text[start:end],
            title=doc.title,
            start=start,
            end=end,
            headings=packer.headings_at(start, end),
            source=doc.source,
        )
        for index, (start, end) in enumerate(packer.spans())
    ]


def chunk_documents(
    docs: Iterable[Document], *, max_tokens: int, overlap_tokens: int, count_tokens: TokenCounter
) -> list[Chunk]:
    """Chunk each document in turn (see :func:`chunk_document`)."""
    return [
        chunk
        for doc in docs
        for chunk in chunk_document(
            doc, max_tokens=max_tokens, overlap_tokens=overlap_tokens, count_tokens=count_tokens
        )
    ]
