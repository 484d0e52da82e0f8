"""genzoo sample --truncation: a stylegan2 run draws truncated samples; a psi outside [0, 1] and
a model without truncation, and one that draws no samples, are one sentence each."""

from __future__ import annotations

from cli_helpers import one_error, run_cli

import genzoo

TINY_SG = {"width": 8, "latent_dim": 8, "mapping_layers": 2}


def test_cli_sample_truncation(tmp_path, fast_train, capsys) -> None:
    over = {**fast_train, **TINY_SG, "batch_size": 4}
    run = genzoo.train("stylegan2", "digits", steps=1, out=tmp_path / "s", overrides=over)
    png = tmp_path / "t.png"
    code, _, _ = run_cli(capsys, "sample", run, "--truncation", 0.7, "--n", 4, "--out", png)
    assert code == 0 and png.exists()
    code, _, err = run_cli(capsys, "sample", run, "--truncation", 1.5, "--out", png)
    one_error(code, err, "truncation = 1.5", "[0, 1]")
    gan_over = {**fast_train, "width": 4, "latent_dim": 4, "batch_size": 4}
    gan = genzoo.train("gan", "digits", steps=1, out=tmp_path / "g", overrides=gan_over)
    code, _, err = run_cli(capsys, "sample", gan, "--truncation", 0.5, "--out", png)
    one_error(code, err, "--truncation", "'gan' has no truncation", "'stylegan2'")
    # a model that draws no samples at all: that sentence, before its options are looked at
    ada = genzoo.train(
        "adain", "styled:digits", steps=1, out=tmp_path / "a", overrides={**fast_train, "width": 4}
    )
    code, _, err = run_cli(capsys, "sample", ada, "--truncation", 0.5, "--out", png)
    one_error(code, err, "'adain'", "does not draw samples")
