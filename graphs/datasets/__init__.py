"""Loaders for the public datasets the studies use, from local files only: they never reach the network.

Each loader reads a file, a folder of files, or (when no path is given) a copy already on disk in the Hugging
Face cache, and returns a pandas DataFrame whose first columns are the documented, normalised ones; any other
columns of the source follow unchanged. Anything wrong (a missing file, a missing or malformed field) raises
:class:`DatasetError` with one line that names the file or field and, for a missing file, where to get the data.

* :mod:`~graphs.datasets.ptp`: PolygloToxicityPrompts (:func:`load_ptp`);
* :mod:`~graphs.datasets.dices`: DICES-350 and DICES-990 ratings (:func:`load_dices`);
* :mod:`~graphs.datasets.beavertails`: BeaverTails and its 14 harm domains (:func:`load_beavertails`);
* :mod:`~graphs.datasets.prompts`: a table of prompts as it is (:func:`read_prompt_table`);
* :mod:`~graphs.datasets.files`: finding files in folders and Hugging Face caches (:func:`find_cached`), the
  formats read and how splits are told apart;
* :mod:`~graphs.datasets.columns`: the checks that normalise a loader's columns.

This package needs pandas and the standard library only (pyarrow for Parquet and Arrow files): it never imports
langgraph.
"""

from graphs.datasets.beavertails import BEAVERTAILS, BEAVERTAILS_CATEGORIES, BEAVERTAILS_COLUMNS, load_beavertails
from graphs.datasets.dices import DICES, DICES_COLUMNS, DICES_DEGREES_OF_HARM, load_dices
from graphs.datasets.files import find_cached
from graphs.datasets.prompts import read_prompt_table
from graphs.datasets.ptp import PTP, PTP_COLUMNS, load_ptp
from graphs.datasets.source import DatasetError, DatasetSource

__all__ = [
    "BEAVERTAILS",
    "BEAVERTAILS_CATEGORIES",
    "BEAVERTAILS_COLUMNS",
    "DICES",
    "DICES_COLUMNS",
    "DICES_DEGREES_OF_HARM",
    "PTP",
    "PTP_COLUMNS",
    "DatasetError",
    "DatasetSource",
    "find_cached",
    "load_beavertails",
    "load_dices",
    "load_ptp",
    "read_prompt_table",
]
