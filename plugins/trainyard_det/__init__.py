"""trainyard's built-in object detection plugin."""
