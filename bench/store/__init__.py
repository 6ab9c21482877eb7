"""The run directory: cell records, tidy tables, manifest, crops and the environment."""
