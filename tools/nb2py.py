"""Write a notebook as percent-format text: `python tools/nb2py.py nbs/01_images.ipynb OUT.py` (edit, then py2nb.py back)."""
import sys, jupytext

if __name__ == "__main__":
    nb = jupytext.read(sys.argv[1])
    jupytext.write(nb, sys.argv[2], fmt="py:percent")
