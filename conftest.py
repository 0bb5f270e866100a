"""Test-wide settings: notebooks run in FAST mode unless DIFFUSION_LAB_FAST is already set.

Set DIFFUSION_LAB_FAST=0 to run the notebooks in full mode under pytest.
"""

import os

os.environ.setdefault("DIFFUSION_LAB_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
