"""Oracle training data for machines without a large teacher: chains and RARE examples
assembled from a dataset's gold structure (MuSiQue's question decompositions, 2Wiki's
evidence triples, HotpotQA's supporting facts, the demo set's decompositions).

Nothing is faked. Every search is a real call of the index through the real agent, and
every observation is what the index returned, shown exactly as the agent shows it. A hop
counts as supported only when its gold paragraph (and, where known, its answer) is in the
text the model is shown; a hop that is not is repaired with one further search by the gold
paragraph's title, and a question whose evidence still is not shown is dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from reasonrag.datasets.hops import evidence_parts, hop_questions
from reasonrag.datasets.loaders import QAExample
from reasonrag.datasets.metrics import f1
from reasonrag.index.records import Hit, Retriever
from reasonrag.llm.base import Completion, GenParams, Message, Prompt, as_messages
from reasonrag.reason.actions import query_key
from reasonrag.reason.agent import TaoAgent
from reasonrag.reason.guard import mentions
from reasonrag.reason.machine import AgentState
from reasonrag.reason.prompts import rare_prompt, snippet
from reasonrag.train.records import ChainRecord, Document, Outcome, RareRecord

_YES_NO = frozenset({"yes", "no"})


@dataclass(frozen=True)
class Hop:
    """One search the oracle makes, and what must be shown for it to count."""

    query: str
    question: str
    """The hop as a question, for the thoughts."""
    answer: str | None
    title: str | None
    """Title of the gold paragraph, when the dataset names it."""


def _ask_form(question: str) -> tuple[str, str]:
    """(query, question) for a hop written as ``subject >> relation`` (2Wiki, some
    MuSiQue hops) or as a plain question."""
    parts = evidence_parts(question)
    if parts is not None:
        subject, relation = parts
        return f"{subject} {relation}", f"what is the {relation} of {subject}?"
    return question, question


def plan_hops(example: QAExample) -> list[Hop]:
    """The searches that answer ``example``, in order, from its gold structure."""
    hops: list[Hop] = []
    for hop, text in zip(example.decomposition, hop_questions(example), strict=True):
        derived = example.dataset == "demo" and hop.title is None
        if derived:
            continue  # a comparison or arithmetic step: reasoning, not a search
        query, question = _ask_form(text)
        hops.append(Hop(query, question, hop.answer, hop.title))
    if hops:
        return hops
    # HotpotQA names only its supporting paragraphs: search the question, then each
    # supporting title the first search did not bring.
    titles = [doc.title for doc in example.supporting]
    first = Hop(example.question, example.question, None, None)
    return [first, *(Hop(t, f"what the article on {t} says.", None, t) for t in titles)]


def shown(hit: Hit, snippet_chars: int) -> str:
    """The hit's text as the model sees it (snippet cut, instructions withheld)."""
    return snippet(hit.text, snippet_chars)


def supports(hit: Hit, hop: Hop, snippet_chars: int) -> bool:
    if hop.title is not None and hit.title != hop.title:
        return False
    if hop.answer is not None and hop.answer.lower() not in _YES_NO:
        return mentions(shown(hit, snippet_chars), hop.answer)
    return hop.title is not None


def _first_support(hits: Sequence[Hit], hop: Hop, snippet_chars: int) -> Hit | None:
    return next((h for h in hits if supports(h, hop, snippet_chars)), None)


def _sentence_with(text: str, phrase: str) -> str:
    for sentence in re.split(r"(?<=[.!?])\s+", " ".join(text.split())):
        if mentions(sentence, phrase):
            return sentence
    return ""


def _step(thought: str, name: str, key: str, value: str) -> Completion:
    action = json.dumps({"function": name, "parameters": {key: value}}, ensure_ascii=False)
    return Completion(f"Thought: {thought}\nAction: {action}")


def _needs_evidence(hop: Hop) -> bool:
    """HotpotQA's opening search of the question itself has nothing to check."""
    return hop.title is not None or hop.answer is not None


class OracleWriter:
    """The generator slot of an agent the oracle drives: the oracle writes every step
    itself, so nothing may ever be generated."""

    name = "oracle"

    def generate(self, prompts: Sequence[Prompt], params: GenParams) -> list[Completion]:
        raise RuntimeError("the oracle writes its steps; the agent must not generate")


class _Run:
    """One question driven through the real agent by the oracle's plan."""

    def __init__(self, agent: TaoAgent, question: str):
        self.agent = agent
        self.state = agent.start(question)

    def act(self, completion: Completion) -> AgentState:
        before = self.state
        prompt = self.agent.pending_prompt(before)
        assert prompt is not None, "the oracle acts only on a running question"
        after = self.agent.advance(before, completion)
        self.state = self.agent.record_generation(after, before.purpose, prompt, completion)
        return self.state

    def can_search(self, query: str) -> bool:
        """A new query, with a step left for it and one for the finish."""
        fresh = query_key(query) not in self.state.seen_queries
        return fresh and len(self.state.steps) < self.agent.max_steps - 2

    def search(self, thought: str, query: str) -> tuple[Hit, ...]:
        return self.act(_step(thought, "search", "query", query)).steps[-1].hits


def _find(run: _Run, hop: Hop, number: int, said: str, snippet_chars: int) -> Hit | Outcome | None:
    """Search for ``hop`` (and repair once by title); its supporting hit, None when the
    hop needs none, or why the chain must be dropped."""
    query = hop.query if run.can_search(hop.query) else hop.title or ""
    if not query or not run.can_search(query):
        return Outcome("", False, "more searches than the step limit allows")
    lead = f"{said} " if said else ""
    if hop.answer is None and hop.title is not None:
        thought = f"{lead}Next I will look up {hop.title}."
    else:
        thought = f"{lead}{'First' if number == 0 else 'Next'} I need to know: {hop.question}"
    hits = run.search(thought, query)
    if not _needs_evidence(hop):
        return None
    found = _first_support(hits, hop, snippet_chars)
    repair = _repair_query(hop)
    if found is None and repair and run.can_search(repair):
        thought = f"These results do not answer it; I will search {hop.title} for it."
        found = _first_support(run.search(thought, repair), hop, snippet_chars)
    return found or Outcome("", False, "gold evidence not retrieved", {"hop": number + 1})


def _repair_query(hop: Hop) -> str:
    """The hop's question with the gold paragraph's title in front: the title finds the
    document and the question's words the chunk of it that answers."""
    if hop.title is None:
        return ""
    if hop.title.lower() in hop.query.lower():
        return hop.title
    return f"{hop.title} {hop.question}"


def oracle_chain(
    example: QAExample, agent: TaoAgent, *, snippet_chars: int
) -> ChainRecord | Outcome:
    """A Thought-Action-Observation chain for ``example`` over ``agent``'s retriever, or the
    reason it could not be built."""
    run = _Run(agent, example.question)
    cited: list[str] = []
    said = ""
    for number, hop in enumerate(plan_hops(example)):
        shown_before = _first_support(run.state.evidence, hop, snippet_chars)
        if shown_before is not None and _needs_evidence(hop):
            evidence: Hit | Outcome | None = shown_before
        else:
            evidence = _find(run, hop, number, said, snippet_chars)
        if isinstance(evidence, Outcome):
            return Outcome(example.id, False, evidence.reason, evidence.detail)
        if evidence is not None:
            cited.append(evidence.chunk_id)
            said = _summary(evidence, hop, snippet_chars)
    answer = example.answers[0]
    quoted = _quote(run.state.evidence, cited, answer, snippet_chars)
    said = quoted or said
    final = f"{said} So the answer is {answer}." if said else f"The answer is {answer}."
    ids = list(dict.fromkeys(cited))
    state = run.act(_step(final, "finish", "answer", f"{answer} {_brackets(ids)}".strip()))
    if state.outcome is None or state.outcome.status != "finished":
        return Outcome(example.id, False, "the agent did not accept the finish")
    last = state.generations[-1]
    return ChainRecord(
        id=example.id,
        dataset=example.dataset,
        source="oracle",
        question=example.question,
        golds=example.answers,
        answer=state.outcome.answer,
        f1=f1(state.outcome.answer, example.answers),
        messages=(*last.messages, Message("assistant", last.completion)),
        queries=tuple(s.argument for s in state.steps if s.action == "search"),
    )


def _summary(hit: Hit, hop: Hop, snippet_chars: int) -> str:
    """What the thought after a hop says it learned, in the document's words."""
    if hop.answer is not None and hop.answer.lower() not in _YES_NO:
        sentence = _sentence_with(shown(hit, snippet_chars), hop.answer)
        if sentence:
            return f"[{hit.chunk_id}] says: {sentence}"
        return f"{hop.answer}, according to [{hit.chunk_id}]."
    return f"[{hit.chunk_id}] is the article on {hit.title}."


def _quote(hits: Sequence[Hit], cited: Sequence[str], answer: str, snippet_chars: int) -> str:
    """The sentence of a cited hit that states ``answer``, when one does (HotpotQA's
    hops name paragraphs, not the facts in them)."""
    if answer.lower() in _YES_NO:
        return ""
    for hit in hits:
        if hit.chunk_id in cited and (
            sentence := _sentence_with(shown(hit, snippet_chars), answer)
        ):
            return f"[{hit.chunk_id}] says: {sentence}"
    return ""


def _brackets(ids: Sequence[str]) -> str:
    return " ".join(f"[{i}]" for i in ids)


def oracle_rare(
    example: QAExample,
    retriever: Retriever,
    *,
    top_k: int,
    snippet_chars: int,
) -> RareRecord | Outcome:
    """A RARE example: the question's own top-k documents (plus, where a gold paragraph is
    missing, the results of one search by its title) and reasoning that walks through the
    gold hops in the documents' words."""
    hits = list(retriever.search(example.question, top_k))
    steps: list[str] = []
    cited: list[str] = []
    for number, hop in enumerate(plan_hops(example)):
        if hop.title is None and hop.answer is None:
            continue  # HotpotQA's "search the question" hop: the documents are that search
        evidence = _first_support(hits, hop, snippet_chars)
        if evidence is None and hop.title is not None:
            extra = [h for h in retriever.search(hop.title, 2) if h.chunk_id not in _ids(hits)]
            hits += extra
            evidence = _first_support(extra, hop, snippet_chars)
        if evidence is None:
            return Outcome(example.id, False, "gold evidence not retrieved", {"hop": number + 1})
        cited.append(evidence.chunk_id)
        steps.append(_summary(evidence, hop, snippet_chars))
    answer = example.answers[0]
    if not steps:
        return Outcome(example.id, False, "no gold structure to reason from")
    if answer.lower() not in _YES_NO and not any(
        mentions(shown(h, snippet_chars), answer) for h in hits
    ):
        return Outcome(example.id, False, "the answer is in no document shown")
    system, user = as_messages(rare_prompt(example.question, hits, snippet_chars))
    reasoning = " ".join([*steps, f"So the answer is {answer}."])
    written = f"{answer} {_brackets(list(dict.fromkeys(cited)))}"
    return RareRecord(
        id=example.id,
        dataset=example.dataset,
        source="oracle",
        question=example.question,
        golds=example.answers,
        instruction=system.content,
        context=user.content,
        documents=tuple(Document(h.chunk_id, h.title, h.text) for h in hits),
        reasoning=reasoning,
        answer=written,
        f1=f1(answer, example.answers),
    )


def _ids(hits: Sequence[Hit]) -> set[str]:
    return {h.chunk_id for h in hits}
