#!/usr/bin/env python
"""Same as `trainyard test`: see `trainyard test --help`."""

from trainyard.cli import run_tool

if __name__ == "__main__":
    run_tool("test")
