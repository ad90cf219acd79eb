"""Text composed of several source columns by a template of the spec (``"{fornamn} {efternamn}"``).

The template is the record of how the value was made: it stays in the mapping spec that every
package carries. A null column reads as empty text; when every column it names is null the field is null.
"""

from __future__ import annotations

import string

import pyarrow as pa
import pyarrow.compute as pc

from decommission.mapping.arrow_text import as_array, key_text


def compose(template: str, rows: pa.Table) -> pa.Array:
    """The template filled in from ``rows``, whole columns at a time."""
    n = rows.num_rows
    if n == 0:
        return pa.array([], pa.string())
    parts: list[pa.Array] = []
    none: pa.Array | None = None
    for literal, name, _spec, _conversion in string.Formatter().parse(template):
        if literal:
            parts.append(pa.repeat(pa.scalar(literal, pa.string()), n))
        if name is not None:
            values = as_array(key_text(rows[name])).cast(pa.string())
            parts.append(pc.fill_null(values, ""))
            missing = pc.is_null(values)
            none = missing if none is None else pc.and_(none, missing)
    text = pc.binary_join_element_wise(*parts, "")
    return text if none is None else pc.if_else(none, pa.scalar(None, pa.string()), text)
