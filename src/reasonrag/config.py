"""One typed configuration, read from defaults < TOML file < environment < CLI flags.

Environment variables use the ``REASONRAG_`` prefix and ``__`` between levels, e.g.
``REASONRAG_LLM__BACKEND=openai`` or ``REASONRAG_RETRIEVAL__RERANK=llm``.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from platformdirs import user_cache_dir
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from reasonrag.errors import ConfigError

LLMBackend = Literal["auto", "llamacpp", "transformers", "local", "openai", "anthropic"]
"""``auto`` runs GGUF files (the embedded model included) with llama.cpp and Hugging Face
folders with transformers; ``local`` is the old name of ``transformers``."""
ContextMode = Literal["llm", "title", "structure", "none"]
SparseTokenizer = Literal["auto", "words", "identifiers"]
Fusion = Literal["rrf", "weighted", "dense", "sparse"]
Rerank = Literal["none", "llm", "cross-encoder"]
MethodName = Literal["tao", "rag", "rare", "closed", "clara"]
ActionName = Literal["search", "finish", "verify", "calculate", "rethink"]

_TOML_FILE: ContextVar[Path | None] = ContextVar("reasonrag_toml_file", default=None)

CONFIG_ENV = "REASONRAG_CONFIG"
"""Path of a TOML config file, when none is passed explicitly."""


class _Section(BaseModel):
    # Attribute docstrings become field descriptions: `config init` writes them as comments.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class LLMConfig(_Section):
    backend: LLMBackend = "auto"
    """auto (llamacpp for .gguf files and smollm2, transformers for Hugging Face folders),
    llamacpp, transformers (also needed for LoRA adapters and training; "local" is its old
    name), openai or anthropic."""
    model: str = "smollm2"
    """``smollm2`` is the embedded SmolLM2-135M-Instruct GGUF; otherwise a local HF folder,
    a ``.gguf`` path, or the model name a remote server knows."""
    base_url: str | None = None
    """OpenAI-compatible server root, e.g. ``http://localhost:8000/v1`` for vLLM."""
    api_key_env: str | None = None
    """Environment variable holding the API key (default: OPENAI_API_KEY / ANTHROPIC_API_KEY)."""
    device: str = "cpu"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    batch_size: int = Field(8, ge=1)
    """Prompts per forward batch for the transformers backend."""
    threads: int = Field(2, ge=1)
    """CPU threads of the llamacpp backend: on two idle cores 2 threads generate 1.6x as
    fast as 1 (docs/benchmarks.md); set 1 when other jobs share the cores."""
    n_ctx: int = Field(4096, ge=64)
    """Context of each prompt (prompt plus completion) in the llamacpp backend; a longer
    prompt raises an error. 4096 holds the agent's longest prompts at the default 8 steps."""
    n_parallel: int = Field(8, ge=1)
    """Prompts the llamacpp backend runs at once, each in its own slot of n_ctx tokens;
    the evaluation runner sends batches of 8."""
    concurrency: int = Field(8, ge=1)
    """Requests in flight for remote backends."""
    timeout_s: float = Field(120.0, gt=0)
    max_retries: int = Field(4, ge=0)
    cache: bool = True
    """Keep every response in the SQLite cache so re-runs and resumed jobs cost nothing."""

    @field_validator("backend")
    @classmethod
    def _old_backend_name(cls, value: str) -> str:
        # Config files written before the llama.cpp backend name transformers "local".
        return "transformers" if value == "local" else value


class EmbedConfig(_Section):
    backend: Literal["sentence-transformers", "openai"] = "sentence-transformers"
    model: str = "all-MiniLM-L6-v2"
    """``all-MiniLM-L6-v2`` is the embedded model; otherwise a sentence-transformers folder
    or the model name an OpenAI-compatible embeddings endpoint knows."""
    base_url: str | None = None
    api_key_env: str | None = None
    batch_size: int = Field(64, ge=1)
    device: str = "cpu"


class ChunkConfig(_Section):
    max_tokens: int = Field(200, ge=16)
    """Largest chunk, in tokens of the embedder's tokenizer."""
    overlap_tokens: int = Field(32, ge=0)
    """Words repeated from the previous chunk where a paragraph had to be split."""

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkConfig:
        if self.overlap_tokens >= self.max_tokens:
            raise ValueError(
                f"overlap_tokens ({self.overlap_tokens}) must be smaller than "
                f"max_tokens ({self.max_tokens})"
            )
        return self


class ContextConfig(_Section):
    mode: ContextMode = "title"
    """title (document title and heading path), structure (for code: file path, enclosing
    classes and functions, module docstring; else as title), llm (written by the context
    LLM) or none."""
    llm: LLMConfig | None = None
    """Generator that writes contexts; defaults to the answering ``llm``."""
    max_tokens: int = Field(96, ge=8)
    window_tokens: int = Field(1200, ge=64)
    """Documents longer than this are shown to the contextualizer as a window around the chunk."""
    batch_size: int = Field(16, ge=1)
    """Chunks per generate call; the cache is written after each call, so a killed run
    loses at most one batch."""


class RetrievalConfig(_Section):
    dense_k: int = Field(50, ge=1)
    sparse_k: int = Field(50, ge=1)
    candidates: int | None = Field(None, ge=1)
    """Depth of each retriever's candidate pool before fusion, replacing dense_k and
    sparse_k when set (Anthropic's contextual retrieval cookbook uses 150). A deeper pool
    lets a chunk that only one retriever ranks well still reach the fused list."""
    tokenizer: SparseTokenizer = "auto"
    """BM25 tokens: words (stemmed words), identifiers (words plus the parts of
    snake_case, camelCase, dotted.paths and kebab-case identifiers), or auto (identifiers
    when most indexed documents are code). Fixed when the index is built: opening it with
    another explicit value is an error; auto uses the index's."""
    fusion: Fusion = "rrf"
    rrf_k: int = Field(60, ge=1)
    dense_weight: float = Field(0.5, ge=0.0, le=1.0)
    """Weight of the dense scores in weighted fusion; sparse gets ``1 - dense_weight``."""
    rerank: Rerank = "none"
    rerank_top: int = Field(20, ge=1)
    cross_encoder_model: str | None = None
    search_threads: int = Field(1, ge=1)
    """OpenMP threads faiss uses per search. One is fastest for the few queries of an
    interactive or agent search (measured 1.4 ms against 15 ms with two at 10k chunks on
    2 cores); raise it for large query batches."""
    hnsw_threshold: int = Field(50_000, ge=1)
    """Exact inner-product search below this many chunks, HNSW at or above it."""
    store: Literal["local", "qdrant"] = "local"
    """Where the dense and BM25 stores of a newly written index generation live: files in
    the generation folder (faiss, bm25s), or a Qdrant collection (the ``qdrant`` extra).
    Opening an index uses whichever its current generation was written with."""
    qdrant_url: str | None = None
    """A Qdrant server or cluster, e.g. ``http://localhost:6333``."""
    qdrant_path: Path | None = None
    """A folder for Qdrant's embedded local mode instead of a server (one process at a time)."""
    qdrant_api_key_env: str | None = None
    """Environment variable holding the cluster's API key (Qdrant Cloud)."""
    qdrant_collection: str = Field("reasonrag", pattern=r"^[A-Za-z0-9_-]+$")
    """Prefix of this index's collections, one per generation: give each index its own."""

    @model_validator(mode="after")
    def _one_qdrant(self) -> RetrievalConfig:
        if self.store == "qdrant" and (self.qdrant_url is None) == (self.qdrant_path is None):
            raise ValueError(
                "retrieval.store = 'qdrant' needs exactly one of retrieval.qdrant_url "
                "(a server) or retrieval.qdrant_path (embedded local mode)"
            )
        return self


class AgentConfig(_Section):
    method: MethodName = "tao"
    max_steps: int = Field(8, ge=1)
    """Tmax: Thought-Action-Observation steps before the agent is asked for a final answer."""
    top_k: int = Field(5, ge=1)
    """Snippets shown per search observation (and retrieved by single-pass baselines)."""
    actions: tuple[ActionName, ...] = ("search", "finish")
    """Actions the TAO agent may use: any of search, finish, verify, calculate, rethink."""
    max_tokens: int = Field(192, ge=8)
    """Tokens per generated step."""
    snippet_chars: int = Field(600, ge=50)
    """Characters of each retrieved chunk shown to the model."""
    worked_example: bool = True
    """Show the TAO agent a worked example in its instructions. Untrained models need it;
    a model trained on reasoning chains does not, and each step's prompt is ~300 tokens
    shorter without it."""
    index_dir: Path | None = None
    """Index the agent searches when none is passed to ``Agent.from_config``."""


class ClaraConfig(_Section):
    model: Path | None = None
    """A folder written by `reasonrag clara pretrain` or `clara train`; the index must have
    been encoded with it (`reasonrag clara encode`)."""
    top_k: int = Field(3, ge=1)
    """Documents the generator reads, as vectors."""
    max_tokens: int = Field(32, ge=1)
    """Tokens per generated answer."""


class ServerConfig(_Section):
    api_keys: tuple[SecretStr, ...] = ()
    """Bearer keys that every /v1 route requires (none: the API is open, and the server
    only binds to loopback). From the environment as JSON:
    ``REASONRAG_SERVER__API_KEYS='["key"]'``. Never printed."""
    max_upload_mb: float = Field(20.0, gt=0)
    """Largest upload request; a bigger one is refused with HTTP 413."""
    max_queue: int = Field(4, ge=1)
    """Questions answered or waiting at once; one more is refused with HTTP 503."""
    request_timeout_s: float = Field(300.0, gt=0)
    """A question not answered by then gets HTTP 504."""
    cors_origins: tuple[str, ...] = ()
    """Browser origins allowed to call the API from other sites (none: same origin only)."""


def default_cache_dir() -> Path:
    return Path(user_cache_dir("reasonrag"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="REASONRAG_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )

    llm: LLMConfig = LLMConfig()
    embed: EmbedConfig = EmbedConfig()
    chunk: ChunkConfig = ChunkConfig()
    context: ContextConfig = ContextConfig()
    retrieval: RetrievalConfig = RetrievalConfig()
    agent: AgentConfig = AgentConfig()
    clara: ClaraConfig = ClaraConfig()
    server: ServerConfig = ServerConfig()
    cache_dir: Path = Field(default_factory=default_cache_dir)
    """Response cache, embedding cache and converted model copies."""

    @property
    def context_llm(self) -> LLMConfig:
        return self.context.llm or self.llm

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_TOML_FILE.get())
        return (init_settings, env_settings, toml)


def load_settings(path: Path | str | None = None, **overrides: Any) -> Settings:
    """Build the settings from a TOML file (``path`` or ``$REASONRAG_CONFIG``), the
    environment and ``overrides`` (nested dicts, e.g. ``llm={"backend": "openai"}``).

    Overrides win over the environment, which wins over the file.
    """
    from pydantic import ValidationError

    chosen = path if path is not None else os.environ.get(CONFIG_ENV)
    toml_path = Path(chosen) if chosen else None
    if toml_path is not None and not toml_path.is_file():
        raise ConfigError(f"config file not found: {toml_path}")

    # The file reaches the sources through a context variable rather than a subclass made
    # here, so the result is a plain (picklable) Settings.
    token = _TOML_FILE.set(toml_path)
    try:
        return Settings(**drop_unset(overrides))
    except ValidationError as exc:
        where = f" in {toml_path}" if toml_path else ""
        fields = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration{where}: {fields}") from exc
    except ValueError as exc:  # malformed TOML
        raise ConfigError(f"cannot read config {toml_path}: {exc}") from exc
    finally:
        _TOML_FILE.reset(token)


def drop_unset(values: dict[str, Any]) -> dict[str, Any]:
    """CLI flags left unset arrive as None and must not mask the file or environment."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            nested = drop_unset(value)
            if nested:
                out[key] = nested
        elif value is not None:
            out[key] = value
    return out
