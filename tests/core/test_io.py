import pickle

import pytest
import torch

from genzoo.core.errors import CheckpointError
from genzoo.core.io import atomic_write, load_tensors, save_tensors


def test_round_trip(tmp_path):
    t = {"a": torch.randn(3, 4), "b": torch.arange(5)}
    save_tensors(tmp_path / "x.safetensors", t)
    back = load_tensors(tmp_path / "x.safetensors")
    assert torch.equal(back["a"], t["a"]) and torch.equal(back["b"], t["b"])


def test_failed_write_keeps_previous_file(tmp_path):
    path = tmp_path / "x.safetensors"
    save_tensors(path, {"a": torch.ones(2)})

    def broken(p):
        p.write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(path, broken)
    assert torch.equal(load_tensors(path)["a"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["x.safetensors"]  # no temp file left


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickle_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    for name in ("evil.safetensors", "evil.pt"):
        f = tmp_path / name
        f.write_bytes(pickle.dumps(Payload(str(marker))))
        with pytest.raises(CheckpointError, match="pickle"):
            load_tensors(f)
    assert not marker.exists()


def test_corrupt_file_is_a_clear_error(tmp_path):
    f = tmp_path / "bad.safetensors"
    f.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_tensors(f)


@pytest.mark.parametrize("protocol_byte", [2, 3, 4, 5])
def test_safetensors_whose_header_length_looks_like_a_pickle_marker_loads(tmp_path, protocol_byte):
    """A header of 0x0280..0x05ff bytes begins with b"\\x80\\x02".."\\x80\\x05", the pickle
    protocol markers: such files are still safetensors (found with a 2-step GAN checkpoint)."""
    from safetensors.torch import save

    f = tmp_path / "t.safetensors"
    for pad in range(1600):  # vary the key length until the header length hits the range
        tensors = {"w" + "x" * pad: torch.arange(3.0)}
        if save(tensors)[:2] == bytes([0x80, protocol_byte]):
            break
    save_tensors(f, tensors)
    assert f.read_bytes()[:2] == bytes([0x80, protocol_byte])
    torch.testing.assert_close(load_tensors(f), tensors)
