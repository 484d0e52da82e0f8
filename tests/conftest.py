import os

import pytest
import torch

# The Trainer trains with as many threads as there are idle cores (genzoo.core.threads); tests
# pin one, so that their bit-exact comparisons do not depend on what else the machine runs.
os.environ.setdefault("GENZOO_THREADS", "1")


@pytest.fixture(autouse=True)
def _deterministic_threads():
    """Tests run single-threaded: steadier on shared 2-core machines, and deterministic."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def fast_train():
    """Trainer settings for tests: no progress bar, no TensorBoard."""
    return {"progress": False, "tensorboard": False}
