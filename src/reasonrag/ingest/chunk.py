"""Split documents into token-bounded chunks with exact character offsets.

Chunks are packed from whole paragraphs (blank-line separated blocks) and prefer to break
before a Markdown heading, so a section starts a fresh chunk instead of being cut after its
heading. Only a paragraph that does not fit in an empty chunk is split, at sentence (or
line) ends, a sentence that alone is too long at word ends, and a word that alone is too
long anywhere.

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

MAX_CHARS_PER_TOKEN = 16
"""No chunk is longer than ``max_tokens`` times this many characters. English averages
about 4 characters per subword token; the cap only binds where a tokenizer's count says
little about size, as when it reads a long string without spaces (base64, a 20 MB
line) as one unknown token."""
_GUESSES = 4
"""Probes placed by estimate before a search falls back to bisection."""
_SCAN_AHEAD = 1.5
"""How far past the estimated end of a chunk its candidate ends are listed at first."""
_PROGRESS_EVERY = 1 << 16
"""Characters of input between progress reports within a document."""

# An ATX heading opens with up to three spaces and one to six "#" before a space or the end;
# its title is parsed by hand (see _heading), as a pattern would backtrack over long runs
# of spaces.
_HEADING_OPENING = re.compile(r" {0,3}(#{1,6})(?=[ \t]|$)")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
# A sentence ends at . ! or ? (plus closing quotes/brackets) before whitespace; a line end
# counts too, which keeps list items and code lines whole.
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s)|\S(?=[ \t]*\n)")
_WORD = re.compile(r"\S+")
_NON_SPACE = re.compile(r"\S")
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
        heading = _heading(line) if fence is None and marker is None else None
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
            blocks.append(_Block(start, end, heading))
    if para:
        blocks.append(_Block(*para))
    return blocks


def _heading(line: str) -> tuple[int, str] | None:
    """Level and title of an ATX heading line, without its closing ``#`` sequence."""
    opening = _HEADING_OPENING.match(line)
    if opening is None:
        return None
    title = line[opening.end() :].lstrip(" \t").rstrip(" \t")
    unclosed = title.rstrip("#")
    if unclosed != title and unclosed != unclosed.rstrip(" \t"):  # "## Title ##"
        title = unclosed.rstrip(" \t")
    return len(opening.group(1)), title


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


def _last_fit(
    offsets: Sequence[int],
    anchor: int,
    tokens: Callable[[int], float],
    budget: int,
    density: float,
) -> int:
    """Index of the last of ``offsets`` whose text from ``anchor`` takes at most ``budget``
    tokens (``tokens(offset)``), given that once one fails all later ones do; -1 if none.

    Each count costs as much as the text counted, so the number of counts matters: probes
    go where the counts seen so far (at first ``density``, characters per token) put the
    budget, which on ordinary text finds it with two or three counts. After a few probes
    that did not settle it, the rest bisect, so no counter needs more than about
    ``log2(len(offsets))`` further counts."""

    def index_at(chars: float) -> int:
        return bisect_right(offsets, chars, key=lambda o: abs(o - anchor)) - 1

    goal = budget + 0.5  # aim between the last count that fits and the first that does not
    lo, lo_chars, lo_tokens = -1, 0, 0.0  # offsets up to ``lo`` fit
    hi, hi_chars, hi_tokens = len(offsets), 0, math.inf  # ``hi`` and beyond do not
    probe, step = index_at(goal * density), 0
    while hi - lo > 1:
        probe = min(max(probe, lo + 1), hi - 1)
        used, chars = tokens(offsets[probe]), abs(offsets[probe] - anchor)
        if used <= budget:
            lo, lo_chars, lo_tokens = probe, chars, used
        else:
            hi, hi_chars, hi_tokens = probe, chars, used
        if step >= _GUESSES:
            probe = (lo + hi) // 2
        elif hi_tokens < math.inf:
            slope = (hi_chars - lo_chars) / (hi_tokens - lo_tokens)
            probe = index_at(lo_chars + (goal - lo_tokens) * slope)
        else:
            probe = index_at(goal * lo_chars / lo_tokens if lo_tokens else 2 * lo_chars + 1)
        step += 1
    return lo


class _Packer:
    def __init__(self, text: str, max_tokens: int, overlap_tokens: int, count: TokenCounter):
        self.text = text
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens
        self.max_chars = max_tokens * MAX_CHARS_PER_TOKEN
        self.count = count
        self.density = dict.fromkeys((max_tokens, overlap_tokens), 4.0)
        """Characters per token in the latest count for each budget, where the next search
        for it looks first (short texts differ: a few words, each rounded up, say)."""
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

    def _tokens(self, start: int, end: int) -> float:
        """Tokens in ``text[start:end]``; beyond ``max_chars`` infinite without counting,
        since a tokenizer may see megabytes without a space as one unknown token."""
        if end - start > self.max_chars:
            return math.inf
        return self.count(self.text[start:end])

    def _fit(self, offsets: Sequence[int], anchor: int, budget: int) -> int:
        """Index of the last of ``offsets`` whose text from ``anchor`` fits ``budget``."""

        def tokens(offset: int) -> float:
            start, end = sorted((anchor, offset))
            used = self._tokens(start, end)
            if 0 < used < math.inf:
                self.density[budget] = (end - start) / used
            return used

        return _last_fit(offsets, anchor, tokens, budget, self.density[budget])

    def _next_chunk(self, prev_start: int, prev_end: int) -> tuple[int, int]:
        start = self._resume(prev_end)
        split = self._block_ending_at(prev_end) is None
        overlap = self._overlap_starts(prev_start, prev_end) if split else []
        found = self._farthest_end(overlap[-1], prev_end) if overlap else None
        # The overlap stays unless the chunk without it breaks better, which needs no
        # search where no better break is within its reach.
        if found is not None and found[1] <= self._best_level(start):
            return overlap[-1], found[0]
        end, level = self._plain_end(start)
        if not overlap:
            return start, end
        if found is not None and found[1] <= level:
            return overlap[-1], found[0]
        # The full overlap would force a worse break (mid-sentence, say): keep the break
        # and overlap only what still fits.
        wider = self._fit(overlap, end, self.max_tokens)
        return (start, end) if wider < 0 else (overlap[wider], end)

    def _best_level(self, start: int) -> int:
        """A bound on the break level of a chunk from ``start``: the best break within
        ``max_chars`` of it."""
        cap = start + self.max_chars
        if bisect_right(self.ends, cap) > bisect_right(self.ends, start):
            return _PARAGRAPH
        if _SENTENCE_END.search(self.text, start, cap + 1):
            return _SENTENCE
        return _IN_SENTENCE

    def _plain_end(self, start: int) -> tuple[int, int]:
        """End and break level of a chunk from ``start`` with no overlap."""
        return self._farthest_end(start, start) or (self._cut_word(start), _OVERSIZED)

    def _farthest_end(self, start: int, floor: int) -> tuple[int, int] | None:
        """The best end after ``floor`` for a chunk from ``start``, with its break level,
        or None if not even one word after ``floor`` fits.

        Token counts are taken to grow with the text, so every break up to the farthest
        word end that fits also fits: only that word end is searched for by counting."""
        # Words are listed only as far as the density puts the budget, and on to max_chars
        # (past which nothing fits) only if the last of them still fits.
        cap = start + self.max_chars
        near = start + int(_SCAN_AHEAD * (self.max_tokens + 1) * self.density[self.max_tokens])
        word_ends = self._word_ends(floor, min(near, cap))
        fit = self._fit(word_ends, start, self.max_tokens)
        if fit == len(word_ends) - 1 and near < cap:
            word_ends = self._word_ends(floor, cap)
            fit = self._fit(word_ends, start, self.max_tokens)
        if fit < 0:
            return None
        reach = word_ends[fit]
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

    def _word_ends(self, floor: int, limit: int) -> list[int]:
        """Ends of the words after ``floor`` up to ``limit``."""
        ends = [m.end() for m in _WORD.finditer(self.text, floor, limit + 1)]
        return ends[:-1] if ends and ends[-1] > limit else ends  # the last was cut short

    def _cut_word(self, start: int) -> int:
        """End of the longest piece from ``start`` of a word that does not fit whole, or of
        its first character if none fits (a counter may give one character two tokens)."""
        word = _WORD.match(self.text, start, start + self.max_chars)
        assert word is not None, "only called at a word"
        fit = self._fit(range(start + 1, word.end() + 1), start, self.max_tokens)
        return start + 1 + max(fit, 0)

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
                section = self._tokens(self.starts[j], self.block_ends[k - 1])
                return self.blocks[j - 1].end if section <= self.max_tokens else end
        return end

    def _overlap_starts(self, start: int, end: int) -> list[int]:
        """Starts of the words of the chunk ``start..end`` in its last paragraph whose text
        to ``end`` fits the overlap budget, nearest first (the first word excluded)."""
        if not self.overlap_tokens:
            return []
        block_start = self.starts[bisect_right(self.starts, end) - 1]
        farthest = end - self.overlap_tokens * MAX_CHARS_PER_TOKEN  # no start before fits
        matches = _WORD.finditer(self.text, max(block_start, start + 1, farthest), end)
        # A match may begin inside a word, where the scan began.
        words = [m.start() for m in matches if self.text[m.start() - 1].isspace()][::-1]
        return words[: self._fit(words, end, self.overlap_tokens) + 1]

    def _block_ending_at(self, end: int) -> int | None:
        i = bisect_left(self.block_ends, end)
        return i if i < len(self.blocks) and self.block_ends[i] == end else None

    def _resume(self, end: int) -> int:
        """Where the text after a chunk ending at ``end`` starts (inside a word that was
        cut, that is ``end`` itself)."""
        i = self._block_ending_at(end)
        if i is not None:
            return self.starts[i + 1]
        following = _NON_SPACE.search(self.text, end)
        assert following is not None, "only called before the document's last word"
        return following.start()


Progress = Callable[[int], None]
"""Told how much more of the input is done: characters chunked, files loaded."""


def chunk_document(
    doc: Document,
    *,
    max_tokens: int,
    overlap_tokens: int,
    count_tokens: TokenCounter,
    on_progress: Progress | None = None,
) -> list[Chunk]:
    """Split ``doc`` into chunks of at most ``max_tokens`` under ``count_tokens``.

    A word too long for a chunk of its own is cut into pieces that fit, and no chunk is
    longer than ``max_tokens * MAX_CHARS_PER_TOKEN`` characters; only a single character
    that alone exceeds the budget makes a chunk that does. ``count_tokens`` must not shrink
    when words are appended (true of subword tokenizers); the search for the farthest
    fitting break relies on it. See the module docstring for where chunks break and when
    they overlap. ``doc.text[c.start:c.end]`` equals ``c.text``; ``c.headings`` is the
    heading path at the chunk start, including headings that open the chunk.

    ``on_progress(n)`` is told of the characters consumed at least every 64 KiB of input
    and once at the end, adding up to ``len(doc.text)``."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    if not 0 <= overlap_tokens < max_tokens:
        raise ValueError(
            f"overlap_tokens must be in [0, max_tokens={max_tokens}), got {overlap_tokens}"
        )
    packer = _Packer(doc.text, max_tokens, overlap_tokens, count_tokens)
    chunks: list[Chunk] = []
    reported = 0
    for index, (start, end) in enumerate(packer.spans()):
        chunks.append(
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
        )
        if on_progress is not None and end - reported >= _PROGRESS_EVERY:
            on_progress(end - reported)
            reported = end
    if on_progress is not None and len(doc.text) > reported:
        on_progress(len(doc.text) - reported)
    return chunks


def chunk_documents(
    docs: Iterable[Document],
    *,
    max_tokens: int,
    overlap_tokens: int,
    count_tokens: TokenCounter,
    on_progress: Progress | None = None,
) -> list[Chunk]:
    """Chunk each document in turn (see :func:`chunk_document`); ``on_progress`` adds up
    to the characters of all documents."""
    return [
        chunk
        for doc in docs
        for chunk in chunk_document(
            doc,
            max_tokens=max_tokens,
            overlap_tokens=overlap_tokens,
            count_tokens=count_tokens,
            on_progress=on_progress,
        )
    ]
