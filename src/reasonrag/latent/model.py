"""CLaRa on one backbone: a compressor that turns a document into a few continuous vectors,
a query reasoner that maps a question into the same space, and a generator that reads the
vectors in place of text. Three LoRA adapters share the backbone's weights.

A document is read with ``M`` memory slots appended (``M = doc_tokens / compression_rate``,
so 256 tokens become 16 vectors at 16x); the backbone's last-layer states at those slots
are the document's vectors. A question is read the same way by the query reasoner, with
its own memory slots, and scored against documents by the cosine of the flattened vectors.
The generator's prompt holds one slot block per selected document, filled with that
document's vectors instead of token embeddings.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from reasonrag.llm.base import DOCUMENT_SLOT

ADAPTERS = ("compressor", "query", "generator")
CONFIG_FILE = "clara.json"
MEMORY_FILE = "memory.safetensors"
"""Safetensors, not ``torch.save``: its bytes depend on the values alone, so the folder's
fingerprint names the vectors it makes."""
SLOT = DOCUMENT_SLOT
"""Where a document's vectors go in a rendered prompt."""

QA_INSTRUCTION = "Answer the question using the documents. Keep the answer short."
SCP_QA_INSTRUCTION = "Answer questions about the document, one per line."
SCP_PARAPHRASE_INSTRUCTION = "Restate the document in your own words."


@dataclass(frozen=True)
class ClaraConfig:
    base_model: str = "smollm2"
    compression_rate: int = 16
    doc_tokens: int = 256
    """Longest document read, in backbone tokens (longer ones are cut)."""
    query_tokens: int = 64
    lora_r: int = 16
    lora_alpha: int = 32
    mse_weight: float = 0.1
    """Weight of the pull of the mean memory state towards the mean document state."""

    @property
    def memory_slots(self) -> int:
        return max(1, math.ceil(self.doc_tokens / self.compression_rate))


@dataclass(frozen=True)
class Compressed:
    vectors: torch.Tensor
    """``[batch, memory_slots, hidden]``."""
    mse: torch.Tensor
    """Mean squared distance between the mean memory state and the mean document state."""


class ClaraModel(nn.Module):
    def __init__(self, backbone: Any, tokenizer: Any, config: ClaraConfig):
        super().__init__()
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.config = config
        hidden = self.embeddings.weight.shape[1]
        slots = config.memory_slots
        # Memory slots start near ordinary token embeddings so the first reads are sane.
        start = self.embeddings.weight.detach().mean(0, keepdim=True).repeat(slots, 1)
        noise = torch.randn(slots, hidden, generator=torch.Generator().manual_seed(0))
        scale = float(self.embeddings.weight.detach().std())
        self.memory = nn.Parameter(start + 0.1 * scale * noise)
        self.query_memory = nn.Parameter(self.memory.detach().clone())

    # --------------------------------------------------------------- building
    @classmethod
    def create(cls, config: ClaraConfig, cache_dir: Path) -> ClaraModel:
        """A fresh model: the base backbone with three new LoRA adapters."""
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from reasonrag.llm.local import hf_folder

        folder = hf_folder(config.base_model, cache_dir)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )
        backbone = get_peft_model(base, lora, adapter_name=ADAPTERS[0])
        for name in ADAPTERS[1:]:
            backbone.add_adapter(name, lora)
        return cls(backbone, _with_pad(tokenizer), config)

    @classmethod
    def load(cls, folder: Path, cache_dir: Path) -> ClaraModel:
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from reasonrag.llm.local import hf_folder

        config = ClaraConfig(**json.loads((folder / CONFIG_FILE).read_text()))
        base = AutoModelForCausalLM.from_pretrained(
            hf_folder(config.base_model, cache_dir), dtype=torch.float32
        )
        backbone = PeftModel.from_pretrained(
            base, str(folder / ADAPTERS[0]), adapter_name=ADAPTERS[0], is_trainable=True
        )
        for name in ADAPTERS[1:]:
            backbone.load_adapter(str(folder / name), adapter_name=name, is_trainable=True)
        model = cls(backbone, _with_pad(AutoTokenizer.from_pretrained(folder)), config)
        with torch.no_grad():
            model.memory.copy_(load_file(folder / "compressor" / MEMORY_FILE)["memory"])
            model.query_memory.copy_(load_file(folder / "query" / MEMORY_FILE)["memory"])
        return model

    def save(self, folder: Path) -> None:
        """Adapters (one subfolder each), memory slots, tokenizer and config; the base
        weights are not copied."""
        folder.mkdir(parents=True, exist_ok=True)
        self.backbone.save_pretrained(str(folder), selected_adapters=list(ADAPTERS))
        # Each reader's memory slots sit with its adapter: the compressor folder alone then
        # identifies the vectors it makes (joint training leaves it untouched).
        save_file({"memory": self.memory.detach()}, folder / "compressor" / MEMORY_FILE)
        save_file({"memory": self.query_memory.detach().clone()}, folder / "query" / MEMORY_FILE)
        self.tokenizer.save_pretrained(folder)
        (folder / CONFIG_FILE).write_text(json.dumps(asdict(self.config), indent=2) + "\n")

    def init_query_from_compressor(self) -> None:
        """Start the query reasoner where the compressor is (the published recipe): the
        question is then read into the documents' space from the first step."""
        with torch.no_grad():
            parameters = dict(self.backbone.named_parameters())
            for name, parameter in parameters.items():
                if ".query." in name:
                    parameter.copy_(parameters[name.replace(".query.", ".compressor.")])
            self.query_memory.copy_(self.memory)

    # ----------------------------------------------------------------- helpers
    @property
    def embeddings(self) -> nn.Embedding:
        embeddings: nn.Embedding = self.backbone.get_input_embeddings()
        return embeddings

    @property
    def hidden_size(self) -> int:
        return int(self.embeddings.weight.shape[1])

    def use(self, adapter: str, *, train: Sequence[str] = ()) -> None:
        """Run ``adapter``; the adapters in ``train`` (and only they) receive gradients.

        PEFT's own switching would freeze every adapter but the active one, while a joint
        step needs the query reasoner's gradients after the generator has run."""
        self._activate(adapter)
        for name, parameter in self.backbone.named_parameters():
            parameter.requires_grad = any(f".{a}." in name for a in train)

    def _activate(self, adapter: str) -> None:
        """Run ``adapter`` next, keeping every parameter's trainable flag: PEFT's switch
        freezes the adapter it leaves, which would cut the gradient of a compressor (or
        query reasoner) whose output the generator reads after the switch."""
        flags = [(p, p.requires_grad) for p in self.backbone.parameters()]
        self.backbone.set_adapter(adapter)
        for parameter, flag in flags:
            parameter.requires_grad = flag

    def _tokens(self, texts: Sequence[str], limit: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded ids and mask, each text cut to ``limit`` tokens."""
        rows = [self.tokenizer(t, add_special_tokens=False)["input_ids"][:limit] for t in texts]
        width = max((len(r) for r in rows), default=0)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], dtype=torch.long)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        return ids.reshape(len(rows), width), mask.reshape(len(rows), width)

    def _read(
        self, texts: Sequence[str], memory: torch.Tensor, limit: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Last-layer states of ``texts`` with the memory slots appended: (slot states,
        text states, text mask)."""
        ids, mask = self._tokens(texts, limit)
        device = self.memory.device
        ids, mask = ids.to(device), mask.to(device)
        slots = memory.unsqueeze(0).expand(len(texts), -1, -1)
        embeds = torch.cat([self.embeddings(ids), slots], dim=1)
        full_mask = torch.cat([mask, torch.ones(len(texts), len(memory), device=device)], 1)
        positions = (full_mask.cumsum(-1) - 1).clamp(min=0).long()
        out = self.backbone(
            inputs_embeds=embeds,
            attention_mask=full_mask,
            position_ids=positions,
            output_hidden_states=True,
        )
        states = out.hidden_states[-1]
        return states[:, -len(memory) :], states[:, : ids.shape[1]], mask

    # -------------------------------------------------------------- the three
    def compress(self, documents: Sequence[str]) -> Compressed:
        """Each document's memory vectors (compressor adapter)."""
        self._activate("compressor")
        slots, text, mask = self._read(documents, self.memory, self.config.doc_tokens)
        weights = mask.unsqueeze(-1).to(text.dtype)
        text_mean = (text * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        mse = F.mse_loss(slots.mean(1), text_mean)
        return Compressed(slots, mse)

    def encode_queries(self, questions: Sequence[str]) -> torch.Tensor:
        """``[batch, slots, hidden]``: questions in the documents' space (query adapter)."""
        self._activate("query")
        slots, _, _ = self._read(questions, self.query_memory, self.config.query_tokens)
        return slots

    @staticmethod
    def scores(queries: torch.Tensor, documents: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of flattened vectors: ``[queries, documents]``."""
        q = F.normalize(queries.flatten(1), dim=-1)
        d = F.normalize(documents.flatten(1), dim=-1)
        return q @ d.T

    # -------------------------------------------------------------- generator
    def _prompt_pieces(self, instruction: str, user: str) -> list[str]:
        turns = [{"role": "system", "content": instruction}, {"role": "user", "content": user}]
        rendered: str = self.tokenizer.apply_chat_template(
            turns, add_generation_prompt=True, tokenize=False
        )
        return rendered.split(SLOT)

    def prompt_embeddings(
        self, instruction: str, user: str, documents: torch.Tensor
    ) -> tuple[torch.Tensor, int]:
        """Embeddings of a prompt whose ``SLOT`` marks hold ``documents`` (``[k, slots,
        hidden]``, in order), and the number of input positions it uses."""
        pieces = self._prompt_pieces(instruction, user)
        if len(pieces) != len(documents) + 1:
            raise ValueError(
                f"{len(pieces) - 1} slots in the prompt for {len(documents)} documents"
            )
        parts = []
        for i, piece in enumerate(pieces):
            ids = self.tokenizer(piece, add_special_tokens=False)["input_ids"]
            tensor = torch.tensor(ids, dtype=torch.long, device=self.memory.device)
            parts.append(self.embeddings(tensor))
            if i < len(documents):
                parts.append(documents[i])
        embeds = torch.cat(parts, dim=0)
        return embeds, int(embeds.shape[0])

    def answer_loss(
        self,
        prompts: Sequence[tuple[str, str]],
        documents: Sequence[torch.Tensor],
        answers: Sequence[str],
    ) -> torch.Tensor:
        """Mean next-token loss of each answer (and its end-of-turn token) after its prompt,
        the generator adapter reading the documents' vectors."""
        self._activate("generator")
        end = self.tokenizer.eos_token or ""
        rows, labels = [], []
        for (instruction, user), docs, answer in zip(prompts, documents, answers, strict=True):
            prompt, _ = self.prompt_embeddings(instruction, user, docs)
            ids = self.tokenizer(answer + end, add_special_tokens=False)["input_ids"]
            target = torch.tensor(ids, dtype=torch.long, device=prompt.device)
            rows.append(torch.cat([prompt, self.embeddings(target)], dim=0))
            labels.append(
                torch.cat([torch.full((len(prompt),), -100, device=prompt.device), target])
            )
        width = max(len(r) for r in rows)
        hidden = rows[0].shape[1]
        embeds = torch.stack([F.pad(r, (0, 0, 0, width - len(r))) for r in rows])
        mask = torch.stack(
            [torch.cat([torch.ones(len(r)), torch.zeros(width - len(r))]) for r in rows]
        ).to(embeds.device)
        label = torch.stack([F.pad(lab, (0, width - len(lab)), value=-100) for lab in labels])
        assert embeds.shape[-1] == hidden
        out = self.backbone(inputs_embeds=embeds, attention_mask=mask, labels=label)
        loss: torch.Tensor = out.loss
        return loss

    @torch.no_grad()
    def generate(
        self,
        prompts: Sequence[tuple[str, str]],
        documents: Sequence[torch.Tensor],
        *,
        max_new_tokens: int = 32,
    ) -> list[tuple[str, int]]:
        """Greedy answers, each with the input positions its prompt used."""
        self._activate("generator")
        built = [
            self.prompt_embeddings(i, u, d) for (i, u), d in zip(prompts, documents, strict=True)
        ]
        width = max(len(e) for e, _ in built)
        embeds = torch.stack([F.pad(e, (0, 0, width - len(e), 0)) for e, _ in built])
        mask = (
            torch.stack(
                [torch.cat([torch.zeros(width - len(e)), torch.ones(len(e))]) for e, _ in built]
            )
            .long()
            .to(embeds.device)
        )
        out = self.backbone.generate(
            inputs_embeds=embeds,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        texts = self.tokenizer.batch_decode(out, skip_special_tokens=True)
        return [(t.strip(), n) for t, (_, n) in zip(texts, built, strict=True)]

    # ----------------------------------------------------------------- losses
    def scp_loss(
        self, texts: Sequence[str], qa: Sequence[str], paraphrases: Sequence[str]
    ) -> torch.Tensor:
        """Salient compressor pretraining: the generator, reading only each document's
        vectors, answers its questions and restates it; plus the pull of the memory states
        towards the document's own states."""
        compressed = self.compress(texts)
        documents = list(compressed.vectors.unsqueeze(1))
        qa_loss = self.answer_loss([(SCP_QA_INSTRUCTION, SLOT)] * len(texts), documents, qa)
        restate = [(SCP_PARAPHRASE_INSTRUCTION, SLOT)] * len(texts)
        paraphrase_loss = self.answer_loss(restate, documents, paraphrases)
        return qa_loss + paraphrase_loss + self.config.mse_weight * compressed.mse

    def joint_loss(
        self,
        questions: Sequence[str],
        candidates: torch.Tensor,
        labels: Sequence[Sequence[str]],
        answers: Sequence[str],
        *,
        top_k: int,
        temperature: float,
    ) -> torch.Tensor:
        """The answer's next-token loss when the generator reads the top-k of ``candidates``
        (``[batch, n, slots, hidden]``, frozen) as chosen by the query reasoner; the
        straight-through top-k carries the loss back to the query reasoner's scores."""
        from reasonrag.latent.topk import straight_through_topk

        queries = F.normalize(self.encode_queries(questions).flatten(1), dim=-1)
        documents = F.normalize(candidates.flatten(2), dim=-1)
        scores = torch.einsum("bd,bnd->bn", queries, documents)
        weights, chosen = straight_through_topk(scores, top_k, temperature)
        selected = torch.einsum("bkn,bnsh->bksh", weights, candidates)
        prompts = [
            latent_user_prompt(q, [names[i] for i in row])
            for q, names, row in zip(questions, labels, chosen.tolist(), strict=True)
        ]
        return self.answer_loss(prompts, list(selected), answers)

    def forward(self, task: str, **batch: Any) -> torch.Tensor:
        """The loss of one batch of ``task`` ("scp" or "joint"): calling the model (rather
        than its methods) keeps distributed training's gradient synchronisation."""
        if task == "scp":
            return self.scp_loss(**batch)
        if task == "joint":
            return self.joint_loss(**batch)
        raise ValueError(f"unknown CLaRa task {task!r}")

    # -------------------------------------------------------------- logit lens
    @torch.no_grad()
    def nearest_tokens(self, vectors: torch.Tensor, top: int = 5) -> list[list[str]]:
        """For each vector (``[n, hidden]``), the vocabulary tokens whose embeddings are
        closest by cosine: what the vector "says" in words."""
        table = F.normalize(self.embeddings.weight, dim=-1)
        best = (F.normalize(vectors, dim=-1) @ table.T).topk(top, dim=-1).indices
        return [[self.tokenizer.decode([int(i)]) for i in row] for row in best]


def latent_user_prompt(question: str, labels: Sequence[str]) -> tuple[str, str]:
    """(instruction, user text) of the answering prompt, one slot per document; the same
    text as ``reason.prompts.latent_prompt`` renders."""
    from reasonrag.index.records import Hit
    from reasonrag.llm.base import as_messages
    from reasonrag.reason.prompts import latent_prompt

    hits = [Hit(label, "", "", "", "", 0.0, i) for i, label in enumerate(labels)]
    system, user = as_messages(latent_prompt(question, hits))
    return system.content, user.content


def _with_pad(tokenizer: Any) -> Any:
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
