"""An audio run end to end: `genzoo train wavenet --data tones`, `genzoo sample --out x.wav` holds
exactly the samples the library draws, and `--out x.png` their spectrograms."""

import numpy as np
import pytest
import torch
from PIL import Image

import genzoo
from genzoo.audio import read_wav
from genzoo.cli import main
from genzoo.core.errors import ConfigError
from genzoo.data import dataset_info
from genzoo.runs.sample import AUDIO_GAP, save_audio_folder, save_audio_samples


def test_audio_samples_to_wav_and_png(tmp_path):
    info = dataset_info("tones")
    x = torch.rand(3, 4000, generator=torch.Generator().manual_seed(0)) * 2 - 1
    save_audio_samples(x, info, tmp_path / "x.wav")
    y, rate = read_wav(tmp_path / "x.wav")
    gap = torch.zeros(int(AUDIO_GAP * 8000))
    assert rate == 8000
    assert (y - torch.cat([x[0], gap, x[1], gap, x[2]])).abs().max() <= 0.5 / 32768 + 1e-7
    save_audio_samples(x, info, tmp_path / "x.png")
    img = np.asarray(Image.open(tmp_path / "x.png").convert("L"))
    assert img.shape[0] > 200 and img.std() > 10  # three spectrogram rows, not a blank picture


def test_audio_samples_to_a_folder_of_wavs(tmp_path):
    x = torch.rand(3, 4000, generator=torch.Generator().manual_seed(1)) * 2 - 1
    paths = save_audio_folder(x, dataset_info("tones"), tmp_path / "clips")
    assert [p.name for p in sorted((tmp_path / "clips").iterdir())] == [
        "sample_0000.wav",
        "sample_0001.wav",
        "sample_0002.wav",
    ]
    for p, clip in zip(paths, x, strict=True):
        y, rate = read_wav(p)
        assert rate == 8000 and y.shape == (4000,)
        assert (y - clip).abs().max() <= 0.5 / 32768 + 1e-7  # 16-bit PCM of that clip alone


@pytest.mark.slow
def test_wavenet_train_and_sample_wav_and_png(tmp_path, capsys):
    run = tmp_path / "wn"
    args = ["train", "wavenet", "--data", "tones", "--steps", "2", "--out", str(run)]
    tiny = ["residual_channels=4", "skip_channels=4", "layers_per_stack=2", "stacks=1"]
    assert (
        main([*args, *tiny, "crop=64", "n_samples=1", "progress=false", "tensorboard=false"]) == 0
    )
    assert list((run / "samples").glob("*.png"))  # the Trainer's spectrogram grid
    wav = tmp_path / "x.wav"
    assert main(["sample", str(run), "--n", "2", "--seed", "3", "--out", str(wav)]) == 0
    y, rate = read_wav(wav)
    x = genzoo.sample(run, 2, seed=3)  # (2, 4000): what the library draws with that seed
    assert rate == 8000 and x.shape == (2, 4000)
    gap = int(AUDIO_GAP * 8000)
    assert y.shape == (2 * 4000 + gap,)
    expected = torch.cat([x[0], torch.zeros(gap), x[1]])
    # 16-bit PCM of the same samples (a sample at exactly 1.0 is written as 32767 / 32768)
    assert (y - expected).abs().max() <= 1 / 32768 + 1e-7
    folder = tmp_path / "clips"
    assert main(["sample", str(run), "--n", "2", "--seed", "3", "--out", f"{folder}/"]) == 0
    for i in range(2):  # one WAV per clip, the same clips
        clip, _ = read_wav(folder / f"sample_{i:04d}.wav")
        assert (clip - x[i]).abs().max() <= 1 / 32768 + 1e-7
    png = tmp_path / "x.png"
    assert main(["sample", str(run), "--n", "2", "--out", str(png)]) == 0
    img = np.asarray(Image.open(png).convert("L"))
    assert img.shape[0] > 100 and img.std() > 10  # two spectrogram rows, not a blank picture


def test_wav_out_needs_an_audio_run(tmp_path):
    with pytest.raises(ConfigError, match="a WAV file needs an audio run, not images"):
        save_audio_samples(torch.zeros(1, 64), dataset_info("digits"), tmp_path / "x.wav")
