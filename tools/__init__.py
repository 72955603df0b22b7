"""Command-line tools over the library (run from the repo root: ``python -m tools.<name>``)."""
