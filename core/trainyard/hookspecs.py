"""The contract between trainyard and its plugins.

A plugin is a module named by an entry point in the ``trainyard.plugins`` group. It
implements any of the hooks below with :data:`trainyard.hookimpl`; each receives a
view of one root registry and fills it, preferably with ``register_lazy`` so that
nothing heavy is imported until a config names the component::

    from trainyard import hookimpl

    @hookimpl
    def register_models(registry):
        registry.register_lazy("UNet", "my_plugin.models:UNet")

A hook is called once per process, the first time its registry is looked up. The
view records the plugin name, distribution and version of every entry it adds.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("trainyard")


@hookspec
def register_models(registry) -> None:
    """Register models (``nn.Module`` classes implementing ``forward(batch, mode)``)."""


@hookspec
def register_datasets(registry) -> None:
    """Register datasets returning dicts with ``inputs``, ``targets`` and ``meta``."""


@hookspec
def register_transforms(registry) -> None:
    """Register data transforms (``torchvision.transforms.v2`` style callables)."""


@hookspec
def register_metrics(registry) -> None:
    """Register metrics (subclasses of :class:`trainyard.evaluation.Metric`)."""


@hookspec
def register_hooks(registry) -> None:
    """Register runner hooks (subclasses of :class:`trainyard.hooks.Hook`)."""


@hookspec
def register_loops(registry) -> None:
    """Register train, validation or test loops (see :mod:`trainyard.loops`)."""


@hookspec
def register_tasks(registry) -> None:
    """Register the inference part of a task (subclasses of :class:`trainyard.inference.Task`).

    A model names its task in a ``task`` class attribute (``task = 'segmentation'``);
    ``Predictor``, ``trainyard predict`` and ``trainyard export`` look the name up here.
    """


HOOK_NAMES: tuple[str, ...] = (
    "register_models",
    "register_datasets",
    "register_transforms",
    "register_metrics",
    "register_hooks",
    "register_loops",
    "register_tasks",
)
