#!/usr/bin/env python
"""Same as `trainyard plugins`: see `trainyard plugins --help`."""

from trainyard.cli import run_tool

if __name__ == "__main__":
    run_tool("plugins")
