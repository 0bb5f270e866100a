"""Time per slider move of the lesson widgets (target: under 50 ms on 2 CPU cores).

Measures what a learner waits for in the kernel when the slider moves: computing x_t,
tiling and PNG-encoding the frame (the browser's own drawing is measured by the browser test).

    python benchmarks/widget_latency.py [--device cpu|cuda] [--moves 200]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from diffusion_lab import NoiseSchedule, load_cat, load_mnist
from diffusion_lab.widgets import ScheduleComparison, TimestepExplorer


def time_moves(widget, moves: int) -> list[float]:
    times = []
    values = torch.randint(0, widget.slider.max + 1, (moves,), generator=torch.Generator())
    for value in values.tolist():
        if value == widget.slider.value:
            value = (value + 1) % (widget.slider.max + 1)
        start = time.perf_counter()
        widget.slider.value = value  # the observer re-renders synchronously
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--moves", type=int, default=200)
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}, device={args.device}"
    )
    schedule = NoiseSchedule.linear()
    digits = load_mnist()[0][:64]
    cases = {
        "timestep explorer, cat 128x128 RGB": TimestepExplorer(
            load_cat(128), schedule, device=args.device
        ),
        "timestep explorer, 64-digit grid": TimestepExplorer(digits, schedule, device=args.device),
        "schedule comparison, 16 digits + curves": ScheduleComparison(
            digits[:16], device=args.device
        ),
    }
    print(f"{'widget':44s} {'median ms':>10s} {'p95 ms':>8s} {'max ms':>8s}")
    for name, widget in cases.items():
        time_moves(widget, 10)  # warm-up
        times = sorted(time_moves(widget, args.moves))
        p95 = times[int(0.95 * len(times)) - 1]
        print(f"{name:44s} {statistics.median(times):10.1f} {p95:8.1f} {times[-1]:8.1f}")


if __name__ == "__main__":
    main()
