"""Detection models: torchvision detectors behind trainyard's model contract."""
