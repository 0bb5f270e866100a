"""Digit quality against CPU training time, for the lesson's recipe and the bundled model.

Trains the lesson-5 default model for 1, 3 and 10 minutes of wall time (one run, measured at
each mark), samples digits with 1000-step DDPM from its EMA weights, and prints the course
metric beside the same figures for real digits. Run it alone: a second torch process on the
same cores slows both many times over.

    python benchmarks/train_digits.py [--samples 500] [--marks 1 3 10] [--device cpu]
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import time

import torch

from diffusion_lab import NoiseSchedule, load_mnist
from diffusion_lab.metrics import digit_report, reference_report
from diffusion_lab.models import UNet
from diffusion_lab.pretrained import RECIPES, load_pretrained
from diffusion_lab.samplers import ddpm_sample, last
from diffusion_lab.training import EMA, train

LESSON = dict(channels=(16, 32, 64), attention=False)  # the lesson-5 default model


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--marks", type=float, nargs="+", default=[1, 3, 10])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {args.device}"
    )
    print(f"real digits (n={args.samples}):  {reference_report(args.samples)}", flush=True)
    recipe = RECIPES["digits"]
    schedule = getattr(NoiseSchedule, recipe["schedule"])().to(args.device)
    torch.manual_seed(0)
    model = UNet(**LESSON).to(args.device)
    ema = EMA(model, 0.995)
    x0 = load_mnist()[0]
    marks, step_count, trained = sorted(args.marks), 0, 0.0
    # one long run; the lr schedule is sized for the last mark at ~300 steps per minute. Only
    # time spent inside train() counts: sampling between marks is not training time.
    run = train(
        model, x0, schedule, num_steps=int(300 * marks[-1]), prediction="v", ema=ema, progress=False
    )
    for mark in marks:
        while trained < 60 * mark:
            start = time.perf_counter()
            record = next(run, None)
            trained += time.perf_counter() - start
            if record is None:
                break
            step_count = record.step
        report, seconds = sample_report(
            copy.deepcopy(ema.model), schedule, "v", args.samples, args.device
        )
        print(
            f"lesson model after {trained / 60:4.1f} min ({step_count} steps): {report}  "
            f"[sampling {seconds:.0f} s]",
            flush=True,
        )
    bundled = load_pretrained("digits")
    report, seconds = sample_report(
        bundled.model.to(args.device),
        bundled.schedule.to(args.device),
        bundled.prediction,
        args.samples,
        args.device,
    )
    print(
        f"bundled model ({bundled.info.get('minutes')} min, {bundled.info.get('hardware')}): "
        f"{report}  [sampling {seconds:.0f} s]"
    )


if __name__ == "__main__":
    main()
