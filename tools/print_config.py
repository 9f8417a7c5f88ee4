#!/usr/bin/env python
"""Same as `trainyard config`: see `trainyard config --help`."""

from trainyard.cli import run_tool

if __name__ == "__main__":
    run_tool("config")
