"""Entry point of the built-in object detection plugin (`trainyard_det` in the `trainyard.plugins` group).

It registers through the same hooks as a third-party plugin and imports only
trainyard's public API. Its components arrive with the object detection task.
"""
