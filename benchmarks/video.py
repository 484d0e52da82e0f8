"""Video on moving-digits: video diffusion against the two-stream video GAN at an equal step count,
identity consistency, and frame prediction against copy-the-last-frame.

1. ``video-diffusion`` (arXiv:2204.03458, factorised space-time U-Net), ``video-gan``
   (arXiv:1609.02612) and ``video-worldmodel`` (GPT over per-frame VQ-VAE codes, GAIA-1
   arXiv:2309.17080 / TECO arXiv:2210.02396) are trained through the one Trainer for the same
   number of steps on the same batch size (``--steps``, ``--batch``) on
   ``moving-digits?size=16`` (8 frames of 16 x 16, one digit), unless their runs exist under
   ``--runs`` (``--models`` picks some of them).
2. ``--n`` clips from each are scored against as many test clips: the Fréchet video distance in
   the features of genzoo's video classifier (3-D CNN, class + motion direction heads, trained and
   cached on the train split), the per-frame Fréchet distance in the frame classifier's features,
   and identity consistency (the share of clips whose frames the identity classifier, which reads
   a window centred on the digit, gives one class; a real clip scores 1 by construction) and,
   graded, the share of frames that agree with the clip's most frequent class; both again with
   the *aligned* identity classifier (:func:`genzoo.metrics.video.get_identity_classifier` with
   ``aligned=True``: the window resampled so that the digit's sub-pixel centroid sits on its
   centre, trained on every frame and on copies moved off the pixel grid), which reads a real
   digit moved by a fraction of a pixel as itself where the plain one does not. Real
   test clips (another ``--n``) are scored the same way: the floor of each number; and clips
   whose every frame is from another real clip: what independent frames score (chance).
3. Prediction: video diffusion and the world model, each given the first ``--context`` frames of
   ``--n`` test clips, predict the rest; pixel MSE over the predicted frames against copying the
   last known frame, and the error of the tracked position (intensity centroid) against the true
   trajectory. ``--predict-frames 12``: on the 12-frame clips of ``moving-digits?size=16&frames=12``
   instead (4 known, 8 predicted), the 8-frame runs rolled out with a sliding window (each call
   is given the last ``--context`` frames, known or predicted, and adds ``8 - context``), and any
   run trained on 12-frame clips that exists under ``--runs12`` in one call; the world model at
   each ``--wm-sampling`` setting (``t1``: temperature 1, ``t0.5``: 0.5, ``greedy``: top_k = 1);
   beside copy-last-frame, the trivial baselines a predictor must beat to mean anything: blank
   frames (pixel MSE) and the frame's centre (tracked position). ``--pred-samples K`` (video
   diffusion): K continuations per clip, drawn one after the other (the first is what K = 1
   draws); the table gives the first, every draw's error averaged, and the mean of the K draws
   (an estimate of the model's minimum-MSE point prediction ``E[future | first frames]``; when
   rolled out, the mean of K whole rollouts). ``--one-step``: also the denoiser's own posterior
   mean in one call, ``D(noise, sigma_max | first frames)`` (rolled out on its own frames).
   Every prediction table ends with the moved last known frame (no network), blank frames /
   the frame's centre and copy-last-frame, and gives per predicted frame the share of clips
   read as the clip's digit.

5. Video diffusion started from an image model (Make-A-Video arXiv:2209.14792, Video LDM
   arXiv:2304.08818, AnimateDiff arXiv:2307.04725): ``--models video-diffusion-image`` first
   trains ``edm`` (the same U-Net as video diffusion's spatial layers) for ``--image-steps`` steps
   of ``--image-batch`` frames on ``frames:moving-digits?size=16`` (every frame of the train
   clips as an image), then ``video-diffusion --base`` that run for ``--steps`` steps;
   ``video-diffusion-frozen`` the same with ``freeze_spatial=true`` (only the temporal layers and
   the input convolution train); ``video-diffusion-image-noisier`` with training noise levels
   shifted up (``p_mean=0.5`` against EDM's -1.2), towards the levels where a clip's digit and
   path are decided, as Stable Video Diffusion shifts its noise levels up for video fine-tuning
   (arXiv:2311.15127). Scored as in item 2.

6. Moving content (issue 21): ``video-diffusion-st`` has full space-time attention (over all
   ``T * H * W`` positions of a clip) at the 8 x 8 level instead of per-pixel temporal attention
   (``spacetime_attn_resolutions=[8]``); ``video-diffusion-st-motion`` also gets, for prediction,
   the last known frame moved on by the shift between the last two known frames as an input
   (``motion_input=true``). The prediction table then also shows, per predicted frame, the share
   of clips whose frame the identity classifier reads as the clip's true digit (the real frames:
   the classifier's ceiling; chance about 10 %), and the trivial predictor that model is given:
   the moved last known frame itself (no network).

7. Content and motion apart (issue 21): ``video-mocogan`` (MoCoGAN, arXiv:1707.04993) draws one
   content code per clip and a motion path per frame from a GRU into one image generator, against
   a frame discriminator and a 3-D clip discriminator; trained like ``video-gan`` (``--steps``,
   ``--batch``), scored as in item 2 (it does not predict: ``--skip-prediction``).

8. Content and pose apart, rendered (issue 21): ``video-ddpae`` (DDPAE, arXiv:1806.04166, one
   object) decodes one content latent per clip to a sprite and places it at a pose per frame
   (spatial transformer; GRU mixture prior over the poses); trained like the others, scored as in
   item 2, and it predicts (item 3: content and poses of the known frames, the poses rolled on by
   the prior; with ``--predict-frames`` also in one call of ``frames`` frames, no sliding
   window). The sample table also shows real test clips with the digit moved off the pixel
   grid (:func:`genzoo.metrics.video.subpixel_frames`: each frame's digit placed by the same
   transformer at its true centre plus a random offset of up to +-0, 0.25 or 0.5 px per axis):
   how the identity classifier reads a digit that keeps its identity but is not on the pixel
   grid.

9. The world model's diffusion decoder (issue 21; GAIA-1 arXiv:2309.17080, Sec. 2.3):
   ``video-worldmodel-diffusion`` is ``video-worldmodel`` with ``decoder=diffusion`` (a video
   diffusion model with the U-Net of the ``video-diffusion`` entry, given the VQ-VAE's decoding of
   the codes on every frame, trained in the same loss, same steps and batch). In the sample table
   its clips are scored twice on the very same codes: decoded by the diffusion decoder and by its
   own VQ-VAE decoder (``decoder="vq"``); in prediction both decoders predict (each its own
   draw of codes).

10. Noise shared across frames (issue 21): ``video-diffusion-mixed`` is the ``video-diffusion``
    entry with ``noise_mix=1``, PYoCo's mixed noise prior (arXiv:2305.10474, Eq. (3)): each
    clip's noise is half one draw shared by all its frames, half each frame's own (frames'
    noises correlated by 1/2), in training and at the sampler's start; trained and scored as
    video diffusion is.

11. DDPAE's priors (issue 21): ``video-ddpae-vamp`` is the ``video-ddpae`` entry with the
    VampPrior on the content (``content_prior=vamp``, arXiv:1705.07120: a mixture of the content
    posterior at 64 learned pseudo-windows) and the first pose drawn from a mixture with a
    Gaussian at every pixel centre (``first_pose=grid``), instead of ``N(0, I)`` and one
    Gaussian; trained and scored as DDPAE is. ``--ddpae-temperatures 1 0.4 0.2`` scores every
    DDPAE entry's samples at each temperature (each standard deviation of a draw scaled, the
    mixture components still drawn by their weights); ``--ddpae-jitter`` adds, per row, the same
    contents at the same poses moved to random sub-pixel offsets (within +-0.5 px of their pixel
    centre), the control that DDPAE's identity does not come from poses on the pixel grid.

4. ``--text``: text-conditioned video diffusion on ``moving-shapes?size=16&n=2000`` (8 frames of
   16 x 16): ``video-diffusion`` with ``text=true`` trained for ``--steps`` steps, then one clip
   per prompt "a <colour> <shape> moving <direction>" for ``--n`` prompts cycling through the 30
   colour-shape pairs and the 4 directions; a clip matches its prompt when the ``shapes``
   attribute classifier of the text-to-image metrics reads the prompt's colour and shape on more
   than half of its frames and its tracked centroid moves in the prompt's direction
   (:func:`genzoo.metrics.video.prompt_match`). Guidance w = 3 (the run's default) against w = 1
   (no guidance) and w = 0 (the null caption: chance), and real test clips as the ceiling.
   ``--checkpoints S1 S2 ...`` scores those earlier checkpoints of the run (trained with
   ``ckpt_every`` and ``keep=0``); each row also gives the share of clips that move, the tracked
   travel and the straightness of the path, and a confusion of asked and tracked directions.
   ``--text --models video-worldmodel`` (or both names) scores the world model with the caption
   as its stream's prefix (``text=true``) by the same code on the same prompts (its run in
   ``RUNS/video-worldmodel-text``; w = 0 is its null caption, ``--wm-sampling`` its token
   sampling), with one more row per checkpoint: the real test clips through its VQ-VAE
   (encoded and decoded), the ceiling of what its frames can show. ``--held-out`` scores the
   other 60 of the 120 colour-shape-direction prompts with sampling seed 1 instead, to check a
   setting (e.g. the temperature) chosen on the default prompts.

    python benchmarks/video.py --threads 1
    python benchmarks/video.py --threads 1 --gif docs/img/video_diffusion.gif
    python benchmarks/video.py --threads 1 --models video-worldmodel   # one model only
    python benchmarks/video.py --threads 1 --models video-mocogan video-gan --skip-prediction
    python benchmarks/video.py --threads 1 --models video-ddpae --predict-frames 12 --n 128
    python benchmarks/video.py --threads 1 --skip-table --predict-frames 12 --n 128
    python benchmarks/video.py --threads 1 --runs runs/bench-video-stm --models \
        video-diffusion-st-motion --skip-table --predict-frames 12 --pred-samples 8 --one-step
    python benchmarks/video.py --threads 1 --runs runs/bench-video-img --models \
        video-diffusion-image --image-steps 3000 --skip-prediction --n 256 --sample-steps 10
    python benchmarks/video.py --threads 1 --text --runs runs/bench-video-text --steps 300 --n 60 \
        --gif docs/img/video_text.gif
    python benchmarks/video.py --threads 1 --text --models video-worldmodel --runs runs/vwm \
        --steps 3000 --n 60 --guidance 3 1 0
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
import time
from pathlib import Path

import torch

from genzoo.data import load_dataset
from genzoo.data.base import levels_to_model
from genzoo.diffusion.samplers import run_sampler
from genzoo.diffusion.schedules import karras_schedule
from genzoo.metrics.video import (
    frame_fd,
    fvd,
    get_frame_classifier,
    get_identity_classifier,
    get_video_classifier,
    identity_agreement,
    identity_consistency,
    identity_labels,
    motion_directions,
    prediction_errors,
    subpixel_frames,
)
from genzoo.models.diffusion.video import motion_frames
from genzoo.runs.load import open_run

SPEC = "moving-digits?size=16"
MODELS = {  # model -> its settings (the same steps and batch size for all)
    "video-diffusion": ["channels=16", "channel_mult=[1,2]"],
    "video-gan": [],
    "video-worldmodel": [],
    # item 7: content code per clip, GRU motion path (arXiv:1707.04993); hinge loss, spectral
    # norm in both discriminators and all 8 frames to D_I, chosen on a selection set (RESULTS)
    "video-mocogan": ["loss=hinge", "spectral_norm=true", "image_frames=8"],
    # item 8: one content latent per clip rendered at a pose per frame (arXiv:1806.04166)
    "video-ddpae": [],
    # item 11: DDPAE with the VampPrior on its content and a pose prior on the pixel grid
    "video-ddpae-vamp": ["content_prior=vamp", "first_pose=grid"],
    # item 9: the world model with a diffusion decoder (the U-Net of the video-diffusion entry)
    "video-worldmodel-diffusion": [
        "decoder=diffusion",
        "decoder_channels=16",
        "decoder_mult=[1,2]",
    ],
    "video-diffusion-image": ["channels=16", "channel_mult=[1,2]"],  # item 5: from an image run
    "video-diffusion-frozen": ["channels=16", "channel_mult=[1,2]", "freeze_spatial=true"],
    "video-diffusion-image-noisier": ["channels=16", "channel_mult=[1,2]", "p_mean=0.5"],
    # item 6: full space-time attention at the 8 x 8 level; and with the moved last frame as input
    "video-diffusion-st": ["channels=16", "channel_mult=[1,2]", "spacetime_attn_resolutions=[8]"],
    "video-diffusion-st-motion": [
        "channels=16",
        "channel_mult=[1,2]",
        "spacetime_attn_resolutions=[8]",
        "motion_input=true",
    ],
    # item 10: PYoCo's mixed noise, one noise draw shared by the frames (arXiv:2305.10474)
    "video-diffusion-mixed": ["channels=16", "channel_mult=[1,2]", "noise_mix=1"],
}
DEFAULT_MODELS = ["video-diffusion", "video-gan", "video-worldmodel"]
FROM_IMAGE = ("video-diffusion-image", "video-diffusion-frozen", "video-diffusion-image-noisier")
IMAGE_SETTINGS = ["channels=16", "channel_mult=[1,2]"]  # the image edm: the same U-Net
SPACETIME = ("video-diffusion-st", "video-diffusion-st-motion")
PREDICTORS = ("video-diffusion", "video-worldmodel", "video-ddpae", *FROM_IMAGE, *SPACETIME,
              "video-worldmodel-diffusion", "video-diffusion-mixed",
              "video-ddpae-vamp")  # fmt: skip
WM_SAMPLING = {"t1": {"temperature": 1.0}, "t0.5": {"temperature": 0.5}, "greedy": {"top_k": 1}}
TEXT_SPEC = "moving-shapes?size=16&n=2000"
TEXT_SETTINGS = ["text=true", "context_prob=0", "p_mean=0", "channels=16", "channel_mult=[1,2]",
                 "lr=2e-3"]  # fmt: skip
WM_TEXT_SETTINGS = ["text=true", "text_len=8", "codebook_size=128"]  # the caption's 7 tokens fit
TEXT_MODELS = ("video-diffusion", "video-worldmodel")


def registered(model: str) -> str:
    """The genzoo model a benchmark entry trains (its settings in :data:`MODELS`)."""
    if is_diffusion(model):
        return "video-diffusion"
    if model.startswith("video-ddpae"):
        return "video-ddpae"
    return "video-worldmodel" if model.startswith("video-worldmodel") else model


def diffusion_decoded(model) -> bool:
    """A world model run with the diffusion decoder (item 9)."""
    return getattr(model.config, "decoder", "vq") == "diffusion"


def is_diffusion(model: str) -> bool:
    return model.startswith("video-diffusion")


def ensure_image_run(runs: Path, args: argparse.Namespace) -> Path:
    """Item 5: the ``edm`` run on the video's frames that video diffusion starts from."""
    run = runs / "edm-frames"
    if not (run / "checkpoints").is_dir():
        cmd = [sys.executable, "-m", "genzoo", "--threads", str(args.threads), "train", "edm",
               "--data", f"frames:{SPEC}", "--steps", str(args.image_steps), "--out", str(run),
               f"batch_size={args.image_batch}", "progress=false", "tensorboard=false",
               *IMAGE_SETTINGS]  # fmt: skip
        print("training:", " ".join(cmd[2:]), flush=True)
        subprocess.run(cmd, check=True)
    return run


def ensure_run(model: str, runs: Path, args: argparse.Namespace) -> Path:
    run = runs / model
    if not (run / "checkpoints").is_dir():
        base = []
        if model in FROM_IMAGE:
            base = ["--base", str(ensure_image_run(runs, args))]
        name = registered(model)
        cmd = [sys.executable, "-m", "genzoo", "--threads", str(args.threads), "train", name,
               "--data", SPEC, *base, "--steps", str(args.steps), "--out", str(run),
               f"batch_size={args.batch}", "progress=false", "tensorboard=false",
               *MODELS[model]]  # fmt: skip
        print("training:", " ".join(cmd[2:]), flush=True)
        subprocess.run(cmd, check=True)
    return run


def text_benchmark(args: argparse.Namespace) -> None:
    """Item 4 of the module docstring."""
    from genzoo.core.io import load_state_strict
    from genzoo.core.runs import read_checkpoint
    from genzoo.data.shapes import COLOUR_NAMES, SHAPES, article
    from genzoo.data.video import SHAPE_DIRECTIONS
    from genzoo.metrics.text_to_image import train_attribute_classifier
    from genzoo.metrics.video import centroids, motion_directions, prompt_match

    names = [m for m in args.models if m in TEXT_MODELS] or ["video-diffusion"]
    clf = train_attribute_classifier(16)
    acc = clf.test_accuracy
    print(f"attribute classifier (shapes test split): colour {acc['colour']:.3f}, "
          f"shape {acc['shape']:.3f}")  # fmt: skip
    n = args.n
    idx = torch.arange(n)
    # --held-out: the other 60 of the 120 colour-shape-direction prompts (the direction shifted
    # by one, so a pair never meets the direction it has in the default set) and sampling seed 1
    shift = 1 if args.held_out else 0
    pair, direction = idx % 30, (idx + shift) % len(SHAPE_DIRECTIONS)
    colour, shape = pair // len(SHAPES), pair % len(SHAPES)
    prompts = []
    for c, s, d in zip(colour.tolist(), shape.tolist(), direction.tolist(), strict=True):
        name = f"{COLOUR_NAMES[c]} {SHAPES[s]}"
        prompts.append(f"{article(name)} {name} moving {SHAPE_DIRECTIONS[d]}")
    test = load_dataset(TEXT_SPEC, "test")
    assert test.x is not None and test.y is not None
    rows = []
    real = levels_to_model(test.x[:n], 256)
    ty, tdir = test.y[:n], test.extras["direction"][:n]
    rows.append(("real test clips (their own captions)", real, ty // 5, ty % 5, tdir,
                 float("nan")))  # fmt: skip
    clips_w: dict[float, torch.Tensor] = {}
    for model_name in names:
        world = model_name == "video-worldmodel"
        run = Path(args.runs) / f"{model_name}-text"
        if not (run / "checkpoints").is_dir():
            settings = WM_TEXT_SETTINGS if world else TEXT_SETTINGS
            cmd = [sys.executable, "-m", "genzoo", "--threads", str(args.threads), "train",
                   model_name, "--data", TEXT_SPEC, "--steps", str(args.steps), "--out",
                   str(run), f"batch_size={args.batch}", "progress=false", "tensorboard=false",
                   *settings]  # fmt: skip
            print("training:", " ".join(cmd[2:]), flush=True)
            subprocess.run(cmd, check=True)
        opened = open_run(run, ema=True, device="cpu")
        model = opened.model
        steps = args.checkpoints or [opened.step]
        # the world model draws tokens (--wm-sampling), video diffusion runs its sampler
        options = (
            {k: WM_SAMPLING[k] for k in args.wm_sampling}
            if world
            else {"": {"sampler": args.sampler, "steps": args.sample_steps}}
        )
        for step in steps:
            ckpt = run / "checkpoints" / f"step_{step:09d}"
            if step != opened.step or ckpt.is_dir():  # that checkpoint (ckpt_every, keep=0),
                # also when it is the latest and an earlier one was loaded before it
                files, _ = read_checkpoint(ckpt)
                load_state_strict(model, files["ema" if "ema" in files else "model"], str(ckpt))
            model.eval()
            if world:  # the ceiling: the real clips through its VQ-VAE
                with torch.no_grad():
                    rec = torch.cat([model.decode_codes(model.encode_codes(real[i : i + 30]))
                                     for i in range(0, n, 30)])  # fmt: skip
                rows.append((f"{model_name}, step {step}: real clips through its VQ-VAE", rec,
                             ty // 5, ty % 5, tdir, float("nan")))  # fmt: skip
            for opt_name, opts in options.items():
                for w in args.guidance:
                    g = torch.Generator().manual_seed(shift)
                    t0 = time.perf_counter()
                    clips = torch.cat([
                        model.sample(min(30, n - i), prompts=prompts[i : i + 30], guidance=w,
                                     generator=g, **opts).cpu()
                        for i in range(0, n, 30)
                    ])  # fmt: skip
                    clips_w[w] = clips
                    label = f", {opt_name}" if opt_name else ""
                    rows.append((f"{model_name}, text, step {step}{label}, w = {w:g}", clips,
                                 colour, shape, direction, time.perf_counter() - t0))  # fmt: skip
    print(f"\n{n} prompts on {TEXT_SPEC} (8 frames, 16 x 16); {', '.join(names)} text=true "
          f"(batch {args.batch}); video diffusion: {args.sampler}, {args.sample_steps} "
          "steps\n")  # fmt: skip
    print("| clips | colour | shape | direction | all three (goal >= 80%) | frames: colour / "
          "shape | moved >= 1 px | travel px | straightness | sampling s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, clips, c, s, d, secs in rows:
        m = {k: float(v.mean()) for k, v in prompt_match(clf.read, clips, c, s, d).items()}
        moved = float((motion_directions(clips) >= 0).float().mean())
        # the tracked path: first-to-last travel, and that over the path's length (1: a
        # straight glide, as every real clip; near 0: a shape that jitters on the spot)
        path = centroids(clips)  # (B, T, 2)
        travel = (path[:, -1] - path[:, 0]).norm(dim=1)
        length = (path[:, 1:] - path[:, :-1]).norm(dim=2).sum(1).clamp_min(1e-6)
        print(f"| {name} | {m['colour']:.1%} | {m['shape']:.1%} | {m['direction']:.1%} | "
              f"{m['all']:.1%} | {m['frame_colour']:.1%} / {m['frame_shape']:.1%} | "
              f"{moved:.1%} | {float(travel.mean()):.2f} | {float((travel / length).mean()):.2f} "
              f"| {secs:.0f} |", flush=True)  # fmt: skip
    print("\ntracked direction (columns) of the clips asked for each direction (rows):\n")
    for name, clips, _, _, d, _ in rows:  # a confusion table per row: where the motion goes
        got = motion_directions(clips)
        dirs = [*SHAPE_DIRECTIONS, "still"]
        table = torch.zeros(len(SHAPE_DIRECTIONS), len(dirs), dtype=torch.long)
        for want, k in zip(d.tolist(), got.tolist(), strict=True):
            table[want, k if k >= 0 else len(SHAPE_DIRECTIONS)] += 1
        cells = "; ".join(f"{a}: " + " ".join(f"{b} {v}" for b, v in zip(dirs, r.tolist(),
                          strict=True) if v) for a, r in zip(SHAPE_DIRECTIONS, table,
                          strict=True))  # fmt: skip
        print(f"- {name}: {cells}")
    print(f"date {datetime.date.today()}, torch {torch.__version__}, threads {args.threads}")
    if args.gif:
        from genzoo.viz import save_video

        w = max(clips_w)
        save_video(clips_w[w][:12], model.info, args.gif, fps=4, scale=4)
        print(
            f"wrote {args.gif}: the first 12 prompts at w = {w:g}, {names[-1]}, step "
            f"{steps[-1]}: " + "; ".join(prompts[:12])
        )


def sample_table(
    args: argparse.Namespace, models: dict, g: torch.Generator
) -> list[tuple[str, torch.Tensor, float]]:
    """Item 2 of the module docstring: FVD, per-frame FD and identity consistency."""
    test = load_dataset(SPEC, "test")
    assert test.x is not None
    n = args.n
    real = levels_to_model(test.x[:n], 256)  # (n, T, 1, H, W)
    ref = levels_to_model(test.x[n : 2 * n], 256)  # the floor: other real clips
    t0 = time.perf_counter()
    frame_clf = get_frame_classifier(SPEC)
    video_clf = get_video_classifier(SPEC)
    id_clf = get_identity_classifier(SPEC)
    al_clf = get_identity_classifier(SPEC, aligned=True)
    print(f"classifiers ready in {time.perf_counter() - t0:.0f} s: frame accuracy "
          f"{frame_clf.meta['test_accuracy']:.3f}, identity (digit window) accuracy "
          f"{id_clf.meta['test_accuracy']:.3f} (aligned: {al_clf.meta['test_accuracy']:.3f}), "
          "video class/direction accuracy "
          f"{video_clf.meta['test_class_accuracy']:.3f}/"
          f"{video_clf.meta['test_direction_accuracy']:.3f}")  # fmt: skip

    t = ref.shape[1]  # chance: frame t taken from clip i + t, so every frame from another clip
    mixed = ref[(torch.arange(n)[:, None] + torch.arange(t)) % n, torch.arange(t)]
    rows = [("real test clips", ref, float("nan")),
            (f"real frames of {t} different clips (chance)", mixed, float("nan"))]  # fmt: skip
    centre = test.extras["centre"][n : 2 * n, :, 0]  # the yardstick on digits off the pixel grid
    for jitter in (0.0, 0.25, 0.5):
        rows.append((f"real clips, digit moved off the pixel grid by up to +-{jitter:g} px",
                     subpixel_frames(ref, centre, jitter, seed=7), float("nan")))  # fmt: skip
    for m, model in models.items():
        t0 = time.perf_counter()
        if diffusion_decoded(model):  # item 9: one draw of codes, both decoders
            codes = [model.sample_codes(min(32, n - i), generator=g) for i in range(0, n, 32)]
            vq = torch.cat([model.render_codes(z, decoder="vq").cpu() for z in codes])
            clips = torch.cat([model.render_codes(z, generator=g).cpu() for z in codes])
            rows.append((f"{m}, diffusion decoder", clips, time.perf_counter() - t0))
            rows.append((f"{m}, its VQ decoder on the same codes", vq, float("nan")))
            continue
        if registered(m) == "video-ddpae":  # item 11: temperatures, the sub-pixel control
            rows += ddpae_rows(m, model, args, n, g)
            continue
        opts = {"sampler": args.sampler, "steps": args.sample_steps} if is_diffusion(m) else {}
        clips = torch.cat([model.sample(min(32, n - i), generator=g, **opts).cpu()
                           for i in range(0, n, 32)])  # fmt: skip
        rows.append((m, clips, time.perf_counter() - t0))

    print(f"\n{n} clips each against {n} test clips of {SPEC} (8 frames, 16 x 16); "
          "training steps (checkpoint step) per model: "
          + ", ".join(f"{m} {k}" for m, k in args.run_steps.items()) + "\n")  # fmt: skip
    # a still or collapsed sampler keeps its "identity" trivially: the share of clips whose
    # tracked digit travels >= 1 px, and how many of the 10 digits the clips' first frames show
    print(
        "| clips | FVD (genzoo video CNN) | per-frame FD | identity consistency | frames "
        "agreeing with the clip's digit | identity consistency, aligned classifier | frames "
        "agreeing, aligned | moving >= 1 px | digits shown | sampling s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, clips, secs in rows:
        ident = [f"{float(f(c, clips).mean()):.1%}" for c in (id_clf, al_clf)
                 for f in (identity_consistency, identity_agreement)]  # fmt: skip
        moving = float((motion_directions(clips) >= 0).float().mean())
        shown = len(identity_labels(id_clf, clips[:, :1]).unique())  # digits in first frames
        print(f"| {name} | {fvd(video_clf, clips, real):.2f} | "
              f"{frame_fd(frame_clf, clips, real):.2f} | {' | '.join(ident)} | "
              f"{moving:.1%} | {shown} | {secs:.0f} |", flush=True)  # fmt: skip
    if args.identity_png:
        keep = [r for r in rows if r[0] == "real test clips" or r[0] in args.identity_models]
        identity_picture(keep, al_clf, args.identity_png)
        print(f"wrote {args.identity_png}: the first 4 clips of {len(keep)} rows, each frame "
              "with the aligned identity classifier's digit under it")  # fmt: skip
    return rows


def ddpae_rows(
    m: str, model, args: argparse.Namespace, n: int, g: torch.Generator
) -> list[tuple[str, torch.Tensor, float]]:
    """Item 11: a DDPAE entry's clips at each ``--ddpae-temperatures`` (the first one unnamed),
    and with ``--ddpae-jitter`` the same contents at the same poses moved to their pixel centre
    plus a uniform offset within +-0.5 px per frame and axis (the sub-pixel control: a model whose
    identity came from poses on the pixel grid would lose it there)."""
    rows = []
    for j, tau in enumerate(args.ddpae_temperatures):
        t0 = time.perf_counter()
        drawn = [model.sample_latents(min(32, n - i), generator=g, temperature=tau)
                 for i in range(0, n, 32)]  # fmt: skip
        clips = torch.cat([model.decode(z, p).cpu() * 2 - 1 for z, p, _ in drawn])
        label = m if j == 0 and tau == 1.0 else f"{m}, temperature {tau:g}"
        rows.append((label, clips, time.perf_counter() - t0))
        if args.ddpae_jitter:
            jg = torch.Generator().manual_seed(7)
            moved = [p.floor() + 0.5 + torch.rand(p.shape, generator=jg) - 0.5 for _, p, _ in drawn]
            clips = torch.cat([model.decode(z, q).cpu() * 2 - 1
                               for (z, _, _), q in zip(drawn, moved, strict=True)])  # fmt: skip
            rows.append((f"{label}: the same sprites, poses at random sub-pixel offsets", clips,
                         float("nan")))  # fmt: skip
    return rows


def identity_picture(rows: list, clf, path: str, clips: int = 4, scale: int = 4) -> None:
    """A PNG of the first ``clips`` clips of each row (one clip per line, its frames left to
    right, ``scale`` x nearest), with the digit the (aligned) identity classifier reads in every
    frame printed under it (red where it differs from the clip's first frame), and the row's
    name above its clips."""
    from PIL import Image, ImageDraw

    t, _, h, w = rows[0][1].shape[1:]
    cell, label, title = w * scale + 4, 12, 14
    height = sum(title + clips * (h * scale + label) for _ in rows)
    img = Image.new("RGB", (t * cell, height), "white")
    draw = ImageDraw.Draw(img)
    y = 0
    for name, c, _secs in rows:
        draw.text((2, y + 1), name, fill="black")
        y += title
        labels = identity_labels(clf, c[:clips])  # (clips, T)
        for i in range(clips):
            for k in range(t):
                frame = ((c[i, k].mean(0) + 1) * 127.5).clamp(0, 255).byte().numpy()
                tile = Image.fromarray(frame).resize((w * scale, h * scale), Image.NEAREST)
                img.paste(tile.convert("RGB"), (k * cell + 2, y))
                d = int(labels[i, k])
                draw.text((k * cell + w * scale // 2 - 2, y + h * scale),
                          str(d), fill="black" if d == int(labels[i, 0]) else "red")  # fmt: skip
            y += h * scale + label
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def one_step_mean(model, cond: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Video diffusion's own estimate of ``E[frames | first frames]`` in one network call: the
    denoiser ``D(x, sigma_max | cond)`` on pure noise at the largest sampling sigma (EDM trains
    ``D`` to the posterior mean ``E[x0 | x_sigma, cond]``, and at ``sigma_max`` = 80 the noisy
    input holds almost nothing of ``x0``), clamped and with the known frames kept."""
    n = cond.shape[0]
    c = model.sampling_condition(n, cond.to(model.device), {})
    s = float(model.config.sigma_max)
    x = model.initial_noise(n, s, g)
    sigma = torch.full((n,), s, device=x.device)
    return model.sampling_denoiser(x, sigma, c).cpu()


def from_moved(
    model, cond: torch.Tensor, g: torch.Generator, sigma: float, steps: int, sampler: str
) -> torch.Tensor:
    """SDEdit (arXiv:2108.01073) from the hand extrapolation: the known frames ``cond`` and, on
    the unknown ones, the last known frame moved on (:func:`motion_frames`), noised to ``sigma``
    and sampled down from there (``steps`` Karras sigmas) given the known frames: the network
    corrects the extrapolation instead of drawing the frames from noise."""
    n, k = cond.shape[:2]
    c = model.sampling_condition(n, cond.to(model.device), {})
    x0 = torch.zeros(n, *model.info.shape, device=model.device)  # (n, T, C, H, W)
    x0[:, :k] = cond.to(x0)
    x0 = x0 + motion_frames(x0, torch.full((n,), k, device=x0.device), model.config.max_shift)
    cfg = model.config
    sig = karras_schedule(steps, cfg.sigma_min, sigma, cfg.rho)
    x = x0 + sigma * torch.randn(x0.shape, generator=g).to(x0)
    out = run_sampler(sampler, model.sampling_denoiser, x, sig, cond=c, generator=g)
    return model.to_data(out).cpu()


def draw_predictions(
    m: str, model, real: torch.Tensor, k: int, frames: int, args, g: torch.Generator, opts: dict
) -> tuple[list[torch.Tensor], float]:
    """``--pred-samples`` K continuations of the first ``k`` frames of ``real`` (one after the
    other with the same generator ``g``, so the first is the one a single-sample run draws),
    rolled out to ``frames`` frames when that is longer than the run's clips."""
    n = real.shape[0]
    draws = []
    t0 = time.perf_counter()
    for _ in range(args.pred_samples if is_diffusion(m) else 1):
        draws.append(torch.cat([
            rollout(model, real[i : i + 32, :k], frames, k, g, **opts) for i in range(0, n, 32)
        ]))  # fmt: skip
    return draws, time.perf_counter() - t0


def score_predictions(
    rows: list[tuple[str, torch.Tensor | list[torch.Tensor], float]],
    real: torch.Tensor,
    k: int,
    centre: torch.Tensor,
    digit: torch.Tensor,
    title: str,
    fit: torch.Tensor,
) -> None:
    """Prints the prediction tables: pixel MSE, tracked position error and the gain over
    copy-last-frame for each row (a list of draws: the mean over the draws of each draw's
    error), then the trivial predictors (the moved last frame, blank frames / the frame's
    centre, copy-last-frame), and per predicted frame the share of clips that the identity
    classifier reads as the clip's digit."""
    n, t = real.shape[:2]
    id_clf = get_identity_classifier(SPEC)

    @torch.no_grad()
    def reads(clips: torch.Tensor) -> str:  # per predicted frame: read as the clip's digit
        pred = identity_labels(id_clf, clips[:, k:])  # (n, T - k)
        return " ".join(f"{v:.0%}" for v in (pred == digit[:, None]).float().mean(0).tolist())

    def errors(pred: torch.Tensor) -> dict[str, float]:
        return {key: v.mean().item() for key, v in prediction_errors(pred, real, k, centre).items()}

    moved = real.clone()  # the moved last known frame (motion_input's input), no network
    moved[:, k:] = motion_frames(real, torch.full((n,), k), 3)[:, k:]
    blank = real.clone()
    blank[:, k:] = 1 / 256 - 1  # level 0: black
    copy = real.clone()
    copy[:, k:] = real[:, k - 1 : k]
    base = errors(copy)
    print(f"\n{title}\n")
    print("| predictor | pixel MSE | tracked position error (px) | MSE below copy "
          "(goal >= 30%) | s |")  # fmt: skip
    print("|---|---|---|---|---|")
    read_lines = [f"| real frames (the classifier's ceiling) | {reads(real)} |"]
    for name, pred, secs in rows:
        draws = pred if isinstance(pred, list) else [pred]
        e = [errors(p) for p in draws]
        mse = sum(x["mse"] for x in e) / len(e)
        pos = sum(x["pos_err"] for x in e) / len(e)
        print(f"| {name} | {mse:.4f} | {pos:.2f} | {1 - mse / base['mse_copy']:+.1%} | "
              f"{secs:.0f} |")  # fmt: skip
        if not isinstance(pred, list):
            read_lines.append(f"| {name} | {reads(pred)} |")
    e = errors(moved)
    print(f"| last known frame moved on (no network) | {e['mse']:.4f} | {e['pos_err']:.2f} "
          f"| {1 - e['mse'] / base['mse_copy']:+.1%} | — |")  # fmt: skip

    # the extrapolation hedged towards black, as a mean over futures is: frame t's intensities
    # times the factor a_t that minimises its MSE (closed form) over the other clips ``fit``
    # (test clips n..2n-1, not those scored), and over these very clips (an optimistic bar)
    def lum_moved(clips: torch.Tensor) -> torch.Tensor:  # (B, T-k, C, H, W) intensities
        kk = torch.full((clips.shape[0],), k)
        return (motion_frames(clips, kk, 3)[:, k:] + 1) / 2

    def dim_factors(clips: torch.Tensor) -> torch.Tensor:  # (T-k,)
        lum, lum_true, dims = lum_moved(clips), (clips[:, k:] + 1) / 2, (0, 2, 3, 4)
        return (lum * lum_true).sum(dims) / (lum * lum).sum(dims).clamp_min(1e-12)

    for a, where in ((dim_factors(fit), "other test clips"), (dim_factors(real), "these clips")):
        dimmed = real.clone()
        dimmed[:, k:] = (lum_moved(real) * a[None, :, None, None, None]) * 2 - 1
        e = errors(dimmed)
        print(f"| last known frame moved on, dimmed (best factor per frame on {where}: "
              f"{' '.join(f'{v:.2f}' for v in a.tolist())}) | {e['mse']:.4f} | "
              f"{e['pos_err']:.2f} | {1 - e['mse'] / base['mse_copy']:+.1%} | — |")  # fmt: skip
    e = errors(blank)
    mid = torch.full_like(centre[:, k:], real.shape[-1] / 2)
    pos_mid = (mid - centre[:, k:]).norm(dim=-1).mean().item()
    print(f"| blank frames (pixels) / frame centre (position) | {e['mse']:.4f} | {pos_mid:.2f} "
          f"| {1 - e['mse'] / base['mse_copy']:+.1%} | — |")  # fmt: skip
    print(f"| copy last frame | {base['mse_copy']:.4f} | {base['pos_err_copy']:.2f} | — | — |")
    read_lines.append(f"| last known frame moved on (no network) | {reads(moved)} |")
    read_lines.append(f"| copy last frame | {reads(copy)} |")
    print(f"\npredicted frames {k}..{t - 1} read as the clip's digit by the identity "
          "classifier (share of clips, per frame; chance about 10%)\n")  # fmt: skip
    print("| predictor | frames |\n|---|---|")
    print("\n".join(read_lines), flush=True)


def predictor_rows(
    m: str,
    model,
    real: torch.Tensor,
    k: int,
    frames: int,
    args,
    g: torch.Generator,
    opts: dict,
    label: str,
) -> list[tuple[str, torch.Tensor | list[torch.Tensor], float]]:
    """The rows of one run: its first draw (what a single-sample run scores), with
    ``--pred-samples`` K > 1 also every draw's error averaged and the mean of the K draws (the
    model's minimum-MSE point prediction, estimated), and for video diffusion with
    ``--one-step`` the denoiser's one-call posterior mean (:func:`one_step_mean`, rolled out
    with the same sliding window)."""
    draws, secs = draw_predictions(m, model, real, k, frames, args, g, opts)
    rows: list[tuple[str, torch.Tensor | list[torch.Tensor], float]] = [
        (f"{label}, single sample", draws[0], secs / len(draws))
    ]
    if len(draws) > 1:
        rows.append((f"{label}, single sample (error averaged over {len(draws)} draws)", draws,
                     secs / len(draws)))  # fmt: skip
        j = 2
        while j < len(draws):  # the first j draws' mean: how the estimate converges in K
            rows.append((f"{label}, mean of {j} samples", torch.stack(draws[:j]).mean(0),
                         secs * j / len(draws)))  # fmt: skip
            j *= 2
        rows.append((f"{label}, mean of {len(draws)} samples", torch.stack(draws).mean(0), secs))
    extra = []
    if args.one_step and is_diffusion(m):
        extra.append(("one-step denoiser mean at sigma_max", one_step_mean))
    for sigma in args.from_moved if is_diffusion(m) else []:

        def sdedit(model, cond, g, sigma=sigma):
            return from_moved(model, cond, g, sigma, args.sample_steps, args.sampler)

        extra.append((f"sampled from the moved last frame at sigma {sigma:g}", sdedit))
    n = real.shape[0]
    for name, predict in extra:
        t0 = time.perf_counter()
        pred = torch.cat([rollout(model, real[i : i + 32, :k], frames, k, g, predict)
                          for i in range(0, n, 32)])  # fmt: skip
        rows.append((f"{label}, {name}", pred, time.perf_counter() - t0))
    # DDPAE's prior rolls on: all frames in one call
    if registered(m) == "video-ddpae" and frames > model.info.shape[0]:
        t0 = time.perf_counter()
        pred = torch.cat([model.sample(min(32, n - i), cond=real[i : i + 32, :k], generator=g,
                                       frames=frames, **opts).cpu()
                          for i in range(0, n, 32)])  # fmt: skip
        rows.append((f"{label}, all {frames} frames in one call", pred, time.perf_counter() - t0))
    return rows


def prediction(args: argparse.Namespace, models: dict, g: torch.Generator) -> dict:
    """Item 3 of the module docstring on the runs' own clip length."""
    test = load_dataset(SPEC, "test")
    assert test.x is not None and test.y is not None
    n, k = args.n, args.context
    real = levels_to_model(test.x[:n], 256)  # (n, T, 1, H, W)
    t = real.shape[1]
    centre = test.extras["centre"][:n, :, 0]  # (n, T, 2) true centres of the digit
    preds: dict[str, torch.Tensor] = {}
    rows: list[tuple[str, torch.Tensor | list[torch.Tensor], float]] = []
    for m in [m for m in PREDICTORS if m in models]:
        opts = {"sampler": args.sampler, "steps": args.sample_steps} if is_diffusion(m) else {}
        got = predictor_rows(m, models[m], real, k, t, args, g, opts, m)
        preds[m] = got[0][1]  # type: ignore[assignment]
        rows += got
        if diffusion_decoded(models[m]):  # item 9: its VQ decoder too
            rows += predictor_rows(m, models[m], real, k, t, args, g, {"decoder": "vq"},
                                   f"{m}, its VQ decoder")  # fmt: skip
    if rows:
        score_predictions(rows, real, k, centre, test.y[:n],
                          f"prediction of frames {k}..{t - 1} from the first {k} ({n} test "
                          f"clips)", levels_to_model(test.x[n : 2 * n], 256))  # fmt: skip
    return preds


def rollout(
    model, known: torch.Tensor, frames: int, context: int, g, predict=None, **opts
) -> torch.Tensor:
    """``known`` first frames ``(B, k, C, H, W)`` continued to ``frames`` frames by a run of
    shorter clips: each call is given the last ``context`` frames (known or predicted) and adds
    the ``T - context`` it predicts after them (``predict(model, cond, g)``, e.g.
    :func:`one_step_mean`, instead of ``model.sample``)."""
    x = known
    t = model.info.shape[0]
    while x.shape[1] < frames:
        cond = x[:, -context:]
        if predict is not None:
            out = predict(model, cond, g)
        else:
            out = model.sample(x.shape[0], cond=cond, generator=g, **opts).cpu()
        x = torch.cat([x, out[:, context : context + frames - x.shape[1]]], 1)
        assert out.shape[1] == t
    return x


def prediction_long(args: argparse.Namespace, models: dict) -> None:
    """``--predict-frames``: item 3 on longer clips (see the module docstring)."""

    frames, k, n = args.predict_frames, args.context, args.n
    spec = f"{SPEC}&frames={frames}"
    test = load_dataset(spec, "test")
    assert test.x is not None and test.y is not None
    real = levels_to_model(test.x[:n], 256)  # (n, frames, 1, H, W)
    centre = test.extras["centre"][:n, :, 0]
    runs: list[tuple[str, object, str]] = [
        (m, models[m], "8-frame run, rolled out") for m in PREDICTORS if m in models
    ]
    if args.runs12:
        for m in PREDICTORS:
            p = Path(args.runs12) / m
            if (p / "checkpoints").is_dir():
                opened = open_run(p, ema=True, device="cpu")
                runs.append((m, opened.model, f"{frames}-frame run, step {opened.step}"))
    rows: list[tuple[str, torch.Tensor | list[torch.Tensor], float]] = []
    for m, model, how in runs:
        settings = (
            {f"{args.sampler} {args.sample_steps} steps": {"sampler": args.sampler,
                                                          "steps": args.sample_steps}}
            if is_diffusion(m)
            else {"t1": {"temperature": 1.0}}  # video-ddpae: every draw at its own scale
            if registered(m) == "video-ddpae"
            else {s: WM_SAMPLING[s] for s in args.wm_sampling}
        )  # fmt: skip
        if diffusion_decoded(model):  # item 9: the same settings through its VQ decoder too
            settings |= {f"{s}, VQ decoder": {**o, "decoder": "vq"} for s, o in settings.items()}
        for name, opts in settings.items():
            g = torch.Generator().manual_seed(0)
            got = predictor_rows(m, model, real, k, frames, args, g, opts, f"{m} ({how}), {name}")
            rows += got
            for row in got:
                print(row[0], "done", flush=True)
            if args.gif:  # the first 8 true clips above their predictions
                from genzoo.viz import save_video

                own = "_own" if how.startswith(f"{frames}-frame") else ""  # a run of these clips
                how_ = name.split(",")[0].split()[0] + ("_vq" if "VQ decoder" in name else "")
                slug = f"{m}_prediction{frames}{own}_{how_}"
                path = Path(args.gif).with_name(slug.replace("-", "_") + ".gif")
                pred = got[0][1]
                assert isinstance(pred, torch.Tensor)
                save_video(torch.cat([real[:8], pred[:8]]), test.info, path, fps=4, scale=4)
                print(f"wrote {path}")
    score_predictions(rows, real, k, centre, test.y[:n],
                      f"prediction of frames {k}..{frames - 1} from the first {k} ({n} test "
                      f"clips of {spec})", levels_to_model(test.x[n : 2 * n], 256))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", default="runs/bench-video", help="where the runs are (or go)")
    ap.add_argument("--steps", type=int, default=600, help="training steps of each model")
    ap.add_argument("--batch", type=int, help="clips per training step (8; --text: 16)")
    ap.add_argument("--n", type=int, default=128, help="clips scored per model")
    ap.add_argument("--sampler", default="dpmpp-2m", help="video diffusion's sampler")
    ap.add_argument("--sample-steps", type=int, default=12, help="its sampling steps")
    ap.add_argument("--ddpae-temperatures", nargs="+", type=float, default=[1.0],
                    help="item 11: the sample table's rows of each DDPAE entry at these "
                    "temperatures")  # fmt: skip
    ap.add_argument("--ddpae-jitter", action="store_true", help="item 11: also each DDPAE row's "
                    "sprites at poses moved to random sub-pixel offsets")  # fmt: skip
    ap.add_argument("--context", type=int, default=4, help="known frames for prediction")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--gif", help="also write video diffusion's samples and predictions as GIFs")
    ap.add_argument("--identity-png", help="sample table: also write a PNG of the first clips "
                    "of the real row and of --identity-models, each frame with its digit as the "
                    "aligned identity classifier reads it")  # fmt: skip
    ap.add_argument("--identity-models", nargs="*", default=["video-diffusion", "video-ddpae"],
                    help="the rows --identity-png shows beside the real clips")  # fmt: skip
    ap.add_argument("--models", nargs="*", default=DEFAULT_MODELS, choices=list(MODELS),
                    help="the models measured (default: the first three)")  # fmt: skip
    ap.add_argument("--image-steps", type=int, default=3000,
                    help="item 5: training steps of the image run")  # fmt: skip
    ap.add_argument("--image-batch", type=int, default=64, help="item 5: its frames per step")
    ap.add_argument("--predict-frames", type=int, default=0,
                    help="predict on clips of this many frames (0: the runs' own 8)")  # fmt: skip
    ap.add_argument("--runs12", help="--predict-frames: where runs trained on those clips are")
    ap.add_argument("--wm-sampling", nargs="+", default=["t1"], choices=list(WM_SAMPLING),
                    help="the world model's token sampling in prediction")  # fmt: skip
    ap.add_argument("--pred-samples", type=int, default=1,
                    help="video diffusion: K sampled continuations per clip; K > 1 also scores "
                         "their mean (the minimum-MSE point prediction)")  # fmt: skip
    ap.add_argument("--one-step", action="store_true",
                    help="video diffusion: also score the denoiser's one-call posterior mean "
                         "at sigma_max")  # fmt: skip
    ap.add_argument("--from-moved", type=float, nargs="*", default=[],
                    help="video diffusion: also score samples started from the moved last frame "
                         "noised to these sigmas (SDEdit)")  # fmt: skip
    ap.add_argument("--skip-table", action="store_true", help="prediction only")
    ap.add_argument("--skip-prediction", action="store_true", help="the sample table only")
    ap.add_argument(
        "--text",
        action="store_true",
        help="text-conditioned video diffusion (and/or, with --models, the world model) on "
        "moving-shapes instead (item 4)",
    )
    ap.add_argument("--guidance", type=float, nargs="+", default=[3.0, 1.0, 0.0],
                    help="--text: the guidance scales compared")  # fmt: skip
    ap.add_argument("--held-out", action="store_true",
                    help="--text: the other 60 colour-shape-direction prompts and sampling seed 1, "
                         "to check a setting chosen on the default prompts")  # fmt: skip
    ap.add_argument("--checkpoints", type=int, nargs="+",
                    help="--text: score these checkpoint steps of the run (saved with "
                         "ckpt_every and keep=0; default: the latest)")  # fmt: skip
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.batch is None:
        args.batch = 16 if args.text else 8
    if args.text:
        text_benchmark(args)
        return
    runs = Path(args.runs)
    paths = {m: ensure_run(m, runs, args) for m in args.models}
    opened = {m: open_run(p, ema=True, device="auto") for m, p in paths.items()}
    models = {m: o.model for m, o in opened.items()}
    args.run_steps = {m: o.step for m, o in opened.items()}  # what was trained, not --steps
    g = torch.Generator().manual_seed(0)
    rows: list[tuple[str, torch.Tensor, float]] = []
    preds: dict[str, torch.Tensor] = {}
    if not args.skip_table:
        rows = sample_table(args, models, g)
    if not args.skip_prediction and args.predict_frames:
        prediction_long(args, models)
    elif not args.skip_prediction:
        preds = prediction(args, models, g)
    print(f"date {datetime.date.today()}, torch {torch.__version__}, threads {args.threads}")
    if args.gif:  # samples and predictions (truth above, prediction below) of each model
        from genzoo.viz import save_video

        out = Path(args.gif)
        sampled = {name.split(",")[0]: clips for name, clips, _ in reversed(rows)}
        names = {"video-diffusion": out.stem, "video-gan": "video_gan",
                 "video-worldmodel": "video_worldmodel",
                 "video-diffusion-image": "video_diffusion_image",
                 "video-diffusion-frozen": "video_diffusion_frozen",
                 "video-diffusion-image-noisier": "video_diffusion_image_noisier",
                 "video-diffusion-st": "video_diffusion_st",
                 "video-diffusion-st-motion": "video_diffusion_st_motion",
                 "video-mocogan": "mocogan", "video-ddpae": "ddpae",
                 "video-ddpae-vamp": "ddpae_vamp",
                 "video-worldmodel-diffusion": "video_worldmodel_diffusion"}  # fmt: skip
        test = load_dataset(SPEC, "test")
        assert test.x is not None
        real = levels_to_model(test.x[:8], 256)
        for m, model in models.items():
            path = out.with_name(names[m] + ".gif")
            if m in sampled:
                save_video(sampled[m][:16], model.info, path, fps=4, scale=4)
            if m in preds:
                both = torch.cat([real[:8], preds[m][:8]])
                path = out.with_name(names[m] + "_prediction.gif")
                save_video(both, model.info, path, fps=4, scale=4)
        print(f"wrote the GIFs next to {out}")


if __name__ == "__main__":
    main()
