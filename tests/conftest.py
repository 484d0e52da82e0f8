import pytest
import torch


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
