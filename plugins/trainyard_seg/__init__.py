"""trainyard's built-in semantic segmentation plugin."""
