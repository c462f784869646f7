"""The folded view of text that the injection guard matches: invisible characters gone,
compatibility forms, accents, look-alike letters, case and letter-spacing undone, with a
map from every folded position back to the original text."""

from __future__ import annotations

import re
import unicodedata

# Letters of other scripts drawn like Latin ones. Cyrillic maps alike in both cases, so
# that Russian patterns match capitalised words too; Greek is mapped before case folding
# because its upper and lower case look like different Latin letters (Η like H, η like n),
# which no pattern depends on. Quotation marks are unified so patterns write one apostrophe.
_HOMOGLYPHS = str.maketrans(
    {
        # Cyrillic
        "А": "a", "а": "a", "В": "b", "в": "b", "Е": "e", "е": "e", "Һ": "h", "һ": "h",
        "Н": "h", "н": "h", "І": "i", "і": "i", "Ј": "j", "ј": "j", "К": "k", "к": "k",
        "Ӏ": "l", "ӏ": "l", "М": "m", "м": "m", "О": "o", "о": "o", "Р": "p", "р": "p",
        "С": "c", "с": "c", "Т": "t", "т": "t", "У": "y", "у": "y", "Х": "x", "х": "x",
        "Ѕ": "s", "ѕ": "s", "Ԁ": "d", "ԁ": "d", "Ԛ": "q", "ԛ": "q", "Ԝ": "w", "ԝ": "w",
        # Greek
        "Α": "a", "α": "a", "Β": "b", "β": "b", "Ε": "e", "ε": "e", "Ζ": "z", "Η": "h",
        "η": "n", "Ι": "i", "ι": "i", "Κ": "k", "κ": "k", "Μ": "m", "Ν": "n", "ν": "v",
        "Ο": "o", "ο": "o", "Ρ": "p", "ρ": "p", "Τ": "t", "τ": "t", "Υ": "y", "υ": "u",
        "Χ": "x", "χ": "x", "γ": "y",
        # Latin variants that NFKD keeps
        "ı": "i", "ɡ": "g", "ɑ": "a", "ʟ": "l",
        # quotation marks
        "‘": "'", "’": "'", "‛": "'", "ʼ": "'", "“": '"', "”": '"', "„": '"',
    }
)  # fmt: skip


def fold_char(char: str) -> str:
    """One character as the guard sees it: format characters (zero-width spaces, joiners,
    soft hyphens, bidirectional controls, tag characters) vanish; compatibility forms
    (fullwidth, mathematical, circled letters, ligatures) become plain letters; accents and
    other combining marks go; look-alike letters become Latin; case is folded."""
    if unicodedata.category(char) == "Cf":
        return ""
    decomposed = _drop_marks(unicodedata.normalize("NFKD", char))
    return _drop_marks(decomposed.translate(_HOMOGLYPHS).casefold())


def _drop_marks(text: str) -> str:
    return "".join(c for c in text if unicodedata.category(c) != "Mn")


class _FoldTable(dict[int, str]):
    """``str.translate`` table filled on first sight of each code point: Unicode is too
    large to tabulate ahead."""

    def __missing__(self, code: int) -> str:
        folded = self[code] = fold_char(chr(code))
        return folded


class _VisibleTable(dict[int, int | None]):
    """``str.translate`` table deleting format characters, the invisible ones."""

    def __missing__(self, code: int) -> int | None:
        kept = self[code] = None if unicodedata.category(chr(code)) == "Cf" else code
        return kept


_FOLD = _FoldTable()
_VISIBLE = _VisibleTable()
_SPACED = re.compile(r"(?<![^\W\d_])[^\W\d_]([ .\-_*·])(?:[^\W\d_]\1)+[^\W\d_](?![^\W\d_])")
"""Letter-spacing ("i g n o r e", "i.g.n.o.r.e"): one separator, the same throughout, between
three or more single letters. A wider gap between words ends the run, so spaced words stay
apart; words spaced with single gaps throughout run together and are not recognised."""


def fold(text: str) -> str:
    """Every character folded (``fold_char``) and letter-spaced runs closed up. Line breaks
    and punctuation are kept, so lines and sentences stay where they were."""
    # ASCII text, nearly every snippet, only needs lower-casing.
    folded = text.lower() if text.isascii() else text.translate(_FOLD)
    return _SPACED.sub(lambda m: m.group()[::2], folded)


def fold_with_origins(text: str) -> tuple[str, list[int]]:
    """``fold(text)``, and for each of its characters the index in ``text`` it came from."""
    pieces: list[str] = []
    origins: list[int] = []
    for index, char in enumerate(text):
        piece = _FOLD[ord(char)]
        pieces.append(piece)
        origins.extend([index] * len(piece))
    folded = "".join(pieces)
    # A spaced run is letter, separator, letter, ...: its separators sit at odd offsets.
    separators = {i for m in _SPACED.finditer(folded) for i in range(m.start() + 1, m.end(), 2)}
    if not separators:
        return folded, origins
    kept = [i for i in range(len(folded)) if i not in separators]
    return "".join(folded[i] for i in kept), [origins[i] for i in kept]


def visible(text: str) -> str:
    """``text`` without its format characters: what a reader of the rendered text sees."""
    return text if text.isascii() else text.translate(_VISIBLE)
