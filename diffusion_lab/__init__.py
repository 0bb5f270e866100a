"""diffusion_lab: the package behind the Diffusion Lab course.

Lessons (notebooks/) teach; this package holds the code two lessons share, tested.

Model contract (every model in the course follows it):

    model(xt: Tensor[B, *D], t: Tensor[B] | Tensor[] | int, cond: Tensor[B, ...] | None = None)
        -> Tensor[B, *D]

`t` is an integer timestep in [0, T-1] (a scalar is broadcast over the batch); the output has
the input's shape (predicted noise, x_0 or v, as the model was trained).

Notation (one vocabulary in the lessons and the code):

    math             code            shape / type
    x_0              x0              (B, *D), images in [-1, 1]
    x_t              xt              (B, *D), noisy sample
    epsilon          eps, eps_hat    (B, *D), N(0, I) noise and its prediction
    hat x_0          x0_hat          (B, *D), the model's clean estimate
    t                t               LongTensor (B,) in [0, T-1]; code t = 0 is the paper's t = 1
    T                num_timesteps   int
    beta_t           betas           (T,)
    alpha_bar_t      alpha_bar       (T,), share of signal variance left at t
    sigma_t          sigmas          sqrt((1 - alpha_bar) / alpha_bar)
    v                v               sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x0
    w                guidance_scale  float, diffusers convention (1 = plain conditional)

Devices: the library follows the device and dtype of its inputs and never picks one; notebooks
call `get_device()`. Randomness: every random function takes `generator=`; the library never
seeds. Widgets live in `diffusion_lab.widgets`, which nothing else imports.
"""

from .data import cat_crops, gaussian_ring, load_cat, load_mnist, swiss_roll, to_image, two_moons
from .forward import (
    add_noise,
    eps_to_x0,
    forward_chain,
    forward_step,
    q_posterior,
    q_sample,
    v_target,
    v_to_eps,
    v_to_x0,
    x0_to_eps,
)
from .schedules import SCHEDULES, NoiseSchedule, get_schedule
from .utils import append_dims, eval_mode, get_device, native_bf16, seed_everything

__version__ = "0.1.0"

__all__ = [
    "SCHEDULES",
    "NoiseSchedule",
    "add_noise",
    "append_dims",
    "eps_to_x0",
    "eval_mode",
    "forward_chain",
    "forward_step",
    "gaussian_ring",
    "get_device",
    "get_schedule",
    "cat_crops",
    "load_cat",
    "load_mnist",
    "native_bf16",
    "q_posterior",
    "q_sample",
    "seed_everything",
    "swiss_roll",
    "to_image",
    "two_moons",
    "v_target",
    "v_to_eps",
    "v_to_x0",
    "x0_to_eps",
]
