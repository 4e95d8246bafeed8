"""What every settings section is: a struct that refuses unknown fields. Plain data.

An unknown setting must fail loudly (a typo), unlike wire data, where unknown fields are
expected; :class:`consumer.settings.schema.Settings` gathers the sections.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

Positive = Annotated[int, msgspec.Meta(ge=1)]


class Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A settings section: keyword fields only, unknown ones refused."""
