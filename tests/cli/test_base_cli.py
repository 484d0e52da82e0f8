"""`genzoo train ldm --base RUN` / `genzoo train vqvae-prior --base RUN`: the same run as the
config key (`autoencoder_run=RUN`) with the base run's data, and bad input (a model built on no
run, a base of the wrong family, the base given twice) is one sentence with nothing written."""

from __future__ import annotations

from pathlib import Path

import yaml
from cli_helpers import one_error, run_cli

OLD = Path(__file__).resolve().parents[1] / "fixtures" / "old_runs"
TINY = ("channels=8", "channel_mult=[1]", "progress=false", "tensorboard=false", "n_samples=1",
        "batch_size=4", "ckpt_every=0", "sample_steps=2")  # fmt: skip


def _config(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())


def test_base_flag_trains_the_run_the_config_key_trains(tmp_path, capsys) -> None:
    vq = OLD / "vqvae"
    code, _, err = run_cli(capsys, "train", "ldm", "--base", vq, "--steps", "1", "--out",
                           tmp_path / "a", *TINY)  # fmt: skip
    assert code == 0, err
    code, _, err = run_cli(capsys, "train", "ldm", f"autoencoder_run={vq}", "--data", "digits",
                           "--steps", "1", "--out", tmp_path / "b", *TINY)  # fmt: skip
    assert code == 0, err
    a, b = _config(tmp_path / "a"), _config(tmp_path / "b")
    assert a["data"] == "digits" == _config(vq)["data"]  # the base run's data
    assert a["model_config"] == b["model_config"]
    assert a["model_config"]["autoencoder_run"] == str(vq)


def test_bad_base_is_one_sentence_and_writes_nothing(tmp_path, capsys) -> None:
    out = tmp_path / "nope"
    cases = (
        (
            ("ldm", "--base", OLD / "ddpm-unet"),
            ("'ddpm' run", "'ldm' is built on a run of", "vqvae"),
        ),
        (("vqvae-prior", "--base", OLD / "vae-gauss"), ("'vae' run", "'vqvae'")),
        (("ddpm", "--base", OLD / "vqvae"), ("'ddpm' is built on none", "ldm", "controlnet")),
        (("ldm", "--base", OLD / "vqvae", f"autoencoder_run={OLD / 'vqvae'}"), ("once",)),
        (("ldm", "--base", tmp_path / "missing"), ("does not exist",)),
        (("dreambooth", "--base", OLD / "vqvae"), ("genzoo finetune RUN",)),
    )
    for args, needles in cases:
        code, _, err = run_cli(capsys, "train", *args, "--steps", "1", "--out", out)
        one_error(code, err, *needles)
        assert not out.exists()
