"""Language-model post-training on a trained GPT: SFT (with LoRA or prefix-tuning as adapters),
DPO / IPO and GRPO; importing this package registers ``sft``, ``dpo`` and ``grpo``."""

from genzoo.models.posttrain.base import PostTrainConfig, PostTrained
from genzoo.models.posttrain.dpo import DPO, DPOConfig
from genzoo.models.posttrain.grpo import GRPO, GRPOConfig
from genzoo.models.posttrain.sft import SFT

__all__ = ["DPO", "GRPO", "SFT", "DPOConfig", "GRPOConfig", "PostTrainConfig", "PostTrained"]
