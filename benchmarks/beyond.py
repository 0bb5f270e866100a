"""Lessons 12-13 measured: GAN against diffusion on 2-D data, and diffusion beyond images.

Prints:
- gan: lesson 12's race over --seeds seeds, on the ring of 8 Gaussians and the two moons, under
  two budgets: the same number of steps (--steps) and the same wall time (--seconds). Per run:
  steps done, training seconds, modes covered, the smallest and largest share of samples on a
  mode (a perfect model puts 1/8 = 12.5% on each), quality, energy distance; then the sampling
  time of 2000 points (GAN: one call; diffusion: 50 DDIM steps) and a GAN learning-rate sweep.
- sound: the bundled `sounds` model against the training sounds and white noise (spectral
  flatness, energy in the 16 strongest frequencies), and its sampling time.
- points: lesson 13's point-cloud recipe (1500 steps), upright and randomly rotated clouds
  (shape fit: median Chamfer distance to the best outline, share within 0.1).
- video: the bundled `clips` model against real clips and clips of mixed-up frames (frame-to-
  frame correlation, clips that keep their ink).
- flow: noise prediction + DDIM against flow matching + Euler on the ring, --seeds seeds, energy
  distance and modes covered for 2 to 50 steps, and the learned score's error against the
  exact score of the noised mixture.
Run it alone: a second torch process on the same cores slows both many times over.

    python benchmarks/beyond.py [--seeds 5] [--steps 3000] [--seconds 12]
                                [--skip gan sound points video flow]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch

from diffusion_lab import beyond, gaussian_ring, two_moons
from diffusion_lab.models import PointDenoiser
from diffusion_lab.pretrained import load_pretrained
from diffusion_lab.samplers import last, sample
from diffusion_lab.schedules import NoiseSchedule
from diffusion_lab.toy import (
    Discriminator,
    Generator,
    MLPDenoiser,
    energy_distance,
    gan_sample,
    mode_coverage,
    ring_centres,
    train_gan,
)
from diffusion_lab.training import EMA, train

SCHEDULE = NoiseSchedule.cosine()
CENTRES = ring_centres(8, radius=0.75)


def _data(name: str, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if name == "ring":
        return gaussian_ring(n, radius=0.75, std=0.05, generator=g)
    return 0.6 * two_moons(n, noise=0.05, generator=g)


def _run(
    kind: str,
    data: torch.Tensor,
    seed: int,
    *,
    steps: int,
    seconds: float | None,
    lr: float | None = None,
) -> tuple[torch.Tensor, int, float]:
    """Train one model like lesson 12 does; return (2000 samples, steps done, seconds)."""
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    record = None
    if kind == "diffusion":
        model = MLPDenoiser()
        loop = train(
            model,
            data,
            SCHEDULE,
            num_steps=steps,
            batch_size=256,
            lr=lr or 2e-3,
            warmup_steps=50,
            progress=False,
            generator=rng,
        )
    else:
        model, critic = Generator(), Discriminator()
        loop = train_gan(
            model, critic, data, num_steps=steps, batch_size=256, lr=lr or 1e-3, generator_rng=rng
        )
    for record in loop:
        if seconds is not None and record.seconds >= seconds:
            break
    noise_rng = torch.Generator().manual_seed(100 + seed)
    if kind == "diffusion":
        x = sample(
            model.eval(),
            SCHEDULE,
            torch.randn(2000, 2, generator=noise_rng),
            sampler="ddim",
            num_steps=50,
            progress=False,
        )
    else:
        x = gan_sample(model, 2000, generator_rng=noise_rng)
    return x, record.step, record.seconds


def _describe(name: str, x: torch.Tensor, fresh: torch.Tensor) -> str:
    text = f"energy distance {energy_distance(x, fresh):.4f}"
    if name == "ring":
        c = mode_coverage(x, CENTRES, radius=0.15)
        text = (
            f"modes {c['covered']}/8, shares {c['shares'].min():5.1%}-{c['shares'].max():5.1%}, "
            f"quality {c['quality']:.2f}, " + text
        )
    return text


def bench_gan(seeds: int, steps: int, seconds: float) -> None:
    print(f"\n== lesson 12: GAN against diffusion, {seeds} seeds ==")
    for name in ("ring", "moons"):
        data, fresh = _data(name, 4000, 0), _data(name, 4000, 10)
        ref = [energy_distance(_data(name, 2000, 20 + k), fresh) for k in range(5)]
        print(f"\n{name}: perfect-model reference energy distance {min(ref):.4f}-{max(ref):.4f}")
        for budget, limit in ((f"{steps} steps", None), (f"{seconds:g} s", seconds)):
            for kind in ("diffusion", "GAN"):
                distances = []
                for seed in range(seeds):
                    x, done, took = _run(
                        kind, data, seed, steps=steps if limit is None else 10**6, seconds=limit
                    )
                    distances.append(energy_distance(x, fresh))
                    print(
                        f"  {budget:>10} {kind:9} seed {seed}: {done:5d} steps {took:5.1f} s, "
                        f"{_describe(name, x, fresh)}"
                    )
                print(
                    f"  {budget:>10} {kind:9} median energy distance "
                    f"{statistics.median(distances):.4f}"
                )
    data = _data("ring", 4000, 0)
    model, gen = MLPDenoiser().eval(), Generator()
    for label, fn in (
        (
            "diffusion, 50 DDIM steps",
            lambda: sample(
                model, SCHEDULE, torch.randn(2000, 2), sampler="ddim", num_steps=50, progress=False
            ),
        ),
        ("GAN, one call", lambda: gan_sample(gen, 2000)),
    ):
        start = time.perf_counter()
        for _ in range(5):
            fn()
        print(f"sampling 2000 points, {label}: {(time.perf_counter() - start) / 5 * 1000:.1f} ms")
    print(f"\nGAN learning rate sweep on the ring, {steps} steps, {seeds} seeds")
    fresh = _data("ring", 4000, 10)
    for lr in (2e-4, 5e-4, 1e-3, 2e-3):
        runs = [
            _run("GAN", data, seed, steps=steps, seconds=None, lr=lr)[0] for seed in range(seeds)
        ]
        modes = [mode_coverage(x, CENTRES, radius=0.15)["covered"] for x in runs]
        eds = [energy_distance(x, fresh) for x in runs]
        print(f"  lr {lr:g}: modes {modes}, median energy distance {statistics.median(eds):.4f}")


def _sample_bundled(name: str, n: int) -> tuple[torch.Tensor, float]:
    """n samples of a bundled model (50 DDIM steps) and the milliseconds per sample."""
    bundle = load_pretrained(name)
    print(bundle.info)
    x_T = torch.randn(n, *bundle.model.input_shape, generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    x = sample(bundle.model, bundle.schedule, x_T, prediction=bundle.prediction, num_steps=50,
               progress=False)  # fmt: skip
    return x, (time.perf_counter() - start) / n * 1000


def bench_sound(n: int) -> None:
    print("\n== lesson 13: sound (bundled `sounds` model) ==")
    x, ms = _sample_bundled("sounds", n)
    real = beyond.make_sounds(n, generator=torch.Generator().manual_seed(1))[0]
    for name, w in (("model", x), ("training sounds", real), ("white noise", torch.randn_like(x))):
        flat = beyond.spectral_flatness(w.flatten(1))
        peak = beyond.peak_energy_fraction(w.flatten(1))
        print(
            f"  {name:15} flatness median {flat.median():.4f} (90th percentile "
            f"{flat.quantile(0.9):.4f}), energy in 16 strongest bins {peak.median():.0%}"
        )
    print(f"  sampling: {ms:.1f} ms per sound (50 DDIM steps, batch {n})")


def bench_points(steps: int) -> None:
    print(f"\n== lesson 13: point clouds, {steps} training steps ==")
    for rotate in (False, True):
        g = torch.Generator().manual_seed(0)
        clouds, _ = beyond.point_cloud_shapes(5000, rotate=rotate, generator=g)
        torch.manual_seed(0)
        model = PointDenoiser(num_points=64)
        ema = EMA(model, decay=0.995)
        *_, record = train(
            model,
            clouds,
            SCHEDULE,
            num_steps=steps,
            batch_size=64,
            prediction="v",
            ema=ema,
            generator=g,
            progress=False,
        )  # run to the end, keep the last record
        x = sample(
            ema.model.eval(),
            SCHEDULE,
            torch.randn(200, 64, 2, generator=g),
            prediction="v",
            num_steps=50,
            progress=False,
        )
        for name, cloud in (("samples", x), ("data", clouds[:200])):
            fit = beyond.shape_fit(cloud)
            counts = torch.bincount(fit["label"], minlength=3).tolist()
            close = (fit["distance"] < 0.1).float().mean()
            print(
                f"  {'rotated' if rotate else 'upright':7} {name:7}: median distance "
                f"{fit['distance'].median():.3f}, within 0.1 {close:.0%}, "
                f"circle/square/triangle {counts}"
                + (f" ({record.seconds:.0f} s)" if name == "samples" else "")
            )


def bench_video(n: int) -> None:
    print("\n== lesson 13: video (bundled `clips` model) ==")
    x, ms = _sample_bundled("clips", n)
    g = torch.Generator().manual_seed(1)
    frames = x.shape[1]  # the frames are the channels
    real = beyond.moving_digit_clips(max(n, 100), frames=frames, generator=g)
    pick = torch.randint(len(real), (n, frames), generator=g)
    mixed = real[pick, torch.arange(frames)]  # frame f of each clip from a random real clip
    for name, clips in (
        ("model", beyond.channels_to_clips(x)),
        ("real clips", real[:n]),
        ("mixed-up frames", mixed),
    ):
        m = beyond.motion_consistency(clips)
        print(
            f"  {name:15} frame-to-frame correlation {m['correlation']:.3f}, "
            f"ink kept {m['mass_constant']:.0%}"
        )
    print(f"  sampling: {ms:.1f} ms per clip (50 DDIM steps, batch {n})")


def bench_flow(seeds: int, steps: int) -> None:
    print(
        f"\n== lesson 13: noise prediction + DDIM against flow matching + Euler, {steps} steps =="
    )
    data, fresh = _data("ring", 4000, 0), _data("ring", 4000, 10)
    grid = (2, 5, 10, 20, 50)
    table = {(k, n): [] for k in ("DDIM", "Euler") for n in grid}
    for seed in range(seeds):
        torch.manual_seed(seed)
        eps_model, flow_model = MLPDenoiser(), MLPDenoiser()
        rng = torch.Generator().manual_seed(seed)
        for _ in train(
            eps_model,
            data,
            SCHEDULE,
            num_steps=steps,
            batch_size=256,
            warmup_steps=50,
            progress=False,
            generator=rng,
        ):
            pass
        for _ in beyond.train_flow(
            flow_model, data, num_steps=steps, batch_size=256, warmup_steps=50, generator=rng
        ):
            pass
        eps_model.eval(), flow_model.eval()
        noise = torch.randn(2000, 2, generator=torch.Generator().manual_seed(100 + seed))
        for n in grid:
            table["DDIM", n].append(
                sample(eps_model, SCHEDULE, noise, sampler="ddim", num_steps=n, progress=False)
            )
            table["Euler", n].append(last(beyond.euler_sample(flow_model, noise, num_steps=n)))
        with torch.no_grad():
            errors = []
            for t in (50, 200, 500):
                a = SCHEDULE.alpha_bar[t].item()
                g = torch.Generator().manual_seed(t)
                xt = a**0.5 * fresh[:2000] + (1 - a) ** 0.5 * torch.randn(2000, 2, generator=g)
                exact = beyond.gaussian_mixture_score(xt, CENTRES, 0.05, a)
                learned = beyond.eps_to_score(eps_model(xt, t), a)
                rel = ((learned - exact).norm(dim=1) / exact.norm(dim=1)).median().item()
                errors.append(f"t={t} {rel:.1%}")
        print(
            f"  seed {seed}: learned score against the exact score, median error: "
            + ", ".join(errors)
        )
    for (kind, n), xs in table.items():
        eds = [energy_distance(x, fresh) for x in xs]
        modes = [mode_coverage(x, CENTRES, radius=0.15)["covered"] for x in xs]
        print(
            f"  {kind:5} {n:2d} steps: energy distance median {statistics.median(eds):.4f} "
            f"({min(eds):.4f}-{max(eds):.4f}), modes {modes}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3000, help="2-D training steps per model")
    parser.add_argument("--seconds", type=float, default=12.0, help="the time budget per 2-D run")
    parser.add_argument("--n", type=int, default=64, help="sounds and clips sampled")
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["gan", "sound", "points", "video", "flow"]
    )
    args = parser.parse_args()
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    start = time.perf_counter()
    if "gan" not in args.skip:
        bench_gan(args.seeds, args.steps, args.seconds)
    if "sound" not in args.skip:
        bench_sound(args.n)
    if "points" not in args.skip:
        bench_points(1500)
    if "video" not in args.skip:
        bench_video(args.n)
    if "flow" not in args.skip:
        bench_flow(args.seeds, args.steps)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
