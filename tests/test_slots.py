"""slot_builder: the same object as the dataclass's own constructor, for the classes it builds."""

from __future__ import annotations

import dataclasses

import pytest

from foxagent._answer import FoxBrainAnswer
from foxagent._recovery import RecoveredCall
from foxagent._run import ToolCallRecord
from foxagent._slots import slot_builder


@pytest.mark.parametrize("cls", [FoxBrainAnswer, RecoveredCall, ToolCallRecord])
def test_builds_what_the_constructor_builds(cls: type) -> None:
    fields = dataclasses.fields(cls)
    values = [f"value of {field.name}" for field in fields]
    built = slot_builder(cls)(*values)
    assert built == cls(**{field.name: value for field, value in zip(fields, values, strict=True)})
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built, fields[0].name, "changed")  # still frozen


def test_every_field_is_required_and_only_slotted_dataclasses_are_built() -> None:
    with pytest.raises(TypeError):
        slot_builder(ToolCallRecord)("only one value")

    @dataclasses.dataclass(frozen=True)
    class Plain:
        name: str

    with pytest.raises(TypeError, match="Plain is not a slotted dataclass"):
        slot_builder(Plain)
