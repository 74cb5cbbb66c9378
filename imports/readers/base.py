"""What every reader yields, and the one error a reader raises.

Readers know nothing of the database or of contacts: they turn bytes into records, each
carrying the line (or card) number where it starts, so that every error can name it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ReaderError(Exception):
    """The whole file is refused (wrong type, corrupt, a bomb, mixed delimiters...).

    The message is shown to the user as it is: say what is wrong and, where it helps,
    what to do about it.
    """


@dataclass(slots=True)
class SourceRow:
    """One record of a tabular file (CSV, XLSX, XLS, ODS), header included.

    `line` is the 1-based physical line (CSV) or sheet row (spreadsheets) where the record
    starts; `cells` are the cells as text, in column order, never None (an empty cell is '').
    """

    line: int
    cells: list[str]


@dataclass(slots=True)
class RawRecord:
    """One source record, mapped to contact fields but not yet normalized or validated.

    `values` maps a canonical field name to the candidates found for it, in priority order,
    each as (source column label, raw text). Canonical names are the Contact fields
    (`phone`, `email`, `first_name`, `last_name`, `display_name`, `company`, `address`,
    `city`, `state`, `zip`, `country`, `timezone`, `lifecycle_stage`, `gender`, `avatar_url`,
    `notes`, `birthday`, `language`, `external_id`, `opted_out`), plus `tags` (each candidate
    one tag) and `custom.<key>` for custom fields. Several `phone`/`email` candidates mean:
    the first valid one becomes the contact's phone/email, the rest go to
    `secondary_phones`/`secondary_emails`.
    """

    line: int
    values: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def add(self, name: str, column: str, text: str) -> None:
        """Append a candidate, ignoring blank text."""
        if text is None:
            return
        text = str(text).strip()
        if text:
            self.values.setdefault(name, []).append((column, text))
