"""Write notebooks from percent-format sources: `python tools/py2nb.py SRC.py [SRC.py ...] --out nbs/`.

Authoring aid only: the notebooks in `nbs/` are the source of truth. `tools/nb2py.py` goes the other way,
so a notebook can be edited as text and written back.
"""
import sys, pathlib, jupytext, nbformat

KERNEL = {"display_name": "python3", "language": "python", "name": "python3"}

def convert(src, dest):
    nb = jupytext.read(src)
    nb.metadata = {"kernelspec": KERNEL}
    for c in nb.cells:
        c.metadata = {k: v for k, v in c.metadata.items() if k == "tags"}
    nbformat.write(nb, dest)

if __name__ == "__main__":
    args = sys.argv[1:]
    out = pathlib.Path(args[args.index("--out") + 1]) if "--out" in args else None
    srcs = [a for a in args if a.endswith(".py")]
    for s in srcs:
        s = pathlib.Path(s)
        dest = (out / s.with_suffix(".ipynb").name) if out else s.with_suffix(".ipynb")
        dest.parent.mkdir(parents=True, exist_ok=True)
        convert(s, dest)
        print("wrote", dest)
