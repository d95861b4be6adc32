"""Notebook-first visual defect detection: PatchCore and fastai classifiers, ONNX Runtime serving, papermill runs

Modules:

- `defect_twin.data`: Reading images safely, indexing MVTec AD and users' own folders as one DataFrame, downloading with checksums, labelled splits, and the statistics behind `defect-twin data stats`."""

__version__ = "0.1.0"
