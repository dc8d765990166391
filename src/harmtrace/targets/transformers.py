"""The ``transformers`` target: a model under study run in-process on CPU with transformers.

Method.

1. The model is a registered name (``models.yaml``; its folder is made by
   ``harmtrace prepare-model NAME`` and given as ``model_dir``) or the path of a local
   Hugging Face folder. Its identity is the weights sha256 and chat template sha256 of the
   folder's manifest (computed from the files for a folder without one), never its path.
2. Each conversation goes through the model's chat template (with the generation prompt)
   and is tokenised without extra special tokens. A prompt longer than
   ``max_prompt_tokens`` (default: context length minus ``max_tokens``) stops the run with
   an error naming the row, or with ``truncation: left`` keeps its last tokens (the end of
   the prompt and the generation prompt) and the answer records ``prompt_truncated``.
3. Batches are formed from the whole list: indices sorted by (token length, index), cut
   every ``batch_size``. Composition so never depends on which answers ``done`` already
   holds: a batch whose members are all done is skipped, any other is generated whole
   (its done members' answers are thrown away), because padding and batch shape change
   the float32 arithmetic by a few ulps, which can flip a near-tie.
4. Left padding; greedy decoding when ``temperature`` is 0, else sampling with the torch
   RNG seeded per batch from ``seed`` (null means 0) and the batch's position, so a batch's
   samples depend on nothing outside it. ``finish_reason`` is ``stop`` when an end token
   came, ``length`` when ``max_tokens`` ran out first; the text is the tokens before the
   end token, decoded without special tokens.

Why. In-process generation needs no server, is deterministic on one machine (two fresh
instances give byte-identical texts) and is fast enough on 2 cores for a 135M model;
sorting by length keeps padding, hence wasted compute, small.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from harmtrace.errors import HarmtraceError
from harmtrace.llm.settings import GenerationSettings
from harmtrace.targets.base import Answer, ConversationError, Message, Target, TargetSpec
from harmtrace.targets.registry import register_target
from harmtrace.targets.weights import (
    is_registered_model,
    load_models,
    local_model_manifest,
    read_manifest,
)

log = logging.getLogger(__name__)

DEFAULT_MODELS_DIR = Path("results/models/targets")
"""Where ``harmtrace prepare-model NAME`` writes by default (used when no model_dir)."""
DTYPE = "float32"


class TransformersTargetError(HarmtraceError):
    """The model folder is missing or unusable, or a conversation cannot be put to it."""


def _default_generation() -> GenerationSettings:
    return GenerationSettings(temperature=0.0, max_tokens=64)


class TransformersSpec(TargetSpec):
    """``targets.<name>`` of a ``backend: transformers`` target."""

    model: str = Field(
        ...,
        min_length=1,
        description="A registered model name (models.yaml) or the path of a local "
        "Hugging Face folder.",
    )
    model_dir: str | None = Field(
        None,
        description="Folder made by `harmtrace prepare-model` for a registered model; null "
        "uses results/models/targets/<model>. Ignored for a folder path. Answers are tied "
        "to the folder's weights sha256, not to this path.",
        json_schema_extra={"affects_answers": False},
    )
    generation: GenerationSettings = Field(
        default_factory=_default_generation,
        description="Sampling: temperature 0 is greedy; seed null means 0 for this backend.",
    )
    batch_size: int = Field(
        32,
        ge=1,
        le=4096,
        description="Prompts per forward pass. It can change answers: batch shape and "
        "padding move float32 results by a few ulps, which can flip a near-tie.",
    )
    threads: int = Field(
        1,
        ge=1,
        le=512,
        description="torch CPU threads (torch.set_num_threads), and the respond job's "
        "threads. One per job is the most throughput per core on CPU (two one-thread jobs "
        "158 + 158 tok/s against one two-thread job 250). Kept among the settings that "
        "affect answers: 1-4 threads gave bit-identical logits on torch 2.13 CPU, but "
        "torch does not promise that kernels keep their reduction order.",
    )
    max_prompt_tokens: int | None = Field(
        None, ge=1, description="Longest prompt in tokens; null = context length - max_tokens."
    )
    truncation: Literal["error", "left"] = Field(
        "error",
        description="A longer prompt: error (stop, naming the row) or left (keep its last "
        "tokens and record prompt_truncated on the answer).",
    )

    def prepared_model(self) -> str | None:
        return self.model if is_registered_model(self.model) else None

    def cpu_threads(self) -> int:
        return self.threads


def sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices sorted by (length, index), cut every ``batch_size``: the same for any ``done``."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    return [order[k : k + batch_size] for k in range(0, len(order), batch_size)]


def check_conversation(index: int, conversation: Sequence[Message]) -> None:
    """Refuse what no model should be asked: no messages, an empty prompt, invalid text."""
    if not conversation:
        raise ConversationError(index, "no messages")
    for turn, message in enumerate(conversation):
        for key in ("role", "content"):
            value = message.get(key)
            if not isinstance(value, str):
                raise ConversationError(
                    index, f"message {turn}: {key} must be text, got {type(value).__name__}"
                )
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise ConversationError(
                    index,
                    f"message {turn}: {key} is not valid Unicode (position {exc.start}); "
                    "fix the source text",
                ) from exc
    if not conversation[-1]["content"].strip():
        raise ConversationError(index, "the prompt is empty")


def fit_prompt(index: int, ids: list[int], limit: int, truncation: str) -> tuple[list[int], bool]:
    """``ids`` within ``limit`` tokens: unchanged, left-truncated, or an error naming the row."""
    if len(ids) <= limit:
        return ids, False
    if truncation == "left":
        return ids[-limit:], True
    raise ConversationError(
        index,
        f"the prompt has {len(ids)} tokens, more than max_prompt_tokens = {limit}; shorten "
        "it, raise max_prompt_tokens, or set truncation: left",
    )


def split_completion(
    new_tokens: Sequence[int], eos_ids: Collection[int], max_tokens: int
) -> tuple[list[int], str, int]:
    """(tokens before the end token, finish reason, completion token count incl. the end)."""
    for pos, tok in enumerate(new_tokens):
        if tok in eos_ids:
            return list(new_tokens[:pos]), "stop", pos + 1
    return list(new_tokens[:max_tokens]), "length", min(len(new_tokens), max_tokens)


def batch_seed(seed: int | None, batch_no: int) -> int:
    """The RNG seed of one batch: a function of the run's seed and the batch's position."""
    return ((seed or 0) * 1_000_003 + batch_no) % (2**63)


@register_target
class TransformersTarget(Target):
    """A model run in-process with transformers (see the module docstring)."""

    name: ClassVar[str] = "transformers"
    Spec: ClassVar[type[TargetSpec]] = TransformersSpec
    backend_version: ClassVar[str] = "1.0"

    def __init__(self, spec: TargetSpec) -> None:
        super().__init__(spec)
        self._folder: Path | None = None
        self._manifest: dict[str, Any] | None = None
        self._model: Any = None
        self._tokenizer: Any = None

    @property
    def tspec(self) -> TransformersSpec:
        assert isinstance(self.spec, TransformersSpec)
        return self.spec

    # -- the folder and its identity (no torch needed) ---------------------------------

    def folder(self) -> Path:
        """The model folder: ``model_dir`` (or the default) for a registered name, else
        ``model`` itself as a path."""
        if self._folder is None:
            self._folder = self._resolve_folder()
        return self._folder

    def _resolve_folder(self) -> Path:
        spec = self.tspec
        if is_registered_model(spec.model):
            folder = Path(spec.model_dir) if spec.model_dir else DEFAULT_MODELS_DIR / spec.model
            if not (folder / "manifest.json").is_file():
                raise TransformersTargetError(
                    f"model {spec.model!r} is not prepared in {folder}: run "
                    f"`harmtrace prepare-model {spec.model} --out {folder}` (or pass model_dir)"
                )
            return folder
        path = Path(spec.model)
        if not path.is_dir():
            raise TransformersTargetError(
                f"model {spec.model!r} is neither a registered model "
                f"({', '.join(sorted(load_models()))}) nor an existing folder"
            )
        return path

    def manifest(self) -> dict[str, Any]:
        if self._manifest is None:
            spec, folder = self.tspec, self.folder()
            if is_registered_model(spec.model):
                manifest = read_manifest(folder)
                if manifest.get("name") != spec.model:
                    raise TransformersTargetError(
                        f"{folder} holds model {manifest.get('name')!r}, not {spec.model!r}; "
                        f"pass the folder prepared for {spec.model}"
                    )
            else:
                manifest = local_model_manifest(folder)
            self._manifest = manifest
        return self._manifest

    def max_prompt_tokens(self) -> int:
        spec = self.tspec
        if spec.max_prompt_tokens is not None:
            return spec.max_prompt_tokens
        context = self.manifest().get("context_length")
        if not context:
            raise TransformersTargetError(
                f"model {spec.model!r}: no context length in its config.json; set max_prompt_tokens"
            )
        limit = int(context) - spec.generation.max_tokens
        if limit < 1:
            raise TransformersTargetError(
                f"model {spec.model!r}: max_tokens {spec.generation.max_tokens} leaves no room "
                f"for a prompt in its context of {context} tokens"
            )
        return limit

    def check(self) -> None:
        self.manifest()
        self.max_prompt_tokens()

    def provenance(self) -> dict[str, Any]:
        import torch
        import transformers

        spec, manifest = self.tspec, self.manifest()
        return {
            "backend": self.name,
            "backend_version": self.backend_version,
            "model": spec.model,
            "weights_sha256": manifest["weights_sha256"],
            "chat_template_sha256": manifest.get("chat_template_sha256"),
            "system_prompt": spec.system_prompt,
            "sampling": spec.generation.sampling(),
            "max_tokens": spec.generation.max_tokens,
            "max_prompt_tokens": self.max_prompt_tokens(),
            "truncation": spec.truncation,
            "batch_size": spec.batch_size,
            "threads": spec.threads,
            "dtype": DTYPE,
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        }

    # -- the model -------------------------------------------------------------------

    def load(self) -> tuple[Any, Any]:
        """The tokenizer and the model in eval mode (loaded once)."""
        if self._model is None:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            folder = self.folder()
            self.check()
            torch.set_num_threads(self.tspec.threads)
            try:
                tokenizer = AutoTokenizer.from_pretrained(folder)
                model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
            except (OSError, ValueError) as exc:
                raise TransformersTargetError(
                    f"model folder {folder} cannot be loaded by transformers: {exc}"
                ) from exc
            if not tokenizer.chat_template:
                raise TransformersTargetError(
                    f"model folder {folder}: its tokenizer has no chat template"
                )
            self._tokenizer, self._model = tokenizer, model.eval()
        return self._tokenizer, self._model

    def close(self) -> None:
        self._model = self._tokenizer = None

    def _eos_ids(self) -> set[int]:
        tokenizer, model = self.load()
        eos = model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
        if tokenizer.eos_token_id is not None:
            ids.add(tokenizer.eos_token_id)
        if not ids:
            raise TransformersTargetError(f"model {self.tspec.model!r}: no end-of-text token")
        return ids

    def encode(self, conversations: Sequence[Sequence[Message]]) -> list[tuple[list[int], bool]]:
        """Token ids of each conversation (checked, fitted to max_prompt_tokens)."""
        tokenizer, _ = self.load()
        limit, mode = self.max_prompt_tokens(), self.tspec.truncation
        out = []
        for i, conv in enumerate(conversations):
            check_conversation(i, conv)
            text = tokenizer.apply_chat_template(
                [dict(m) for m in conv], add_generation_prompt=True, tokenize=False
            )
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            out.append(fit_prompt(i, list(ids), limit, mode))
        return out

    def _generate_batch(self, prompts: Sequence[list[int]], batch_no: int) -> list[list[int]]:
        """New token ids for each prompt of one batch (left padded, greedy or seeded)."""
        import torch

        tokenizer, model = self.load()
        gen = self.tspec.generation
        pad = tokenizer.pad_token_id
        if pad is None:
            pad = min(self._eos_ids())
        width = max(len(p) for p in prompts)
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        options: dict[str, Any] = {
            "max_new_tokens": gen.max_tokens,
            "pad_token_id": pad,
            "eos_token_id": sorted(self._eos_ids()),
        }
        if gen.temperature > 0:
            options.update(do_sample=True, temperature=gen.temperature, top_p=gen.top_p or 1.0)
        else:
            options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        torch.set_num_threads(self.tspec.threads)
        with torch.inference_mode(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(batch_seed(gen.seed, batch_no))
            out = model.generate(input_ids=input_ids, attention_mask=mask, **options)
        return out[:, width:].tolist()

    def generate(
        self,
        conversations: Sequence[Sequence[Message]],
        *,
        done: Collection[int] = (),
        on_answer: Callable[[int, Answer], None] | None = None,
    ) -> list[Answer | None]:
        if not conversations:
            return []
        encoded = self.encode(conversations)
        tokenizer, _ = self.load()
        eos, max_tokens = self._eos_ids(), self.tspec.generation.max_tokens
        done = set(done)
        results: list[Answer | None] = [None] * len(encoded)
        batches = sorted_batches([len(ids) for ids, _ in encoded], self.tspec.batch_size)
        for batch_no, batch in enumerate(batches):
            if all(i in done for i in batch):
                continue
            new = self._generate_batch([encoded[i][0] for i in batch], batch_no)
            for i, tokens in zip(batch, new, strict=True):
                if i in done:
                    continue
                kept, reason, count = split_completion(tokens, eos, max_tokens)
                answer = Answer(
                    text=tokenizer.decode(kept, skip_special_tokens=True),
                    finish_reason=reason,  # type: ignore[arg-type]
                    prompt_tokens=len(encoded[i][0]),
                    completion_tokens=count,
                    prompt_truncated=encoded[i][1],
                )
                results[i] = answer
                if on_answer is not None:
                    on_answer(i, answer)
        return results
