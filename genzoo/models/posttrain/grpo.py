"""Group relative policy optimisation (Shao et al., "DeepSeekMath: Pushing the Limits of
Mathematical Reasoning in Open Language Models", arXiv:2402.03300, Sec. 4.1), with rule-based
rewards from the task's exact verifier.

Each training step takes a batch of prompts. For every prompt the policy draws ``G`` answers
from the KV-cached sampler (``pi_old``: the policy at rollout time, no gradient) and the verifier
scores them (``reward = "exact"``: 1 for an exact answer, else 0; ``"partial"``: the fraction
of the answer's characters right in place, a rule-based reward with partial credit that still
gives a group a spread of rewards when none of its answers is exact). The advantage of answer
``i`` is its reward normalised within its group, ``A_i = (r_i - mean(r)) / std(r)`` (outcome
supervision, Sec. 4.1.2), the same for all its tokens; a group's advantages sum to zero, and a
group whose rewards are equal teaches nothing. The objective (Eq. 3) is, per token ``t`` of
answer ``o_i``,

    min(rho A, clip(rho, 1 - eps, 1 + eps) A) - beta D_KL,    rho = pi(o_t) / pi_old(o_t),

averaged over the tokens of each answer, then over answers; ``D_KL`` is the k3 estimator of
KL(pi || pi_ref) (Eq. 4), ``pi_ref / pi - log(pi_ref / pi) - 1 >= 0``, against the frozen base.
``pi``, ``pi_old`` and ``pi_ref`` are all the tempered policies ``softmax(logits / T)`` at the
rollout temperature ``T``, the distribution the answers are drawn from (at ``T != 1`` log-probs
at temperature 1 would make the gradient an off-policy one).

The rollouts are made inside :meth:`GRPO.loss`, so GRPO trains with the one Trainer: a rollout
serves ``inner_iters`` consecutive optimizer steps (the paper's ``mu`` GRPO iterations per batch,
with ``pi_old`` fixed), then the next batch of prompts is rolled out. ``batch_size`` counts
prompts; each step sees ``batch_size * group_size`` answers. (A run resumed in the middle of a
rollout's iterations draws a fresh rollout.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from genzoo.core.config import bounded
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Batch, LossOutput
from genzoo.core.registry import register_model
from genzoo.data import tasks
from genzoo.data.base import DataInfo
from genzoo.models.posttrain.base import PostTrainConfig, PostTrained


@dataclass(frozen=True)
class GRPOConfig(PostTrainConfig):
    group_size: int = bounded(8, ge=2)  # G answers drawn per prompt
    clip_eps: float = bounded(0.2, gt=0, lt=1)  # clip range of the importance ratio
    kl_beta: float = bounded(0.04, ge=0)  # weight of the k3 KL penalty to the reference
    inner_iters: int = bounded(2, ge=1)  # optimizer steps on each rollout (mu)
    rollout_temperature: float = bounded(1.0, gt=0)  # temperature of the rollouts
    reward: Literal["exact", "partial"] = "exact"  # rule-based reward of the rollouts: 1 for an
    # exact answer (else 0), or partial credit (the fraction of characters right in place)


def call_reward(fn: Callable[[str, str], float], question: str, answer: str) -> float:
    """``fn(question, answer)`` as a float; a reward function that raises, or returns no finite
    number, is one sentence naming the question and the answer."""
    try:
        value = fn(question, answer)
        out = float(value)
    except Exception as e:  # a user's function: any failure becomes one sentence
        raise ConfigError(
            f"The reward function raised {type(e).__name__}: {e} on question {question!r}, "
            f"answer {answer!r}; it must return a number for every answer."
        ) from None
    if not math.isfinite(out):
        raise ConfigError(
            f"The reward function returned {value!r} on question {question!r}, answer "
            f"{answer!r}; it must return a finite number."
        )
    return out


def group_advantages(rewards: Tensor, eps: float = 1e-4) -> Tensor:
    """``(P, G)`` rewards -> advantages ``(r - mean) / (std + eps)`` within each group."""
    mean = rewards.mean(1, keepdim=True)
    std = rewards.std(1, keepdim=True, unbiased=False)
    return (rewards - mean) / (std + eps)


def k3_kl(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """The k3 estimator of KL(pi || pi_ref) per token (Eq. 4): ``e^d - d - 1 >= 0``,
    ``d = log pi_ref - log pi``."""
    d = ref_logp - logp
    return torch.exp(d) - d - 1


def grpo_loss(
    logp: Tensor,
    old_logp: Tensor,
    ref_logp: Tensor,
    adv: Tensor,
    mask: Tensor,
    clip_eps: float,
    kl_beta: float,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Minus the GRPO objective (Eq. 3) of token log-probabilities ``(N, T)`` (policy, rollout
    policy, reference) with per-answer advantages ``(N,)`` over the answer tokens ``mask``."""
    m = mask.to(logp.dtype)
    ratio = torch.exp(logp - old_logp)  # rho
    a = adv[:, None]
    surrogate = torch.minimum(ratio * a, ratio.clamp(1 - clip_eps, 1 + clip_eps) * a)
    kl = k3_kl(logp, ref_logp)
    per_token = surrogate - kl_beta * kl  # Eq. (3), the braces
    n_tok = m.sum(1).clamp_min(1.0)
    objective = ((per_token * m).sum(1) / n_tok).mean()  # 1/G sum_i 1/|o_i| sum_t
    clipped = ((ratio - 1).abs() > clip_eps).to(m.dtype)
    logs = {
        "kl": ((kl * m).sum(1) / n_tok).mean().detach(),
        "clip_frac": ((clipped * m).sum() / m.sum().clamp_min(1.0)).detach(),
    }
    return -objective, logs


@dataclass
class Rollout:
    seq: Tensor  # (N, P + T) prompt and answer tokens
    mask: Tensor  # (N, P + T) True on answer tokens up to the end of answer
    old_logp: Tensor  # (N, P + T) log pi_old
    ref_logp: Tensor  # (N, P + T) log pi_ref
    adv: Tensor  # (N,)
    reward: Tensor  # (N,)


@register_model("grpo")
class GRPO(PostTrained):
    """GRPO: G sampled answers per prompt, verifier rewards, clipped ratio, k3 KL to the base."""

    config_class = GRPOConfig
    config: GRPOConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 2e-4, "batch_size": 16}

    def __init__(self, config: GRPOConfig, info: DataInfo, base: Any = None) -> None:
        super().__init__(config, info, base)
        self._rollout: Rollout | None = None
        self._uses = 0
        self.reward_fn: Callable[[str, str], float] | None = None  # a user's reward (question,
        # answer) -> float, in place of the config's rule-based one (set_reward_fn)

    def set_reward_fn(self, fn: Callable[[str, str], float] | None) -> None:
        """Score rollouts with ``fn(question, answer) -> float`` instead of ``config.reward``
        (``None``: back to the rule-based reward). A call that raises or returns no finite
        number stops training with one sentence naming the question and the answer."""
        self.reward_fn = fn

    def _user_reward(self, task: str, question: str, answer: str) -> float:
        assert self.reward_fn is not None
        return call_reward(self.reward_fn, question, answer)

    def train(self, mode: bool = True) -> GRPO:
        super().train(mode)
        self.policy.eval()  # no dropout: rho = 1 on the first iteration of a rollout
        return self

    @torch.no_grad()
    def rollout(self, prompts: Tensor, generator: torch.Generator | None = None) -> Rollout:
        """``G`` answers per prompt ``(B, P)`` from the policy, their rewards and advantages."""
        c = self.config
        rep = prompts.repeat_interleave(c.group_size, dim=0)  # (B G, P)
        new, mask = self.generate(rep, temperature=c.rollout_temperature, generator=generator)
        fn = self._user_reward if self.reward_fn is not None else tasks.REWARDS[c.reward]
        reward = self.rewards(rep, new, mask, fn)  # (B G,)
        adv = group_advantages(reward.view(-1, c.group_size)).flatten()  # (B, G) -> (B G,)
        seq = torch.cat([rep, new], dim=1)  # (B G, P + T)
        full_mask = torch.cat([torch.zeros_like(rep, dtype=torch.bool), mask], dim=1)
        temp = c.rollout_temperature  # the log-probs of the policy that drew the rollouts
        return Rollout(
            seq,
            full_mask,
            self.sequence_logps(seq, temperature=temp),
            self.sequence_logps(seq, reference=True, temperature=temp),
            adv,
            reward,
        )

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        if "mask" in batch:  # packed (prompt, answer) windows, the data of SFT
            raise ConfigError(
                f"grpo trains on prompts alone and answers them itself, but {self.info.name!r} "
                "holds worked answers (the data of sft); train it with `genzoo finetune "
                "BASE_RUN --method grpo --task TASK`."
            )
        if self._rollout is None or self._uses >= self.config.inner_iters:
            self._rollout = self.rollout(batch["x"])
            self._uses = 0
        self._uses += 1
        r = self._rollout
        c = self.config
        logp = self.sequence_logps(r.seq, temperature=c.rollout_temperature)
        loss, logs = grpo_loss(logp, r.old_logp, r.ref_logp, r.adv, r.mask, c.clip_eps, c.kl_beta)
        exact = (r.reward == 1).to(r.reward.dtype).mean()  # partial credit is 1 only when exact
        return LossOutput(loss, {"reward": r.reward.mean(), "exact": exact, **logs})
