"""Entry point of the built-in image classification plugin (`trainyard_cls` in the `trainyard.plugins` group).

It registers through the same hooks as a third-party plugin and imports only
trainyard's public API. Its components arrive with the image classification task.
"""
