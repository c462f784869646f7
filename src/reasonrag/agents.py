"""Every reasoning method from settings, the latent one included: the one place that knows
that ``clara`` swaps the text retriever and generator for latent ones (so neither the agent
code nor its callers carry special cases)."""

from __future__ import annotations

from reasonrag.config import Settings
from reasonrag.index.records import Retriever
from reasonrag.llm.base import Generator
from reasonrag.reason import Agent
from reasonrag.reason.agent import build_method


def make_agent(
    settings: Settings,
    *,
    retriever: Retriever | None = None,
    generator: Generator | None = None,
) -> Agent:
    """``Agent.from_config`` for text methods; for ``clara``, the same single pass over the
    index's compressed vectors, read by the CLaRa model of ``settings.clara.model``."""
    if settings.agent.method != "clara":
        return Agent.from_config(settings, retriever=retriever, generator=generator)
    from reasonrag.latent.method import clara_parts

    if retriever is None:
        from reasonrag.index import Index
        from reasonrag.index.store import check_index

        if settings.agent.index_dir is None:
            from reasonrag.errors import ConfigError

            raise ConfigError("agent.index_dir: method 'clara' needs an index to search")
        check_index(settings.agent.index_dir)
        retriever = Index.open(settings.agent.index_dir, settings)
    latent_retriever, latent_generator = clara_parts(settings, retriever)
    agent_cfg = settings.agent.model_copy(
        update={"top_k": settings.clara.top_k, "max_tokens": settings.clara.max_tokens}
    )
    return Agent(build_method(agent_cfg, latent_generator, latent_retriever))
