"""trainyard's built-in image classification plugin."""
