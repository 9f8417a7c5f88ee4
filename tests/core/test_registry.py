"""Registry behaviour a config author and a plugin author rely on."""

import pytest

from trainyard import OPTIMIZERS, Registry, RegistryError, TRANSFORMS
from trainyard.registry import Origin, building


class Widget:
    def __init__(self, size: int, colour: str = "red") -> None:
        self.size, self.colour = size, colour


def make_gadget(size: int = 1) -> dict:
    return {"gadget": size}


@pytest.fixture
def things() -> Registry:
    return Registry("THINGS")


def test_register_as_decorator_and_build(things):
    things.register()(Widget)
    widget = things.build({"type": "Widget", "size": 3})
    assert isinstance(widget, Widget) and widget.size == 3


def test_register_without_parentheses_and_with_name(things):
    things.register(Widget)
    things.register(make_gadget, name="Gadget")
    assert things.get("Widget") is Widget
    assert things.build({"type": "Gadget", "size": 2}) == {"gadget": 2}


def test_lazy_entry_is_imported_on_first_use(things):
    things.register_lazy("OrderedDict", "collections:OrderedDict")
    entry = things.get_entry("OrderedDict")
    assert entry.target is None and entry.location == "collections:OrderedDict"
    import collections

    assert things.get("OrderedDict") is collections.OrderedDict


def test_a_plugin_registers_a_table_of_lazy_entries_with_its_origin(things):
    view = things.view(Origin("myplugin", "my-dist", "1.0"))
    view.register_lazy_many({"Ordered": "collections:OrderedDict", "Counter": "collections:Counter"})
    assert things.get_entry("Counter").origin.plugin == "myplugin"
    assert things.get("Ordered").__name__ == "OrderedDict" and things.get_entry("Ordered").target is not None


def test_lazy_entry_that_cannot_import_names_the_path(things):
    things.register_lazy("Missing", "no_such_module_xyz:Thing")
    with pytest.raises(RegistryError, match="no_such_module_xyz:Thing.*cannot be imported"):
        things.get("Missing")


def test_build_fills_default_args_without_overriding_config(things):
    things.register(Widget)
    widget = things.build({"type": "Widget", "size": 1, "colour": "blue"}, colour="green")
    assert widget.colour == "blue"
    assert things.build({"type": "Widget", "size": 1}, colour="green").colour == "green"


def test_build_accepts_class_and_callable_as_type(things):
    assert things.build({"type": Widget, "size": 5}).size == 5
    assert things.build({"type": make_gadget}) == {"gadget": 1}


def test_contains_and_listing(things):
    things.register(Widget)
    assert "Widget" in things and "Nope" not in things
    assert things.names() == ["Widget"] and len(things) == 1


def test_unknown_name_suggests_close_names(things):
    things.register(Widget)
    things.register(make_gadget, name="Gadget")
    with pytest.raises(RegistryError) as info:
        things.get("Widgte")
    message = str(info.value)
    assert "THINGS: unknown type 'Widgte'" in message and "Did you mean 'Widget'" in message


def test_unknown_name_matches_case_insensitively(things):
    things.register(Widget)
    with pytest.raises(RegistryError, match="Did you mean 'Widget'"):
        things.get("widget")


def test_unknown_name_reports_config_key(things):
    with building("model"), building("backbone"), pytest.raises(RegistryError, match="config key 'model.backbone'"):
        things.build({"type": "Nothing"})


def test_wrong_keyword_names_component_key_and_accepted_arguments(things):
    things.register(Widget)
    with building("model"), pytest.raises(RegistryError) as info:
        things.build({"type": "Widget", "size": 1, "colur": "red"})
    message = str(info.value)
    assert "cannot build 'Widget' at config key 'model'" in message
    assert "'colur' (did you mean 'colour'?)" in message
    assert "Accepted arguments: size, colour" in message


def test_missing_required_argument_is_a_clear_error(things):
    things.register(Widget)
    with pytest.raises(RegistryError, match="cannot build 'Widget'.*size"):
        things.build({"type": "Widget"})


def test_error_raised_inside_component_keeps_its_type_and_traceback(things):
    def explode(size: int):
        raise TypeError("bug in user code")

    things.register(explode, name="Explode")
    with pytest.raises(TypeError, match="bug in user code") as info:
        things.build({"type": "Explode", "size": 1})
    assert info.traceback[-1].name == "explode"


def test_config_without_type_is_rejected(things):
    with pytest.raises(RegistryError, match="no 'type' key"):
        things.build({"size": 1})


def test_duplicate_name_from_one_origin_needs_force(things):
    things.register(Widget)
    with pytest.raises(RegistryError, match="already registered"):
        things.register(Widget)
    things.register(make_gadget, name="Widget", force=True)
    assert things.get("Widget") is make_gadget


def test_collision_between_plugins_keeps_both_reachable(things):
    things.view(Origin("alpha", "alpha-dist", "1.0")).register(Widget, name="Net")
    things.view(Origin("beta", "beta-dist", "2.0")).register(make_gadget, name="Net")
    assert things.get("alpha.Net") is Widget
    assert things.get("beta.Net") is make_gadget
    with pytest.raises(RegistryError) as info:
        things.get("Net")
    message = str(info.value)
    assert "'Net' is ambiguous" in message
    assert "'alpha.Net' from alpha (alpha-dist 1.0)" in message
    assert "'beta.Net' from beta (beta-dist 2.0)" in message


def test_entries_record_their_origin(things):
    things.view(Origin("alpha", "alpha-dist", "1.0")).register_lazy("Lazy", "collections:deque")
    things.register(Widget)
    origins = {e.name: e.origin for e in things.entries()}
    assert origins["Lazy"] == Origin("alpha", "alpha-dist", "1.0")
    assert origins["Widget"].plugin == Widget.__module__.partition(".")[0]  # the registering package


def test_names_with_dots_are_refused(things):
    with pytest.raises(ValueError, match="no dots"):
        things.register(Widget, name="a.b")


def test_torch_optimizers_are_registered():
    import torch

    assert OPTIMIZERS.get("SGD") is torch.optim.SGD
    assert OPTIMIZERS.get_entry("AdamW").origin.plugin == "torch"
    params = [torch.nn.Parameter(torch.zeros(1))]
    assert isinstance(OPTIMIZERS.build({"type": "SGD", "lr": 0.1}, params=params), torch.optim.SGD)


def test_torchvision_v2_transforms_are_registered():
    from torchvision.transforms import v2

    assert TRANSFORMS.get("RandomHorizontalFlip") is v2.RandomHorizontalFlip
    assert TRANSFORMS.get_entry("Normalize").origin.plugin == "torchvision"
