"""LLaVA-style vision-language model (Liu, Li, Wu & Lee, "Visual Instruction Tuning",
arXiv:2304.08485), at the scale of ``shapes``: a frozen vision encoder, a trainable projector and
a GPT language model that answers questions in generated words.

- Vision encoder: the image encoder of a trained ``clip`` run (``clip_run``; frozen, as LLaVA
  freezes CLIP ViT-L/14), giving a grid of features ``Z_v = g(X_v)`` ``(B, N, C)``. Without a
  clip run the same tiny :class:`~genzoo.nn.encoders.ImageEncoder` is trained from scratch.
- Projector: ``H_v = W . Z_v`` (Eq. (1)), a linear map into the language model's word-embedding
  space, or the two-layer MLP of LLaVA-1.5 (arXiv:2310.03744) when ``projector_hidden > 0``.
  The ``N`` projected tokens are a prefix before the text tokens.
- Language model: genzoo's :class:`~genzoo.models.autoregressive.gpt.GPT` over the caption
  vocabulary (``[BOS] words [EOS]``). With no image the model *is* this GPT: the text starts at
  position 0 and the logits are the GPT's own.

Training follows the paper's two stages, each a run built on the previous one (``base_run``), and
a stage 0 that stands in for LLaVA's pretrained LLM:

- ``stage = "text"``: the GPT alone learns captions and question-answer texts ("what colour is
  the circle? red"), no image. This is also the blind baseline: the same language model without
  the image.
- ``stage = "align"`` (Sec. 4.1, "pre-training for feature alignment"): encoder and GPT frozen,
  the projector learns to make the GPT produce the caption of the image.
- ``stage = "instruct"`` (Sec. 4.2, "fine-tuning end-to-end"): the projector and the GPT (full, or
  low-rank adapters on its attention, :mod:`genzoo.nn.lora`, or frozen; ``lm``) learn the answers
  to the questions; only the answer tokens are targets (Eq. (2) counts the assistant's tokens).

The loss of every stage is the autoregressive ``-log p(X_a | X_v, X_instruct) = -sum_i log
p(x_i | X_v, X_<i)`` over its target tokens (Eq. (2)), averaged per target token. Answers are
decoded greedily with the GPT's KV cache (:meth:`LLaVA.answer`), and scored as exact matches.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Batch, BuiltOnRuns, GenerativeModel, LossOutput, SubRun
from genzoo.core.registry import register_model
from genzoo.data.base import DataInfo
from genzoo.data.captions import MAX_LEN
from genzoo.data.shapes import ANSWERS
from genzoo.models.autoregressive.gpt import GPT, GPTConfig
from genzoo.models.multimodal.base import MultimodalModel
from genzoo.models.multimodal.clip import CLIP
from genzoo.nn.lora import apply_lora, unwrap_lora
from genzoo.nn.transformer import KVCache, init_gpt_weights

STAGES = ("text", "align", "instruct")
SEQ_LEN = MAX_LEN + 1  # a question, its one-word answer and [EOS]: one more than a caption


@dataclass(frozen=True)
class LLaVAConfig(Config):
    """Configuration of :class:`LLaVA` (defaults fit 16x16 or 32x32 ``shapes`` on a CPU). With a
    ``base_run`` the GPT, the projector and the encoder (and their sizes) are the base run's; a
    ``clip_run`` beside it replaces the encoder (and starts a new projector)."""

    stage: Literal["text", "align", "instruct"] = "instruct"  # what this run trains (module doc)
    lm: Literal["frozen", "lora", "full"] = "full"  # how the GPT trains in stage "instruct"
    # (the paper: full)
    clip_run: str = ""  # a trained clip run: its frozen image encoder ("": the base run's, or a
    # tiny one, trained)
    base_run: str = ""  # the llava run of the previous stage ("": start from scratch)
    width: int = bounded(16, ge=1)  # channels of the own image encoder's first stage
    projector_hidden: int = bounded(128, ge=0)  # hidden width of the MLP projector (0: linear)
    n_embd: int = bounded(64, ge=1)  # width of the GPT's residual stream
    n_layer: int = bounded(2, ge=1)  # GPT blocks
    n_head: int = bounded(4, ge=1)  # attention heads per GPT block
    dropout: float = bounded(0.0, ge=0.0, lt=1.0)  # dropout in the GPT
    lora_rank: int = bounded(8, ge=1)  # rank r of the adapters (lm = "lora")
    lora_alpha: float = bounded(16.0, gt=0.0)  # LoRA scaling alpha (update scaled by alpha / r)
    max_answer_tokens: int = bounded(3, ge=2)  # longest generated answer, [EOS] included

    def validate(self) -> None:
        if self.n_embd % self.n_head:
            raise ConfigError(
                f"n_embd = {self.n_embd} must be divisible by n_head = {self.n_head}."
            )
        if self.stage == "text" and self.clip_run:
            raise ConfigError("stage = 'text' trains the language model alone; drop clip_run.")


def _name_of(m: nn.Module) -> str:
    if isinstance(m, GenerativeModel):
        return f"{m.name!r} on {m.info.name!r}"
    return type(m).__name__


@register_model("llava")
class LLaVA(MultimodalModel, BuiltOnRuns):
    """LLaVA-style: a frozen CLIP image encoder, a projector and a GPT that answers in words.

    Parts: ``clip``, a trained ``clip`` model (``clip_run``; its image encoder is used, frozen);
    ``base``, the ``llava`` model of the previous stage (``base_run``)."""

    config_class: ClassVar[type[Config]] = LLaVAConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 1e-3, "batch_size": 32, "warmup": 50}
    sub_runs: ClassVar[tuple[SubRun, ...]] = (
        SubRun("clip", "clip_run"),
        SubRun("base", "base_run"),
    )
    config: LLaVAConfig

    def __init__(
        self,
        config: LLaVAConfig,
        info: DataInfo,
        clip: nn.Module | None = None,
        base: nn.Module | None = None,
    ) -> None:
        super().__init__(config, info)
        c = config
        if info.name.split("?")[0] != "shapes":
            raise ConfigError(
                f"llava needs captions and questions, which {info.name!r} has not; "
                "use --data shapes."
            )
        if clip is not None and not isinstance(clip, CLIP):
            raise ConfigError(f"clip_run must be a trained clip run; it holds {_name_of(clip)}.")
        if base is not None and not isinstance(base, LLaVA):
            raise ConfigError(
                f"base_run must be a llava run of an earlier stage; it holds {_name_of(base)}."
            )
        for part in (clip, base):
            if part is not None and part.info.shape != info.shape:
                raise ConfigError(
                    f"The {part.name} run was trained on images of shape {part.info.shape}, "
                    f"this data has {info.shape}; use the same --data."
                )
        tok = self.tokenizer
        self.pad_id, self.bos_id, self.eos_id = tok.pad_id, tok.bos_id, tok.eos_id
        ids = torch.tensor([tok.encode(a)[0] for a in ANSWERS])
        self.register_buffer("answer_ids", ids, persistent=False)  # answer index -> token
        # the vision encoder: the clip run's (frozen), else the previous stage's, else our own
        self.encoder_frozen: bool = clip is not None or (base is not None and base.encoder_frozen)
        if clip is not None:
            self.image_encoder = copy.deepcopy(clip.image_encoder)
        elif base is not None:
            self.image_encoder = copy.deepcopy(base.image_encoder)
        self.n_prefix = self.image_encoder.grid**2
        if base is not None and clip is None:  # the previous stage's projector
            self.projector: nn.Module = copy.deepcopy(base.projector)
        else:
            d_img = self.image_encoder.out_dim
            n_embd = base.lm.config.n_embd if base is not None else c.n_embd
            if c.projector_hidden:  # LLaVA-1.5's MLP
                self.projector = nn.Sequential(
                    nn.Linear(d_img, c.projector_hidden),
                    nn.GELU(),
                    nn.Linear(c.projector_hidden, n_embd),
                )
            else:
                self.projector = nn.Linear(d_img, n_embd)  # Eq. (1): H_v = W . Z_v
            for m in self.projector.modules():
                init_gpt_weights(m)
        if base is not None:  # the previous stage's GPT, adapters folded in
            self.lm: GPT = copy.deepcopy(base.lm)
            unwrap_lora(self.lm)
            if self.n_prefix + SEQ_LEN > self.lm.block_size:
                raise ConfigError(
                    f"The base run's GPT holds {self.lm.block_size} positions; "
                    f"{self.n_prefix} image tokens and {SEQ_LEN} text tokens need more."
                )
        else:
            vocab = self.vocab_size
            lm_info = DataInfo(name="shapes-text", kind="text", shape=(SEQ_LEN,), levels=vocab)
            lm_config = GPTConfig(
                n_layer=c.n_layer, n_head=c.n_head, n_embd=c.n_embd, dropout=c.dropout,
                pos_emb="rotary", block_size=self.n_prefix + SEQ_LEN,
            )  # fmt: skip
            self.lm = GPT(lm_config, lm_info)
        self.n_prefix = self.image_encoder.grid**2
        # what this stage trains (Sec. 4: stage 1 the projector, stage 2 projector and LLM)
        self.image_encoder.requires_grad_(c.stage != "text" and not self.encoder_frozen)
        self.projector.requires_grad_(c.stage != "text")
        self.lm.requires_grad_(c.stage == "text" or (c.stage == "instruct" and c.lm == "full"))
        if c.stage == "instruct" and c.lm == "lora":
            apply_lora(self.lm.transformer, ("qkv", "proj"), c.lora_rank, c.lora_alpha)

    # --- the network ------------------------------------------------------------------------------
    def image_tokens(self, x: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` -> projected prefix tokens ``(B, N, n_embd)``."""
        if tuple(x.shape[1:]) != tuple(self.info.shape):
            raise ConfigError(
                f"llava was built for images of shape {tuple(self.info.shape)}; got "
                f"{tuple(x.shape[1:])}."
            )
        z = self.image_encoder(x).tokens  # Z_v = g(X_v): (B, N, C)
        return self.projector(z)  # Eq. (1): H_v = W . Z_v, (B, N, E)

    def _lm_logits(self, h: Tensor, cache: KVCache | None = None) -> Tensor:
        """Input embeddings ``(B, T, E)`` (after ``cache.length`` positions) -> next-token
        logits ``(B, T, V)``: the GPT's blocks and tied read-out, on embeddings."""
        lm = self.lm
        if lm.pos is not None:  # learned positions (the default GPT here is rotary)
            past = cache.length if cache is not None else 0
            h = h + lm.pos(torch.arange(past, past + h.shape[1], device=h.device))
        h = lm.transformer(lm.drop(h), cache)  # (B, T, E)
        weight = lm.tok_emb.weight if lm.lm_head is None else lm.lm_head.weight
        return F.linear(h, weight[: lm.n_out])  # (B, T, V)

    def forward(self, x: Tensor | None, tokens: Tensor, *, repeat: int = 1) -> Tensor:
        """Logits ``(B', L, V)`` of the next token after each of ``tokens`` ``(B', L)``, after the
        image tokens of ``x`` ``(B, C, H, W)`` (each image ``repeat`` times: ``B' = B repeat``);
        ``x = None``: the text alone, exactly the GPT's logits."""
        h = self.lm.tok_emb(tokens)  # (B', L, E)
        if x is None:
            return self._lm_logits(h)
        img = self.image_tokens(x).repeat_interleave(repeat, 0)  # (B', N, E)
        return self._lm_logits(torch.cat([img, h], 1))[:, self.n_prefix :]  # (B', L, V)

    # --- sequences and the loss -------------------------------------------------------------------
    def qa_tokens(self, questions: Tensor, answers: Tensor) -> tuple[Tensor, Tensor]:
        """Question tokens ``(N, L)`` and answer indices ``(N,)`` -> ``[BOS] question answer
        [EOS]`` ``(N, SEQ_LEN)`` and the mask ``(N, SEQ_LEN)`` of the answer and its ``[EOS]``."""
        n, ln = questions.shape
        seq = F.pad(questions, (0, SEQ_LEN - ln), value=self.pad_id)  # (N, SEQ_LEN)
        end = (questions == self.eos_id).long().argmax(1)  # (N,) the question's [EOS]
        rows = torch.arange(n, device=seq.device)
        seq[rows, end] = self.answer_ids[answers]
        seq[rows, end + 1] = self.eos_id
        mask = torch.zeros_like(seq, dtype=torch.bool)
        mask[rows, end] = True
        mask[rows, end + 1] = True
        return seq, mask

    def token_nll(
        self, x: Tensor | None, seq: Tensor, mask: Tensor, repeat: int = 1
    ) -> tuple[Tensor, Tensor]:
        """``-log p(x_i | X_v, x_<i)`` ``(B', T-1)`` of the tokens of ``seq`` ``(B', T)`` and
        which of them are targets (``mask`` shifted to the predicted positions)."""
        logits = self.forward(x, seq[:, :-1], repeat=repeat)  # (B', T-1, V)
        nll = F.cross_entropy(logits.float().transpose(1, 2), seq[:, 1:], reduction="none")
        return nll, mask[:, 1:]

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        """Eq. (2): mean ``-log p`` per target token of this stage's sequences (module doc)."""
        stage = self.config.stage
        if "question" not in batch:
            raise ConfigError("llava trains on batches with captions and questions ('shapes').")
        caps = batch["text"]  # (B, L)
        cap_mask = caps != self.pad_id
        q, a = batch["question"].flatten(0, 1), batch["answer"].flatten()  # (B*Q, L), (B*Q,)
        qa, qa_mask = self.qa_tokens(q, a)
        if stage == "text":  # the GPT alone on captions and question-answer texts
            seq = torch.cat([F.pad(caps, (0, SEQ_LEN - caps.shape[1]), value=self.pad_id), qa])
            full = torch.cat([F.pad(cap_mask, (0, SEQ_LEN - caps.shape[1])), qa != self.pad_id])
            nll, m = self.token_nll(None, seq, full)
        elif stage == "align":  # the image's caption
            nll, m = self.token_nll(batch["x"], caps, cap_mask)
        else:  # the answers to the image's questions
            nll, m = self.token_nll(batch["x"], qa, qa_mask, repeat=batch["question"].shape[1])
        loss = (nll * m).sum() / m.sum()  # the one reduction
        return LossOutput(loss, {"nll_token": loss.detach()})

    # --- answering --------------------------------------------------------------------------------
    @torch.no_grad()
    def generate_answers(self, x: Tensor | None, questions: Tensor) -> Tensor:
        """Greedy answer tokens ``(N, max_answer_tokens)`` (then ``[EOS]``, padding) to question
        tokens ``(N, L)`` about images ``x`` ``(N, C, H, W)`` (``None``: no image), with the KV
        cache. Rows are grouped by question length, so no prompt carries padding."""
        n = questions.shape[0]
        k = self.config.max_answer_tokens
        out = torch.full((n, k), self.pad_id, dtype=torch.long, device=questions.device)
        lengths = (questions == self.eos_id).long().argmax(1)  # [BOS] + words, before [EOS]
        for length in lengths.unique().tolist():
            rows = (lengths == length).nonzero().squeeze(1)
            prompt = questions[rows, :length]  # (n_r, length)
            cache = self.lm.new_cache()
            h = self.lm.tok_emb(prompt)
            if x is not None:
                h = torch.cat([self.image_tokens(x[rows]), h], 1)  # (n_r, N + length, E)
            logits = self._lm_logits(h, cache)[:, -1]  # (n_r, V)
            done = torch.zeros(len(rows), dtype=torch.bool, device=questions.device)
            for i in range(k):
                tok = logits.argmax(-1)  # greedy
                tok = torch.where(done, torch.full_like(tok, self.pad_id), tok)
                out[rows, i] = tok
                done = done | (tok == self.eos_id)
                if bool(done.all()) or i == k - 1:
                    break
                logits = self._lm_logits(self.lm.tok_emb(tok[:, None]), cache)[:, -1]
        return out

    @torch.no_grad()
    def answer(self, x: Tensor | None, questions: list[str]) -> list[str]:
        """One generated answer per (image, question): ``x`` ``(B, C, H, W)`` or ``None`` (the
        language model alone), ``B`` questions."""
        q = self.encode_texts(questions)
        return self.tokenizer.decode_batch(self.generate_answers(x, q).cpu())

    @torch.no_grad()
    def caption(self, x: Tensor) -> list[str]:
        """Greedy captions of images ``x`` (the stage-1 skill), words up to ``[EOS]``."""
        b = x.shape[0]
        cache = self.lm.new_cache()
        bos = torch.full((b, 1), self.bos_id, dtype=torch.long, device=x.device)
        logits = self._lm_logits(torch.cat([self.image_tokens(x), self.lm.tok_emb(bos)], 1), cache)
        toks = []
        for _ in range(MAX_LEN - 1):
            tok = logits[:, -1].argmax(-1)
            toks.append(tok)
            if cache.length >= self.lm.block_size:
                break
            logits = self._lm_logits(self.lm.tok_emb(tok[:, None]), cache)
        return self.tokenizer.decode_batch(torch.stack(toks, 1).cpu())

    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """Per image, over its questions: ``acc`` (the generated answer is the right word,
        exactly) and ``blind_acc`` (the same, with the image tokens removed)."""
        if "question" not in batch:
            raise ConfigError("Evaluating llava needs the questions of the 'shapes' test split.")
        b, nq, _ = batch["question"].shape
        q = batch["question"].flatten(0, 1)  # (B*Q, L)
        want = self.answer_ids[batch["answer"].flatten()]  # (B*Q,)
        x = batch["x"].repeat_interleave(nq, 0)

        def exact(gen: Tensor) -> Tensor:  # one answer word, then [EOS]
            return ((gen[:, 0] == want) & (gen[:, 1] == self.eos_id)).float().view(b, nq).mean(1)

        seen = exact(self.generate_answers(x, q))
        blind = exact(self.generate_answers(None, q))
        return {"acc": seen, "blind_acc": blind}
