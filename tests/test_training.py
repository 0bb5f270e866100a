import itertools

import pytest
import torch

from diffusion_lab.models import UNet
from diffusion_lab.schedules import NoiseSchedule
from diffusion_lab.training import EMA, diffusion_loss, load_checkpoint, save_checkpoint, train

from .fakes import OracleModel

SCHEDULE = NoiseSchedule.linear(100, beta_end=0.2)


def _tiny_model(seed=0):
    torch.manual_seed(seed)
    return UNet(image_size=8, channels=(8, 16), attention=False)


def _toy_data(n=64):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 8, 8, generator=g).round() * 2 - 1  # binary blobs in {-1, 1}


@pytest.mark.parametrize("prediction", ["eps", "x0", "v"])
def test_oracle_model_has_zero_loss(prediction):
    x0 = _toy_data(16)
    model = OracleModel(x0, SCHEDULE, prediction)
    loss = diffusion_loss(
        model, x0, SCHEDULE, prediction=prediction, generator=torch.Generator().manual_seed(1)
    )
    assert loss.item() < 1e-8


def test_loss_per_example_at_given_timesteps():
    x0 = _toy_data(4)
    zero = lambda xt, t: torch.zeros_like(xt)  # noqa: E731
    t = torch.tensor([0, 10, 50, 99])
    per = diffusion_loss(zero, x0, SCHEDULE, prediction="x0", t=t, reduction="none")
    torch.testing.assert_close(per, x0.pow(2).flatten(1).mean(1))  # predicting 0 for x0 = +-1
    with pytest.raises(ValueError, match="unknown prediction 'noise'"):
        diffusion_loss(zero, x0, SCHEDULE, prediction="noise")


def test_loss_decreases_on_a_tiny_run():
    model = _tiny_model()
    losses = [
        s.loss
        for s in train(
            model,
            _toy_data(),
            SCHEDULE,
            num_steps=80,
            batch_size=16,
            lr=3e-3,
            warmup_steps=5,
            progress=False,
        )
    ]
    assert len(losses) == 80
    assert sum(losses[-20:]) / 20 < 0.8 * sum(losses[:20]) / 20


def test_train_yields_records_with_timesteps():
    steps = list(
        itertools.islice(
            train(_tiny_model(), _toy_data(), SCHEDULE, num_steps=5, batch_size=4, progress=False),
            3,
        )
    )
    assert [s.step for s in steps] == [1, 2, 3]
    assert steps[0].t.shape == (4,) and steps[0].t.dtype == torch.long
    assert steps[-1].seconds >= steps[0].seconds >= 0


def test_checkpoint_resumes_with_identical_next_losses(tmp_path):
    data, path = _toy_data(), tmp_path / "run.pt"
    kwargs = dict(num_steps=12, batch_size=8, progress=False, warmup_steps=3)
    straight = [s.loss for s in train(_tiny_model(), data, SCHEDULE, **kwargs)]
    # first session: the notebook stops consuming after 7 steps (break), which saves
    model, ema = _tiny_model(), None
    run = train(model, data, SCHEDULE, checkpoint=path, checkpoint_every=100, **kwargs)
    first = [s.loss for s in itertools.islice(run, 7)]
    run.close()
    assert load_checkpoint(path)["step"] == 7
    # second session: a fresh model object picks up where the first left off
    model, ema = _tiny_model(seed=99), EMA(_tiny_model(seed=99))
    second = [s.loss for s in train(model, data, SCHEDULE, checkpoint=path, ema=ema, **kwargs)]
    assert len(second) == 5
    torch.testing.assert_close(torch.tensor(first + second), torch.tensor(straight))


class _StopAt(torch.nn.Module):
    """Wraps a model and raises `error` on the n-th forward call."""

    def __init__(self, model, n, error):
        super().__init__()
        self.model, self.n, self.error, self.calls = model, n, error, 0
        self.config = model.config

    def forward(self, xt, t, cond=None):
        self.calls += 1
        if self.calls == self.n:
            if self.error == "nan":
                return self.model(xt, t) * float("nan")
            raise self.error
        return self.model(xt, t)


def test_interrupted_run_leaves_a_loadable_checkpoint(tmp_path, capsys):
    path = tmp_path / "run.pt"
    model = _StopAt(_tiny_model(), 6, KeyboardInterrupt())
    steps = list(
        train(
            model,
            _toy_data(),
            SCHEDULE,
            num_steps=50,
            batch_size=4,
            checkpoint=path,
            checkpoint_every=100,
            progress=False,
        )
    )
    assert len(steps) == 5
    assert "Interrupted at step 5" in capsys.readouterr().out
    state = load_checkpoint(path, _StopAt(_tiny_model(), 0, None))
    assert state["step"] == 5 and "optimizer" in state and "generator" in state


def test_non_finite_loss_stops_with_advice_and_keeps_last_checkpoint(tmp_path):
    path = tmp_path / "run.pt"
    model = _StopAt(_tiny_model(), 9, "nan")
    with pytest.raises(FloatingPointError, match="smaller learning rate"):
        list(
            train(
                model,
                _toy_data(),
                SCHEDULE,
                num_steps=50,
                batch_size=4,
                checkpoint=path,
                checkpoint_every=4,
                progress=False,
            )
        )
    assert load_checkpoint(path)["step"] == 8  # the last good checkpoint, not overwritten


def test_checkpoint_refuses_another_architecture_and_damaged_files(tmp_path):
    path = save_checkpoint(tmp_path / "a.pt", _tiny_model(), step=3)
    assert not (tmp_path / "a.pt.tmp").exists()  # written to a temporary name, then renamed
    other = UNet(image_size=8, channels=(8, 32), attention=False)
    with pytest.raises(
        ValueError,
        match=r"another model \(channels: checkpoint \(8, 16\) vs model "
        r"\(8, 32\)\)",
    ):
        load_checkpoint(path, other)
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(path.read_bytes()[:200])
    with pytest.raises(OSError, match="not a readable checkpoint"):
        load_checkpoint(damaged)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(OSError, match="not a diffusion_lab checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_ema_follows_the_weights_with_warmup():
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    ema = EMA(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)  # effective decay min(0.9, 2 / 11)
    torch.testing.assert_close(ema.model.weight, torch.tensor([[1 - 2 / 11]]))
    for _ in range(200):
        ema.update(model)
    torch.testing.assert_close(ema.model.weight, torch.tensor([[1.0]]))
    assert not ema.model.weight.requires_grad
    with pytest.raises(ValueError, match="decay"):
        EMA(model, decay=1.0)


def _first_losses(mixed_precision, n=3):
    run = train(
        _tiny_model(),
        _toy_data(),
        SCHEDULE,
        num_steps=n,
        batch_size=16,
        warmup_steps=1,
        progress=False,
        mixed_precision=mixed_precision,
    )
    return [s.loss for s in run]


def test_bf16_mixed_precision_trains_and_keeps_float32_state():
    model, ema = _tiny_model(), EMA(_tiny_model(), 0.9)
    run = train(
        model, _toy_data(), SCHEDULE, num_steps=80, batch_size=16, lr=3e-3, warmup_steps=5,
        ema=ema, progress=False, mixed_precision="bf16",
    )  # fmt: skip
    losses = [s.loss for s in run]
    assert sum(losses[-20:]) / 20 < 0.8 * sum(losses[:20]) / 20
    assert all(p.dtype == torch.float32 for p in ema.model.parameters())
    fp32, bf16 = _first_losses("no"), _first_losses("bf16")
    assert fp32 != bf16  # the forward pass really ran in bfloat16 ...
    assert bf16[0] == pytest.approx(fp32[0], rel=0.05)  # ... and gives nearly the same loss
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = diffusion_loss(model, _toy_data(8), SCHEDULE, prediction="v")
    assert loss.dtype == torch.float32  # the loss is taken in float32 even under autocast


def test_auto_mixed_precision_follows_the_hardware(monkeypatch):
    from diffusion_lab import utils

    monkeypatch.setattr(utils, "_cpu_flags", lambda: frozenset({"avx2"}))
    assert not utils.native_bf16("cpu")
    assert _first_losses("auto") == _first_losses("no")
    monkeypatch.setattr(utils, "_cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    assert utils.native_bf16("cpu") == torch.backends.mkldnn.is_available()
    if utils.native_bf16("cpu"):
        assert _first_losses("auto") == _first_losses("bf16")
    assert not utils.native_bf16("meta")
    assert utils.uses_bf16("auto", "cpu") == utils.native_bf16("cpu")
    assert utils.uses_bf16("bf16", "meta") and not utils.uses_bf16("no", "cpu")
    with pytest.raises(ValueError, match="unknown mixed_precision 'fp16'; allowed: 'no'"):
        next(train(_tiny_model(), _toy_data(), SCHEDULE, num_steps=1, mixed_precision="fp16"))


def test_train_draws_logit_normal_timesteps_when_asked():
    def drawn(**kwargs):
        run = train(
            _tiny_model(), _toy_data(), SCHEDULE, num_steps=20, batch_size=32, progress=False,
            **kwargs,
        )  # fmt: skip
        return torch.cat([s.t for s in run]).float() / len(SCHEDULE)

    assert drawn().mean().item() == pytest.approx(0.5, abs=0.05)
    assert drawn(logit_normal=(1.0, 0.5)).mean().item() > 0.65  # sigmoid(1) = 0.73: noisier half
    narrow = drawn(logit_normal=(-1.0, 0.3))  # std of u about 0.3 * sigmoid'(-1) = 0.06
    assert narrow.mean().item() == pytest.approx(0.27, abs=0.03) and narrow.std().item() < 0.1
    with pytest.raises(ValueError, match="std > 0"):
        next(train(_tiny_model(), _toy_data(), SCHEDULE, num_steps=1, logit_normal=(0.0, 0.0)))
