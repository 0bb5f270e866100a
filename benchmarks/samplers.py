"""Digit quality and wall time against model calls, for each sampler, on the bundled model.

For 10, 20, 50, 100 and 1000 model calls it samples the same starting noises with ancestral
DDPM (fewer than T steps = ancestral steps on a strided grid, i.e. DDIM with eta = 1), DDIM
(eta = 0), DPM-Solver++(2M) and its stochastic form SDE-DPM-Solver++(2M), and prints the course
metric (Frechet distance in the digit classifier's features, share confidently classified)
beside the real-data reference. Run it alone: a second torch process on the same cores slows
both many times over.

    python benchmarks/samplers.py [--samples 500] [--calls 10 20 50 100 1000] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from diffusion_lab.metrics import digit_report, reference_report
from diffusion_lab.pretrained import load_pretrained
from diffusion_lab.samplers import sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--calls", type=int, nargs="+", default=[10, 20, 50, 100, 1000])
    parser.add_argument(
        "--samplers", nargs="+", default=["ddpm", "ddim", "dpm_solver", "dpm_solver_sde"]
    )
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {args.device}"
    )
    bundled = load_pretrained("digits")
    model, schedule = bundled.model.to(args.device), bundled.schedule.to(args.device)
    print(f"bundled model: {bundled.info.get('num_steps')} training steps")
    print(f"real digits (n={args.samples}): {reference_report(args.samples)}", flush=True)
    x_T = torch.randn(args.samples, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    x_T = x_T.to(args.device)
    rows = []
    for calls in args.calls:
        for name in args.samplers:
            start = time.perf_counter()
            images = sample(
                model,
                schedule,
                x_T,
                sampler=name,
                num_steps=calls,
                prediction=bundled.prediction,
                generator=torch.Generator(args.device).manual_seed(1),
                progress=False,
            )
            seconds = time.perf_counter() - start
            report = digit_report(images.cpu())
            rows.append((name, calls, report.frechet, report.confident, seconds))
            print(f"{name:>10} {calls:5d} calls: {report}  [{seconds:.1f} s]", flush=True)
    print("\nsampler     calls   FD     confident   seconds")
    for name, calls, fd, confident, seconds in rows:
        print(f"{name:<10} {calls:6d} {fd:7.1f} {100 * confident:8.1f}% {seconds:9.1f}")
    best = {(n, c): fd for n, c, fd, _, _ in rows}
    if ("ddpm", 1000) in best:
        target = 1.1 * best[("ddpm", 1000)]
        few = {(n, c): fd for (n, c), fd in best.items() if c <= 20}
        hits = [f"{n} at {c}" for (n, c), fd in few.items() if fd <= target]
        verdict = hits or ("not met" if few else "not measured (no run of 20 calls or fewer)")
        print(f"\n20-call target (FD <= 1.1 x DDPM-1000 = {target:.1f}): {verdict}")


if __name__ == "__main__":
    main()
