"""Form helpers shared by the features' forms."""
from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any

from wtforms import SelectChoice, SelectMultipleField, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from mdt import timezones


def choices(pairs: Iterable[tuple[Any, str]], blank: str | None = None) -> list[SelectChoice]:
    """Build WTForms choices from ``(value, label)`` pairs, optionally with a blank first."""
    out = [SelectChoice("", blank)] if blank is not None else []
    return out + [SelectChoice(value, label) for value, label in pairs]


def valid_zone(form: Any, field: Any) -> None:
    """Validate a time-zone field: empty, or an IANA name this machine knows."""
    if field.data and not timezones.is_valid_zone(field.data):
        raise ValidationError(timezones.UNKNOWN_ZONE_MESSAGE)


def enum_choices(enum_cls: type[enum.StrEnum], blank: str | None = None) -> list[SelectChoice]:
    """Choices from a StrEnum, labelled by its ``label`` property when it has one."""
    return choices(((m.value, getattr(m, "label", m.value)) for m in enum_cls), blank)


class MultiCheckboxField(SelectMultipleField):
    """A multiple choice shown as a list of checkboxes."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()
