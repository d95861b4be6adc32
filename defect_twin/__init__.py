"""Notebook-first visual defect detection: PatchCore and fastai classifiers, ONNX Runtime serving, papermill runs

Modules:

- `defect_twin.migrations.env`: Alembic environment of the line twin's database.
- `defect_twin.migrations.versions.0001_twin_initial`: the line twin's first schema: events (idempotent by id), alarms, baselines"""

__version__ = "0.1.0"
