#!/usr/bin/env python3
"""Mist reference runtime, one rank: python3 agent/runtime/torch/train.py --plan PLAN.json [--steps K] ...
See mist_runtime/train.py and docs/runtimes.md."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mist_runtime.train import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
