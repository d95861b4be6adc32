"""House-rule checks on nbs/ that nbdev does not enforce (run by scripts/test.sh).

- Imports sit in their own cells: nbdev's docs processing executes every cell with an import, so a cell that
  mixes imports with test code runs during the docs build (and breaks it when the test needs real data).
- Every module notebook opens with `#| default_exp` and a `# title` + `> summary` markdown cell.
- Every exported function and class has a docstring.
"""
import ast, sys, pathlib, nbformat

NBS = pathlib.Path(__file__).resolve().parent.parent/"nbs"

def problems(path):
    nb = nbformat.read(path, as_version=4)
    out, is_module = [], path.parent == NBS and path.stem[:2].isdigit()
    if is_module:
        code = [c for c in nb.cells if c.cell_type == "code"]
        if not code or "#| default_exp" not in code[0].source: out.append("first code cell is not `#| default_exp`")
        md = [c for c in nb.cells if c.cell_type == "markdown"]
        if not md or not md[0].source.startswith("# ") or "\n> " not in md[0].source: out.append("no `# title` + `> summary` cell")
    for i, c in enumerate(nb.cells):
        if c.cell_type != "code": continue
        lines = c.source.splitlines()
        dirs = {l[3:].split()[0] for l in lines if l.startswith("#| ") and len(l) > 3}
        body = "\n".join(l for l in lines if not l.startswith("#|") and not l.startswith("%"))
        try: tree = ast.parse(body)
        except SyntaxError: continue
        exported = bool(dirs & {"export", "exports", "exporti"})
        has_imp = any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(tree))  # nbdev looks at nested ones too
        has_other = any(not isinstance(n, (ast.Import, ast.ImportFrom)) for n in tree.body)
        if not exported and has_imp and has_other:
            out.append(f"cell {i}: imports mixed with other code (the docs build executes it)")
        if dirs & {"export", "exports"}:
            for n in tree.body:
                if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)) and not n.name.startswith("_") \
                        and ast.get_docstring(n) is None:
                    out.append(f"cell {i}: exported `{n.name}` has no docstring")
    return out

def split_imports(path):
    "Rewrite `path` so each cell mixing imports with other code becomes an import cell and a code cell."
    nb = nbformat.read(path, as_version=4); cells, n = [], 0
    for c in nb.cells:
        if c.cell_type != "code": cells.append(c); continue
        lines = c.source.splitlines()
        dirs = [l for l in lines if l.startswith("#|")]
        body = [l for l in lines if not l.startswith("#|")]
        try: tree = ast.parse("\n".join(body))
        except SyntaxError: cells.append(c); continue
        names = {l[3:].split()[0] for l in dirs if len(l) > 3}
        imps = [x for x in tree.body if isinstance(x, (ast.Import, ast.ImportFrom))]
        if names & {"export", "exports", "exporti"} or not imps or len(imps) == len(tree.body): cells.append(c); continue
        taken = {i for x in imps for i in range(x.lineno - 1, x.end_lineno)}
        imp_cell = nbformat.v4.new_code_cell("\n".join(dirs + [body[i] for i in sorted(taken)]))
        rest = nbformat.v4.new_code_cell("\n".join(dirs + [l for i, l in enumerate(body) if i not in taken]).strip("\n"))
        rest.outputs = c.get("outputs", []); rest.metadata = c.metadata
        cells += [imp_cell, rest]; n += 1
    nb.cells = cells
    if n: nbformat.write(nb, path)
    return n

if __name__ == "__main__" and "--fix" in sys.argv:
    for a in sys.argv[1:]:
        if a.endswith(".ipynb"): print(a, split_imports(pathlib.Path(a)), "cell(s) split")
    sys.exit()

if __name__ == "__main__":
    bad = 0
    for p in sorted(NBS.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in p.parts or "_out" in p.parts: continue
        for msg in problems(p): print(f"{p.relative_to(NBS.parent)}: {msg}"); bad += 1
    if bad: sys.exit(f"{bad} house-rule problem(s) in nbs/")
    print("nbs/ follows the house rules.")
