"""genzoo: every family of deep generative model, one library, one way to train, sample, evaluate.

import genzoo
run = genzoo.train("ddpm", "digits", budget="3m")
x = genzoo.load(run).sample(64)
"""

from genzoo.runs import evaluate, interpolate, load, open_run, sample, train

__version__ = "0.1.0"
__all__ = ["__version__", "evaluate", "interpolate", "load", "open_run", "sample", "train"]
