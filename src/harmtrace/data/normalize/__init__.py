"""Turn adapter output (or a user's own file) into validated record tables.

Method: every candidate row is checked (row-level read problems, undecodable text,
cell types, an empty or invisible prompt, text length, duplicate ids) and gets one
reason or none. Bad rows are never dropped silently: depending on the ``bad_rows``
policy they either stop the run with a message naming each row by its number in the
source file, or go to a quarantine side file that the log counts, so that rows in =
records out + rows quarantined, always. Records carry their provenance (see
:mod:`harmtrace.data.provenance`): registered datasets are read only after
:func:`harmtrace.data.fetch.verify_fetched` re-hashed their raw files, and a user's
file may not take a registered dataset's name.

The steps live in :mod:`.cells` (one cell), :mod:`.row_checks` (one row, the policy),
:mod:`.records` (record ids and column types), :mod:`.registered` and
:mod:`.user_files` (the two kinds of input) and :mod:`.writing` (the output files).
"""

from __future__ import annotations

from harmtrace.data.normalize.cells import is_blank, is_missing, jsonable
from harmtrace.data.normalize.records import CORE, Normalized, build_records, record_id
from harmtrace.data.normalize.registered import NotRecordsError, normalize_dataset
from harmtrace.data.normalize.row_checks import TEXT_FIELDS, BadRowPolicy, BadRowsError
from harmtrace.data.normalize.user_files import (
    USER_PREFIX,
    Texts,
    normalize_user_file,
    read_texts,
    user_column_names,
)
from harmtrace.data.normalize.writing import quarantine_lines, write_normalized, write_quarantine

__all__ = [
    "CORE",
    "TEXT_FIELDS",
    "USER_PREFIX",
    "BadRowPolicy",
    "BadRowsError",
    "Normalized",
    "NotRecordsError",
    "Texts",
    "build_records",
    "is_blank",
    "is_missing",
    "jsonable",
    "normalize_dataset",
    "normalize_user_file",
    "quarantine_lines",
    "read_texts",
    "record_id",
    "user_column_names",
    "write_normalized",
    "write_quarantine",
]
