"""`genzoo stylize`: a Gatys run on tiny inputs writes its picture and reports the losses; bad
inputs (a pickle weights file, an unknown texture, adain without a run, an --out that is not a
PNG) are one sentence each."""

from __future__ import annotations

import pickle

from PIL import Image

from tests.cli.cli_helpers import one_error, run_cli


def test_stylize_writes_the_picture_and_reports_the_style_loss(tmp_path, capsys) -> None:
    out = tmp_path / "out.png"
    style = tmp_path / "style.png"
    Image.new("RGB", (20, 12), (200, 30, 30)).save(style)  # colour, other size and aspect
    code, text, err = run_cli(capsys, "stylize", "digits@0", style, "--out", out, "--steps", 5)
    assert code == 0, err
    assert "style converted from 3 to 1 channels" in text and "resized from 20x12 to 8x8" in text
    assert "style (Gram) loss" in text
    with Image.open(out) as im:
        assert im.size == (8, 8) and im.mode == "L"


def test_stylize_bad_inputs_are_one_sentence(tmp_path, capsys) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (marker.touch, ())

    bad = tmp_path / "vgg.pkl"
    bad.write_bytes(pickle.dumps({"w": Evil()}))
    one_error(
        *run_cli(capsys, "stylize", "digits@0", "texture:dots", "--weights", bad)[::2], "pickle"
    )
    assert not marker.exists()
    one_error(*run_cli(capsys, "stylize", "digits@0", "texture:waves")[::2], "texture:stripes")
    one_error(
        *run_cli(capsys, "stylize", "digits@0", "texture:dots", "--method", "adain")[::2], "--run"
    )
    jpg = tmp_path / "out.xyz"  # an extension no image writer knows: refused before any work
    one_error(*run_cli(capsys, "stylize", "digits@0", "texture:dots", "--out", jpg)[::2], ".png")
    assert not jpg.exists()


def test_stylize_numbers_are_checked_before_any_work(tmp_path, capsys) -> None:
    """``--style-weight nan`` wrote an all-NaN picture and reported a NaN reduction, a negative
    weight maximised the style loss, ``--alpha`` outside [0, 1] or with Gatys (which has no such
    trade-off) was taken without a word: each is one sentence, and nothing is written."""
    out = tmp_path / "out.png"
    base = ("stylize", "digits@0", "texture:dots", "--out", out, "--steps", 1)
    for extra, needle in [
        (("--style-weight", "nan"), "style_weight = nan must be a finite number"),
        (("--style-weight", "-1"), "style_weight = -1.0 must be >= 0"),
        (("--alpha", "2"), "alpha = 2.0 must be <= 1"),
        (("--alpha", "0.5"), "method 'gatys' trades content for style with style_weight"),
    ]:
        one_error(*run_cli(capsys, *base, *extra)[::2], needle)
        assert not out.exists()
