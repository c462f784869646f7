"""The lenient step and answer parsers: every tolerance case and every refusal."""

from __future__ import annotations

import pytest

from reasonrag.reason.actions import parse_verdict
from reasonrag.reason.parse import ParsedAction, ParseFailure, parse_answer, parse_step

ALL = ("search", "finish", "verify", "calculate", "rethink")


def parsed(text: str, allowed: tuple[str, ...] = ALL) -> ParsedAction:
    result = parse_step(text, allowed)
    assert isinstance(result, ParsedAction), result
    return result


def test_well_formed_step() -> None:
    step = parsed(
        "Thought: I need the birthplace.\n"
        'Action: {"function": "search", "parameters": {"query": "Corvin Haldane"}}'
    )
    assert step == ParsedAction("I need the birthplace.", "search", "Corvin Haldane")


@pytest.mark.parametrize(
    ("text", "name", "argument"),
    [
        # code fence around the JSON
        (
            'Thought: x\nAction:\n```json\n{"function": "search", '
            '"parameters": {"query": "Pellmoor"}}\n```',
            "search",
            "Pellmoor",
        ),
        # trailing text after the object
        (
            'Action: {"function": "finish", "parameters": {"answer": "Aske"}} I am done. {}',
            "finish",
            "Aske",
        ),
        # single quotes
        (
            "Action: {'function': 'search', 'parameters': {'query': \"Bob's mill\"}}",
            "search",
            "Bob's mill",
        ),
        # missing closing brace
        ('Action: {"function": "search", "parameters": {"query": "Aske"}', "search", "Aske"),
        # missing brace and trailing text
        (
            'Action: {"function": "finish", "parameters": {"answer": "Aske"}\nI don\'t know more',
            "finish",
            "Aske",
        ),
        # truncated inside the string (max_tokens reached)
        (
            'Action: {"function": "search", "parameters": {"query": "Orlen Bri',
            "search",
            "Orlen Bri",
        ),
        # function-call form
        (
            'Thought: t\nAction: search("Treaty of Vantry") and then more',
            "search",
            "Treaty of Vantry",
        ),
        ("Action: finish(answer='1874')", "finish", "1874"),
        # flat parameters, and the action name inferred from the parameter
        (
            'Action: {"function": "verify", "claim": "Pellmoor is on the Aske"}',
            "verify",
            "Pellmoor is on the Aske",
        ),
        ('Action: {"parameters": {"expression": "2 + 2"}}', "calculate", "2 + 2"),
        # OpenAI-style name/arguments with JSON-encoded arguments
        ('{"name": "search", "arguments": "{\\"query\\": \\"Dunmere\\"}"}', "search", "Dunmere"),
        # numbers as answers
        ('Action: {"function": "finish", "parameters": {"answer": 1874}}', "finish", "1874"),
        # no Action mark, no Thought mark
        (
            'I should look. {"function": "search", "parameters": {"query": "Aske"}}',
            "search",
            "Aske",
        ),
        # rethink takes nothing
        ('Action: {"function": "rethink", "parameters": {}}', "rethink", ""),
        ("Action: rethink()", "rethink", ""),
    ],
)
def test_tolerated_forms(text: str, name: str, argument: str) -> None:
    step = parsed(text)
    assert (step.name, step.argument) == (name, argument)


def test_thought_is_text_before_the_action() -> None:
    assert parsed('I should look. {"query": "Aske"}').thought == "I should look."
    assert parsed('Thought:  two\n lines\nAction: search("x")').thought == "two lines"


def test_finish_citations_list() -> None:
    step = parsed(
        'Action: {"function": "finish", "parameters": {"answer": "Aske", '
        '"citations": ["pellmoor#0", "[haldane#0]"]}}'
    )
    assert step.citations == ("pellmoor#0", "haldane#0")


@pytest.mark.parametrize(
    ("text", "allowed", "reason"),
    [
        ("I think the answer is Aske.", ALL, "no Action"),
        ("Action: {not json at all", ALL, "no Action"),
        ('Action: {"function": "browse", "parameters": {"url": "x"}}', ALL, "unknown action"),
        (
            'Action: {"function": "verify", "parameters": {"claim": "x"}}',
            ("search", "finish"),
            "not enabled",
        ),
        ('Action: {"function": "search", "parameters": {"query": "  "}}', ALL, "non-empty"),
        ('Action: {"function": "finish", "parameters": {}}', ALL, "non-empty 'answer'"),
        ("Action: search()", ALL, "non-empty 'query'"),
    ],
)
def test_refusals_say_why(text: str, allowed: tuple[str, ...], reason: str) -> None:
    result = parse_step(text, allowed)
    assert isinstance(result, ParseFailure)
    assert reason in result.reason


@pytest.mark.parametrize(
    ("text", "thought", "answer"),
    [
        (
            "<think>Born in Pellmoor.</think><answer>Pellmoor [haldane#0]</answer>",
            "Born in Pellmoor.",
            "Pellmoor [haldane#0]",
        ),
        ("<think>a</think>\n<answer>Aske", "a", "Aske"),  # unclosed answer tag
        ("<think>a\n<answer>Aske</answer>", "a", "Aske"),  # unclosed think tag
        (
            "<think>still reasoning when the budget ran out",
            "still reasoning when the budget ran out",
            "",
        ),
        ("<think>a</think>\nAske", "a", "Aske"),
        ("Answer: the Aske [pellmoor#0]\nExplanation: ...", "", "the Aske [pellmoor#0]"),
        ("  \n'Pellmoor'\nbecause ...", "", "Pellmoor"),
        (
            'Thought: done\nAction: {"function": "finish", "parameters": {"answer": "Aske", '
            '"citations": ["pellmoor#0"]}}',
            "done",
            "Aske [pellmoor#0]",
        ),
        ("", "", ""),
    ],
)
def test_parse_answer(text: str, thought: str, answer: str) -> None:
    assert parse_answer(text) == (thought, answer)


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("SUPPORTED. The Gazette says so.", "SUPPORTED"),
        ("NOT SUPPORTED: nothing about it", "NOT ENOUGH INFO"),
        ("Not enough info; the documents are silent.", "NOT ENOUGH INFO"),
        ("REFUTED - the documents do not support it", "REFUTED"),
        ("The claim is false.", "REFUTED"),
        ("hmm", "NOT ENOUGH INFO"),
    ],
)
def test_parse_verdict(text: str, verdict: str) -> None:
    assert parse_verdict(text)[0] == verdict


def test_verdict_reason_follows_the_label() -> None:
    assert parse_verdict("NOT ENOUGH INFO - the documents are silent") == (
        "NOT ENOUGH INFO",
        "the documents are silent",
    )
