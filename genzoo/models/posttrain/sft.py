"""Supervised fine-tuning (SFT) of a language model on instruction-response pairs (as in
InstructGPT, Ouyang et al., arXiv:2203.02155, Sec. 3.5: the supervised policy).

The loss is the next-token cross-entropy of the *response* tokens only: with the response mask
``m_t`` (1 on response tokens, 0 on the prompt and on padding),

    L = - sum_t m_t log pi(x_t | x_<t) / sum_t m_t,

so the prompt conditions the answer but is never a target: its tokens get no gradient. Examples
are packed whole into the base GPT's windows (:class:`~genzoo.data.tasks.PackedSFT`), several per
window; attention is not masked between packed examples (a later example can see an earlier one,
which is harmless for independent problems and keeps the batches dense).

``adapter = "lora"`` or ``"prefix"`` trains LoRA updates or a prefix instead of every weight
(``genzoo finetune --method lora`` / ``prefix``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor

from genzoo.core.protocol import Batch, LossOutput
from genzoo.core.registry import register_model
from genzoo.models.posttrain.base import PostTrainConfig, PostTrained


def response_nll(logps: Tensor, mask: Tensor) -> Tensor:
    """Mean negative log-likelihood of the masked (response) tokens: ``(B, L), (B, L) -> ()``."""
    m = mask.to(logps.dtype)
    return -(logps * m).sum() / m.sum().clamp_min(1.0)


@register_model("sft")
class SFT(PostTrained):
    """Supervised fine-tuning of a base GPT run, response tokens only (full, LoRA or prefix)."""

    config_class = PostTrainConfig
    default_train: ClassVar[dict[str, Any]] = {"lr": 5e-4, "batch_size": 32}

    def loss(self, batch: Batch, group: str = "main") -> LossOutput:
        nll = response_nll(self.sequence_logps(batch["x"]), batch["mask"])
        return LossOutput(nll, {"response_nll": nll.detach()})
