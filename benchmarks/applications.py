"""Lessons 10-11 measured: inpainting, super-resolution, SDEdit, latent against pixel diffusion.

Prints, on held-out digits (the last 1,000 of the bundled set, which digits_sr never saw):
- inpainting with the bundled digit model: for each hidden region, the share of completions the
  course classifier still reads as the original digit, plain (50 and 250 steps) and with RePaint
  resampling (50 steps x 5: as many model calls as 250 plain steps);
- super-resolution 7x7 -> 28x28: PSNR and the course metric for bicubic, one sample of the bundled
  digits_sr model, the mean of 8 samples, and the truth;
- SDEdit on blocky digits (4x4 blocks): realism (confidently classified), faithfulness (same digit,
  RMS distance to the input) against the strength;
- latent diffusion (lesson 11's recipe): an autoencoder trained for --minutes, a latent model for
  --minutes, and lesson 5's pixel U-Net for the same diffusion time and for the same total time;
  steps per second, ms per sample, the metric.
Run it alone: a second torch process on the same cores slows both many times over.

    python benchmarks/applications.py [--n 200] [--minutes 3] [--skip inpaint sr sdedit latent]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from diffusion_lab import NoiseSchedule, load_mnist
from diffusion_lab.applications import (
    blocky,
    downsample,
    inpaint,
    make_mask,
    psnr,
    sdedit,
    upsample,
)
from diffusion_lab.metrics import digit_report, load_classifier
from diffusion_lab.models import UNet
from diffusion_lab.models.autoencoder import (
    Autoencoder,
    LatentDiffusion,
    encode_dataset,
    latent_denoiser,
    latent_scale,
    reconstruction_psnr,
    train_autoencoder,
)
from diffusion_lab.pretrained import HELD_OUT_DIGITS, load_pretrained
from diffusion_lab.samplers import last, sample
from diffusion_lab.training import EMA, train


def bench_inpaint(x, labels, device) -> None:
    digits = load_pretrained("digits")
    net, schedule = digits.model.to(device), digits.schedule
    classifier = load_classifier()
    print("\n== inpainting (bundled digits model): share still read as the original digit ==")
    settings = [(50, 1), (250, 1), (50, 5)]
    print(f"{'hidden':>8} | " + " | ".join(f"{s} steps x {u}" for s, u in settings))
    for name in ("right", "bottom", "centre", "pixels"):
        mask = make_mask(name, generator=torch.Generator().manual_seed(3)).to(device)
        row = []
        for steps, resample in settings:
            start = time.perf_counter()
            out = last(
                inpaint(
                    net,
                    schedule,
                    x,
                    mask,
                    num_steps=steps,
                    resample=resample,
                    prediction=digits.prediction,
                    generator=torch.Generator().manual_seed(1),
                    progress=False,
                )
            )
            same = (classifier(out.cpu()).argmax(1) == labels).float().mean().item()
            row.append(f"{same:6.1%} ({time.perf_counter() - start:4.0f} s)")
        print(f"{name:>8} | " + " | ".join(row), flush=True)


def bench_sr(x, device, n_avg: int = 8) -> None:
    model = load_pretrained("digits_sr")
    small = downsample(x, 4)
    x_T = torch.randn(n_avg * len(x), 1, 28, 28, generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    drawn = sample(
        model.model.to(device),
        model.schedule,
        x_T.to(device),
        sampler="ddim",
        num_steps=50,
        prediction=model.prediction,
        cond=small.repeat(n_avg, 1, 1, 1),
        progress=False,
    ).view(n_avg, *x.shape)
    seconds = time.perf_counter() - start
    print(f"\n== super-resolution 7x7 -> 28x28, n = {len(x)} held-out digits ==")
    print(f"digits_sr: {n_avg * len(x)} samples with 50 DDIM steps in {seconds:.0f} s")
    rows = {
        "bicubic": upsample(small, 28),
        "nearest": upsample(small, 28, mode="nearest"),
        "digits_sr, one sample": drawn[0],
        f"digits_sr, mean of {n_avg}": drawn.mean(0),
        "the truth": x,
    }
    for name, images in rows.items():
        report = digit_report(images.cpu())
        value = "exact" if images is x else f"{psnr(images, x).mean().item():.1f} dB"
        print(f"{name:>22}: PSNR {value:>8} | {report}", flush=True)


def bench_sdedit(x, labels, device) -> None:
    digits = load_pretrained("digits")
    net, schedule = digits.model.to(device), digits.schedule
    classifier = load_classifier()
    inputs = blocky(x, 4)
    print(f"\n== SDEdit on blocky digits (4x4 blocks), n = {len(x)}, 50-step grid ==")
    for s in [round(0.1 * k, 1) for k in range(11)]:
        noise = torch.randn(inputs.shape, generator=torch.Generator().manual_seed(6)).to(device)
        out = last(
            sdedit(
                net,
                schedule,
                inputs,
                strength=s,
                num_steps=50,
                prediction=digits.prediction,
                noise=noise,
                progress=False,
            )
        ).cpu()
        probs = classifier(out).softmax(1)
        rms = (out - inputs.cpu()).pow(2).flatten(1).mean(1).sqrt().mean().item()
        confident = (probs.max(1).values >= 0.9).float().mean().item()
        same = (probs.argmax(1) == labels).float().mean().item()
        print(
            f"strength {s:.1f}: confident {confident:6.1%} | same digit {same:6.1%} | "
            f"RMS distance to input {rms:.3f}",
            flush=True,
        )


def bench_latent(train_x, test_x, minutes: float, device, n: int = 500) -> None:
    print(
        f"\n== latent against pixel diffusion: {minutes:g} min for the autoencoder, {minutes:g} "
        f"min of diffusion training for the latent model, {minutes:g} and {2 * minutes:g} min "
        "for lesson 5's pixel U-Net =="
    )
    torch.manual_seed(0)
    ae = Autoencoder().to(device)
    steps = train_autoencoder(
        ae, train_x, num_steps=int(330 * minutes), max_minutes=minutes, progress=False
    )
    record = list(steps)[-1]
    print(
        f"autoencoder: {record.step} steps in {record.seconds:.0f} s, held-out PSNR "
        f"{reconstruction_psnr(ae, test_x.to(device)):.1f} dB"
    )
    with torch.no_grad():
        print(f"{'reconstructions':>15}: {digit_report(ae.eval()(test_x.to(device)).cpu())}")
    print(f"{'real digits':>15}: {digit_report(test_x[:n])}")
    z = encode_dataset(ae, train_x)
    scale = latent_scale(z)
    schedule = NoiseSchedule.cosine()
    runs = [
        ("latent", latent_denoiser(ae.latent_shape), z * scale, minutes),
        ("pixel", UNet(channels=(16, 32, 64), attention=False), train_x, minutes),
        ("pixel", UNet(channels=(16, 32, 64), attention=False), train_x, 2 * minutes),
    ]
    for name, net, data, budget in runs:
        torch.manual_seed(0)
        net = net.to(device)
        ema = EMA(net, 0.995)
        steps = train(
            net,
            data,
            schedule,
            num_steps=int(450 * budget),
            prediction="v",
            ema=ema,
            max_minutes=budget,
            data_range=None,
            progress=False,
        )
        record = list(steps)[-1]
        x_T = torch.randn(n, *data.shape[1:], generator=torch.Generator().manual_seed(0))
        model = ema.model.eval()
        if name == "latent":
            model = LatentDiffusion(ae, model, scale_factor=scale)
        start = time.perf_counter()
        out = sample(
            model,
            schedule,
            x_T.to(device),
            sampler="ddim",
            num_steps=50,
            prediction="v",
            clip_x0=name == "pixel",
            progress=False,
        )
        if name == "latent":
            out = model.to_image(out)
        ms = 1000 * (time.perf_counter() - start) / n
        print(
            f"{name:>6} {budget:g} min: {record.step} steps "
            f"({record.step / record.seconds:.1f}/s), "
            f"{ms:.1f} ms per sample | {digit_report(out.cpu())}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=200, help="held-out digits per measurement")
    parser.add_argument("--minutes", type=float, default=3.0, help="training per latent/pixel run")
    parser.add_argument(
        "--skip", nargs="*", default=[], choices=["inpaint", "sr", "sdedit", "latent"]
    )
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(
        f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, device {args.device}"
    )
    x, labels = load_mnist()
    held_out, held_labels = x[-HELD_OUT_DIGITS:][: args.n], labels[-HELD_OUT_DIGITS:][: args.n]
    real = digit_report(held_out)
    print(f"real held-out digits: {real}")
    device = torch.device(args.device)
    if "inpaint" not in args.skip:
        bench_inpaint(held_out.to(device), held_labels, device)
    if "sr" not in args.skip:
        bench_sr(held_out.to(device), device)
    if "sdedit" not in args.skip:
        bench_sdedit(held_out.to(device), held_labels, device)
    if "latent" not in args.skip:
        bench_latent(x[:-HELD_OUT_DIGITS], x[-HELD_OUT_DIGITS:], args.minutes, device)


if __name__ == "__main__":
    main()
