"""README.md from nbs/index.ipynb (nbdev-readme needs Quarto, which can't be installed offline).

  python tools/readme.py            # write README.md from the notebook's stored outputs
  python tools/readme.py --execute  # execute index.ipynb first (outputs stored in the notebook), then write
  python tools/readme.py --check    # exit 1 if README.md is out of date
"""
import sys, re, base64, pathlib, nbformat

ROOT = pathlib.Path(__file__).resolve().parent.parent
NB, README = ROOT/"nbs"/"index.ipynb", ROOT/"README.md"
FIGS = ROOT/"nbs"/"images"/"readme"          # figures of the notebook's outputs, linked from README.md

def _text(outputs):
    for o in outputs:
        d = o.get("data", {})
        if o.get("output_type") == "stream": yield o["text"]
        elif "text/markdown" in d: yield d["text/markdown"]
        elif "text/plain" in d: yield d["text/plain"]

def _figures(outputs) -> list[bytes]:
    return [base64.b64decode(o["data"]["image/png"]) for o in outputs if "image/png" in o.get("data", {})]

def render(nb) -> tuple[str, dict]:
    "README text, and the figure files it links ({path: PNG bytes})."
    parts, figs = [], {}
    for c in nb.cells:
        src = c.source
        if c.cell_type == "markdown":
            src = re.sub(r"^# (.+)\n> (.+)$", r"# \1\n\n> \2", src, count=1, flags=re.M)
            parts.append(src)
        elif c.cell_type == "code":
            lines = src.splitlines()
            if any(l.strip() in ("#| hide", "#|hide") for l in lines): continue
            code = "\n".join(l for l in lines if not l.startswith("#|"))
            parts.append(f"```python\n{code}\n```")
            outs = c.get("outputs", [])
            for png in _figures(outs):
                f = FIGS/f"{c.get('id', len(figs))}_{len(figs)}.png"; figs[f] = png
                parts.append(f"![]({f.relative_to(ROOT).as_posix()})")
            out = "".join(_text([o for o in outs if "image/png" not in o.get("data", {})])).rstrip()
            if out: parts.append(f"```\n{out}\n```")
    head = "<!-- Generated from nbs/index.ipynb by tools/readme.py: edit the notebook, not this file. -->\n\n"
    return head + "\n\n".join(parts) + "\n", figs

def execute():
    from nbclient import NotebookClient
    nb = nbformat.read(NB, as_version=4)
    NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": str(NB.parent)}}).execute()
    for c in nb.cells:
        if c.cell_type == "code":
            c.execution_count = None
            for o in c.get("outputs", []):
                if "execution_count" in o: o["execution_count"] = None
    nb.metadata = {"kernelspec": nb.metadata.get("kernelspec", {})}
    nbformat.write(nb, NB)

if __name__ == "__main__":
    if "--execute" in sys.argv: execute()
    text, figs = render(nbformat.read(NB, as_version=4))
    if "--check" in sys.argv:
        if not README.exists() or README.read_text() != text or any(not f.exists() or f.read_bytes() != b for f, b in figs.items()):
            sys.exit("README.md (or its figures) is out of date with nbs/index.ipynb: run `python tools/readme.py`.")
        print("README.md is up to date.")
    else:
        if FIGS.exists():
            for old in FIGS.glob("*.png"):
                if old not in figs: old.unlink()
        FIGS.mkdir(parents=True, exist_ok=True)
        for f, b in figs.items(): f.write_bytes(b)
        README.write_text(text); print(f"wrote {README} and {len(figs)} figure(s) in {FIGS.relative_to(ROOT)}")
