"""Turn results tables into comparisons: :mod:`reports.tables` for summaries and terminal tables."""
