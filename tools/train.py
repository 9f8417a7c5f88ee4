#!/usr/bin/env python
"""Same as `trainyard train`: see `trainyard train --help`."""

from trainyard.cli import run_tool

if __name__ == "__main__":
    run_tool("train")
