"""Digit quality against CPU training time, for the lesson's recipe and the bundled model.

For each time mark (1, 3 and 10 minutes by default) trains a fresh lesson-5 model with the
lesson's settings, its learning-rate schedule sized so that it ends at the mark (the steps per
second are measured first on a short run), then samples digits with 1000-step DDPM from the EMA
weights and prints the course metric beside the same figures for real digits. `--seeds 3` repeats
each mark with other seeds (weights, batches and timesteps; the sampling noise stays the same).
Run it alone: a second torch process on the same cores slows both many times over.

    python benchmarks/train_digits.py [--samples 500] [--marks 1 3 10] [--seeds 1] [--device cpu]
    python benchmarks/train_digits.py --marks  # the bundled model only
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import platform
import statistics
import time

import torch

from diffusion_lab import NoiseSchedule, load_mnist
from diffusion_lab.metrics import digit_report, reference_report
from diffusion_lab.models import UNet
from diffusion_lab.pretrained import load_pretrained
from diffusion_lab.samplers import ddpm_sample, last
from diffusion_lab.training import EMA, train
from diffusion_lab.utils import native_bf16

# the settings of notebooks/05_training.ipynb (keep the two in step)
LESSON_MODEL = dict(channels=(16, 32, 64), attention=False)
LESSON_TRAIN = dict(
    batch_size=64, lr=2e-3, prediction="v", logit_normal=(0.5, 1.0), mixed_precision="auto"
)
LESSON_EMA = 0.995


def sample_report(model, schedule, prediction, n, device, seed=0):
    x_T = torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)).to(device)
    start = time.perf_counter()
    images = last(
        ddpm_sample(
            model.eval(),
            schedule,
            x_T,
            prediction=prediction,
            generator=torch.Generator().manual_seed(seed + 1),
            progress=False,
        )
    )
    return digit_report(images.cpu()), time.perf_counter() - start


def lesson_run(data, schedule, device, *, num_steps, seed, max_minutes=None):
    """A fresh lesson-5 model trained for `num_steps`; returns (EMA model, last record)."""
    torch.manual_seed(seed)
    model = UNet(**LESSON_MODEL).to(device)
    ema = EMA(model, LESSON_EMA)
    run = train(
        model, data, schedule, num_steps=num_steps, ema=ema, max_minutes=max_minutes,
        generator=torch.Generator().manual_seed(seed), progress=False, **LESSON_TRAIN,
    )  # fmt: skip
    return ema.model, collections.deque(run, maxlen=1)[0]  # run to the end, keep the last record


def steps_per_second(data, schedule, device) -> float:
    """Measured on 100 lesson steps (EMA update included), after 10 to warm up."""
    torch.manual_seed(0)
    model = UNet(**LESSON_MODEL).to(device)
    ema = EMA(model, LESSON_EMA)
    run = train(model, data, schedule, num_steps=110, ema=ema, progress=False, **LESSON_TRAIN)
    first = next(itertools.islice(run, 9, None))
    end = collections.deque(run, maxlen=1)[0]
    return (end.step - first.step) / (end.seconds - first.seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument(
        "--marks", type=float, nargs="*", default=[1, 3, 10], help="none: the bundled model only"
    )
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-bundled", action="store_true", help="skip the bundled model")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {device}, bfloat16 in hardware: "
        f"{native_bf16(device)}; lesson settings: {LESSON_MODEL} {LESSON_TRAIN}"
    )
    print(f"real digits (n={args.samples}):  {reference_report(args.samples)}", flush=True)
    schedule = NoiseSchedule.cosine().to(device)
    data = load_mnist()[0]
    if args.marks:
        rate = steps_per_second(data, schedule, device)
        print(f"lesson model: {rate:.2f} steps per second", flush=True)
    for mark in args.marks:
        confident = []
        for seed in range(args.seeds):
            num_steps = round(60 * mark * rate)
            model, record = lesson_run(
                data, schedule, device, num_steps=num_steps, seed=seed, max_minutes=mark * 1.1
            )
            report, seconds = sample_report(model, schedule, "v", args.samples, device)
            confident.append(report.confident)
            short = "" if record.step == num_steps else f" STOPPED EARLY, of {num_steps} planned"
            print(
                f"lesson model, {mark:g} min, seed {seed} ({record.step} steps{short} in "
                f"{record.seconds:.0f} s): {report}  [sampling {seconds:.0f} s]",
                flush=True,
            )
        if args.seeds > 1:
            print(
                f"lesson model, {mark:g} min: confident {100 * statistics.mean(confident):.1f}% "
                f"on average over {args.seeds} seeds (from {100 * min(confident):.1f}% to "
                f"{100 * max(confident):.1f}%)",
                flush=True,
            )
    if args.no_bundled:
        return
    bundled = load_pretrained("digits")
    report, seconds = sample_report(
        bundled.model.to(device),
        bundled.schedule.to(device),
        bundled.prediction,
        args.samples,
        device,
    )
    resumed = bundled.info.get("resumed_from_step")
    part = f", the part after resuming at step {resumed}" if resumed else ""
    print(
        f"bundled model ({bundled.info.get('minutes')} min{part}, {bundled.info.get('hardware')}): "
        f"{report}  [sampling {seconds:.0f} s]"
    )


if __name__ == "__main__":
    main()
