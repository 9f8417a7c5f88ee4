#!/usr/bin/env python
"""Same as `trainyard predict`: see `trainyard predict --help`."""

from trainyard.cli import run_tool

if __name__ == "__main__":
    run_tool("predict")
