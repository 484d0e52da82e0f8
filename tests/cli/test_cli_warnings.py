"""What a command skips or guesses is said in one line of genzoo's own (`genzoo: warning: ...`):
unreadable files of an image folder, prompt words that become [UNK]."""

import numpy as np
import pytest
from PIL import Image

from genzoo.cli import main
from genzoo.core.errors import GenzooWarning
from genzoo.data.captions import get_caption_tokenizer
from genzoo.models.diffusion.t2i import prompt_tokens


def test_broken_images_are_one_line_each_and_eval_reads_the_good_ones(capsys, tmp_path):
    """3 readable images among 8 broken ones: the test split of all 11 files (1 file, the last
    name: bad7.png) was unreadable, so eval found no image; now unreadable files are left out
    before the split, each is named once in one line, and eval reads its readable test image."""
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / f"a{i}.png")
    for i in range(8):
        (folder / f"bad{i}.png").write_bytes(b"not a picture")
    run = tmp_path / "run"
    argv = ["train", "vae", "--data", f"folder:{folder}?size=8", "--steps", "1", "--out", str(run)]
    assert main([*argv, "progress=false", "tensorboard=false", "n_samples=2"]) == 0
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert "UserWarning" not in err and "warnings.warn" not in err
    assert len(lines) == 8 and all(ln.startswith("genzoo: warning: Skipping") for ln in lines)
    assert {f"bad{i}.png" for i in range(8)} == {ln.split("/")[-1].split("'")[0] for ln in lines}
    assert main(["eval", str(run), "--json"]) == 0
    assert '"n": 1' in capsys.readouterr().out


def test_unknown_prompt_words_are_named():
    tok = get_caption_tokenizer()
    with pytest.warns(GenzooWarning, match=r"\[UNK\]: 'hexagon', 'zebra'\.$"):
        ids = prompt_tokens(tok.encode_batch, 2, ["a red hexagon", "a blue zebra"], None)
    assert ids[0, 3] == ids[1, 3] == tok.unk_id  # [BOS] a red hexagon: the 4th token
    assert tok.unknown_words(["a red circle left of a blue square"]) == []
