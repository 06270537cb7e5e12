import pytest
import torch

from badminima.store import CorruptCheckpoint, load_checkpoint, save_checkpoint
from badminima.store.checkpoints import load_optimizer, optimizer_payload


def _tensors():
    torch.manual_seed(0)
    return {"model/w": torch.randn(20, 30), "model/b": torch.randn(30)}


def test_round_trip(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, _tensors(), {"epoch": 3})
    tensors, meta = load_checkpoint(path)
    assert meta == {"epoch": 3} and torch.equal(tensors["model/w"], _tensors()["model/w"])
    assert not list(tmp_path.glob("*.tmp"))


def test_truncated_checkpoint_is_detected(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, _tensors(), {})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptCheckpoint):
        load_checkpoint(path)


def test_bit_flip_in_the_data_is_detected(tmp_path):
    path = tmp_path / "c.safetensors"
    save_checkpoint(path, _tensors(), {})
    data = bytearray(path.read_bytes())
    data[-17] ^= 0x10  # inside the tensor bytes
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptCheckpoint, match="checksum"):
        load_checkpoint(path)


def test_pickle_payload_is_never_executed(tmp_path):
    import pickle

    class Boom:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(CorruptCheckpoint):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


def test_optimizer_state_round_trip(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    tensors, meta = optimizer_payload(opt)
    save_checkpoint(tmp_path / "o.safetensors", tensors, meta)
    loaded, meta2 = load_checkpoint(tmp_path / "o.safetensors")
    opt2 = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    load_optimizer(opt2, loaded, meta2)
    for p in model.parameters():
        assert torch.equal(opt.state[p]["momentum_buffer"], opt2.state[p]["momentum_buffer"])
    assert opt2.param_groups[0]["lr"] == 0.1
