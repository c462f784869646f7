"""The reasoner recipe's selection: each kind gets its share of the token budget, spread
over the datasets, and the selection is reproducible."""

from __future__ import annotations

from dataclasses import replace

from reasonrag.llm.base import Message
from reasonrag.train.recipe import Recipe, select
from reasonrag.train.records import ChainRecord, Document, RareRecord


def _chain(i: int, dataset: str) -> ChainRecord:
    return ChainRecord(f"{dataset}{i}", dataset, "oracle", "q", ("a",), "a", 1.0,
                       (Message("user", "q"), Message("assistant", "a")))  # fmt: skip


def _rare(i: int, dataset: str) -> RareRecord:
    return RareRecord(f"{dataset}{i}", dataset, "oracle", "q", ("a",), "s", "c",
                      (Document("d#0", "t", "x"),), "r", "a", 1.0)  # fmt: skip


def test_each_kind_gets_its_share_spread_over_datasets() -> None:
    records = [_chain(i, d) for d in ("big", "small") for i in range(50 if d == "big" else 5)]
    records += [_rare(i, "big") for i in range(50)]
    lengths = [100] * len(records)
    recipe = replace(Recipe(), token_budget=2000, rare_share=0.25)
    chosen = select(records, lengths, recipe)
    kinds = [records[i].kind for i in chosen]
    assert kinds.count("rare") == 5 and kinds.count("rearag") == 15
    small = [i for i in chosen if records[i].dataset == "small"]
    assert len(small) == 5, "round-robin: the small dataset is used up first"
    assert chosen == select(records, lengths, recipe), "seeded"
    assert chosen != select(records, lengths, replace(recipe, seed=1))


def test_records_longer_than_the_limit_are_never_chosen() -> None:
    records = [_chain(i, "d") for i in range(4)]
    lengths = [10, 10_000, 10, 10]
    chosen = select(records, lengths, replace(Recipe(), token_budget=10**6, rare_share=0.0))
    assert chosen == [0, 2, 3]
