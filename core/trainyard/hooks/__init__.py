"""Runner hooks: the base class, the dispatcher and the hooks trainyard ships."""

from trainyard.hooks.dispatch import HookDispatcher
from trainyard.hooks.hook import HOOK_POINTS, PRIORITIES, Hook, priority_value
from trainyard.hooks.visualization import VisualizationHook

__all__ = ["Hook", "HookDispatcher", "VisualizationHook", "HOOK_POINTS", "PRIORITIES", "priority_value"]
