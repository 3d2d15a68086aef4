"""``wl.Table``: a table logged with ``wl.log``, sent as an Arrow IPC stream
(see :mod:`._media` for what happens in the caller and on the sender thread)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._media import Media, MediaError
from .core.api.media import TableIn
from .core.errors import UsageError
from .core.limits import MAX_MEDIA_ITEM_BYTES, MAX_TABLE_ROWS


class Table(Media):
    """A table: ``dataframe=`` (a pandas DataFrame), or ``columns=`` names with
    ``data=`` rows (more with :meth:`add_data`). Each column holds one type; at most
    ``MAX_TABLE_ROWS`` rows. Copied when constructed; rows added later are in what a
    later ``log()`` of it sends (log it after adding them)."""

    kind = "table"

    def __init__(
        self,
        columns: Sequence[str] | None = None,
        data: Any = None,
        rows: Any = None,
        dataframe: Any = None,
        dtype: Any = None,  # wandb compatibility: types come from the values
        optional: Any = True,  # wandb compatibility
        allow_mixed_types: bool = False,  # wandb compatibility: a column holds one type
    ) -> None:
        data = data if data is not None else rows
        if dataframe is not None and data is not None:
            raise UsageError("Table takes dataframe= or data=, not both")
        self._frame = dataframe.copy() if dataframe is not None else None
        if isinstance(data, np.ndarray):
            data = data.tolist()
        self._rows: list[list[Any]] = [list(row) for row in data] if data is not None else []
        if dataframe is not None:
            names = [str(c) for c in dataframe.columns]
        elif columns is not None:
            names = list(columns)
        else:
            names = [str(i) for i in range(len(self._rows[0]) if self._rows else 0)]
        for i, name in enumerate(names):
            if not isinstance(name, str):
                raise UsageError(f"Table columns[{i}] must be a string, got {name!r}")
        self.columns = names
        for i, row in enumerate(self._rows):
            self._check_row(row, f"data[{i}]")

    def _check_row(self, row: list[Any], where: str) -> None:
        if len(row) != len(self.columns):
            raise UsageError(f"Table {where} has {len(row)} values for {len(self.columns)} columns")

    def add_data(self, *values: Any) -> None:
        """Append a row (one value per column), as wandb's ``Table.add_data``."""
        if self._frame is not None:
            raise UsageError("add_data() on a Table made from a dataframe")
        row = list(values)
        self._check_row(row, "add_data()")
        self._rows.append(row)

    @property
    def nbytes(self) -> int:  # type: ignore[override]
        if self._frame is not None:
            return int(self._frame.memory_usage(deep=False).sum())
        return 8 * len(self._rows) * max(1, len(self.columns))

    def encode(self) -> TableIn:
        import pyarrow as pa

        n = len(self._frame) if self._frame is not None else len(self._rows)
        if n > MAX_TABLE_ROWS:
            raise MediaError(f"{n} rows, over the {MAX_TABLE_ROWS} limit")
        if len(set(self.columns)) != len(self.columns):
            raise MediaError(f"column names repeat: {self.columns}")
        if self._frame is not None:
            try:
                frame = self._frame.set_axis(self.columns, axis=1)
                table = pa.Table.from_pandas(frame, preserve_index=False)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
                raise MediaError(f"a column does not hold one type ({exc})") from None
        else:
            arrays = [
                _column(name, [row[i] for row in self._rows]) for i, name in enumerate(self.columns)
            ]
            table = pa.table(arrays, names=self.columns)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        arrow = sink.getvalue().to_pybytes()
        if len(arrow) > MAX_MEDIA_ITEM_BYTES:
            raise MediaError(f"{len(arrow)} bytes as Arrow, over the {MAX_MEDIA_ITEM_BYTES} limit")
        return TableIn(arrow=arrow)


def _column(name: str, values: list[Any]) -> Any:
    import pyarrow as pa

    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise MediaError(f"column {name!r} does not hold one type ({exc})") from None
