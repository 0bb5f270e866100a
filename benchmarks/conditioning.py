"""Conditioning benchmarks: class-conditional guidance, and text-to-image prompt adherence.

Part 1 (the bundled `digits_cond` model): for each guidance scale, the same starting noises,
`--per-class` samples of every digit, SDE-DPM-Solver++(2M) with 20 steps; prints accuracy (the
course classifier reads the digit asked for), within-class variety (classifier features and
pixels) and the Frechet distance, beside the same figures for real digits at the same size.

Part 2 (the bundled `text_digits` model): for each guidance scale, `--prompts` prompts from the
seen and from the held-out combinations (captions of `diffusion_lab.captions`), one image each;
prints the share matching each attribute and the whole prompt, read from pixels.

Run it alone: a second torch process on the same cores slows both many times over.

    python benchmarks/conditioning.py [--part class text] [--per-class 100] [--prompts 500]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from diffusion_lab.metrics import guidance_report, real_guidance_report
from diffusion_lab.pretrained import load_pretrained
from diffusion_lab.samplers import sample


def _timed_sample(bundled, x_T, cond, w, device):
    """20 steps of SDE-DPM-Solver++(2M) with guidance w: (images, seconds)."""
    start = time.perf_counter()
    images = sample(
        bundled.model,
        bundled.schedule,
        x_T.to(device),
        sampler="dpm_solver_sde",
        num_steps=20,
        prediction=bundled.prediction,
        cond=cond,
        guidance_scale=w,
        generator=torch.Generator(device).manual_seed(2),
        progress=False,
    )
    return images.cpu(), time.perf_counter() - start


def class_part(args) -> None:
    bundled = load_pretrained("digits_cond")
    bundled.model.to(args.device)
    bundled.schedule = bundled.schedule.to(args.device)
    print(f"digits_cond: {bundled.info}")
    for seed in range(3):  # real digits at the same sample size: the reference
        print(f"real digits, draw {seed}: {real_guidance_report(args.per_class, seed)}")
    asked = torch.arange(10).repeat_interleave(args.per_class).to(args.device)
    x_T = torch.randn(len(asked), 1, 28, 28, generator=torch.Generator().manual_seed(1))
    print("| w | accuracy | variety (features) | variety (pixels) | Frechet distance | seconds |")
    print("|---|---|---|---|---|---|")
    for w in args.scales:
        images, seconds = _timed_sample(bundled, x_T, asked, w, args.device)
        r = guidance_report(images, asked.cpu())
        print(
            f"| {w:g} | {100 * r.accuracy:.1f}% | {r.variety:.2f} | {r.pixel_variety:.2f} | "
            f"{r.frechet:.1f} | {seconds:.0f} |",
            flush=True,
        )


def text_part(args) -> None:
    from diffusion_lab.captions import adherence, all_combinations, caption

    bundled = load_pretrained("text_digits")
    bundled.model.to(args.device)
    bundled.schedule = bundled.schedule.to(args.device)
    tokenizer = bundled.tokenizer
    print(f"text_digits: {bundled.info}")
    print("| prompts | w | digit | colour | size | place | whole prompt | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for split in ("seen", "held_out"):
        combos = all_combinations(split)
        pick = torch.randint(
            len(combos), (args.prompts,), generator=torch.Generator().manual_seed(3)
        )
        chosen = [combos[i] for i in pick.tolist()]
        tokens = tokenizer.encode([caption(*c) for c in chosen]).to(args.device)
        x_T = torch.randn(args.prompts, 3, 32, 32, generator=torch.Generator().manual_seed(4))
        for w in args.text_scales:
            images, seconds = _timed_sample(bundled, x_T, tokens, w, args.device)
            digits, colours, sizes, places = zip(*chosen)
            a = adherence(
                images.cpu(), torch.tensor(digits), list(colours), list(sizes), list(places)
            )
            print(
                f"| {split} | {w:g} | {100 * a['digit']:.1f}% | {100 * a['colour']:.1f}% | "
                f"{100 * a['size']:.1f}% | {100 * a['place']:.1f}% | {100 * a['all']:.1f}% | "
                f"{seconds:.0f} |",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", nargs="+", default=["class", "text"], choices=["class", "text"])
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--scales", type=float, nargs="+", default=[0, 1, 1.5, 2, 3, 5, 8])
    parser.add_argument("--prompts", type=int, default=500)
    parser.add_argument("--text-scales", type=float, nargs="+", default=[1, 2, 3, 5])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {args.device}"
    )
    if "class" in args.part:
        class_part(args)
    if "text" in args.part:
        text_part(args)


if __name__ == "__main__":
    main()
