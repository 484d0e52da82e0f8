"""Argument fuzzing (hypothesis): whatever the command line holds, ``genzoo`` exits with 0, 2 (one
sentence on stderr) or 130, never with a traceback. The generated commands cannot start a long
job: training lengths are invalid or already reached, ``compare`` always names an unknown model.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import genzoo
from genzoo.cli import main
from genzoo.train.trainer import TrainConfig

TINY = {"progress": False, "tensorboard": False, "latent_dim": 2, "hidden": [8]}
TINY.update(batch_size=16, n_samples=4, ckpt_every_s=0)
STEPS = 2


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch payload-ran",))


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    """A working folder with a tiny finished run, a pickle, a file and an empty folder."""
    root = tmp_path_factory.mktemp("argv")
    run = genzoo.train("vae", "toy2d:moons", steps=STEPS, out=root / "run", overrides=TINY)
    (root / "evil.pt").write_bytes(pickle.dumps(_Payload()))
    (root / "notes.txt").write_text("hello\n")
    (root / "empty").mkdir()
    return root, run


junk = st.text(max_size=10)
counts = st.sampled_from(["-5", "0", "1", "3", "x", "1.5", ""])  # (a huge count is just slow)
ints = st.one_of(counts, st.sampled_from(["99999999999999999999", "-99999999999999999999"]))
names = st.sampled_from(["vae", "ddpm", "gan", "nope", "VAE", "", "vae,ddpm"])
specs = st.one_of(
    st.sampled_from(["toy2d:moons", "toy2d:nope", "digits", "mnist", "folder:empty", "folder:"]),
    junk,
)
runs = st.one_of(st.just("run"), st.sampled_from(["evil.pt", "notes.txt", "empty", "missing", ""]))
keys = st.sampled_from([*TrainConfig.field_names(), "latent_dim", "hidden", "model.x", "zz"])
override = st.builds(lambda k, v: f"{k}={v}", keys, st.one_of(junk, ints))


def _no_length(o: str) -> bool:
    """A ``key=value`` that sets no training length (``steps=3``, ``budget=1h`` would train)."""
    return not o.startswith(("steps", "budget"))


bad_steps = st.sampled_from(["-1", "0", "x", "1.5", ""])
bad_budget = st.sampled_from(["soon", "-5", "0", "1h30x", "nan", ""])


def _opts(draw, table):
    """Some of the options in ``table`` (name -> strategy of its value), in any order."""
    chosen = draw(st.lists(st.sampled_from(sorted(table)), unique=True, max_size=len(table)))
    out = []
    for name in chosen:
        value = draw(table[name])
        out += [name] if value is None else [name, value]
    return out


@st.composite
def argvs(draw):
    cmd = draw(st.sampled_from(["train", "resume", "sample", "eval", "inpaint", "compare", "list"]))
    flag = st.none()
    if cmd == "train":
        argv = ["train", *draw(st.lists(names, max_size=1))]
        argv += _opts(draw, {"--data": specs, "--steps": bad_steps, "--budget": bad_budget})
        argv += _opts(draw, {"--out": st.sampled_from(["new", "run", "evil.pt"]), "--name": junk})
        argv += draw(st.lists(override.filter(_no_length), max_size=3))
    elif cmd == "resume":  # continuing the finished run: already at its length, or invalid
        argv = ["train", "--resume", draw(runs)]
        argv += _opts(draw, {"--steps": st.sampled_from([str(STEPS), "-1", "x"])})
        argv += draw(st.lists(override.filter(_no_length)))
    elif cmd == "sample":
        argv = ["sample", draw(runs)]
        table = {"--n": counts, "--sampler": junk, "--steps": counts, "--eta": ints, "--seed": ints}
        argv += _opts(draw, {**table, "--out": st.sampled_from(["s.png", "s.npy", "s.txt"])})
    elif cmd == "eval":
        argv = ["eval", draw(runs), "--n", draw(st.sampled_from(["-3", "0", "4", "x"]))]
        argv += _opts(draw, {"--seed": ints, "--json": flag})
    elif cmd == "inpaint":
        argv = ["inpaint", draw(runs)]
        argv += _opts(draw, {"--n": counts, "--mask": junk, "--steps": counts, "--seed": ints})
    elif cmd == "compare":
        bad_models = st.sampled_from(["nope", "vae,nope", ","])
        argv = ["compare", "--models", draw(bad_models), "--out", "cmp"]
        argv += _opts(draw, {"--data": specs, "--budget": bad_budget, "--seeds": counts})
    else:
        argv = ["list", *draw(st.lists(st.sampled_from(["models", "all", "x"]), max_size=1))]
    if draw(st.booleans()):  # and some noise anywhere
        pos = draw(st.integers(0, len(argv)))
        noise = st.one_of(junk, st.sampled_from(["--help", "--bogus", "-x", "--", "a=b"]))
        argv.insert(pos, draw(noise))
    return argv


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(argv=argvs())
@example(argv=["sample", "run", "--n", "2", "--seed", "99999999999999999999"])
@example(argv=["sample", "run", "--n", "0"])
@example(argv=["eval", "run", "--n", "-3"])
@example(argv=["train", "vae", "--data", "toy2d:moons"])  # no length: nothing written
@example(argv=["train", "--resume", "run", "--steps", "2", "seed=-99999999999999999999"])
@example(argv=["train", "--resume", "evil.pt"])
def test_any_command_line_exits_0_2_or_130_without_traceback(sandbox, argv):
    root, _ = sandbox
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    os.chdir(root)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as e:  # argparse: --help (0) or a usage error (2)
                code = e.code
    finally:
        os.chdir(old)
    text = err.getvalue()
    assert code in (0, 2, 130), (argv, code, text[-2000:])
    assert "Traceback" not in text, (argv, text[-2000:])
    if code == 2 and text.startswith("genzoo: error: "):
        assert len(text.strip().splitlines()) == 1, (argv, text)
    assert not (root / "payload-ran").exists(), argv
    # a command that failed wrote no half-made run (no fresh training can succeed here)
    assert not list(root.glob("runs/*/config.yaml")) and not (root / "new").exists(), argv
    assert genzoo.open_run(root / "run").step == STEPS  # the run is never damaged
