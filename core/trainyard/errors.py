"""The errors trainyard raises for a user's mistakes.

Every subclass of :class:`TrainyardError` is caused by input the user controls (a
config, a checkpoint, a path, a plugin): the CLI prints its message alone and
exits non-zero. Errors raised by user code (a model, a hook, a dataset) are never
wrapped, so they keep their traceback.
"""


class TrainyardError(Exception):
    """A mistake in the user's input, explained in the message."""

    same_on_every_rank = False
    """True for errors every rank of a distributed run raises together (the command line prints them once)."""


class ConfigError(TrainyardError):
    """The config cannot be read or does not describe a run."""


class RegistryError(TrainyardError, LookupError):
    """A registry lookup or build failed: unknown, ambiguous or mis-called component."""


class PluginError(TrainyardError):
    """A plugin failed to load while ``TRAINYARD_STRICT_PLUGINS=1`` asks for errors."""


class CheckpointError(TrainyardError):
    """A checkpoint cannot be read, is not trainyard's, or does not fit the model."""


class CheckpointWriteError(CheckpointError):
    """Rank 0 could not write a checkpoint (a full disk, no permission); every rank stops with its message."""

    same_on_every_rank = True


class ResumeMismatchError(CheckpointError):
    """A checkpoint cannot continue on this job as launched (another world size inside an accumulation window)."""

    same_on_every_rank = True


class PretrainedWeightsError(CheckpointError):
    """Pretrained weights the config names are not in the cache and cannot be downloaded, or cannot be read.

    Every rank builds the model, so every rank meets the same missing file.
    """

    same_on_every_rank = True


class ModelContractError(TrainyardError):
    """A model, dataset or metric does not follow trainyard's data contract."""


class DatasetError(TrainyardError):
    """A dataset path is missing or a file in it cannot be read; the message names it."""


class NonFiniteError(TrainyardError):
    """The loss or the weights became NaN or infinite; training stopped before saving them."""

    same_on_every_rank = True


class ExportError(TrainyardError):
    """A model cannot be exported in a format, or its export did not reproduce the model's outputs."""
