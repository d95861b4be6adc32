"""Offline docs site: nbdev's notebook processing, then mkdocs-material (Quarto can't be installed offline).

  python tools/build_docs.py [--no-execute]   # site in _site/ (index.html, search, navigation)

`nbdev-docs` still works wherever Quarto is installed; this builds the same pages without it:
1. nbdev's notebook processing (`nbdev-proc-nbs`, without its Quarto check) writes processed notebooks (API reference rendered by `show_doc`) to `_proc/`;
2. the default run spec is executed (`defect-twin run` on the bundled sample, CPU): its executed stage notebooks
   replace the tutorials, so their figures appear, and its benchmark table becomes the Benchmarks page;
3. each notebook becomes a Markdown page (figures extracted; API links made local, see `local_links`), and
   mkdocs-material builds the site with search.
"""
import sys, re, json, shutil, subprocess, base64, pathlib, yaml, nbformat

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROC, MD, SITE = ROOT/"_proc", ROOT/"_docs_md", ROOT/"_site"
BIN = pathlib.Path(sys.executable).parent

def title_of(nb, fallback):
    for c in nb.cells:
        if c.cell_type == "raw" and c.source.startswith("---"):
            fm = yaml.safe_load(c.source.strip().strip("-")) or {}
            return fm.get("title", fallback), fm.get("description", "")
        if c.cell_type == "markdown" and c.source.startswith("# "):
            m = re.match(r"# (.+)(?:\n+> (.+))?", c.source)
            return m.group(1), m.group(2) or ""
    return fallback, ""

def tidy_api_md(md:str) -> str:
    "nbdev's `show_doc` markdown for mkdocs: an untyped `x=None` argument reads `x=None`, not `x:NoneType=None`."
    return re.sub(r":\s*NoneType\s*=\s*None", "=None", md)

def page_names(proc=None) -> dict:
    "nbdev's page name of each notebook (`07_metrics.ipynb` -> `metrics`, as in `_modidx`'s links) -> its page here."
    out, root = {}, proc or PROC
    # the module notebooks first: a tutorial or guide of the same name (tutorials/export) must not take a module's links
    for nb in sorted(root.rglob("*.ipynb"), key=lambda p: (len(p.relative_to(root).parts), str(p))):
        rel = nb.relative_to(root)
        page = "index.html" if rel.name == "index.ipynb" else str(rel.with_suffix(".html"))
        out.setdefault(re.sub(r"^[\d.]+[a-z]?_", "", nb.stem), page)
        out.setdefault(nb.stem, page)
    return out

def ambiguous_names() -> set:
    "Bare names that nbdev's index holds in more than one module (a link on them would guess which one)."
    from defect_twin._modidx import d
    seen = {}
    for mod, syms in d["syms"].items():
        for full in syms:
            short = full.rsplit(".", 1)[-1]
            if full.count(".") == 2: seen.setdefault(short, set()).add(mod)
    mods = {m.rsplit(".", 1)[-1] for m in d["syms"]}
    return {k for k, v in seen.items() if len(v) > 1 or k in mods}

HOST = re.compile(r"\[([^\]]*)\]\((?:https?://defect-twin\.github\.io)?/defect_twin/([\w./-]+?)\.html(#[^)\s]*)?\)")

def local_links(md:str, here:str, pages:dict, ambiguous:set) -> str:
    "API links in a page's markdown made local: the public docs host becomes a path relative to `here` (the page's own path); a link on a bare name that several modules define is dropped (the text stays)."
    depth = here.count("/")
    def fix(m):
        text, page, anchor = m.group(1), m.group(2), m.group(3) or ""
        if text.strip("`") in ambiguous: return text
        target = pages.get(page.split("/")[-1])
        if target is None: return text
        return f"[{text}]({'../' * depth}{target}{anchor.lower()})"     # the anchor is settled once every page exists
    return HOST.sub(fix, md)

def slug(text:str) -> str:
    "A heading's id as mkdocs' toc extension makes it."
    text = re.sub(r"__(\w+?)__", r"\1", re.sub(r"<[^>]+>|`", "", text))    # `__getattr__` in a heading renders bold: "getattr"
    return re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", text).strip().lower())

LOCAL = re.compile(r"\]\(((?:\.\./)*[\w./-]+?\.html)#([\w.-]+)\)")

def settle_anchors(md_dir:pathlib.Path) -> int:
    "Point every local `page.html#name` link at an id the page has: `name` as mkdocs slugs it, else its class's (`modelfolder.check` -> `modelfolder`), else the page's top. Returns how many links fell back."
    ids = {}
    for md in md_dir.rglob("*.md"):
        ids[md.relative_to(md_dir).with_suffix(".html").as_posix()] = {slug(h) for h in re.findall(r"^#{1,6}\s+(.+?)\s*$", md.read_text(), re.M)}
    fell = 0
    for md in md_dir.rglob("*.md"):
        here = md.relative_to(md_dir).parent
        def fix(m):
            nonlocal fell
            page, name = m.group(1), m.group(2)
            target = pathlib.PurePosixPath(here.as_posix(), page).as_posix()
            parts = []
            for p in target.split("/"):
                if p == "..": parts.pop()
                elif p not in (".", ""): parts.append(p)
            have = ids.get("/".join(parts), set())
            for cand in (name, name.split(".")[0]):
                if slug(cand) in have: return f"]({page}#{slug(cand)})"
            fell += 1
            return f"]({page})"
        text = md.read_text()
        new = LOCAL.sub(fix, text)
        if new != text: md.write_text(new)
    return fell

def outputs_md(c, stem, img_dir, n):
    parts = []
    for i, o in enumerate(c.get("outputs", [])):
        if o.output_type == "stream":
            parts.append(f"```\n{o.text.rstrip()}\n```")
        elif o.output_type in ("execute_result", "display_data"):
            d = o.get("data", {})
            if "image/png" in d:
                fn = f"{stem}_{n}_{i}.png"
                (img_dir/fn).write_bytes(base64.b64decode(d["image/png"]))
                parts.append(f"![]({img_dir.name}/{fn})")
            elif "text/markdown" in d: parts.append(tidy_api_md(d["text/markdown"]))
            elif "text/html" in d: parts.append(d["text/html"])
            elif "text/plain" in d: parts.append(f"```\n{d['text/plain'].rstrip()}\n```")
        elif o.output_type == "error":
            parts.append(f"```\n{o.ename}: {o.evalue}\n```")
    return parts

def to_markdown(nb_path, out_path, links=None):
    nb = nbformat.read(nb_path, as_version=4)
    title, desc = title_of(nb, nb_path.stem)
    img_dir = out_path.parent/"img"; img_dir.mkdir(parents=True, exist_ok=True)
    parts, first_title_skipped = [f"# {title}"] + ([f"> {desc}"] if desc else []), False
    for n, c in enumerate(nb.cells):
        if c.cell_type == "raw": continue
        if c.cell_type == "markdown":
            if "AUTOGENERATED" in c.source: continue
            if not first_title_skipped and c.source.startswith("# "):
                first_title_skipped = True; continue
            parts.append(c.source); continue
        lines = c.source.splitlines()
        flags = " ".join(l for l in lines if l.startswith("#|"))
        if re.search(r"#\|\s*(hide|include:\s*false)", flags): continue
        code = "\n".join(l for l in lines if not l.startswith("#|")).strip()
        if code and not re.search(r"echo:\s*false", flags) and not code.startswith("#| default_exp"):
            parts.append(f"```python\n{code}\n```")
        parts += outputs_md(c, out_path.stem, img_dir, n)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n\n".join(parts) + "\n"
    if links is not None: text = local_links(text, str(out_path.relative_to(MD)), *links)
    out_path.write_text(text)
    return title

def pipeline_run():
    "Run the default spec (bundled sample, CPU): its executed notebooks become the tutorial pages."
    from defect_twin.runs import run_pipeline
    root = ROOT/"_docs_run"; shutil.rmtree(root, ignore_errors=True)
    return run_pipeline(None, root=root, run_name="docs", tracking_root=root)

def benchmark_page(run_dir, md_dir):
    "A page with the run's benchmark table and chart."
    md, png = run_dir/"benchmark.md", run_dir/"benchmark.png"
    if not md.exists(): return None
    (md_dir/"img").mkdir(parents=True, exist_ok=True)
    if png.exists(): shutil.copy(png, md_dir/"img"/"benchmark.png")
    (md_dir/"benchmarks.md").write_text("# Benchmarks\n\n> The latency table of the docs build's own run of the default spec "
        "(`defect-twin run`): measured side by side, on the machine named in the first line.\n\n"
        + md.read_text() + ("\n![](img/benchmark.png)\n" if png.exists() else ""))
    return "benchmarks.md"

def proc_nbs():
    "`nbdev-proc-nbs` (processed notebooks in `_proc/`) without its Quarto check: mkdocs renders the pages here, and the check would try to download Quarto and install it with sudo (offline: noise and a failed download)."
    import os, nbdev.quarto as q
    q._ensure_quarto = lambda: None
    cwd = os.getcwd()
    try: q._pre_docs()
    finally: os.chdir(cwd)

def build(run_tutorials=True):
    proc_nbs()
    run_dir = pipeline_run() if run_tutorials else None
    if run_dir is not None:   # the executed stage notebooks replace the unexecuted tutorials
        for nb in run_dir.glob("[0-9][0-9]_*.ipynb"):
            dest = PROC/"tutorials"/nb.name[3:]
            if dest.exists(): shutil.copy(nb, dest)
    shutil.rmtree(MD, ignore_errors=True); MD.mkdir()
    nav, tutorials = [], []
    links = (page_names(), ambiguous_names())
    for nb in sorted(PROC.rglob("*.ipynb")):
        rel = nb.relative_to(PROC)
        md = MD/rel.with_suffix(".md")
        if rel.name == "index.ipynb": md = MD/"index.md"
        title = to_markdown(nb, md, links)
        entry = {title: str(md.relative_to(MD))}
        if rel.name == "index.ipynb": nav.insert(0, {"Home": "index.md"})
        elif rel.parts[0] == "tutorials": tutorials.append(entry)
        else: nav.append(entry)
    settle_anchors(MD)
    # tutorials in pipeline order (the run's stages, `runs.STAGES`), then any others alphabetically
    from defect_twin.runs import STAGES
    order = [pathlib.Path(f).stem for nb in STAGES.values() for f in (nb.values() if isinstance(nb, dict) else [nb])]
    stem = lambda e: pathlib.Path(next(iter(e.values()))).stem
    rank = lambda e: order.index(stem(e)) if stem(e) in order else len(order)
    if tutorials: nav.append({"Tutorials": sorted(tutorials, key=rank)})
    if run_dir is not None and (page := benchmark_page(run_dir, MD)): nav.append({"Benchmarks": page})
    cfg = dict(site_name="defect_twin", docs_dir=str(MD), site_dir=str(SITE), use_directory_urls=False,
               theme=dict(name="material", font=False, features=["navigation.sections", "search.highlight"]),
               plugins=["search"], extra=dict(generator=False), markdown_extensions=["tables", "admonition", "fenced_code", "toc", "attr_list"], nav=nav)
    (ROOT/"_mkdocs.yml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    subprocess.run([str(BIN/"mkdocs"), "build", "-q", "-f", str(ROOT/"_mkdocs.yml")], cwd=ROOT, check=True)
    print(f"docs site: {SITE/'index.html'}")

if __name__ == "__main__":
    build(run_tutorials="--no-execute" not in sys.argv)
