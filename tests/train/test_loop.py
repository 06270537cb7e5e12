import torch

from badminima.data import Dataset
from badminima.data.augment import augment, random_crop
from badminima.spec import PhaseSpec
from badminima.train import EpochState, lr_at, train_phase
from badminima.train.callbacks import stop_rule


def test_lr_schedule_matches_the_paper():
    # paper 000: 0.1 for epochs 1-150, 0.01 for 151-250, 0.001 for 251-350
    phase = PhaseSpec(epochs=350, lr=0.1, lr_milestones=(150, 250))
    assert [lr_at(phase, e) for e in (1, 150, 151, 250, 251, 350)] == \
        [0.1, 0.1, 0.1 * 0.1, 0.1 * 0.1, 0.1 * 0.1 * 0.1, 0.1 * 0.1 * 0.1]


def test_random_crop_against_a_brute_force_shift():
    x = torch.rand(16, 3, 6, 5)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    out = random_crop(x, 2, g1)
    offsets = [torch.randint(0, 5, (16,), generator=g2) for _ in range(2)]
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(16):
        dy, dx = offsets[0][i].item(), offsets[1][i].item()
        assert torch.equal(out[i], padded[i, :, dy:dy + 6, dx:dx + 5])


def test_signal_augmentation_shifts_without_flipping():
    x = torch.arange(1.0, 41.0).view(1, 1, 40).repeat(64, 1, 1)
    data = Dataset("s", x, torch.zeros(64, dtype=torch.long), x, torch.zeros(64, dtype=torch.long), 2, "signal",
                   crop_padding=4)
    out, labels = augment(x, data.y_train, data, torch.Generator().manual_seed(0))
    assert torch.equal(labels, data.y_train)
    for row in out[:, 0]:
        nz = row[row != 0]
        assert torch.all(nz[1:] - nz[:-1] == 1)  # a contiguous increasing run: shifted, never reversed
        assert len(nz) >= 36


def test_stop_rule_needs_clean_full_accuracy():
    torch.manual_seed(0)
    x = torch.randn(64, 2)
    y = (x[:, 0] > 0).long()
    model = torch.nn.Linear(2, 2)
    history = []
    result = train_phase(model, x, y, PhaseSpec(epochs=200, lr=0.5, batch_size=16), seed=0, augment=None,
                         callbacks=[stop_rule(PhaseSpec(epochs=200), x, y)], history=history)
    assert result.stop_reason == "100% train accuracy"
    assert (model(x).argmax(1) == y).all()
    assert result.history[-1]["clean_train_acc"] == 1.0
    assert all(h.get("clean_train_acc", 0) < 1.0 for h in result.history[:-1])


def test_patience_stops_a_run_that_cannot_improve():
    x = torch.randn(32, 2)
    y = torch.randint(0, 2, (32,))
    phase = PhaseSpec(epochs=500, lr=1e-9, patience=3)  # a learning rate too small to change anything
    result = train_phase(torch.nn.Linear(2, 2), x, y, phase, 0, None, [stop_rule(phase, x, y)])
    assert result.stop_reason == "no improvement" and result.epochs == 4


def test_divergence_is_reported():
    x = torch.randn(32, 2)
    y = torch.randint(0, 2, (32,))
    result = train_phase(torch.nn.Linear(2, 2), x, y, PhaseSpec(epochs=50, lr=float("inf")), 0, None, [])
    # the first step makes the weights non-finite after epoch 1's (finite) loss was taken: caught at epoch 1
    assert result.diverged and result.epochs == 1


def test_callbacks_see_every_epoch_and_can_stop():
    seen = []

    def stop_at_three(state: EpochState):
        seen.append(state.epoch)
        if state.epoch == 3:
            state.stop_reason = "test"

    x, y = torch.randn(8, 2), torch.randint(0, 2, (8,))
    result = train_phase(torch.nn.Linear(2, 2), x, y, PhaseSpec(epochs=10), 0, None, [stop_at_three])
    assert seen == [1, 2, 3] and result.epochs == 3 and result.stop_reason == "test"


def test_point_augmentation_is_two_noisy_copies():
    x = torch.tensor([[0.0, 0.0], [5.0, 5.0]])
    y = torch.tensor([0, 1])
    data = Dataset("p", x, y, x, y, 2, "points", noise_std=0.1)
    xa, ya = augment(x, y, data, torch.Generator().manual_seed(0))
    assert xa.shape == (4, 2) and ya.tolist() == [0, 1, 0, 1]
    assert torch.allclose(xa, torch.cat([x, x]), atol=0.6) and not torch.equal(xa[:2], xa[2:])
