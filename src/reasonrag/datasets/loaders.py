"""Question-answering benchmarks in their original layouts, loaded into one record type.

Every loader reads JSONL (one object per line) and, where the original release is a JSON
array, that too. A malformed record (bad JSON, a missing field, a wrong type) is reported
through ``on_error`` with its location and skipped; a missing file raises
``FileNotFoundError``. List fields that arrive as Python-literal text (``"['a', 'b']"``, as
some CSV/parquet round trips leave them) are parsed with ``ast.literal_eval``.
"""

from __future__ import annotations

import ast
import hashlib
import json
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from reasonrag.errors import DatasetError, NotFoundError
from reasonrag.ingest.records import Document
from reasonrag.ingest.untrusted import parse_json, unicode_problem

# --- records -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SupportingDoc:
    title: str
    text: str | None = None
    """Paragraph text when the dataset ships it; ``None`` when only the title is known."""


@dataclass(frozen=True)
class Paragraph:
    """A paragraph shipped with a question: gold or distractor."""

    title: str
    text: str
    is_supporting: bool = False


@dataclass(frozen=True)
class Hop:
    """One step of a multi-hop question."""

    question: str
    answer: str
    title: str | None = None
    """Title of the paragraph that answers this hop, when known."""


@dataclass(frozen=True)
class QAExample:
    id: str
    question: str
    answers: tuple[str, ...]
    """Golden answer first, then aliases."""
    supporting: tuple[SupportingDoc, ...] = ()
    paragraphs: tuple[Paragraph, ...] = ()
    decomposition: tuple[Hop, ...] = ()
    dataset: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    """Dataset-specific fields kept as loaded (e.g. HotpotQA ``type``/``level``)."""

    @property
    def answer(self) -> str:
        return self.answers[0]


@dataclass(frozen=True)
class BeirDataset:
    corpus: dict[str, tuple[str, str]]
    """Document id -> (title, text)."""
    queries: dict[str, str]
    """Only queries that have judgements in the loaded split, as BEIR evaluates them."""
    qrels: dict[str, dict[str, int]]
    """Query id -> document id -> graded relevance."""

    def documents(self, source: str = "") -> list[Document]:
        return [Document(id=i, title=t, text=x, source=source) for i, (t, x) in self.corpus.items()]


# --- error reporting -----------------------------------------------------------------------


@dataclass(frozen=True)
class LoadIssue:
    """One skipped record."""

    location: str
    """``file:line`` for line-based files, ``file[index]`` for an item of a JSON array."""
    problem: str

    def __str__(self) -> str:
        return f"{self.location}: {self.problem}"


class DatasetWarning(UserWarning):
    """Issued for each skipped record when no ``on_error`` callback is given."""


OnError = Callable[[LoadIssue], None]


def warn_issue(issue: LoadIssue) -> None:
    warnings.warn(str(issue), DatasetWarning, stacklevel=2)


class _BadRecord(ValueError):
    """A record that parses but is inconsistent (e.g. a reference to a missing paragraph)."""


def describe_error(exc: ValueError) -> str:
    if not isinstance(exc, ValidationError):
        return str(exc)
    parts = [
        f"{'.'.join(map(str, err['loc'])) or 'record'}: {err['msg']}" for err in exc.errors()[:3]
    ]
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawRecord:
    location: str
    number: int
    """Line number (JSONL) or array index (JSON array)."""
    value: object


def _read_text(source: Traversable, name: str) -> str:
    if not source.is_file():
        raise NotFoundError(f"dataset file not found: {name}")
    try:
        return source.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise DatasetError(f"{name}: unreadable: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"{name}: not UTF-8 text (invalid byte at offset {exc.start}); re-encode it as UTF-8"
        ) from exc


def read_records(source: Traversable, name: str, report: OnError) -> Iterator[RawRecord]:
    """Parsed values of a JSON array file or of a file with one JSON value per line."""
    text = _read_text(source, name)
    if text.lstrip().startswith("["):
        try:
            items = parse_json(text)
        except json.JSONDecodeError as exc:
            # One broken array cannot be resynchronised item by item.
            raise DatasetError(f"{name}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from exc
        for index, item in enumerate(items):
            yield RawRecord(f"{name}[{index}]", index, item)
        return
    # Not splitlines(): it also splits on U+2028, which JSON allows inside strings.
    for number, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        location = f"{name}:{number}"
        try:
            yield RawRecord(location, number, parse_json(line))
        except json.JSONDecodeError as exc:
            report(LoadIssue(location, f"invalid JSON: {exc.msg} (column {exc.colno})"))


# --- field types ---------------------------------------------------------------------------

T = TypeVar("T")


def _literal_list(text: str) -> list[Any] | None:
    """The list written in ``text`` as JSON or as a Python literal; ``None`` if it is not one."""
    try:
        value = parse_json(text)
    except json.JSONDecodeError:
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None
    return value if isinstance(value, list) else None


def _list_field(value: object) -> object:
    """Turn list-looking text into a list; leave anything else to normal validation."""
    if isinstance(value, str) and value.lstrip().startswith("["):
        parsed = _literal_list(value)
        if parsed is None:
            raise ValueError("text is not a valid list literal")
        return parsed
    return value


def _answer_list(value: object) -> object:
    """A list of answers, a list written as text, or one bare answer (even "[citation needed]")."""
    if not isinstance(value, str):
        return value
    parsed = _literal_list(value) if value.lstrip().startswith("[") else None
    return [value] if parsed is None else parsed


LiteralList = Annotated[list[T], BeforeValidator(_list_field)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Answers = Annotated[list[Text], BeforeValidator(_answer_list), Field(min_length=1)]


class _Row(BaseModel):
    # Unknown fields are kept and end up in QAExample.metadata.
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    def extras(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


# --- HotpotQA and 2WikiMultihopQA ------------------------------------------------------------


class _HotpotRow(_Row):
    id: Text = Field(validation_alias=AliasChoices("_id", "id"))
    question: Text
    answer: Text
    supporting_facts: LiteralList[tuple[str, int]]
    context: LiteralList[tuple[str, list[str]]]


class _TwoWikiRow(_HotpotRow):
    evidences: LiteralList[tuple[str, str, str]] = []


def _join_sentences(sentences: Iterable[str]) -> str:
    """HotpotQA sentences carry their leading space, 2Wiki's do not: add one only if missing."""
    text = ""
    for sentence in sentences:
        needs_space = text and not text[-1].isspace() and not sentence[:1].isspace()
        text += (" " if needs_space else "") + sentence
    return text


def _from_context(row: _HotpotRow, dataset: str, **kw: Any) -> QAExample:
    gold_titles = list(dict.fromkeys(title for title, _ in row.supporting_facts))
    paragraphs = tuple(
        Paragraph(title, _join_sentences(sents), title in gold_titles)
        for title, sents in row.context
    )
    first_text: dict[str, str] = {}
    for p in paragraphs:
        first_text.setdefault(p.title, p.text)
    return QAExample(
        id=row.id,
        question=row.question,
        answers=(row.answer,),
        supporting=tuple(SupportingDoc(t, first_text.get(t)) for t in gold_titles),
        paragraphs=paragraphs,
        dataset=dataset,
        **kw,
    )


def _hotpot_example(row: _HotpotRow, _: RawRecord) -> QAExample:
    return _from_context(row, "hotpotqa", metadata=row.extras())


def _2wiki_example(row: _TwoWikiRow, _: RawRecord) -> QAExample:
    titles = {title for title, _ in row.supporting_facts}
    hops = tuple(
        Hop(f"{subj} >> {rel}", obj, subj if subj in titles else None)
        for subj, rel, obj in row.evidences
    )
    metadata = row.extras() | {"evidences": [list(e) for e in row.evidences]}
    return _from_context(row, "2wiki", decomposition=hops, metadata=metadata)


# --- MuSiQue -------------------------------------------------------------------------------


class _MusiqueParagraph(BaseModel):
    idx: int
    title: str
    paragraph_text: str
    is_supporting: bool = False


class _MusiqueHop(BaseModel):
    question: str
    answer: str
    paragraph_support_idx: int | None = None


class _MusiqueRow(_Row):
    id: Text
    question: Text
    answer: Text
    answer_aliases: LiteralList[str] = []
    paragraphs: LiteralList[_MusiqueParagraph]
    question_decomposition: LiteralList[_MusiqueHop] = []


def _musique_example(row: _MusiqueRow, _: RawRecord) -> QAExample:
    by_idx = {p.idx: p for p in row.paragraphs}
    hops = []
    for i, hop in enumerate(row.question_decomposition):
        support = hop.paragraph_support_idx
        if support is not None and support not in by_idx:
            raise _BadRecord(
                f"question_decomposition.{i}.paragraph_support_idx: no paragraph with idx {support}"
            )
        hops.append(
            Hop(hop.question, hop.answer, by_idx[support].title if support is not None else None)
        )
    return QAExample(
        id=row.id,
        question=row.question,
        answers=tuple(dict.fromkeys([row.answer, *row.answer_aliases])),
        supporting=tuple(
            SupportingDoc(p.title, p.paragraph_text) for p in row.paragraphs if p.is_supporting
        ),
        paragraphs=tuple(
            Paragraph(p.title, p.paragraph_text, p.is_supporting) for p in row.paragraphs
        ),
        decomposition=tuple(hops),
        dataset="musique",
        metadata=row.extras(),
    )


# --- FlashRAG / Natural Questions ----------------------------------------------------------


class _FlashRagRow(_Row):
    id: Text | None = None
    question: Text
    # FlashRAG's ``golden_answers``; the simplified NQ-open layout calls it ``answer``.
    golden_answers: Answers = Field(
        validation_alias=AliasChoices("golden_answers", "answer", "answers")
    )
    metadata: dict[str, Any] = {}


def _flashrag_converter(dataset: str) -> Callable[[_FlashRagRow, RawRecord], QAExample]:
    def convert(row: _FlashRagRow, record: RawRecord) -> QAExample:
        return QAExample(
            # NQ-open has no ids; the line number is stable for a given file.
            id=row.id or f"{dataset}-{record.number}",
            question=row.question,
            answers=tuple(dict.fromkeys(row.golden_answers)),
            dataset=dataset,
            metadata=row.extras() | row.metadata,
        )

    return convert


# --- the package's demo set ----------------------------------------------------------------


class _Keyed(BaseModel):
    """A record looked up by id: a corpus document or a BEIR query."""

    model_config = ConfigDict(coerce_numbers_to_str=True)
    id: Text = Field(validation_alias=AliasChoices("_id", "id"))


class _DemoDoc(_Keyed):
    title: str
    text: str


class _DemoHop(BaseModel):
    question: str
    answer: str
    doc_id: str | None = None


class _DemoRow(_Row):
    id: Text
    question: Text
    answers: Answers
    supporting_docs: LiteralList[str] = []
    decomposition: LiteralList[_DemoHop] = []


def _demo_converter(docs: Mapping[str, _DemoDoc]) -> Callable[[_DemoRow, RawRecord], QAExample]:
    def doc(doc_id: str, field_name: str) -> _DemoDoc:
        if doc_id not in docs:
            raise _BadRecord(f"{field_name}: unknown document id {doc_id!r}")
        return docs[doc_id]

    def convert(row: _DemoRow, _: RawRecord) -> QAExample:
        gold = [doc(d, "supporting_docs") for d in row.supporting_docs]
        gold_ids = {d.id for d in gold}
        hops = tuple(
            Hop(
                h.question,
                h.answer,
                doc(h.doc_id, "decomposition.doc_id").title if h.doc_id else None,
            )
            for h in row.decomposition
        )
        return QAExample(
            id=row.id,
            question=row.question,
            answers=tuple(dict.fromkeys(row.answers)),
            supporting=tuple(SupportingDoc(d.title, d.text) for d in gold),
            # The demo questions share one small corpus: every document is a shipped paragraph.
            paragraphs=tuple(Paragraph(d.title, d.text, d.id in gold_ids) for d in docs.values()),
            decomposition=hops,
            dataset="demo",
            metadata=row.extras(),
        )

    return convert


# --- checks --------------------------------------------------------------------------------


def _example_texts(example: QAExample) -> Iterator[tuple[str, str]]:
    """The texts of ``example`` that reach a tokenizer, with the field each is in."""
    yield "id", example.id
    yield "question", example.question
    yield from (("answers", answer) for answer in example.answers)
    for p in example.paragraphs:
        yield from (("paragraphs", p.title), ("paragraphs", p.text))
    for s in example.supporting:
        yield from (("supporting", text) for text in (s.title, s.text) if text is not None)
    for hop in example.decomposition:
        texts = (hop.question, hop.answer, hop.title)
        yield from (("decomposition", text) for text in texts if text is not None)


def _check_unicode(texts: Iterable[tuple[str, str]]) -> None:
    """Validation lets lone surrogates (JSON ``"\\ud800"``) through in plain ``str``
    fields; the tokenizer would then fail the whole run."""
    for name, text in texts:
        problem = unicode_problem(text)
        if problem is not None:
            raise _BadRecord(f"{name}: not valid Unicode ({problem})")


# --- loaders -------------------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)
K = TypeVar("K", bound=_Keyed)


def _load_keyed(source: Traversable, name: str, model: type[K], report: OnError) -> dict[str, K]:
    rows: dict[str, K] = {}
    for record in read_records(source, name, report):
        try:
            row = model.model_validate(record.value)
            _check_unicode((name, value) for name, value in row if isinstance(value, str))
        except (ValidationError, _BadRecord) as exc:
            report(LoadIssue(record.location, describe_error(exc)))
            continue
        if row.id in rows:
            report(LoadIssue(record.location, f"duplicate id {row.id!r}"))
            continue
        rows[row.id] = row
    return rows


def _load_examples(
    source: Traversable,
    name: str,
    model: type[M],
    convert: Callable[[M, RawRecord], QAExample],
    on_error: OnError | None,
) -> list[QAExample]:
    report = on_error or warn_issue
    examples: list[QAExample] = []
    first_seen: dict[str, str] = {}
    for record in read_records(source, name, report):
        try:
            example = convert(model.model_validate(record.value), record)
            _check_unicode(_example_texts(example))
        except (ValidationError, _BadRecord) as exc:
            report(LoadIssue(record.location, describe_error(exc)))
            continue
        if example.id in first_seen:
            report(
                LoadIssue(
                    record.location,
                    f"duplicate id {example.id!r} (first at {first_seen[example.id]})",
                )
            )
            continue
        first_seen[example.id] = record.location
        examples.append(example)
    return examples


def load_hotpotqa(path: str | Path, *, on_error: OnError | None = None) -> list[QAExample]:
    return _load_examples(Path(path), str(path), _HotpotRow, _hotpot_example, on_error)


def load_2wiki(path: str | Path, *, on_error: OnError | None = None) -> list[QAExample]:
    """2WikiMultihopQA; evidence triples become ``decomposition`` and ``metadata["evidences"]``."""
    return _load_examples(Path(path), str(path), _TwoWikiRow, _2wiki_example, on_error)


def load_musique(path: str | Path, *, on_error: OnError | None = None) -> list[QAExample]:
    return _load_examples(Path(path), str(path), _MusiqueRow, _musique_example, on_error)


def load_flashrag(
    path: str | Path, *, dataset: str = "flashrag", on_error: OnError | None = None
) -> list[QAExample]:
    """FlashRAG's JSONL layout: ``id, question, golden_answers`` (+ optional ``metadata``)."""
    return _load_examples(
        Path(path), str(path), _FlashRagRow, _flashrag_converter(dataset), on_error
    )


def load_nq(path: str | Path, *, on_error: OnError | None = None) -> list[QAExample]:
    """Natural Questions as FlashRAG ships it, or the simplified ``question``/``answer`` layout."""
    return load_flashrag(path, dataset="nq", on_error=on_error)


DEMO_QUESTIONS = "questions.jsonl"
"""The 48 demo questions held out for evaluation."""
DEMO_TRAIN_QUESTIONS = "train_questions.jsonl"
"""Other questions about the same corpus, written for training (none asks what an
evaluation question asks)."""


def load_demo(
    folder: str | Path | None = None,
    *,
    questions: str = DEMO_QUESTIONS,
    on_error: OnError | None = None,
) -> list[QAExample]:
    """The demo set shipped in the package (``corpus.jsonl`` and ``questions`` beside it)."""
    root: Traversable = Path(folder) if folder is not None else files("reasonrag") / "data" / "demo"
    name = str(folder) if folder is not None else "reasonrag/data/demo"
    report = on_error or warn_issue
    docs = _load_keyed(root / "corpus.jsonl", f"{name}/corpus.jsonl", _DemoDoc, report)
    return _load_examples(
        root / questions, f"{name}/{questions}", _DemoRow, _demo_converter(docs), report
    )


_LOADERS: dict[str, Callable[..., list[QAExample]]] = {
    "hotpotqa": load_hotpotqa,
    "musique": load_musique,
    "2wiki": load_2wiki,
    "2wikimultihopqa": load_2wiki,
    "nq": load_nq,
    "flashrag": load_flashrag,
}
DATASET_NAMES = (*_LOADERS, "demo", "demo-train")
DatasetName = Literal[
    "hotpotqa", "musique", "2wiki", "2wikimultihopqa", "nq", "flashrag", "demo", "demo-train"
]
"""The names ``load_dataset`` knows, as a type (the CLI lists them in ``--help``)."""


def sample_examples(examples: Sequence[QAExample], n: int | None, seed: int = 0) -> list[QAExample]:
    """A deterministic sample of ``n`` examples.

    Examples are ordered by a seeded hash of their id and the first ``n`` taken, so the same
    seed gives the same sample, a smaller sample is a prefix of a larger one, and the choice of
    a question does not depend on which other lines of the file loaded.
    """
    if n is None:
        return list(examples)
    if n < 0:
        raise DatasetError(f"sample size must be >= 0, got {n}")

    def rank(example: QAExample) -> bytes:
        return hashlib.sha256(f"{seed}\x00{example.id}".encode()).digest()

    return sorted(examples, key=rank)[:n]


def load_dataset(
    name: str,
    path: str | Path | None = None,
    *,
    n: int | None = None,
    seed: int = 0,
    on_error: OnError | None = None,
) -> list[QAExample]:
    """Load a benchmark by name (see ``DATASET_NAMES``) and optionally sample ``n`` questions."""
    key = name.lower()
    if key in ("demo", "demo-train"):
        questions = DEMO_QUESTIONS if key == "demo" else DEMO_TRAIN_QUESTIONS
        examples = load_demo(path, questions=questions, on_error=on_error)
    elif key in _LOADERS:
        if path is None:
            raise DatasetError(f"dataset {name!r} needs a path to its file")
        examples = _LOADERS[key](path, on_error=on_error)
    else:
        raise DatasetError(f"unknown dataset {name!r}; expected one of {', '.join(DATASET_NAMES)}")
    return sample_examples(examples, n, seed)


# --- BEIR ----------------------------------------------------------------------------------


class _BeirDoc(_Keyed):
    title: str = ""
    text: str


class _BeirQuery(_Keyed):
    text: Text


def _beir_qrels(path: Path, report: OnError) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    lines = _read_text(path, str(path)).split("\n")
    for number, line in enumerate(lines, 1):
        fields = line.rstrip("\r").split("\t")
        if not line.strip() or (number == 1 and fields[0] == "query-id"):
            continue
        if len(fields) != 3 or not fields[2].strip().lstrip("-").isdigit():
            report(LoadIssue(f"{path}:{number}", "expected 'query-id<TAB>corpus-id<TAB>int score'"))
            continue
        qrels.setdefault(fields[0], {})[fields[1]] = int(fields[2])
    return qrels


def load_beir(
    folder: str | Path, split: str = "test", *, on_error: OnError | None = None
) -> BeirDataset:
    """A BEIR folder: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/{split}.tsv`` (with header)."""
    root = Path(folder)
    if not root.is_dir():
        raise NotFoundError(f"BEIR folder not found: {root}")
    report = on_error or warn_issue
    docs = _load_keyed(root / "corpus.jsonl", str(root / "corpus.jsonl"), _BeirDoc, report)
    queries = _load_keyed(root / "queries.jsonl", str(root / "queries.jsonl"), _BeirQuery, report)
    qrels = _beir_qrels(root / "qrels" / f"{split}.tsv", report)
    return BeirDataset(
        corpus={d.id: (d.title, d.text) for d in docs.values()},
        queries={q.id: q.text for q in queries.values() if q.id in qrels},
        qrels=qrels,
    )
