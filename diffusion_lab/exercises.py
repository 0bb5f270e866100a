"""Checked exercises: write a function, pass it to `check_*`, and be told what is wrong.

A check runs your function on cases with known answers. When the answer is wrong it compares
it with the typical mistakes (a missing square root, swapped terms, an off-by-one) and says
which one you made. `hint(name)` gives a nudge and `solution(name)` shows a model answer, so
solutions stay out of the way until you ask for them. A check never raises: an unfinished
exercise (one that still raises NotImplementedError) just reports "not done yet".

Introduced in: notebooks/01_noise.ipynb
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .schedules import NoiseSchedule

__all__ = [
    "CheckResult",
    "check_add_noise",
    "check_flow_path",
    "check_eps_to_score",
    "check_chamfer_distance",
    "check_spectral_flatness",
    "check_cfg_combine",
    "check_contrastive_loss",
    "check_cross_attention",
    "check_tokenize",
    "check_count_modes",
    "check_drop_labels",
    "check_energy_distance",
    "check_generator_loss",
    "check_guided_prediction",
    "check_alpha_bar_from_betas",
    "check_cosine_alpha_bar",
    "check_ddim_step",
    "check_ddpm_mean",
    "check_ema_update",
    "check_eps_from_v",
    "check_first_timestep_below",
    "check_forward_step",
    "check_gaussian_noise",
    "check_heat_step",
    "check_inpaint_combine",
    "check_latent_scale",
    "check_linear_betas",
    "check_log_snr",
    "check_mean_pairwise_distance",
    "check_mix_keep_variance",
    "check_posterior_mean",
    "check_psnr",
    "check_renoise",
    "check_reverse_loop",
    "check_slerp",
    "check_timestep_embedding",
    "check_to_latent",
    "check_training_loss",
    "check_trailing_timesteps",
    "check_v_target",
    "check_x0_from_noise",
    "hint",
    "list_exercises",
    "solution",
]


@dataclass
class CheckResult:
    """The outcome of a check: `passed`, and a message that says what to fix."""

    name: str
    passed: bool
    message: str

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        mark = "Correct" if self.passed else "Not yet"
        return f"[{mark}] {self.name}: {self.message}"


@dataclass
class _Exercise:
    name: str
    lesson: str
    hint: str
    solution: str
    check: Callable[[Callable], CheckResult] = field(repr=False, default=None)


_EXERCISES: dict[str, _Exercise] = {}


def _register(name: str, lesson: str, hint_text: str, solution_src: str):
    def decorator(check_fn):
        _EXERCISES[name] = _Exercise(
            name, lesson, hint_text.strip(), textwrap.dedent(solution_src).strip(), check_fn
        )
        check_fn.__doc__ = (
            check_fn.__doc__ or ""
        ) + f"\n\nExercise of {lesson}; see hint({name!r})."
        return check_fn

    return decorator


def list_exercises() -> list[str]:
    """The names of all exercises, for hint() and solution()."""
    return list(_EXERCISES)


def _get(name: str) -> _Exercise:
    if name not in _EXERCISES:
        raise ValueError(f"unknown exercise {name!r}; known: {', '.join(_EXERCISES)}")
    return _EXERCISES[name]


def hint(name: str) -> None:
    """Print a hint for exercise `name`."""
    print(_get(name).hint)


def solution(name: str) -> None:
    """Print a model solution for exercise `name`. Try it yourself first."""
    print(_get(name).solution)


# ----- the machinery shared by all checks -----
class _Fail(Exception):
    pass


def _call(name: str, fn: Callable, *args):
    try:
        out = fn(*args)
    except NotImplementedError:
        raise _Fail(
            "not done yet: replace the `raise NotImplementedError` with your code"
        ) from None
    except Exception as error:  # a learner's bug is reported, not raised
        advice = ""
        if isinstance(error, TypeError) and "not float" in str(error):
            advice = (
                " (numbers like beta_t arrive as Python floats: use x ** 0.5 or "
                "math.sqrt(x), which work for floats and tensors alike)"
            )
        raise _Fail(f"your function raised {type(error).__name__}: {error}{advice}") from None
    if out is None:
        raise _Fail("your function returned None; did you forget `return`?")
    return out


def _compare(
    out,
    expected: torch.Tensor,
    wrong: dict[str, torch.Tensor],
    case: str,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> None:
    """Raise _Fail with a specific message unless `out` matches `expected`."""
    if not isinstance(out, torch.Tensor):
        if isinstance(expected, torch.Tensor) and expected.ndim == 0:
            out = torch.as_tensor(out, dtype=expected.dtype)
        else:
            raise _Fail(f"{case}: expected a torch.Tensor, got {type(out).__name__}")
    if out.shape != expected.shape:
        raise _Fail(f"{case}: expected shape {tuple(expected.shape)}, got {tuple(out.shape)}")
    out = out.detach().to(expected.dtype)
    if torch.allclose(out, expected, rtol=rtol, atol=atol):
        return
    for message, candidate in wrong.items():
        if candidate.shape == out.shape and torch.allclose(out, candidate, rtol=rtol, atol=atol):
            raise _Fail(f"{case}: {message}")
    error = (out - expected).abs()
    raise _Fail(
        f"{case}: values are off (largest difference {error.max().item():.3g}); "
        "compare your formula with the one in the text, term by term"
    )


def _run(name: str, body: Callable[[], str | None], success: str) -> CheckResult:
    try:
        note = body()  # a body may return a note to add to a pass
    except _Fail as failure:
        return CheckResult(name, False, str(failure))
    return CheckResult(name, True, success + (f"; but {note}" if note else ""))


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ===== lesson 1: noise =====
@_register(
    "gaussian_noise",
    "notebooks/01_noise.ipynb",
    "Start from standard noise (mean 0, standard deviation 1) drawn with the generator you are "
    "given. Multiplying by a number stretches the spread by that number; adding a number moves "
    "the centre. Which order keeps the mean where you want it?",
    """
    def gaussian_noise(shape, mean, std, generator):
        return mean + std * torch.randn(shape, generator=generator)
    """,
)
def check_gaussian_noise(fn: Callable) -> CheckResult:
    """Check `fn(shape, mean, std, generator)`: Gaussian noise with the given mean and std."""

    def body():
        shape, mean, std = (200_000,), 3.0, 2.0
        out = _call("gaussian_noise", fn, shape, mean, std, _gen(1))
        if not isinstance(out, torch.Tensor) or out.shape != torch.Size(shape):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise _Fail(f"expected a tensor of shape {shape}, got {got}")
        base = torch.randn(shape, generator=_gen(1))
        if torch.allclose(out, mean + std * base, atol=1e-5):
            return
        m, s = out.float().mean().item(), out.float().std().item()
        if abs(s - std**2) < 0.05:
            raise _Fail(f"the spread is {s:.2f}, which is std**2: scale by std, not the variance")
        if abs(m) < 0.05 and abs(s - std) < 0.05:
            raise _Fail(f"the spread is right but the mean is {m:.2f}; add the mean")
        if abs(m - mean * std) < 0.05:
            raise _Fail(f"the mean is {m:.2f} = mean * std; scale first, then add the mean")
        if abs(m - mean) > 0.05 or abs(s - std) > 0.05:
            raise _Fail(f"mean {m:.2f} and std {s:.2f}, expected {mean} and {std}")
        # right distribution, other random numbers: accept, and say why it matters
        return (
            "your numbers did not come from `generator`, so the same seed will not "
            "reproduce them: draw with torch.randn(shape, generator=generator)"
        )

    return _run("gaussian_noise", body, "mean and standard deviation come out right")


@_register(
    "mix_keep_variance",
    "notebooks/01_noise.ipynb",
    "Variances add: Var(a X + b Y) = a^2 Var(X) + b^2 Var(Y) for independent X, Y. For the result "
    "to keep variance 1 you need a^2 + b^2 = 1, so the weights are square roots of (1 - w) and w.",
    """
    def mix_keep_variance(image, noise, w):
        return (1 - w) ** 0.5 * image + w ** 0.5 * noise
    """,
)
def check_mix_keep_variance(fn: Callable) -> CheckResult:
    """Check `fn(image, noise, w)`: a mix with share w of noise that keeps unit variance."""

    def body():
        image, noise = torch.randn(4, 8, generator=_gen(2)), torch.randn(4, 8, generator=_gen(3))
        for w in (0.0, 0.3, 0.9):
            out = _call("mix_keep_variance", fn, image, noise, w)
            _compare(
                out,
                (1 - w) ** 0.5 * image + w**0.5 * noise,
                {
                    "this is a plain weighted average; its variance shrinks to (1-w)^2 + w^2 < 1. "
                    "Use square roots of the weights": (1 - w) * image + w * noise,
                    "the roles are swapped: w is the share of noise": w**0.5 * image
                    + (1 - w) ** 0.5 * noise,
                },
                f"w={w}",
            )

    return _run("mix_keep_variance", body, "the mix keeps unit variance at every w")


@_register(
    "heat_step",
    "notebooks/01_noise.ipynb",
    "Each cell moves a little toward its two neighbours: it gains rate * (neighbour - itself) "
    "from each side. torch.roll shifts a tensor and wraps around at the ends, which gives every "
    "cell its neighbour on one side.",
    """
    def heat_step(u, rate):
        return u + rate * (torch.roll(u, 1) + torch.roll(u, -1) - 2 * u)
    """,
)
def check_heat_step(fn: Callable) -> CheckResult:
    """Check `fn(u, rate)`: one explicit step of 1-D heat diffusion with wrap-around ends."""

    def body():
        for where, place in (("a spike of ink in the middle", 5), ("a spike at the edge", 0)):
            u = torch.zeros(16)
            u[place], u[place + 1] = 1.0, 0.5
            rate = 0.2
            left, right = torch.roll(u, 1), torch.roll(u, -1)
            lap = left + right - 2 * u
            padded = torch.nn.functional.pad(u, (1, 1))
            no_wrap = u + rate * (padded[:-2] + padded[2:] - 2 * u)
            out = _call("heat_step", fn, u.clone(), rate)
            _compare(out, u + rate * lap, {
                "the sign is flipped: ink must flow from high to low (add rate * laplacian)":
                    u - rate * lap,
                "you returned only the change; add it to u": rate * lap,
                "the centre term needs a factor 2 (left + right - 2u)": u + rate * (left + right - u),
                "both neighbours come from the same side: roll by +1 for one and -1 for the other":
                    u + rate * (2 * left - 2 * u),
                "ink leaks out at the ends: the line wraps around (torch.roll does this)": no_wrap,
            }, where)  # fmt: skip
            total = out.sum().item()
            if abs(total - u.sum().item()) > 1e-5:
                raise _Fail(
                    f"{where}: the total amount of ink changed from {u.sum().item():.2f} "
                    f"to {total:.2f}; a diffusion step must conserve it"
                )

    return _run("heat_step", body, "ink spreads and the total is conserved")


# ===== lesson 2: the forward process =====
@_register(
    "add_noise",
    "notebooks/02_forward_process.ipynb",
    "The image is scaled by the square root of alpha_bar_t and the noise by the square root of "
    "(1 - alpha_bar_t); then the two are added.",
    """
    def add_noise(image, noise, alpha_bar_t):
        return (alpha_bar_t ** 0.5) * image + ((1 - alpha_bar_t) ** 0.5) * noise
    """,
)
def check_add_noise(fn: Callable) -> CheckResult:
    """Check `fn(image, noise, alpha_bar_t)`: the closed-form jump x_0 -> x_t."""

    def body():
        image = torch.rand(2, 1, 4, 4, generator=_gen(4)) * 2 - 1
        noise = torch.randn(2, 1, 4, 4, generator=_gen(5))
        for a in (0.9, 0.5, 0.1):
            out = _call("add_noise", fn, image, noise, a)
            _compare(
                out,
                a**0.5 * image + (1 - a) ** 0.5 * noise,
                {
                    "missing square roots: the weights are sqrt(alpha_bar) and sqrt(1 - alpha_bar)": a
                    * image
                    + (1 - a) * noise,
                    "image and noise are swapped: alpha_bar is the share of the image": (1 - a)
                    ** 0.5
                    * image
                    + a**0.5 * noise,
                    "the noise weight needs a square root too": a**0.5 * image + (1 - a) * noise,
                    "the image weight needs a square root too": a * image + (1 - a) ** 0.5 * noise,
                    "the noise weight is sqrt(1 - alpha_bar_t), not 1 - sqrt(alpha_bar_t): the squares of "
                    "the two weights must add up to 1": a**0.5 * image + (1 - a**0.5) * noise,
                },
                f"alpha_bar_t={a}",
            )

    return _run("add_noise", body, "matches sqrt(a) * image + sqrt(1 - a) * noise")


@_register(
    "forward_step",
    "notebooks/02_forward_process.ipynb",
    "One small step shrinks the previous image by sqrt(1 - beta_t) and adds noise scaled by "
    "sqrt(beta_t), so the variance stays 1.",
    """
    def forward_step(x_prev, noise, beta_t):
        return (1 - beta_t) ** 0.5 * x_prev + beta_t ** 0.5 * noise
    """,
)
def check_forward_step(fn: Callable) -> CheckResult:
    """Check `fn(x_prev, noise, beta_t)`: one step of q(x_t | x_{t-1})."""

    def body():
        x_prev = torch.randn(3, 5, generator=_gen(6))
        noise = torch.randn(3, 5, generator=_gen(7))
        for beta in (0.02, 0.3):
            out = _call("forward_step", fn, x_prev, noise, beta)
            _compare(
                out,
                (1 - beta) ** 0.5 * x_prev + beta**0.5 * noise,
                {
                    "missing square roots: use sqrt(1 - beta_t) and sqrt(beta_t)": (1 - beta)
                    * x_prev
                    + beta * noise,
                    "the image must shrink by sqrt(1 - beta_t), or the variance grows every step": x_prev
                    + beta**0.5 * noise,
                    "beta_t is the noise share: swap the two weights": beta**0.5 * x_prev
                    + (1 - beta) ** 0.5 * noise,
                    "the image weight needs a square root too: sqrt(1 - beta_t)": (1 - beta)
                    * x_prev
                    + beta**0.5 * noise,
                    "the noise weight needs a square root too: sqrt(beta_t)": (1 - beta) ** 0.5
                    * x_prev
                    + beta * noise,
                },
                f"beta_t={beta}",
            )

    return _run("forward_step", body, "one step keeps the variance at 1")


@_register(
    "alpha_bar_from_betas",
    "notebooks/02_forward_process.ipynb",
    "Each step keeps a fraction 1 - beta of the signal variance, so what is left after several "
    "steps is a product of those fractions. You want that product after every step, not only "
    "after the last one (look for a cumulative function in torch).",
    """
    def alpha_bar_from_betas(betas):
        return torch.cumprod(1 - betas, dim=0)
    """,
)
def check_alpha_bar_from_betas(fn: Callable) -> CheckResult:
    """Check `fn(betas)`: alpha_bar_t = prod_{s <= t} (1 - beta_s), for every t."""

    def body():
        betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
        out = _call("alpha_bar_from_betas", fn, betas.clone())
        if isinstance(out, torch.Tensor) and out.shape == (len(betas) + 1,):
            raise _Fail(
                "you returned T + 1 values. In code, entry t is the product over steps "
                "0 .. t, so the first entry is 1 - betas[0] (the paper's alpha_bar_1); "
                "the paper's alpha_bar_0 = 1 is not stored"
            )
        _compare(
            out,
            torch.cumprod(1 - betas, 0),
            {
                "take the product of the alphas (1 - beta), not of the betas": torch.cumprod(
                    betas, 0
                ),
                "1 - sum(betas) is only a first-order approximation; use a product": 1
                - torch.cumsum(betas, 0),
                "that is the product over all steps; return the running product (one value per t)": torch.prod(
                    1 - betas
                ).expand(1000),
                "off by one: alpha_bar_0 already includes the first step (1 - beta_0)": torch.cat(
                    [betas.new_ones(1), torch.cumprod(1 - betas, 0)[:-1]]
                ),
            },
            "the linear schedule",
            rtol=1e-5,
            atol=1e-7,
        )

    return _run("alpha_bar_from_betas", body, "the running product of (1 - beta_t)")


@_register(
    "x0_from_noise",
    "notebooks/02_forward_process.ipynb",
    "Solve x_t = sqrt(a) x_0 + sqrt(1 - a) eps for x_0: subtract the noise term, then divide by "
    "sqrt(a).",
    """
    def x0_from_noise(xt, eps, alpha_bar_t):
        return (xt - (1 - alpha_bar_t) ** 0.5 * eps) / alpha_bar_t ** 0.5
    """,
)
def check_x0_from_noise(fn: Callable) -> CheckResult:
    """Check `fn(xt, eps, alpha_bar_t)`: recover x_0 from x_t when the noise is known."""

    def body():
        x0 = torch.rand(2, 3, 4, generator=_gen(8)) * 2 - 1
        eps = torch.randn(2, 3, 4, generator=_gen(9))
        for a in (0.8, 0.05):
            xt = a**0.5 * x0 + (1 - a) ** 0.5 * eps
            out = _call("x0_from_noise", fn, xt, eps, a)
            _compare(
                out,
                x0,
                {
                    "subtracting the noise is not enough: also divide by sqrt(alpha_bar_t)": xt
                    - (1 - a) ** 0.5 * eps,
                    "the noise term is sqrt(1 - alpha_bar_t) * eps": (xt - (1 - a) * eps) / a**0.5,
                    "divide by sqrt(alpha_bar_t), not alpha_bar_t": (xt - (1 - a) ** 0.5 * eps) / a,
                },
                f"alpha_bar_t={a}",
                rtol=1e-4,
                atol=1e-4,
            )

    return _run("x0_from_noise", body, "the clean image comes back exactly")


# ===== lesson 3: noise schedules =====
@_register(
    "linear_betas",
    "notebooks/03_noise_schedules.ipynb",
    "You need num_timesteps values, evenly spaced, with the first exactly beta_start and the "
    "last exactly beta_end. torch has a one-line function for evenly spaced values.",
    """
    def linear_betas(num_timesteps, beta_start, beta_end):
        return torch.linspace(beta_start, beta_end, num_timesteps, dtype=torch.float64)
    """,
)
def check_linear_betas(fn: Callable) -> CheckResult:
    """Check `fn(num_timesteps, beta_start, beta_end)`: the DDPM linear betas."""

    def body():
        for T, start, end in ((1000, 1e-4, 0.02), (50, 1e-3, 0.2)):
            out = _call("linear_betas", fn, T, start, end)
            expected = torch.linspace(start, end, T, dtype=torch.float64)
            _compare(
                out,
                expected,
                {
                    "off by one: the first beta must be beta_start and the last beta_end": torch.linspace(
                        start, end, T + 1, dtype=torch.float64
                    )[1:],
                    "these are alpha values; return the betas": 1 - expected,
                },
                f"T={T}",
                rtol=1e-5,
                atol=1e-7,
            )

    return _run("linear_betas", body, "T evenly spaced betas from beta_start to beta_end")


def _cosine_ratio_at(tau: torch.Tensor, s: float) -> torch.Tensor:
    tau = tau.double()
    return (
        torch.cos((tau + s) / (1 + s) * math.pi / 2) ** 2 / math.cos(s / (1 + s) * math.pi / 2) ** 2
    )


def _cosine_ratio(T: int, s: float, offset: int = 1, normalise: bool = True, square: bool = True):
    tau = (torch.arange(T, dtype=torch.float64) + offset) / T
    f = torch.cos((tau + s) / (1 + s) * math.pi / 2)
    f0 = math.cos(s / (1 + s) * math.pi / 2)
    if square:
        f, f0 = f**2, f0**2
    return f / f0 if normalise else f


@_register(
    "cosine_alpha_bar",
    "notebooks/03_noise_schedules.ipynb",
    "With tau = (t + 1) / T for t = 0 .. T-1, f(tau) = cos(((tau + s) / (1 + s)) * pi / 2) ** 2, "
    "and alpha_bar_t = f(tau) / f(0), so that alpha_bar starts just below 1.",
    """
    def cosine_alpha_bar(num_timesteps, s):
        tau = torch.arange(1, num_timesteps + 1, dtype=torch.float64) / num_timesteps
        f = lambda u: torch.cos((u + s) / (1 + s) * torch.pi / 2) ** 2
        return f(tau) / f(torch.zeros(()))
    """,
)
def check_cosine_alpha_bar(fn: Callable) -> CheckResult:
    """Check `fn(num_timesteps, s)`: the cosine schedule's alpha_bar (last value not checked).

    The last value is where the package clips beta at 0.999, so either answer is accepted there.
    """

    def body():
        for T, s in ((1000, 0.008), (20, 0.1)):
            out = _call("cosine_alpha_bar", fn, T, s)
            if isinstance(out, torch.Tensor) and out.shape == (T,):
                out = out[:-1]
            expected = _cosine_ratio(T, s)[:-1]
            _compare(
                out,
                expected,
                {
                    "divide by f(0) so that alpha_bar starts at (nearly) 1": _cosine_ratio(
                        T, s, normalise=False
                    )[:-1],
                    "the cosine must be squared": _cosine_ratio(T, s, square=False)[:-1],
                    "off by one: alpha_bar_0 belongs to tau = 1/T, not tau = 0": _cosine_ratio(
                        T, s, offset=0
                    )[:-1],
                    "the offset s is missing (it keeps the first betas from being too small)": _cosine_ratio(
                        T, 0.0
                    )[:-1],
                    "tau must be (t + 1) / T for t = 0 .. T-1; linspace(0, 1, T) starts at 0 and spaces "
                    "the points 1 / (T - 1) apart": _cosine_ratio_at(torch.linspace(0, 1, T), s)[
                        :-1
                    ],
                },
                f"T={T}, s={s}",
                rtol=1e-5,
                atol=1e-7,
            )

    return _run("cosine_alpha_bar", body, "matches Nichol & Dhariwal's cosine schedule")


@_register(
    "log_snr",
    "notebooks/03_noise_schedules.ipynb",
    "The signal has variance alpha_bar and the noise 1 - alpha_bar; SNR is their ratio, and you "
    "want its natural logarithm (torch.log).",
    """
    def log_snr(alpha_bar):
        return torch.log(alpha_bar / (1 - alpha_bar))
    """,
)
def check_log_snr(fn: Callable) -> CheckResult:
    """Check `fn(alpha_bar)`: log(alpha_bar / (1 - alpha_bar))."""

    def body():
        alpha_bar = torch.tensor([0.999, 0.9, 0.5, 0.1, 0.001], dtype=torch.float64)
        out = _call("log_snr", fn, alpha_bar.clone())
        snr = alpha_bar / (1 - alpha_bar)
        _compare(
            out,
            snr.log(),
            {
                "that is the SNR itself; take its logarithm": snr,
                "use the natural log (torch.log), not log10": snr.log10(),
                "the ratio is upside down: signal over noise": -snr.log(),
                "SNR compares signal variance with noise variance 1 - alpha_bar, not with 1": alpha_bar.log(),
            },
            "five values of alpha_bar",
            rtol=1e-5,
            atol=1e-7,
        )

    return _run("log_snr", body, "log SNR is positive when signal dominates, negative after")


@_register(
    "first_timestep_below",
    "notebooks/03_noise_schedules.ipynb",
    "Compare the whole tensor with the level at once: that gives a tensor of True/False. You "
    "want the position of the first True, as a Python int.",
    """
    def first_timestep_below(alpha_bar, level):
        return int(torch.nonzero(alpha_bar < level)[0])
    """,
)
def check_first_timestep_below(fn: Callable) -> CheckResult:
    """Check `fn(alpha_bar, level)`: the first t with alpha_bar[t] < level, as an int."""

    def body():
        from .schedules import NoiseSchedule

        for schedule in (NoiseSchedule.linear(), NoiseSchedule.cosine()):
            for level in (0.5, 0.01):
                expected = int(torch.nonzero(schedule.alpha_bar < level)[0])
                out = _call("first_timestep_below", fn, schedule.alpha_bar.clone(), level)
                try:
                    out = int(out)
                except (TypeError, ValueError, RuntimeError):
                    raise _Fail(f"expected one int, got {out!r:.60}") from None
                if out == expected - 1:
                    raise _Fail(
                        f"off by one for the {schedule.name} schedule at level {level}: "
                        "that is the last t still at or above the level"
                    )
                if out != expected:
                    raise _Fail(
                        f"{schedule.name} schedule, level {level}: expected t={expected}, got {out}"
                    )

    return _run("first_timestep_below", body, "finds where the signal falls below the level")


# ===== lesson 4: the reverse process =====
@_register(
    "posterior_mean",
    "notebooks/04_reverse_process.ipynb",
    "The mean is a weighted sum of x0 and xt. The weight of x0 has sqrt(alpha_bar_prev) * beta_t "
    "on top; the weight of xt has sqrt(alpha_t) * (1 - alpha_bar_prev) on top, with "
    "alpha_t = 1 - beta_t; both share the same denominator.",
    """
    def posterior_mean(x0, xt, alpha_bar_t, alpha_bar_prev, beta_t):
        coef_x0 = alpha_bar_prev ** 0.5 * beta_t / (1 - alpha_bar_t)
        coef_xt = (1 - beta_t) ** 0.5 * (1 - alpha_bar_prev) / (1 - alpha_bar_t)
        return coef_x0 * x0 + coef_xt * xt
    """,
)
def check_posterior_mean(fn: Callable) -> CheckResult:
    """Check `fn(x0, xt, alpha_bar_t, alpha_bar_prev, beta_t)`: the mean of q(x_{t-1} | x_t, x_0)."""

    def body():
        x0 = torch.rand(2, 5, generator=_gen(10)) * 2 - 1
        xt = torch.randn(2, 5, generator=_gen(11))
        for a_prev, beta in ((0.9, 0.05), (0.3, 0.2)):
            a = a_prev * (1 - beta)
            den = 1 - a
            right = a_prev**0.5 * beta / den * x0 + (1 - beta) ** 0.5 * (1 - a_prev) / den * xt
            out = _call("posterior_mean", fn, x0, xt, a, a_prev, beta)
            _compare(out, right, {
                "the two weights are swapped: x0's weight has beta_t on top":
                    (1 - beta) ** 0.5 * (1 - a_prev) / den * x0 + a_prev**0.5 * beta / den * xt,
                "xt's weight uses sqrt(alpha_t) = sqrt(1 - beta_t), not sqrt(alpha_bar_t)":
                    a_prev**0.5 * beta / den * x0 + a**0.5 * (1 - a_prev) / den * xt,
                "x0's weight needs the square root of alpha_bar_prev":
                    a_prev * beta / den * x0 + (1 - beta) ** 0.5 * (1 - a_prev) / den * xt,
            "both weights divide by 1 - alpha_bar_t (the current step), not 1 - alpha_bar_prev":
                    a_prev**0.5 * beta / (1 - a_prev) * x0 + (1 - beta) ** 0.5 * xt,
            }, f"alpha_bar_prev={a_prev}, beta_t={beta}")  # fmt: skip

    return _run("posterior_mean", body, "matches Ho et al. (2020), eq. 7")


@_register(
    "ddpm_mean",
    "notebooks/04_reverse_process.ipynb",
    "Remove a share of the predicted noise from xt, then undo the shrinking of the last step. "
    "The share is beta_t / sqrt(1 - alpha_bar_t); the last step shrank the image by "
    "sqrt(1 - beta_t).",
    """
    def ddpm_mean(xt, eps_hat, alpha_bar_t, beta_t):
        return (xt - beta_t / (1 - alpha_bar_t) ** 0.5 * eps_hat) / (1 - beta_t) ** 0.5
    """,
)
def check_ddpm_mean(fn: Callable) -> CheckResult:
    """Check `fn(xt, eps_hat, alpha_bar_t, beta_t)`: the mean of one reverse step (eq. 11)."""

    def body():
        xt = torch.randn(3, 4, generator=_gen(12))
        eps_hat = torch.randn(3, 4, generator=_gen(13))
        for beta, a in ((0.02, 0.5), (0.3, 0.05)):
            out = _call("ddpm_mean", fn, xt, eps_hat, a, beta)
            _compare(out, (xt - beta / (1 - a) ** 0.5 * eps_hat) / (1 - beta) ** 0.5, {
                "divide by sqrt(1 - beta_t) at the end: the forward step had shrunk the image":
                    xt - beta / (1 - a) ** 0.5 * eps_hat,
                "that removes all the noise at once (it is x0_hat's recipe); one step removes "
                "only the share beta_t / sqrt(1 - alpha_bar_t)":
                    (xt - (1 - a) ** 0.5 * eps_hat) / (1 - beta) ** 0.5,
                "subtract the predicted noise, do not add it":
                    (xt + beta / (1 - a) ** 0.5 * eps_hat) / (1 - beta) ** 0.5,
            "divide by sqrt(alpha_t) = sqrt(1 - beta_t), not by sqrt(alpha_bar_t)":
                    (xt - beta / (1 - a) ** 0.5 * eps_hat) / a**0.5,
                "the noise share is beta_t / sqrt(1 - alpha_bar_t): a square root is missing":
                    (xt - beta / (1 - a) * eps_hat) / (1 - beta) ** 0.5,
                "divide by sqrt(1 - beta_t), do not multiply":
                    (xt - beta / (1 - a) ** 0.5 * eps_hat) * (1 - beta) ** 0.5,
            }, f"beta_t={beta}, alpha_bar_t={a}")  # fmt: skip

    return _run("ddpm_mean", body, "matches Ho et al. (2020), eq. 11")


def _embedding(
    t: torch.Tensor, dim: int, linear=False, swap=False, endpoint=False, interleave=False
):
    half = dim // 2
    if linear:
        freqs = 1 - torch.arange(half) / half
    else:
        freqs = torch.exp(-math.log(10_000) * torch.arange(half) / (half - 1 if endpoint else half))
    angles = t.float()[:, None] * freqs[None]
    if interleave:  # sin, cos, sin, cos, ...
        return torch.stack([angles.sin(), angles.cos()], dim=2).flatten(1)
    parts = [angles.cos(), angles.sin()] if swap else [angles.sin(), angles.cos()]
    return torch.cat(parts, dim=1)


@_register(
    "timestep_embedding",
    "notebooks/04_reverse_process.ipynb",
    "Make half = dim / 2 frequencies 10000 ** (-i / half) for i = 0 .. half - 1 (so the first is "
    "1 and the last is a little above 1/10000), multiply each t by every frequency, and put all "
    "the sines first and all the cosines after them along dim 1.",
    """
    def timestep_embedding(t, dim):
        half = dim // 2
        freqs = 10000 ** (-torch.arange(half) / half)
        angles = t.float()[:, None] * freqs[None]
        return torch.cat([angles.sin(), angles.cos()], dim=1)
    """,
)
def check_timestep_embedding(fn: Callable) -> CheckResult:
    """Check `fn(t, dim)`: sinusoidal features (B,) -> (B, dim), sines then cosines."""

    def body():
        t = torch.tensor([0, 1, 17, 999])
        out = _call("timestep_embedding", fn, t.clone(), 16)
        _compare(out, _embedding(t, 16), {
            "sines and cosines are in the other order: sines first": _embedding(t, 16, swap=True),
            "the frequencies must fall geometrically (exp(-log(10000) * i / half)), not linearly":
                _embedding(t, 16, linear=True),
        "the exponents are -i / half for i = 0 .. half - 1: the last frequency is not exactly "
            "1/10000 (linspace with its endpoint divides by half - 1)":
                _embedding(t, 16, endpoint=True),
            "put all the sines first, then all the cosines (not sin, cos, sin, cos, ...)":
                _embedding(t, 16, interleave=True),
        }, "t = 0, 1, 17, 999 with dim = 16", rtol=1e-4, atol=1e-4)  # fmt: skip

    return _run("timestep_embedding", body, "each timestep gets a unique, smooth code")


# ===== lesson 5: training =====
@_register(
    "training_loss",
    "notebooks/05_training.ipynb",
    "Noise the image to step t in one jump with the given noise, ask the model for the noise, "
    "and take the mean of the squared difference between the true and the predicted noise.",
    """
    def training_loss(model, x0, alpha_bar, t, noise):
        a = alpha_bar[t].view(-1, 1, 1, 1)
        xt = a ** 0.5 * x0 + (1 - a) ** 0.5 * noise
        return ((noise - model(xt, t)) ** 2).mean()
    """,
)
def check_training_loss(fn: Callable) -> CheckResult:
    """Check `fn(model, x0, alpha_bar, t, noise)`: the DDPM loss for given t and noise."""

    def body():
        x0 = torch.rand(3, 1, 4, 4, generator=_gen(14)) * 2 - 1
        noise = torch.randn(3, 1, 4, 4, generator=_gen(15))
        alpha_bar = torch.linspace(0.99, 0.01, 10)
        t = torch.tensor([1, 5, 8])
        a = alpha_bar[t].view(-1, 1, 1, 1)

        def model(xt, t_):  # a fixed, simple "network": predicts half of its input
            return 0.5 * xt + 0.01 * t_.float().view(-1, 1, 1, 1)

        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        right = ((noise - model(xt, t)) ** 2).mean()
        out = _call("training_loss", fn, model, x0, alpha_bar, t, noise)
        xt_plain = a * x0 + (1 - a) * noise
        _compare(torch.as_tensor(out).reshape(()), right, {
            "compare the prediction with the noise you added, not with the clean image":
                ((x0 - model(xt, t)) ** 2).mean(),
            "x_t needs the square roots: sqrt(a) * x0 + sqrt(1 - a) * noise":
                ((noise - model(xt_plain, t)) ** 2).mean(),
            "square the difference before averaging": (noise - model(xt, t)).mean(),
        }, "three images at t = 1, 5, 8", rtol=1e-4, atol=1e-6)  # fmt: skip

    return _run("training_loss", body, "the same loss as the article's training_step")


@_register(
    "v_target",
    "notebooks/05_training.ipynb",
    "v mixes the noise and the clean image with the same two weights as x_t, but crossed over and "
    "with a minus sign: the noise gets sqrt(alpha_bar), the image -sqrt(1 - alpha_bar).",
    """
    def v_target(x0, eps, alpha_bar_t):
        return alpha_bar_t ** 0.5 * eps - (1 - alpha_bar_t) ** 0.5 * x0
    """,
)
def check_v_target(fn: Callable) -> CheckResult:
    """Check `fn(x0, eps, alpha_bar_t)`: the v-prediction target of Salimans & Ho (2022)."""

    def body():
        x0 = torch.rand(2, 6, generator=_gen(16)) * 2 - 1
        eps = torch.randn(2, 6, generator=_gen(17))
        for a in (0.9, 0.2):
            out = _call("v_target", fn, x0, eps, a)
            _compare(out, a**0.5 * eps - (1 - a) ** 0.5 * x0, {
                "the sign is the other way round: plus noise, minus image":
                    (1 - a) ** 0.5 * x0 - a**0.5 * eps,
                "the weights are crossed over: the noise gets sqrt(alpha_bar)":
                    (1 - a) ** 0.5 * eps - a**0.5 * x0,
                "that is x_t (a plus sign and the weights not crossed)":
                    a**0.5 * x0 + (1 - a) ** 0.5 * eps,
            }, f"alpha_bar_t={a}")  # fmt: skip

    return _run("v_target", body, "v = sqrt(a) eps - sqrt(1 - a) x0")


@_register(
    "ema_update",
    "notebooks/05_training.ipynb",
    "The average keeps most of itself (the share decay) and takes a little of the new value "
    "(the share 1 - decay).",
    """
    def ema_update(average, value, decay):
        return decay * average + (1 - decay) * value
    """,
)
def check_ema_update(fn: Callable) -> CheckResult:
    """Check `fn(average, value, decay)`: one exponential-moving-average update."""

    def body():
        average, value = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, -2.0])
        for decay in (0.9, 0.999):
            out = _call("ema_update", fn, average.clone(), value.clone(), decay)
            _compare(out, decay * average + (1 - decay) * value, {
                "the weights are swapped: the old average keeps the share decay":
                    (1 - decay) * average + decay * value,
                "add the new value's share (1 - decay) * value": decay * average,
            }, f"decay={decay}")  # fmt: skip

    return _run("ema_update", body, "the average moves a little toward each new value")


# ===== lesson 6: sampling =====
@_register(
    "eps_from_v",
    "notebooks/06_sampling.ipynb",
    "Write x_t and v in terms of x0 and eps, then look for the mix of x_t and v in which x0 "
    "cancels: take sqrt(alpha_bar) of v and sqrt(1 - alpha_bar) of x_t, and add.",
    """
    def eps_from_v(xt, v, alpha_bar_t):
        return alpha_bar_t ** 0.5 * v + (1 - alpha_bar_t) ** 0.5 * xt
    """,
)
def check_eps_from_v(fn: Callable) -> CheckResult:
    """Check `fn(xt, v, alpha_bar_t)`: the noise hidden in x_t, from a v-prediction."""

    def body():
        x0 = torch.rand(2, 6, generator=_gen(18)) * 2 - 1
        eps = torch.randn(2, 6, generator=_gen(19))
        for a in (0.95, 0.3):
            xt = a**0.5 * x0 + (1 - a) ** 0.5 * eps
            v = a**0.5 * eps - (1 - a) ** 0.5 * x0
            out = _call("eps_from_v", fn, xt, v, a)
            _compare(out, eps, {
                "that is x0, not the noise: x0 = sqrt(a) x_t - sqrt(1 - a) v":
                    a**0.5 * xt - (1 - a) ** 0.5 * v,
                "the weights are swapped: v gets sqrt(alpha_bar), x_t gets sqrt(1 - alpha_bar)":
                    (1 - a) ** 0.5 * v + a**0.5 * xt,
                "add the two terms: x0 cancels only with a plus sign":
                    a**0.5 * v - (1 - a) ** 0.5 * xt,
            }, f"alpha_bar_t={a}", rtol=1e-4, atol=1e-5)  # fmt: skip

    return _run("eps_from_v", body, "eps = sqrt(a) v + sqrt(1 - a) x_t recovers the noise exactly")


def _reverse_chain(
    model,
    schedule: NoiseSchedule,
    x_T,
    noises,
    *,
    clip=True,
    noise=True,
    up=False,
    stop=0,
    flip=False,
):
    """The ancestral DDPM loop with given noises (an oracle for check_reverse_loop).

    The keyword arguments make the typical mistakes: no fresh noise, the loop running upwards,
    stopping before t = `stop`, and noises indexed by step count instead of timestep (`flip`).
    """
    x = x_T
    T = len(schedule)
    for t in range(T) if up else range(T - 1, stop - 1, -1):
        a, beta = schedule.alpha_bar[t], schedule.betas[t]
        a_prev = schedule.alpha_bar_prev[t]
        eps_hat = model(x, torch.full((len(x),), t))
        x0_hat = (x - (1 - a).sqrt() * eps_hat) / a.sqrt()
        if clip:
            x0_hat = x0_hat.clamp(-1, 1)
        mean = (a_prev.sqrt() * beta * x0_hat + (1 - beta).sqrt() * (1 - a_prev) * x) / (1 - a)
        z = noises[T - 1 - t] if flip else noises[t]
        x = mean + (schedule.posterior_variance[t].sqrt() * z if noise and t > 0 else 0)
    return x


@_register(
    "reverse_loop",
    "notebooks/06_sampling.ipynb",
    "Start with x = x_T. Go from t = T - 1 down to 0; at each t build a batch of timesteps "
    "(torch.full((len(x),), t)), ask the model for the noise, and take one step with "
    "remove_noise(x, eps_hat, t, schedule, noise=noises[t]). Return the last x.",
    """
    def reverse_loop(model, schedule, x_T, noises):
        x = x_T
        for t in reversed(range(len(schedule))):
            eps_hat = model(x, torch.full((len(x),), t))
            x = remove_noise(x, eps_hat, t, schedule, noise=noises[t])
        return x
    """,
)
def check_reverse_loop(fn: Callable) -> CheckResult:
    """Check `fn(model, schedule, x_T, noises)`: ancestral sampling with the step's noise given.

    `noises[t]` is the fresh noise for the step that leaves timestep t. The result may clip the
    x_0 estimate to [-1, 1] (as `remove_noise` does) or not (eq. 11 as printed).
    """

    def body():
        schedule = NoiseSchedule.linear(20, beta_end=0.3)
        x_T = torch.randn(3, 1, 4, 4, generator=_gen(20))
        noises = torch.randn(20, 3, 1, 4, 4, generator=_gen(21))

        def model(xt, t):  # a fixed fake "network": its noise guess depends on x_t and t
            t = torch.as_tensor(t, dtype=torch.float32).reshape(-1, 1, 1, 1)  # int or (B,)
            return 0.6 * xt + 0.02 * t

        out = _call("reverse_loop", fn, model, schedule, x_T.clone(), noises.clone())
        right = [_reverse_chain(model, schedule, x_T, noises, clip=c) for c in (True, False)]
        if isinstance(out, torch.Tensor) and out.shape == x_T.shape:
            if any(torch.allclose(out, r, rtol=1e-3, atol=1e-3) for r in right):
                return None
        _compare(out, right[0], {
            "no fresh noise was added: pass noise=noises[t] to each step":
                _reverse_chain(model, schedule, x_T, noises, noise=False),
            "the loop runs the wrong way: start at t = T - 1 and count down to 0":
                _reverse_chain(model, schedule, x_T, noises, up=True),
            "the loop stops too early: the last step, at t = 0, must run too (it adds no "
            "noise, but it still removes some)":
                _reverse_chain(model, schedule, x_T, noises, stop=1),
            "noises[t] belongs to timestep t: index it by t, not by the number of steps taken":
                _reverse_chain(model, schedule, x_T, noises, flip=True),
        }, "20 steps of a fake model on 3 tiny images", rtol=1e-3, atol=1e-3)  # fmt: skip

    return _run("reverse_loop", body, "the same chain as the package's ddpm_sample")


def _pairwise(images: torch.Tensor, include_self=False, squared=False) -> torch.Tensor:
    flat = images.flatten(1).double()
    d = torch.cdist(flat, flat)
    d = d**2 if squared else d
    n = len(flat)
    if include_self:
        return d.mean()
    return d.sum() / (n * (n - 1))


@_register(
    "mean_pairwise_distance",
    "notebooks/06_sampling.ipynb",
    "Flatten each image to a vector (images.flatten(1)), compute every distance between two "
    "different images (torch.cdist gives the whole table), and average over the pairs i != j: "
    "the table's diagonal holds the zero distances of each image to itself.",
    """
    def mean_pairwise_distance(images):
        flat = images.flatten(1)
        d = torch.cdist(flat, flat)
        n = len(flat)
        return d.sum() / (n * (n - 1))
    """,
)
def check_mean_pairwise_distance(fn: Callable) -> CheckResult:
    """Check `fn(images)`: the mean Euclidean distance between distinct images (diversity)."""

    def body():
        images = torch.rand(5, 1, 3, 3, generator=_gen(22)) * 2 - 1
        out = _call("mean_pairwise_distance", fn, images.clone())
        _compare(torch.as_tensor(out).reshape(()).double(), _pairwise(images), {
            "the diagonal (each image with itself, distance 0) was averaged in: divide by "
            "n (n - 1), the number of ordered pairs of different images":
                _pairwise(images, include_self=True),
            "that is the squared distance: take the square root of the summed squares":
                _pairwise(images, squared=True),
            "flatten each image first (images.flatten(1)): on 4-D tensors torch.cdist measures "
            "distances between the rows inside each image, not between images":
                torch.cdist(images.double(), images.double()).sum() / (5 * 4),
        }, "5 random images", rtol=1e-4, atol=1e-6)  # fmt: skip
        same = _call("mean_pairwise_distance", fn, images[:1].repeat(4, 1, 1, 1))
        if abs(float(same)) > 1e-5:
            raise _Fail(f"four copies of one image must give 0 (no diversity), got {float(same)}")

    return _run("mean_pairwise_distance", body, "0 for copies, larger for varied samples")


# ===== lesson 7: faster sampling =====
@_register(
    "ddim_step",
    "notebooks/07_fast_sampling.ipynb",
    "First undo the noise to get x0_hat = (x_t - sqrt(1 - a_t) eps_hat) / sqrt(a_t). Then build "
    "the sample at the next level as if x0_hat and eps_hat were the truth: "
    "sqrt(a_prev) x0_hat + sqrt(1 - a_prev) eps_hat.",
    """
    def ddim_step(xt, eps_hat, alpha_bar_t, alpha_bar_prev):
        x0_hat = (xt - (1 - alpha_bar_t) ** 0.5 * eps_hat) / alpha_bar_t ** 0.5
        return alpha_bar_prev ** 0.5 * x0_hat + (1 - alpha_bar_prev) ** 0.5 * eps_hat
    """,
)
def check_ddim_step(fn: Callable) -> CheckResult:
    """Check `fn(xt, eps_hat, alpha_bar_t, alpha_bar_prev)`: one deterministic DDIM step."""

    def body():
        xt = torch.randn(2, 1, 3, 3, generator=_gen(23))
        eps_hat = torch.randn(2, 1, 3, 3, generator=_gen(24))
        for a, a_prev in ((0.1, 0.4), (0.6, 0.99)):
            x0_hat = (xt - (1 - a) ** 0.5 * eps_hat) / a**0.5
            out = _call("ddim_step", fn, xt, eps_hat, a, a_prev)
            if isinstance(out, tuple):
                raise _Fail(
                    "return only x_s, one tensor shaped like xt (the package's ddim_step "
                    "also returns x0_hat; this exercise does not)"
                )
            _compare(out, a_prev**0.5 * x0_hat + (1 - a_prev) ** 0.5 * eps_hat, {
                "that is just x0_hat: the step must put back the noise level of a_prev":
                    x0_hat,
                "the new sample needs square roots: sqrt(a_prev) x0_hat + sqrt(1 - a_prev) eps":
                    a_prev * x0_hat + (1 - a_prev) * eps_hat,
                "re-noise with alpha_bar_prev (the level you step to), not alpha_bar_t":
                    a**0.5 * x0_hat + (1 - a) ** 0.5 * eps_hat,
            }, f"alpha_bar_t={a}, alpha_bar_prev={a_prev}")  # fmt: skip

    return _run("ddim_step", body, "matches Song et al. (2021), eq. 12 with sigma = 0")


@_register(
    "trailing_timesteps",
    "notebooks/07_fast_sampling.ipynb",
    "Count down from T in strides of T / num_steps: T, T - T/n, ..., T/n (num_steps numbers), "
    "round each with torch.round (halves go to the even neighbour), and subtract 1 so the first "
    "timestep is T - 1. Return a LongTensor.",
    """
    def trailing_timesteps(num_steps, T):
        strides = torch.arange(T, 0, -T / num_steps)[:num_steps]  # [:n]: float steps can overshoot
        return (strides.round() - 1).long()
    """,
)
def check_trailing_timesteps(fn: Callable) -> CheckResult:
    """Check `fn(num_steps, T)`: the descending "trailing" timesteps that start at T - 1."""

    def body():
        for num_steps, T in ((10, 1000), (4, 10), (3, 1000), (61, 1000)):
            schedule = NoiseSchedule.linear(T)
            out = _call("trailing_timesteps", fn, num_steps, T)
            out = torch.as_tensor(out)
            _compare(out.double(), schedule.timesteps(num_steps, "trailing").double(), {
                "that is 'leading' spacing, which starts below T - 1: start at T - 1 instead":
                    schedule.timesteps(num_steps, "leading").double(),
                "that is 'linspace' spacing (it ends at t = 0): trailing strides end at T/n - 1":
                    schedule.timesteps(num_steps, "linspace").double(),
                "the timesteps must go down, from T - 1 towards 0":
                    schedule.timesteps(num_steps, "trailing").flip(0).double(),
                "round with torch.round, which sends halves to the even neighbour (as NumPy "
                "and diffusers do), not always up":
                    torch.floor(
                        torch.arange(T, 0, -T / num_steps, dtype=torch.float64)[:num_steps] + 0.5
                    )
                    - 1,
            }, f"num_steps={num_steps}, T={T}", rtol=0, atol=1e-9)  # fmt: skip

    return _run("trailing_timesteps", body, "the first step starts from pure noise, t = T - 1")


def _sin_theta(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.sin(torch.arccos((a.flatten() @ b.flatten()) / (a.norm() * b.norm())))


def _slerp(a: torch.Tensor, b: torch.Tensor, w: float, arccos: bool = True) -> torch.Tensor:
    theta = (a.flatten() @ b.flatten()) / (a.norm() * b.norm())  # the cosine of the angle
    theta = torch.arccos(theta) if arccos else theta
    return (torch.sin((1 - w) * theta) * a + torch.sin(w * theta) * b) / torch.sin(theta)


@_register(
    "slerp",
    "notebooks/07_fast_sampling.ipynb",
    "The angle between a and b is theta = arccos(a . b / (|a| |b|)) (flatten both first). Weigh "
    "a by sin((1 - w) theta) and b by sin(w theta), and divide the sum by sin(theta).",
    """
    def slerp(a, b, w):
        theta = torch.arccos((a.flatten() @ b.flatten()) / (a.norm() * b.norm()))
        return (torch.sin((1 - w) * theta) * a + torch.sin(w * theta) * b) / torch.sin(theta)
    """,
)
def check_slerp(fn: Callable) -> CheckResult:
    """Check `fn(a, b, w)`: spherical interpolation between two noises."""

    def body():
        a = torch.randn(1, 1, 8, 8, generator=_gen(25))
        b = torch.randn(1, 1, 8, 8, generator=_gen(26))
        for w in (0.0, 0.3, 0.5, 1.0):
            out = _call("slerp", fn, a.clone(), b.clone(), w)
            _compare(out, _slerp(a, b, w), {
                "that is the straight blend (1 - w) a + w b: it cuts through the sphere, where "
                "the noise is weaker than any noise the model was trained on":
                    (1 - w) * a + w * b,
                "the weights are swapped: w = 0 must give a":
                    _slerp(a, b, 1 - w),
                "divide the sum by sin(theta): without it the result is too short":
                    _slerp(a, b, w) * _sin_theta(a, b),
                "theta is the angle itself: take torch.arccos of the cosine a.b / (|a| |b|)":
                    _slerp(a, b, w, arccos=False),
            }, f"w={w}", rtol=1e-4, atol=1e-5)  # fmt: skip

    return _run("slerp", body, "the path stays at the noise's usual length")


# ===== lesson 8: conditioning and guidance =====
@_register(
    "cfg_combine",
    "notebooks/08_conditioning.ipynb",
    "Start from the unconditional prediction and move along the direction that the label adds, "
    "(eps_cond - eps_uncond), w times. Check: w = 1 must give eps_cond exactly, w = 0 eps_uncond.",
    """
    def cfg_combine(eps_uncond, eps_cond, w):
        return eps_uncond + w * (eps_cond - eps_uncond)
    """,
)
def check_cfg_combine(fn: Callable) -> CheckResult:
    """Check `fn(eps_uncond, eps_cond, w)`: classifier-free guidance, diffusers convention."""

    def body():
        u = torch.randn(2, 1, 4, 4, generator=_gen(30))
        c = torch.randn(2, 1, 4, 4, generator=_gen(31))
        for w in (1.0, 0.0, 3.0, 7.5):
            out = _call("cfg_combine", fn, u.clone(), c.clone(), w)
            _compare(out, u + w * (c - u), {
                "the roles are swapped: w = 1 must give eps_cond and w = 0 eps_uncond":
                    c + w * (u - c),
                "that is the paper's convention, (1 + w) eps_cond - w eps_uncond; this course "
                "(like diffusers) uses w = 1 for the plain conditional model":
                    (1 + w) * c - w * u,
                "the unconditional prediction is the starting point: add eps_uncond":
                    w * (c - u),
                "guidance moves along the difference (eps_cond - eps_uncond), not along eps_cond":
                    u + w * c,
                "the difference points the wrong way: it is (eps_cond - eps_uncond), towards the "
                "label":
                    u + w * (u - c),
            }, f"w={w}")  # fmt: skip

    return _run("cfg_combine", body, "w = 1 is the conditional model, w > 1 pushes past it")


@_register(
    "drop_labels",
    "notebooks/08_conditioning.ipynb",
    "Draw one uniform number per label with torch.rand(len(labels), generator=generator); where it "
    "is below p_uncond, put null_label. torch.where(drop, null_label, labels) builds a new tensor "
    "and leaves the input alone.",
    """
    def drop_labels(labels, p_uncond, null_label, generator):
        drop = torch.rand(len(labels), generator=generator) < p_uncond
        return torch.where(drop, null_label, labels)
    """,
)
def check_drop_labels(fn: Callable) -> CheckResult:
    """Check `fn(labels, p_uncond, null_label, generator)`: label dropout for guidance."""

    def body():
        labels = torch.arange(20_000) % 10
        note = None
        for p in (0.1, 0.5):
            given = labels.clone()
            out = _call("drop_labels", fn, given, p, 10, _gen(32))
            if not torch.equal(given, labels):
                raise _Fail("your function changed the labels it was given; return a new tensor")
            if not isinstance(out, torch.Tensor) or out.shape != labels.shape:
                raise _Fail(f"expected a tensor of shape {tuple(labels.shape)}")
            if out.dtype != labels.dtype:
                raise _Fail(f"labels are integers ({labels.dtype}); you returned {out.dtype}")
            changed = out != labels
            if changed.any() and not (out[changed] == 10).all():
                raise _Fail("a dropped label must become null_label (10 here), nothing else")
            share = changed.float().mean().item()
            if abs(share - 1 + p) < 0.02 and abs(share - p) > 0.02:
                raise _Fail(
                    f"p_uncond={p}: you dropped {share:.0%}, that is 1 - p_uncond: drop a label "
                    "when the random number is below p_uncond"
                )
            if abs(share - p) > 0.02:
                raise _Fail(f"p_uncond={p}: {share:.1%} of the labels were dropped, not {p:.0%}")
            expected = torch.where(torch.rand(len(labels), generator=_gen(32)) < p, 10, labels)
            if not torch.equal(out, expected):
                note = (
                    "your choice of labels to drop differs from one uniform draw per label from "
                    "`generator`, so a resumed training run would not repeat it exactly"
                )
        if not torch.equal(_call("drop_labels", fn, labels.clone(), 0.0, 10, _gen(33)), labels):
            raise _Fail("p_uncond=0 must keep every label")
        return note

    return _run("drop_labels", body, "about p_uncond of the labels become the null label")


class _CountingModel:
    """Predicts eps = label / 10 (the null label predicts -1), and counts its calls."""

    def __init__(self, null_label: int):
        self.null_label, self.calls = null_label, 0

    def __call__(self, xt, t, cond):
        self.calls += 1
        if torch.as_tensor(t).ndim == 1 and len(t) not in (1, len(xt)):  # (1,): shared
            raise ValueError(
                f"t has {len(t)} entries for a batch of {len(xt)}: the batch is twice as long "
                "now, so repeat t too, torch.cat([t, t])"
            )
        value = torch.where(cond == self.null_label, -1.0, cond / 10).to(xt.dtype)
        return xt + value.view(-1, 1, 1, 1)


@_register(
    "guided_prediction",
    "notebooks/08_conditioning.ipynb",
    "Stack the batch twice (torch.cat([xt, xt])), the timesteps twice, and the labels after a "
    "batch of null labels (torch.full_like(labels, null_label)). One call gives 2B predictions; "
    "out.chunk(2) splits them into the unconditional and the conditional half. Then combine.",
    """
    def guided_prediction(model, xt, t, labels, w, null_label):
        null = torch.full_like(labels, null_label)
        out = model(torch.cat([xt, xt]), torch.cat([t, t]), torch.cat([null, labels]))
        eps_uncond, eps_cond = out.chunk(2)
        return eps_uncond + w * (eps_cond - eps_uncond)
    """,
)
def check_guided_prediction(fn: Callable) -> CheckResult:
    """Check `fn(model, xt, t, labels, w, null_label)`: guidance in one batched model call."""

    def body():
        xt = torch.randn(3, 1, 4, 4, generator=_gen(34))
        t, labels = torch.tensor([5, 5, 5]), torch.tensor([1, 4, 7])
        u, c = xt - 1, xt + (labels / 10).view(-1, 1, 1, 1)
        for w in (1.0, 4.0):
            model = _CountingModel(null_label=10)
            out = _call(
                "guided_prediction", fn, model, xt.clone(), t.clone(), labels.clone(), w, 10
            )
            u0 = xt + 0.0  # what label 0 predicts, for a null label mistaken for 0
            _compare(out, u + w * (c - u), {
                "the halves are swapped: with torch.cat([null, labels]) the first half of the "
                "output is the unconditional one":
                    c + w * (u - c),
                "both halves got the labels: the first half needs the null label, "
                "torch.full_like(labels, null_label)":
                    c,
                "the null label is null_label (10 here), not 0: label 0 means the digit 0":
                    u0 + w * (c - u0),
                "that is the paper's convention, (1 + w) eps_cond - w eps_uncond; use "
                "eps_uncond + w (eps_cond - eps_uncond)":
                    (1 + w) * c - w * u,
            }, f"w={w}")  # fmt: skip
            if model.calls != 1:
                raise _Fail(
                    f"the values are right, but it made {model.calls} model calls: stack both "
                    "halves with torch.cat and make one call, then split with .chunk(2)"
                )

    return _run("guided_prediction", body, "one call, both halves, combined")


# ===== lesson 9: text to image =====
def _tokenize(text, vocabulary, max_length, *, bos=True, offset=2, lower=True):
    words = (text.lower() if lower else text).split()
    ids = ([1] if bos else []) + [vocabulary.index(w) + offset for w in words]
    return torch.tensor(ids + [0] * (max_length - len(ids)), dtype=torch.long)


@_register(
    "tokenize",
    "notebooks/09_text_to_image.ipynb",
    "Lowercase, split on spaces, look each word up with vocabulary.index(word) and add 2 (ids 0 "
    "and 1 are taken by <pad> and <bos>). Put 1 (<bos>) first, then pad with 0 up to max_length.",
    """
    def tokenize(text, vocabulary, max_length):
        ids = [1] + [vocabulary.index(word) + 2 for word in text.lower().split()]
        return torch.tensor(ids + [0] * (max_length - len(ids)))
    """,
)
def check_tokenize(fn: Callable) -> CheckResult:
    """Check `fn(text, vocabulary, max_length)`: word-level token ids with <bos> and padding."""

    def body():
        vocabulary = ["a", "blue", "red", "7", "in", "the", "top", "left"]
        for text in ("a red 7", "A blue 7 in the top left", ""):
            out = _call("tokenize", fn, text, list(vocabulary), 10)
            if isinstance(out, list):
                out = torch.tensor(out)
            expected = _tokenize(text, vocabulary, 10)
            if isinstance(out, torch.Tensor) and out.dtype != torch.long:
                raise _Fail(f"{text!r}: token ids are a LongTensor (int64), got {out.dtype}")
            _compare(out, expected, {
                "the first token must be <bos> (id 1): the encoder reads the whole prompt there":
                    _tokenize(text, vocabulary, 10, bos=False),
                "word ids start at 2: vocabulary.index(word) + 2, since 0 is <pad> and 1 <bos>":
                    _tokenize(text, vocabulary, 10, offset=0),
                "off by one: the first word of the vocabulary has id 2":
                    _tokenize(text, vocabulary, 10, offset=1),
            }, f"text={text!r}", rtol=0, atol=0)  # fmt: skip

    return _run("tokenize", body, "<bos>, one id per word, then padding")


def _contrastive(logits, *, both=True, reduce="mean"):
    targets = torch.arange(len(logits))
    loss = torch.nn.functional.cross_entropy
    if not both:
        return loss(logits, targets, reduction=reduce)
    return (loss(logits, targets, reduction=reduce) + loss(logits.T, targets, reduction=reduce)) / 2


@_register(
    "contrastive_loss",
    "notebooks/09_text_to_image.ipynb",
    "Row i of logits scores image i against every text; the right text is i, so the targets are "
    "torch.arange(B). F.cross_entropy(logits, targets) is the image-to-text half; the same on "
    "logits.T is the text-to-image half. Average the two.",
    """
    def contrastive_loss(logits):
        targets = torch.arange(len(logits))
        image_to_text = torch.nn.functional.cross_entropy(logits, targets)
        text_to_image = torch.nn.functional.cross_entropy(logits.T, targets)
        return (image_to_text + text_to_image) / 2
    """,
)
def check_contrastive_loss(fn: Callable) -> CheckResult:
    """Check `fn(logits)`: CLIP's symmetric cross-entropy for B matching pairs."""

    def body():
        logits = torch.randn(6, 6, generator=_gen(40)) * 3
        logits[0] += 4  # image 0 likes every text: the two directions now differ
        out = _call("contrastive_loss", fn, logits.clone())
        _compare(out, _contrastive(logits), {
            "only one direction: average image-to-text (rows) and text-to-image (logits.T)":
                _contrastive(logits, both=False),
            "only one direction: add the image-to-text half, cross_entropy(logits, targets)":
                _contrastive(logits.T, both=False),
            "the two halves are summed: average them (divide by 2)":
                2 * _contrastive(logits),
            "the loss is summed over the batch: take the mean":
                _contrastive(logits, reduce="sum"),
                "cross_entropy applies the softmax itself: pass it the raw logits, not "
                "probabilities":
                    _contrastive(torch.softmax(logits, dim=1)),
        }, "6 pairs")  # fmt: skip

    return _run("contrastive_loss", body, "matching pairs pulled together, both ways")


def _attention(q, k, v, *, scale=True, dim=-1):
    scores = q @ k.transpose(-2, -1)
    if scale:
        scores = scores / q.shape[-1] ** 0.5
    return torch.softmax(scores, dim=dim) @ v


@_register(
    "cross_attention",
    "notebooks/09_text_to_image.ipynb",
    "scores = q @ k.transpose(-2, -1) has one row per pixel and one column per token; divide by "
    "sqrt(d); softmax over the tokens (the last dimension), then multiply by v.",
    """
    def cross_attention(q, k, v):
        scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5  # (B, N, L)
        return torch.softmax(scores, dim=-1) @ v  # (B, N, d)
    """,
)
def check_cross_attention(fn: Callable) -> CheckResult:
    """Check `fn(q, k, v)`: one head of scaled dot-product attention, pixels reading tokens."""

    def body():
        q = torch.randn(2, 9, 8, generator=_gen(41))  # 9 pixels
        k = torch.randn(2, 5, 8, generator=_gen(42))  # 5 tokens
        v = torch.randn(2, 5, 8, generator=_gen(43))
        out = _call("cross_attention", fn, q.clone(), k.clone(), v.clone())
        wrong = {
            "divide the scores by sqrt(d) (d = q.shape[-1]) before the softmax":
                _attention(q, k, v, scale=False),
            "the softmax must run over the tokens (dim=-1): each pixel's weights sum to 1":
                _attention(q, k, v, dim=1),
        }  # fmt: skip
        if isinstance(out, torch.Tensor) and out.shape == (2, 9, 8):
            _compare(out, _attention(q, k, v), wrong, "9 pixels, 5 tokens")
        else:
            raise _Fail(
                f"expected one vector per pixel, shape (2, 9, 8), got "
                f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}: "
                "the softmax runs over the tokens (dim=-1), and the result is weights @ v"
            )
        q4, k4 = q[..., :4] * 2, k[..., :4] * 2  # a second case with d = 4
        out = _call("cross_attention", fn, q4.clone(), k4.clone(), v.clone())
        _compare(out, _attention(q4, k4, v), {
            "scale by the square root of d = q.shape[-1] (4 here), not a fixed number":
                torch.softmax(q4 @ k4.transpose(-2, -1) / 8**0.5, dim=-1) @ v,
            "d is the feature size, q.shape[-1], not the number of pixels q.shape[1]":
                torch.softmax(q4 @ k4.transpose(-2, -1) / 9**0.5, dim=-1) @ v,
        }, "d = 4")  # fmt: skip
        k_same = k[:, :1].expand(-1, 5, -1)  # all tokens alike: each pixel must average v evenly
        out = _call("cross_attention", fn, q.clone(), k_same.clone(), v.clone())
        _compare(out, v.mean(1, keepdim=True).expand(-1, 9, -1), {
            "the softmax must run over the tokens (dim=-1): each pixel's weights sum to 1":
                _attention(q, k_same, v, dim=1),
        }, "identical keys")  # fmt: skip

    return _run("cross_attention", body, "each pixel takes a weighted average of the tokens")


# ===== lesson 12: why diffusion =====
def _softplus(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.softplus(x)


@_register(
    "generator_loss",
    "notebooks/12_why_diffusion.ipynb",
    "The discriminator's logit l gives D = sigmoid(l). The non-saturating loss is -log D(G(z)), "
    "averaged over the batch; -log sigmoid(l) = softplus(-l) computes it without overflow.",
    """
    def generator_loss(fake_logits):
        return torch.nn.functional.softplus(-fake_logits).mean()
    """,
)
def check_generator_loss(fn: Callable) -> CheckResult:
    """Check `fn(fake_logits)`: the GAN generator's non-saturating loss, -mean log D(G(z))."""

    def body():
        logits = torch.tensor([-6.0, -2.0, 0.0, 1.5])  # D is sure most fakes are fake
        far = _call("generator_loss", fn, torch.tensor([-200.0, 0.0]))  # D completely sure
        if not torch.isfinite(torch.as_tensor(far)).all():
            raise _Fail(
                "with a logit of -200 your loss is not finite: sigmoid underflows to 0 and its "
                "log to -inf. Compute -log sigmoid(l) as softplus(-l)"
            )
        out = _call("generator_loss", fn, logits.clone())
        _compare(out, _softplus(-logits).mean(), {
            "that is the original, saturating loss mean log(1 - D(G(z))): when D wins easily "
            "its gradient vanishes. Minimise -log D(G(z)) instead":
                -_softplus(logits).mean(),
            "the sign is flipped: the generator wants D(G(z)) near 1, so minimise -log D":
                -_softplus(-logits).mean(),
            "average over the batch (mean), not sum":
                _softplus(-logits).sum(),
            "that is the discriminator's loss on fakes, -log(1 - D(G(z))); the generator's is "
            "-log D(G(z))":
                _softplus(logits).mean(),
        }, "4 fakes")  # fmt: skip

    return _run("generator_loss", body, "strong gradients even while D wins")


def _energy(a, b, *, factor=2.0, within=True):
    cross = torch.cdist(a, b).mean()
    if not within:
        return factor * cross
    return factor * cross - torch.cdist(a, a).mean() - torch.cdist(b, b).mean()


@_register(
    "energy_distance",
    "notebooks/12_why_diffusion.ipynb",
    "torch.cdist(a, b) gives every distance between a point of a and a point of b. The energy "
    "distance is 2 E|a - b| - E|a - a'| - E|b - b'|: twice the mean cross distance, minus the mean "
    "distance within a and within b (all pairs, including each point with itself).",
    """
    def energy_distance(a, b):
        return (2 * torch.cdist(a, b).mean() - torch.cdist(a, a).mean()
                - torch.cdist(b, b).mean())
    """,
)
def check_energy_distance(fn: Callable) -> CheckResult:
    """Check `fn(a, b)`: the energy distance between two point sets (V-statistic form)."""

    def body():
        a = torch.randn(50, 2, generator=_gen(50))
        b = torch.randn(40, 2, generator=_gen(51)) + torch.tensor([1.0, 0.0])
        out = _call("energy_distance", fn, a.clone(), b.clone())
        _compare(out, _energy(a, b), {
            "the cross term counts twice: 2 E|a - b|":
                _energy(a, b, factor=1.0),
            "subtract the spreads within each set, E|a - a'| and E|b - b'|; otherwise two "
            "identical sets would be far apart":
                _energy(a, b, within=False),
            "the within-set means here include each point with itself (distance 0): average "
            "over all N * N pairs, as torch.cdist(a, a).mean() does":
                2 * torch.cdist(a, b).mean()
                - torch.cdist(a, a).sum() / (len(a) * (len(a) - 1))
                - torch.cdist(b, b).sum() / (len(b) * (len(b) - 1)),
        }, "two clouds", rtol=1e-4, atol=1e-5)  # fmt: skip
        same = _call("energy_distance", fn, a.clone(), a.clone())
        if abs(float(same)) > 1e-5:
            raise _Fail(f"a set against itself must give 0, got {float(same):.4g}")

    return _run("energy_distance", body, "0 for the same set, larger the further apart")


def _count_modes(samples, centres, radius, min_share, *, nearest=True, share=True):
    distance = torch.cdist(samples, centres)  # (N, K)
    if nearest:
        d, k = distance.min(1)
        counts = torch.bincount(k[d <= radius], minlength=len(centres))
    else:
        counts = (distance <= radius).sum(0)
    if not share:
        return int((counts >= 1).sum())
    return int((counts >= min_share * len(samples)).sum())


@_register(
    "count_modes",
    "notebooks/12_why_diffusion.ipynb",
    "torch.cdist(samples, centres) is (N, K); .min(dim=1) gives each sample's nearest centre and "
    "its distance. Keep samples within radius, count them per centre (torch.bincount with "
    "minlength=K), and count the centres that got at least min_share * N samples.",
    """
    def count_modes(samples, centres, radius, min_share):
        distance, nearest = torch.cdist(samples, centres).min(dim=1)
        counts = torch.bincount(nearest[distance <= radius], minlength=len(centres))
        return int((counts >= min_share * len(samples)).sum())
    """,
)
def check_count_modes(fn: Callable) -> CheckResult:
    """Check `fn(samples, centres, radius, min_share)`: modes that receive enough samples."""

    def body():
        angle = torch.arange(8) * (2 * math.pi / 8)
        centres = torch.stack([angle.cos(), angle.sin()], 1) * 0.75
        g = _gen(52)
        cases = {  # name: (samples, expected)
            "all 8 modes": centres.repeat(50, 1) + 0.03 * torch.randn(400, 2, generator=g),
            "one mode plus 3 strays": torch.cat([centres[:1].repeat(397, 1), centres[1:4] + 0.01]),
            "samples between the modes": (centres + centres.roll(1, 0)) / 2,
            "a mode with exactly 1% of the samples": torch.cat(
                [centres[:1].repeat(396, 1), centres[1:2].repeat(4, 1)]
            ),
        }
        for name, samples in cases.items():
            out = _call("count_modes", fn, samples.clone(), centres.clone(), 0.15, 0.01)
            expected = _count_modes(samples, centres, 0.15, 0.01)
            try:
                out = int(out)
            except (TypeError, ValueError):
                raise _Fail(f"{name}: return one int, the number of covered modes") from None
            if out == expected:
                continue
            if out == _count_modes(samples, centres, 0.15, 0.01, share=False):
                raise _Fail(
                    f"{name}: got {out}, expected {expected}: a mode needs at least "
                    "min_share * N samples; one stray sample does not cover it"
                )
            if name.startswith("a mode with exactly"):
                raise _Fail(
                    f"{name}: got {out}, expected {expected}: a mode with exactly min_share * N "
                    "samples counts (>=, not >)"
                )
            raise _Fail(f"{name}: got {out} covered modes, expected {expected}")

    return _run("count_modes", body, "stray samples do not count as a covered mode")


# ===== lesson 10: applications =====
@_register(
    "inpaint_combine",
    "notebooks/10_applications.ipynb",
    "Two versions of x_{t-1}: the known pixels, noised to the same level from the original "
    "(sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) noise), and the model's step. The mask is 1 where "
    "a pixel is known: mask * known + (1 - mask) * model_step.",
    """
    def inpaint_combine(x_model, x0_known, mask, alpha_bar_prev, noise):
        known = alpha_bar_prev ** 0.5 * x0_known + (1 - alpha_bar_prev) ** 0.5 * noise
        return mask * known + (1 - mask) * x_model
    """,
)
def check_inpaint_combine(fn: Callable) -> CheckResult:
    """Check `fn(x_model, x0_known, mask, alpha_bar_prev, noise)`: one inpainting merge."""

    def body():
        x_model = torch.randn(2, 1, 6, 6, generator=_gen(100))
        x0 = torch.rand(2, 1, 6, 6, generator=_gen(101)) * 2 - 1
        noise = torch.randn(2, 1, 6, 6, generator=_gen(102))
        mask = torch.zeros(1, 1, 6, 6)
        mask[..., :3] = 1.0  # the left half is known
        for a in (0.3, 0.9):
            args = (x_model.clone(), x0.clone(), mask.clone(), a, noise.clone())
            out = _call("inpaint_combine", fn, *args)
            known = a**0.5 * x0 + (1 - a) ** 0.5 * noise
            _compare(out, mask * known + (1 - mask) * x_model, {
                "the mask is 1 where a pixel is KNOWN: keep the noised original there and the "
                "model's step elsewhere":
                    (1 - mask) * known + mask * x_model,
                "the known pixels must be noised to the level of x_{t-1}; the clean original "
                "only belongs there at the very last step":
                    mask * x0 + (1 - mask) * x_model,
                "noise the original as the forward process does: sqrt(alpha_bar) x0 + "
                "sqrt(1 - alpha_bar) noise (square roots on both)":
                    mask * (a * x0 + (1 - a) * noise) + (1 - mask) * x_model,
            }, f"alpha_bar_prev={a}")  # fmt: skip

    return _run("inpaint_combine", body, "known pixels from the original, the rest from the model")


@_register(
    "renoise",
    "notebooks/10_applications.ipynb",
    "Going forward from level alpha_bar_prev to the noisier alpha_bar_t is itself a forward "
    "step: signal shrinks by sqrt(alpha_bar_t / alpha_bar_prev), and fresh noise fills the rest "
    "of the variance, 1 - alpha_bar_t / alpha_bar_prev.",
    """
    def renoise(x_prev, alpha_bar_t, alpha_bar_prev, noise):
        ratio = alpha_bar_t / alpha_bar_prev
        return ratio ** 0.5 * x_prev + (1 - ratio) ** 0.5 * noise
    """,
)
def check_renoise(fn: Callable) -> CheckResult:
    """Check `fn(x_prev, alpha_bar_t, alpha_bar_prev, noise)`: RePaint's jump back to level t."""

    def body():
        x = torch.randn(3, 5, generator=_gen(110))
        noise = torch.randn(3, 5, generator=_gen(111))
        for a_t, a_prev in ((0.5, 0.8), (0.05, 0.2)):
            out = _call("renoise", fn, x.clone(), a_t, a_prev, noise.clone())
            r = a_t / a_prev
            _compare(out, r**0.5 * x + (1 - r) ** 0.5 * noise, {
                "that jumps from clean data (it uses alpha_bar_t alone); x_prev already holds "
                "noise, so use the ratio alpha_bar_t / alpha_bar_prev":
                    a_t**0.5 * x + (1 - a_t) ** 0.5 * noise,
                "the ratio is upside down: going to more noise, the signal must shrink, so use "
                "alpha_bar_t / alpha_bar_prev (< 1)":
                    (a_prev / a_t) ** 0.5 * x + (1 - r) ** 0.5 * noise,
                "square roots: the signal scales by sqrt(ratio) and the noise by sqrt(1 - ratio)":
                    r * x + (1 - r) * noise,
            }, f"alpha_bar_t={a_t}, alpha_bar_prev={a_prev}")  # fmt: skip
        # a statistical check that a learner can follow: unit variance is kept
        big = torch.randn(200_000, generator=_gen(112))
        out = _call("renoise", fn, big, 0.3, 0.6, torch.randn(200_000, generator=_gen(113)))
        if abs(float(torch.as_tensor(out).var()) - 1) > 0.02:
            raise _Fail("unit-variance input should keep variance 1")

    return _run("renoise", body, "one forward jump from level t-1 back to level t")


@_register(
    "psnr",
    "notebooks/10_applications.ipynb",
    "Mean squared error per image over all its pixels (.flatten(1).mean(1)), then "
    "10 * log10(data_range^2 / mse). Images in [-1, 1] have data_range 2.",
    """
    def psnr(a, b, data_range=2.0):
        mse = ((a - b) ** 2).flatten(1).mean(1)
        return 10 * torch.log10(data_range ** 2 / mse)
    """,
)
def check_psnr(fn: Callable) -> CheckResult:
    """Check `fn(a, b)`: peak signal-to-noise ratio in dB, one value per image."""

    def body():
        a = torch.rand(4, 1, 8, 8, generator=_gen(120)) * 2 - 1
        b = (a + 0.2 * torch.randn(4, 1, 8, 8, generator=_gen(121))).clamp(-1, 1)
        out = _call("psnr", fn, a.clone(), b.clone())
        mse = ((a - b) ** 2).flatten(1).mean(1)
        _compare(out, 10 * torch.log10(4 / mse), {
            "one value per image: average the squared error over each image's pixels, "
            "not over the whole batch":
                (10 * torch.log10(4 / ((a - b) ** 2).mean())).expand(4),
            "images in [-1, 1] span a range of 2, so the peak is 2^2 = 4, not 1":
                10 * torch.log10(1 / mse),
            "the peak enters squared: data_range^2 / mse":
                10 * torch.log10(2 / mse),
            "PSNR uses 10 log10 of a ratio of squares (or 20 log10 of a ratio of amplitudes)":
                20 * torch.log10(4 / mse),
            "use the mean squared error, not its square root, inside 10 log10":
                10 * torch.log10(4 / mse.sqrt()),
        }, "four noisy images", rtol=1e-3, atol=1e-3)  # fmt: skip
        unit = _call("psnr", fn, (a.clone() + 1) / 2, (b.clone() + 1) / 2, 1.0)
        _compare(unit, 10 * torch.log10(1 / (mse / 4)), {
            "use the data_range argument (here 1.0, images in [0, 1]) instead of a fixed 2":
                10 * torch.log10(4 / (mse / 4)),
        }, "images in [0, 1] with data_range=1.0", rtol=1e-3, atol=1e-3)  # fmt: skip

    return _run("psnr", body, "higher is closer; +6 dB is half the error's amplitude")


# ===== lesson 11: latent diffusion =====
@_register(
    "latent_scale",
    "notebooks/11_latent_diffusion.ipynb",
    "The diffusion model should see latents with standard deviation 1, like the unit-variance "
    "noise it mixes them with. Multiplying by a number c multiplies the standard deviation by c. "
    "Which c turns the latents' std into 1? Use one number for the whole tensor, as Stable "
    "Diffusion does (its 0.18215).",
    """
    def latent_scale(latents):
        return 1 / latents.std()
    """,
)
def check_latent_scale(fn: Callable) -> CheckResult:
    """Check `fn(latents)`: the scale factor 1 / std of all latent values (one number)."""

    def body():
        channel_std = torch.tensor([0.5, 1.0, 2.0, 4.0])[:, None, None]  # channels differ
        cases = {
            "latents (16, 4, 7, 7)": torch.randn(16, 4, 7, 7, generator=_gen(60)) * channel_std
            + 0.8,
            "latents (8, 4, 7, 7) with std 5": 5 * torch.randn(8, 4, 7, 7, generator=_gen(61)),
        }
        for case, z in cases.items():
            out = _call("latent_scale", fn, z.clone())
            if isinstance(out, torch.Tensor) and out.numel() == z.shape[1] > 1:
                raise _Fail(
                    f"{case}: you returned one scale per channel, shape {tuple(out.shape)}; "
                    "the scale factor is one number for all latent values: the std of the "
                    "whole tensor"
                )
            if isinstance(out, torch.Tensor) and out.numel() == 1:
                out = out.reshape(())
            std = z.std()
            _compare(out, 1 / std, {
                "that is the std itself; the scale factor is 1 / std, so that scale * z "
                "has std 1": std,
                "that is 1 / variance; take the square root first: 1 / std": 1 / z.var(),
                "that is 1 / sqrt(mean(z**2)), which counts the mean as spread: use the "
                "standard deviation (torch.std subtracts the mean)": z.pow(2).mean().rsqrt(),
                "that is 1 / mean(|z|); use the standard deviation": 1 / z.abs().mean(),
                "that is 1 / max(|z|), which squeezes the latents into [-1, 1]; the scale "
                "factor gives them unit standard deviation instead": 1 / z.abs().max(),
            }, case, rtol=1e-3, atol=1e-6)  # fmt: skip

    return _run("latent_scale", body, "scale * latents has standard deviation 1")


class _ToyAutoencoder(torch.nn.Module):
    """Stands in for a trained Autoencoder: encode (B, 1, 28, 28) -> (B, 4, 7, 7), and back.

    A real nn.Module (eval(), parameters(), encode_dataset(ae, x) all work), frozen.
    """

    def __init__(self):
        super().__init__()
        weight = torch.randn(4, 1, 4, 4, generator=_gen(62)) / 2  # 4x4 patches -> 4 numbers
        self.weight = torch.nn.Parameter(weight, requires_grad=False)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        # tanh makes it non-linear, so encode(c * x) differs from c * encode(x)
        return 3 * torch.tanh(torch.nn.functional.conv2d(x, self.weight, stride=4)) + 0.5

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(torch.nn.functional.conv_transpose2d(z, self.weight, stride=4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))  # the reconstruction, like Autoencoder.forward


@_register(
    "to_latent",
    "notebooks/11_latent_diffusion.ipynb",
    "Two steps: ae.encode(x) turns images into latents; then multiply by the scale factor, so "
    "that the latents the diffusion model sees have unit variance. (Going back, to_image "
    "divides by the scale before decoding.)",
    """
    def to_latent(ae, x, scale_factor):
        return ae.encode(x) * scale_factor
    """,
)
def check_to_latent(fn: Callable) -> CheckResult:
    """Check `fn(ae, x, scale_factor)`: images -> scaled latents, scale_factor * ae.encode(x)."""

    def body():
        ae = _ToyAutoencoder()
        x = torch.rand(3, 1, 28, 28, generator=_gen(63)) * 2 - 1  # (B, 1, 28, 28)
        for scale in (0.18215, 1.7):
            out = _call("to_latent", fn, ae, x.clone(), scale)
            if isinstance(out, torch.Tensor) and out.shape == x.shape:
                raise _Fail(
                    f"scale {scale}: the result has the images' shape {tuple(x.shape)}: ae(x) "
                    "reconstructs the images; ae.encode(x) gives the latents (3, 4, 7, 7)"
                )
            z = ae.encode(x)  # (B, 4, 7, 7)
            _compare(out, z * scale, {
                "you divided by the scale factor; to_latent multiplies (encode(x) * scale), "
                "to_image divides (decode(z / scale))": z / scale,
                "the latents are not scaled: multiply ae.encode(x) by scale_factor": z,
                "the scale applies to the latents, after encoding: ae.encode(x) * scale, not "
                "ae.encode(x * scale)": ae.encode(x * scale),
            }, f"scale {scale}")  # fmt: skip

    return _run("to_latent", body, "images become scaled latents of shape (B, 4, 7, 7)")


# ===== lesson 13: beyond images =====
def _flatness(power: torch.Tensor, *, geometric: bool = True) -> torch.Tensor:
    mean = power.log().mean(-1).exp() if geometric else power.median(-1).values
    return mean / power.mean(-1)


@_register(
    "spectral_flatness",
    "notebooks/13_beyond_images.ipynb",
    "Work along the last dimension (the frequencies), one number per row. The geometric mean of "
    "positive numbers is exp(mean(log(p))); the arithmetic mean is mean(p). Flatness is the "
    "first divided by the second, so it is at most 1 and equals 1 for a perfectly flat "
    "spectrum.",
    """
    def spectral_flatness(power):
        return power.log().mean(-1).exp() / power.mean(-1)
    """,
)
def check_spectral_flatness(fn: Callable) -> CheckResult:
    """Check `fn(power)`: geometric over arithmetic mean of each row of a power spectrum."""

    def body():
        peaky = torch.full((64,), 1e-4)
        peaky[[5, 9, 17]] = 1.0  # a chord: three strong bins
        power = torch.stack([
            torch.ones(64),  # perfectly flat: 1
            peaky,
            torch.rand(64, generator=_gen(70)) + 0.1,
        ])  # fmt: skip
        out = _call("spectral_flatness", fn, power.clone())
        if isinstance(out, torch.Tensor) and out.numel() == 1:
            raise _Fail(
                "you returned one number for all 3 spectra; take the means along the last "
                "dimension (dim=-1), one flatness per row"
            )
        _compare(out, _flatness(power), {
            "that is arithmetic over geometric mean, the inverse: flatness is at most 1":
                1 / _flatness(power),
            "that is the log of the flatness: take exp of mean(log(p)) before dividing":
                power.log().mean(-1) - power.mean(-1).log(),
            "that is the median over the mean; the numerator is the geometric mean, "
            "exp(mean(log(p)))":
                _flatness(power, geometric=False),
        }, "a flat, a peaky and a random spectrum", rtol=1e-4, atol=1e-6)  # fmt: skip

    return _run("spectral_flatness", body, "1 for a flat spectrum, near 0 for a few notes")


def _chamfer(a, b, *, both=True, average=True, squared=False):
    d = torch.cdist(a, b)
    d = d.square() if squared else d
    ab, ba = d.min(1).values.mean(), d.min(0).values.mean()
    if not both:
        return ab
    return 0.5 * (ab + ba) if average else ab + ba


@_register(
    "chamfer_distance",
    "notebooks/13_beyond_images.ipynb",
    "torch.cdist(a, b) is the (N, M) table of all distances. Its minimum along dim 1 gives, "
    "for each point of a, the distance to its nearest point of b; along dim 0, the same for b. "
    "Average each, then average the two directions.",
    """
    def chamfer_distance(a, b):
        d = torch.cdist(a, b)
        return 0.5 * (d.min(1).values.mean() + d.min(0).values.mean())
    """,
)
def check_chamfer_distance(fn: Callable) -> CheckResult:
    """Check `fn(a, b)`: the symmetric Chamfer distance between clouds (N, D) and (M, D)."""

    def body():
        a = torch.randn(30, 2, generator=_gen(71))
        b = torch.cat([a[:10] + 0.05, torch.randn(15, 2, generator=_gen(72)) + 2.0])
        out = _call("chamfer_distance", fn, a.clone(), b.clone())
        _compare(out, _chamfer(a, b), {
            "only one direction: also average, for each point of b, the distance to its "
            "nearest point of a; otherwise stray points of b, far from a, cost nothing":
                _chamfer(a, b, both=False),
            "only one direction, from b to a: add the direction from a to b as well; "
            "otherwise b could cover just part of a":
                _chamfer(b, a, both=False),
            "you added the two directions; the course averages them: 0.5 * (a->b + b->a)":
                _chamfer(a, b, average=False),
            "those are squared distances; use the distances themselves (torch.cdist)":
                _chamfer(a, b, squared=True),
        }, "two clouds that overlap in part", rtol=1e-4, atol=1e-6)  # fmt: skip
        shuffled = _call(
            "chamfer_distance", fn, a.clone(), a[torch.randperm(30, generator=_gen(73))]
        )
        if abs(float(shuffled)) > 1e-3:  # cdist rounds self-distances to ~1e-5
            raise _Fail(
                f"a cloud against its own points in another order must give 0, got "
                f"{float(shuffled):.4g}: a point cloud is a set, order carries no meaning"
            )

    return _run("chamfer_distance", body, "0 for the same set in any order")


@_register(
    "eps_to_score",
    "notebooks/13_beyond_images.ipynb",
    "The noised point is x_t = sqrt(a) x0 + sqrt(1 - a) eps. The score points the other way "
    "from the noise that was added, and is larger when less noise was added: divide minus the "
    "noise estimate by the noise's standard deviation, sqrt(1 - a).",
    """
    def eps_to_score(eps_hat, alpha_bar_t):
        return -eps_hat / (1 - alpha_bar_t) ** 0.5
    """,
)
def check_eps_to_score(fn: Callable) -> CheckResult:
    """Check `fn(eps_hat, alpha_bar_t)`: the score -eps_hat / sqrt(1 - alpha_bar_t)."""

    def body():
        eps = torch.randn(6, 2, generator=_gen(74))
        for a in (0.9, 0.2):
            out = _call("eps_to_score", fn, eps.clone(), a)
            _compare(out, -eps / math.sqrt(1 - a), {
                "the sign is flipped: the score points towards the data, against the noise":
                    eps / math.sqrt(1 - a),
                "divide by the standard deviation sqrt(1 - alpha_bar), not the variance":
                    -eps / (1 - a),
                "divide by the noise's standard deviation sqrt(1 - alpha_bar), not by "
                "sqrt(alpha_bar)":
                    -eps / math.sqrt(a),
                "divide by sqrt(1 - alpha_bar); you multiplied":
                    -eps * math.sqrt(1 - a),
            }, f"alpha_bar = {a}")  # fmt: skip

    return _run("eps_to_score", body, "the score is minus the noise, per unit of noise")


@_register(
    "flow_path",
    "notebooks/13_beyond_images.ipynb",
    "The straight path goes from the data at s = 0 to the noise at s = 1: x_s = (1 - s) x0 "
    "+ s eps. Its velocity is the derivative with respect to s, the same at every s.",
    """
    def flow_path(x0, eps, s):
        return (1 - s) * x0 + s * eps, eps - x0
    """,
)
def check_flow_path(fn: Callable) -> CheckResult:
    """Check `fn(x0, eps, s)`: (x_s, velocity) on the straight path, s of shape (B, 1)."""

    def body():
        x0 = torch.randn(5, 2, generator=_gen(75))
        eps = torch.randn(5, 2, generator=_gen(76))
        s = torch.tensor([[0.0], [0.1], [0.5], [0.8], [1.0]])
        out = _call("flow_path", fn, x0.clone(), eps.clone(), s.clone())
        if not isinstance(out, tuple | list) or len(out) != 2:
            raise _Fail("return two tensors: (x_s, velocity)")
        xs, v = out
        _compare(xs, (1 - s) * x0 + s * eps, {
            "the ends are swapped: at s = 0 the path starts at the data x0, at s = 1 it is "
            "pure noise": s * x0 + (1 - s) * eps,
            "that is the DDPM-style path with square roots; the flow path is a straight "
            "line, (1 - s) x0 + s eps": (1 - s).sqrt() * x0 + s.sqrt() * eps,
        }, "x_s")  # fmt: skip
        _compare(v.expand_as(x0) if isinstance(v, torch.Tensor) else v, eps - x0, {
            "the velocity points the wrong way: d x_s / ds = eps - x0 (from data to noise)":
                x0 - eps,
            "that is the noise alone, the target of noise prediction; the velocity along "
            "the path is eps - x0": eps,
            "that is x_s itself; the velocity is the derivative d x_s / ds = eps - x0":
                (1 - s) * x0 + s * eps,
        }, "velocity")  # fmt: skip

    return _run("flow_path", body, "the straight path from data to noise, and its velocity")
