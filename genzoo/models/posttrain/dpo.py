"""Direct preference optimisation (Rafailov et al., "Direct Preference Optimization: Your
Language Model is Secretly a Reward Model", arXiv:2305.18290), with IPO (Azar et al., "A General
Theoretical Paradigm to Understand Learning from Human Preferences", arXiv:2310.12036) as the
other choice of the same loss.

For a prompt ``x`` with a chosen answer ``y_w`` and a rejected one ``y_l``, the implied reward of
an answer is ``r(y) = beta log pi(y | x) / pi_ref(y | x)`` and, with
``h = log pi(y_w)/pi_ref(y_w) - log pi(y_l)/pi_ref(y_l)``,

- DPO (Eq. 7): ``L = -log sigmoid(beta h)``; it is ``ln 2`` when the policy is the reference, and
  its minimiser over all policies is ``pi* ∝ pi_ref exp(r / beta)`` (Eq. 4) for Bradley-Terry
  preferences with reward ``r``;
- IPO (Eq. 17): ``L = (h - 1 / (2 beta))^2`` (the paper's tau is ``beta`` here), which regresses
  the log-ratio gap onto a finite target instead of pushing it to infinity on deterministic
  preferences.

The reference is the frozen base run. The logs show what the paper's analysis (and its known
failure) is about: the chosen and rejected log-probabilities (both can fall while their gap
grows), the implied reward margin ``beta h`` and the preference accuracy of the implied reward,
``reward_acc`` (how often ``h > 0``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from genzoo.core.config import bounded
from genzoo.core.errors import ConfigError
from genzoo.core.protocol import Batch, LossOutput
from genzoo.core.registry import register_model
from genzoo.models.posttrain.base import PostTrainConfig, PostTrained


@dataclass(frozen=True)
class DPOConfig(PostTrainConfig):
    beta: float = bounded(0.1, gt=0)  # strength of the KL leash to the reference (IPO: tau)
    loss_type: Literal["dpo", "ipo"] = "dpo"  # the sigmoid loss (DPO) or the squared one (IPO)


def preference_loss(
    logp_chosen: Tensor,
    logp_rejected: Tensor,
    ref_chosen: Tensor,
    ref_rejected: Tensor,
    beta: float,
    loss_type: str = "dpo",
) -> Tensor:
    """Per-pair DPO or IPO loss from sequence log-probabilities ``(B,)`` each -> ``(B,)``."""
    h = (logp_chosen - ref_chosen) - (logp_rejected - ref_rejected)  # log-ratio gap
    if loss_type == "ipo":
        return (h - 1.0 / (2.0 * beta)) ** 2  # IPO, Eq. (17)
    return -F.logsigmoid(beta * h)  # DPO, Eq. (7)


@register_model("dpo")
class DPO(PostTrained):
    """DPO or IPO on preference pairs, the frozen base run as the reference policy."""

    config_class = DPOConfig
    config: DPOConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 1e-4, "batch_size": 32}

    def train(self, mode: bool = True) -> DPO:
        super().train(mode)
        self.policy.eval()  # no dropout: the log-ratios compare two fixed functions
        return self

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        if "rejected" not in batch:
            raise ConfigError(
                f"dpo trains on preference pairs (prompt, chosen, rejected), which "
                f"{self.info.name!r} does not hold; train it with `genzoo finetune BASE_RUN "
                "--method dpo --task TASK` (pairs generated) or `--pairs FILE.jsonl`."
            )
        lps = {}
        for key, mkey in (("x", "mask"), ("rejected", "rejected_mask")):
            m = batch[mkey].float()
            pol = (self.sequence_logps(batch[key]) * m).sum(1)  # (B,) log pi(y | x)
            with torch.no_grad():
                ref = (self.sequence_logps(batch[key], reference=True) * m).sum(1)
            lps[key] = (pol, ref)
        (pc, rc), (pr, rr) = lps["x"], lps["rejected"]
        c = self.config
        loss = preference_loss(pc, pr, rc, rr, c.beta, c.loss_type).mean()
        margin = c.beta * ((pc - rc) - (pr - rr)).detach()  # implied reward margin
        return LossOutput(
            loss,
            {
                "margin": margin.mean(),
                "reward_acc": (margin > 0).float().mean(),
                "chosen_logp": pc.detach().mean(),
                "rejected_logp": pr.detach().mean(),
            },
        )
