#!/usr/bin/env python
"""Same as `trainyard export`: see `trainyard export --help`."""

from trainyard.cli import run_tool

if __name__ == "__main__":
    run_tool("export")
