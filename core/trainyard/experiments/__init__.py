"""The experiment half: find runs, compare them, plot their curves, diff their configs, sweep a grid.

Everything here reads what runs already write (``config.py``, the log,
``scalars.jsonl``); nothing needs the runs' code or data.
"""
