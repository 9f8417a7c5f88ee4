#!/usr/bin/env python
"""Same as `trainyard val`: see `trainyard val --help`."""

from trainyard.cli import run_tool

if __name__ == "__main__":
    run_tool("val")
