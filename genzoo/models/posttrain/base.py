"""What every post-training method shares: a trained GPT as the base, a policy, a frozen reference.

A post-trained model is built on a trained ``gpt`` run over text (:class:`BuiltOnRuns`: the runs
layer loads ``base_run`` and passes it in; the base run itself is never written to). It holds

- ``reference``: the base model, frozen, in eval mode (DPO's and GRPO's reference policy, and the
  yardstick of the KL that ``genzoo eval`` reports);
- ``policy``: what is trained. ``adapter = "full"``: a copy of the base, every weight trained;
  ``"lora"``: a frozen copy with LoRA updates on the linear layers named in ``lora_targets``
  (:mod:`genzoo.nn.lora`); ``"prefix"``: the frozen copy with ``prefix_len`` trainable virtual
  tokens (:mod:`genzoo.nn.prefix`).

Checkpoints hold only what is trained (``state_dict`` leaves out the reference and the frozen
weights of the policy), so a LoRA or prefix run's ``model.safetensors`` is the adapter alone, and
the run's ``config.yaml`` names the base run it applies to.

Text: one character per token with the base GPT's own alphabet (:mod:`genzoo.data.tasks`); a
sequence is the GPT's start token, then ``prompt + response``. ``sample`` continues prompts
(by default the task's first test prompts) with a KV cache, stopping at the end-of-answer token.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genzoo.core.config import Config, bounded
from genzoo.core.errors import ConfigError
from genzoo.core.options import check_output_memory, option
from genzoo.core.protocol import Batch, BuiltOnRuns, GenerativeModel, Samples, SubRun
from genzoo.data import tasks
from genzoo.data.base import DataInfo
from genzoo.models.autoencoders.base import check_sample_args
from genzoo.models.autoregressive.gpt import GPT
from genzoo.models.autoregressive.sampling import sample_logits
from genzoo.nn.attention import KVCache
from genzoo.nn.lora import apply_lora, unwrap_lora
from genzoo.nn.partial_state import SavesTrainedOnly
from genzoo.nn.prefix import PrefixKV

ADAPTERS = ("full", "lora", "prefix")


@dataclass(frozen=True)
class PostTrainConfig(Config):
    """Settings every post-training method shares: the base run, the task, the adapter."""

    base_run: str = ""  # run directory of the trained gpt (text) to start from; never modified
    base_ema: bool = True  # use the base run's EMA weights when it has them
    task: str = "addition"  # procedural task: addition, subtraction, reverse, sort, count
    digits: int = bounded(2, ge=1, le=8)  # difficulty level of the task
    adapter: Literal["full", "lora", "prefix"] = "full"  # what is trained: all weights, LoRA,
    # or a prefix
    lora_rank: int = bounded(8, ge=1)  # LoRA rank r
    lora_alpha: float = bounded(16.0, gt=0)  # LoRA alpha (the update is scaled by alpha / r)
    lora_dropout: float = bounded(0.0, ge=0, lt=1)  # dropout on the LoRA path's input
    lora_targets: str = "qkv,proj"  # comma-separated names of the linear layers LoRA adapts
    # (qkv, proj: attention; mlp.0, mlp.2: the MLP)
    prefix_len: int = bounded(8, ge=0)  # prefix-tuning: virtual tokens per layer
    prefix_hidden: int = bounded(64, ge=1)  # prefix-tuning: width of the reparametrising MLP
    max_new_tokens: int = bounded(0, ge=0)  # longest answer generated (0: from the task)
    temperature: float = bounded(0.0, ge=0)  # default sampling temperature (0: greedy)

    def validate(self) -> None:
        tasks.check_task(self.task, self.digits)
        if not [t for t in self.lora_targets.split(",") if t.strip()]:
            raise ConfigError("lora_targets must name at least one linear layer, e.g. 'qkv'.")


def token_logps(logits: Tensor, targets: Tensor) -> Tensor:
    """``log softmax(logits)`` at ``targets``: ``(B, L, V), (B, L) -> (B, L)``."""
    nll = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="none")
    return -nll.view(targets.shape)  # (B, L)


class PostTrained(SavesTrainedOnly, GenerativeModel, Samples, BuiltOnRuns):
    """A policy trained from a base GPT, the base kept as a frozen reference (module doc)."""

    family: ClassVar[str] = "post-training"
    config_class: ClassVar[type[Config]] = PostTrainConfig
    sub_runs: ClassVar[tuple[SubRun, ...]] = (SubRun("base", "base_run", "base_ema"),)
    config: PostTrainConfig
    info: DataInfo

    def __init__(self, config: PostTrainConfig, info: DataInfo, base: nn.Module | None = None):
        if base is None:
            raise ConfigError(
                f"{self.name or 'post-training'} needs base_run=<run directory of a trained gpt>."
            )
        if isinstance(base, PostTrained):  # e.g. GRPO or DPO after SFT: start from its policy
            base = base.policy_as_gpt()
        if not isinstance(base, GPT) or base.info.kind != "text":
            what = base.name if isinstance(base, GenerativeModel) else type(base).__name__
            data = f" on {base.info.name}" if isinstance(base, GPT) else ""
            raise ConfigError(
                f"The base run must be a language model (gpt trained on text, e.g. "
                f"text:pystdlib or task:addition); it holds {what!r}{data}."
            )
        vocab = tasks.tokenizer().vocab_size
        if "tokenizer=bpe" in base.info.name or base.n_out != vocab or info.levels != vocab:
            raise ConfigError(
                f"Tokenizer mismatch: the base run's GPT reads {base.n_out} tokens of "
                f"{base.info.name!r}, the task data is {info.levels} characters of genzoo's "
                f"{vocab}-symbol text alphabet; start from a char-level text gpt."
            )
        super().__init__(config, info)
        self.task = config.task
        self.max_new = config.max_new_tokens or config.digits + 3
        self.prompt_len = len(tasks.problems(config.task, config.digits, "test", 1)[0].prompt)
        need = config.prefix_len * (config.adapter == "prefix") + max(
            info.shape[0], self.prompt_len + self.max_new
        )
        if need > base.block_size:
            raise ConfigError(
                f"The base GPT's block_size = {base.block_size} is too short: these sequences "
                f"need {need} positions (prefix included)."
            )
        self.policy = copy.deepcopy(base).requires_grad_(config.adapter == "full")
        self.reference = base.eval().requires_grad_(False)  # frozen; never saved
        self.prefix: PrefixKV | None = None
        if config.adapter == "lora":
            targets = [t.strip() for t in config.lora_targets.split(",") if t.strip()]
            try:
                apply_lora(
                    self.policy.transformer,
                    targets,
                    config.lora_rank,
                    config.lora_alpha,
                    config.lora_dropout,
                )
            except ValueError as e:
                raise ConfigError(f"lora_targets = {config.lora_targets!r}: {e}.") from None
        elif config.adapter == "prefix":
            c = base.config
            self.prefix = PrefixKV(
                c.n_layer, c.n_head, c.n_embd, config.prefix_len, config.prefix_hidden
            )
        # what checkpoints leave out: the reference, and the policy's frozen weights
        trained = {n for n, p in self.named_parameters() if p.requires_grad}
        self.leave_out_of_checkpoints({k for k in self.state_dict() if k not in trained})

    def policy_as_gpt(self) -> GPT:
        """The policy as a plain GPT (LoRA merged in), to build the next stage on."""
        if self.prefix is not None:
            raise ConfigError(
                "A prefix-tuned run cannot be the base of another stage (its prefix is no GPT "
                "weight); build on a full or LoRA run."
            )
        gpt = copy.deepcopy(self.policy)
        unwrap_lora(gpt)
        return gpt.eval()

    def train(self, mode: bool = True) -> PostTrained:
        super().train(mode)
        self.reference.eval()  # the reference is a fixed function
        return self

    # --- the two policies -----------------------------------------------------------------------
    def new_cache(self, batch: int) -> KVCache:
        """An empty KV cache for the policy (holding the prefix when prefix-tuned)."""
        if self.prefix is not None:
            return self.prefix.cache(batch, self.policy.block_size)
        return self.policy.new_cache()

    def logits(self, idx: Tensor, *, reference: bool = False) -> Tensor:
        """Next-token logits ``(B, T, V)`` of the token ids ``idx`` ``(B, T)`` (after BOS)."""
        if reference:
            return self.reference(idx)
        cache = self.prefix.cache(idx.shape[0], self.policy.block_size) if self.prefix else None
        return self.policy(idx, cache)

    def sequence_logps(
        self, x: Tensor, *, reference: bool = False, temperature: float = 1.0
    ) -> Tensor:
        """``log pi(x_i | BOS, x_<i)`` of every token of ``x`` ``(B, L) -> (B, L)``; with
        ``temperature`` ``T``, of the tempered policy ``softmax(logits / T)`` that
        :meth:`generate` samples at that temperature."""
        bos = torch.full_like(x[:, :1], self.policy.bos)
        inp = torch.cat([bos, x[:, :-1]], dim=1)  # (B, L): BOS + x shifted
        logits = self.logits(inp, reference=reference)
        return token_logps(logits if temperature == 1.0 else logits / temperature, x)

    # --- generation ---------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        prompts: Tensor,
        max_new: int | None = None,
        *,
        temperature: float | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Continue prompts ``(B, P)`` with the policy, KV-cached: ``(tokens, mask)``, both
        ``(B, max_new)``; ``mask`` is True up to and including the first end-of-answer token."""
        n = max_new or self.max_new
        temp = self.config.temperature if temperature is None else temperature
        b = prompts.shape[0]
        bos = torch.full((b, 1), self.policy.bos, dtype=torch.long, device=prompts.device)
        cache = self.new_cache(b)
        logits = self.logits_cached(torch.cat([bos, prompts], dim=1), cache)[:, -1]  # (B, V)
        out = []
        alive = torch.ones(b, dtype=torch.bool, device=prompts.device)
        mask = []
        for s in range(n):
            tok = sample_logits(logits, temperature=temp, generator=generator)  # (B,)
            out.append(tok)
            mask.append(alive.clone())
            alive &= tok != 0  # token 0 is the newline: the answer has ended
            if s < n - 1:
                logits = self.logits_cached(tok[:, None], cache)[:, -1]
        return torch.stack(out, dim=1), torch.stack(mask, dim=1)  # (B, n) each

    def logits_cached(self, idx: Tensor, cache: KVCache) -> Tensor:
        return self.policy(idx, cache)

    def complete(
        self,
        prompts: Sequence[str],
        *,
        temperature: float | None = None,
        generator: torch.Generator | None = None,
    ) -> list[str]:
        """The policy's answers to text prompts (``"12+35="``), each up to its end of answer."""
        tok = tasks.tokenizer()
        out = []
        for p in prompts:  # one at a time: prompts may differ in length
            ids = tok.encode(p).to(self.device)[None]  # (1, P)
            room = self.policy.block_size - (self.prefix.length if self.prefix else 0)
            if ids.shape[1] + self.max_new > room:
                raise ConfigError(f"Prompt {p!r} is too long for the base GPT's block size.")
            new, mask = self.generate(ids, temperature=temperature, generator=generator)
            out.append(tasks.answer_of(tok.decode(new[0][mask[0]])))
        return out

    def sample(
        self,
        n: int,
        *,
        cond: Tensor | None = None,
        generator: torch.Generator | None = None,
        **options: Any,
    ) -> Tensor:
        """Token ids ``(n, P + length)``: prompts (``prompt``: ids ``(P,)`` or ``(n, P)``; by
        default the task's first ``n`` test prompts) and the policy's continuations
        (``temperature`` from the config unless given)."""
        check_sample_args(self.name, cond, options, ("prompt", "length", "temperature"))
        if "prompt" in options:  # text or token ids, checked as the base GPT checks them
            prompt = self.policy.prompt_ids(options["prompt"]).to(self.device)
            prompt = prompt.expand(n, -1) if prompt.ndim == 1 else prompt  # (n, P)
        else:
            probs = tasks.problems(self.task, self.config.digits, "test", n)
            tok = tasks.tokenizer()
            ids = [tok.encode(probs[i % len(probs)].prompt) for i in range(n)]
            prompt = torch.stack(ids).to(self.device)  # (n, P)
        length = option(options, "length", int(self.max_new), ge=1)
        check_output_memory(n * (prompt.shape[1] + length), 8, f"length = {length} for n = {n}")
        new, mask = self.generate(
            prompt,
            length,
            temperature=option(options, "temperature", float(self.config.temperature), ge=0),
            generator=generator,
        )
        return torch.cat([prompt, new * mask], dim=1)  # after the answer: newlines (token 0)

    # --- evaluation ------------------------------------------------------------------------------
    @torch.no_grad()
    def eval_metrics(
        self, batch: Batch, generator: torch.Generator | None = None
    ) -> dict[str, Tensor]:
        """On prompts (``x`` ``(B, P)``): ``exact_match`` and ``reward`` of the greedy answer, and
        ``kl_ref``, a one-sample estimate of KL(policy || reference) in nats per answer
        (``sum_t log pi - log pi_ref`` over an answer sampled at temperature 1). On preference
        pairs (``x`` = chosen, ``rejected``): ``pref_acc``, whether the policy gives the chosen
        answer the higher log-probability, and ``reward_acc``, whether the implied reward
        ``log pi / pi_ref`` of the chosen one is higher (DPO's accuracy)."""
        if "rejected" in batch:
            lp = {}
            for key, mkey in (("x", "mask"), ("rejected", "rejected_mask")):
                m = batch[mkey].float()
                pol = (self.sequence_logps(batch[key]) * m).sum(1)
                ref = (self.sequence_logps(batch[key], reference=True) * m).sum(1)
                lp[key] = (pol, pol - ref)
            return {
                "pref_acc": (lp["x"][0] > lp["rejected"][0]).float(),
                "reward_acc": (lp["x"][1] > lp["rejected"][1]).float(),
                "chosen_logp": lp["x"][0],
            }
        prompts = batch["x"]
        new, mask = self.generate(prompts, temperature=0.0)
        rewards = self.rewards(prompts, new, mask)
        new_s, mask_s = self.generate(prompts, temperature=1.0, generator=generator)
        seq = torch.cat([prompts, new_s], dim=1)  # (B, P + N)
        pol = self.sequence_logps(seq)[:, prompts.shape[1] :]
        ref = self.sequence_logps(seq, reference=True)[:, prompts.shape[1] :]
        return {
            "exact_match": (rewards == 1).float(),
            "reward": rewards,
            "kl_ref": ((pol - ref) * mask_s).sum(1),
        }

    def rewards(
        self,
        prompts: Tensor,
        new: Tensor,
        mask: Tensor,
        fn: Callable[[str, str, str], float] = tasks.reward,
    ) -> Tensor:
        """A rule-based reward of each continuation ``(B,)`` (prompts ``(B, P)``): ``fn(task,
        question, answer)``, by default the task's exact-match reward."""
        tok = tasks.tokenizer()
        out = []
        for p, t, m in zip(prompts.tolist(), new.tolist(), mask.tolist(), strict=True):
            question = tok.decode(p).removesuffix("=")
            answer = tok.decode([a for a, keep in zip(t, m, strict=True) if keep])
            out.append(fn(self.task, question, answer))
        return torch.tensor(out, device=prompts.device)
