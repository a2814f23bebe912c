"""Mist reference runtime: executes a Mist Plan (DESIGN.md §4, §6) with PyTorch >= 1.13 (CPU/gloo or CUDA/nccl)."""
__version__ = "0.1.0"
