"""`nbdev-test` whose export cells count toward the line coverage of the modules they export to.

nbdev-test runs each notebook's cells through execnb, so a definition tested in its own notebook runs as cell code
(`<ipython-input-...>`), and coverage would credit `defect_twin/metrics.py` only with what *later* notebooks and
pytest call. This runs nbdev-test with one change: an export cell whose code is, line for line, the block that
nbdev-export wrote into a module (the `# %% ../nbs/NB.ipynb #cell-id` marker; scripts/test.sh has just checked that
the notebooks and the package are in sync) is compiled with that module's file name and line numbers, so coverage
sees the module's own lines run. Cells that do not match run unchanged. Every other cell runs as nbdev-test runs it.

It also runs the notebooks itself, two at a time, each in a fresh interpreter, with the longest first (`[notebooks]` in scripts/budgets.toml), and
writes each notebook's seconds for the timing table (tools/timing.py).

Usage (scripts/test.sh): `python tools/nbcov.py [PATH] --flags slow --n-workers 2 --timing-out _out/timing/notebooks.tsv`.
"""
import __future__, builtins, functools, operator, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT/"defect_twin"
MARK = re.compile(r"^# %% (\.\./nbs/\S+\.ipynb) #(\S+)\s*$")
DIRECTIVE = re.compile(r"^\s*#\|")
FUTURE = functools.reduce(operator.or_, (getattr(__future__, f).compiler_flag for f in __future__.all_feature_names))

def module_blocks(pkg=PKG):
    "{(notebook path, cell id): (module file, first line, block lines)} from the markers nbdev-export writes."
    out = {}
    for py in sorted(pkg.rglob("*.py")):
        lines = py.read_text().splitlines()
        marks = [(i, MARK.match(l)) for i, l in enumerate(lines)] + [(len(lines), None)]
        starts = [i for i, l in enumerate(lines) if l.startswith("# %% ")] + [len(lines)]
        for i, m in marks:
            if m is None: continue
            end = next(s for s in starts if s > i)
            block = lines[i+1:end]
            while block and not block[-1].strip(): block.pop()
            nb = (py.parent/m.group(1)).resolve()
            out[(str(nb), m.group(2))] = (str(py), i + 2, block)
    return out

def cell_code(source):
    "A cell's code as nbdev-export writes it: the leading `#|` directive lines dropped, trailing blank lines too."
    lines = source.splitlines()
    while lines and DIRECTIVE.match(lines[0]): lines.pop(0)
    while lines and not lines[-1].strip(): lines.pop()
    return lines

def same_code(cell, block):
    "Line for line the same code (nbdev-export turns `from defect_twin.x import` into `from .x import`)."
    return len(cell) == len(block) and all(a == b or ("import" in a and "import" in b) for a, b in zip(cell, block))

_code = {}   # key -> (module file, padded source)

def _run_mapped(key, ns):
    "Run a mapped export cell in the notebook's namespace, compiled as its module's lines (the shell's __future__ flags kept)."
    path, src = _code[key]
    flags = getattr(getattr(ns.get("get_ipython", lambda: None)(), "compile", None), "flags", 0) & FUTURE
    exec(compile(src, path, "exec", flags=flags, dont_inherit=True), ns)

def install():
    "Patch execnb's `CaptureShell.cell` so that mapped export cells run as module code."
    from execnb.shell import CaptureShell
    import nbdev.test as nt
    blocks, orig = module_blocks(), CaptureShell.cell
    builtins.__dt_nbcov__ = _run_mapped

    cur_nb = getattr(nt, "_cur_nb", [None])   # the notebook nbdev-test is running (nbdev 3's test_nb sets it)

    def cell(self, cell, *args, **kwargs):
        nb = cur_nb[0]
        hit = blocks.get((str(Path(nb).resolve()), getattr(cell, "id", None))) if nb is not None and cell.cell_type == "code" else None
        code = cell_code(cell.source) if hit else None
        if not hit or not same_code(code, hit[2]): return orig(self, cell, *args, **kwargs)
        path, first, _ = hit
        key = f"{nb}#{cell.id}"
        _code[key] = (path, "\n" * (first - 1) + "\n".join(code) + "\n")
        futures = [l for l in code if l.startswith("from __future__ import")]   # later cells keep them, as in the shell
        src = cell.source
        cell.source = "\n".join(futures + [f"__dt_nbcov__({key!r}, globals())"])
        try: return orig(self, cell, *args, **kwargs)
        finally: cell.source = src
    CaptureShell.cell = cell

def ordered(files, expected):
    "`files` with the notebooks expected to take longest first (`expected`: name -> seconds), the rest in name order."
    return sorted(files, key=lambda f: (-expected.get(f.name, 0), str(f)))

def _in_process(files, flags, n_workers, cell_timing_min):
    "nbdev's `test_nb` over `files` in this process (n_workers 0) or nbdev's pool: [(passed, seconds)]."
    from fastcore.parallel import parallel
    from nbdev.config import get_config
    from nbdev.test import test_nb
    cfg = get_config()
    skip = [f for f in str(cfg.tst_flags).split() if f not in flags.split()]
    return parallel(test_nb, files, skip_flags=skip, force_flags=flags.split(), n_workers=n_workers, basepath=cfg.config_path,
                    pause=0.01, do_print=True, cell_timeout=cfg.cell_timeout or None, cell_timing_min=cell_timing_min)

def _in_subprocesses(files, flags, n_workers, cell_timing_min):
    "Each notebook in a fresh interpreter, `n_workers` at a time: a notebook's `@patch`es and module state cannot leak into the next one run by the same worker (they did: a patched `ModelFolder.spec` returned another notebook's class). Output is printed whole as each ends."
    import subprocess, time
    from concurrent.futures import ThreadPoolExecutor
    def one(f):
        cmd = [sys.executable, __file__, str(f), "--n-workers", "0", "--flags", flags]
        if cell_timing_min is not None: cmd += ["--cell-timing-min", str(cell_timing_min)]
        t0 = time.time()
        r = subprocess.run(cmd, capture_output=True, text=True)
        out = (r.stdout + r.stderr).strip()
        print(out if r.returncode else "\n".join(l for l in out.splitlines() if not l.startswith("Success")), flush=True)
        return r.returncode == 0, time.time() - t0
    with ThreadPoolExecutor(n_workers) as ex: return list(ex.map(one, files))

def run(path=None, flags="", n_workers=2, timing_out=None, cell_timing_min=None):
    "The notebook tests, longest first (`[notebooks]` of scripts/budgets.toml), each notebook in its own interpreter when `n_workers` > 0; writes `notebook, seconds, passed` rows to `timing_out`."
    import tomllib
    from nbdev.config import get_config
    from nbdev.doclinks import nbglob
    from nbdev.test import _keep_file
    cfg = get_config()
    if path and Path(path).is_file(): files = [Path(path).absolute()]
    elif path and not Path(path).exists():                                    # a glob, e.g. "nbs/0[0-3]*.ipynb"
        import glob
        files = [Path(f).absolute() for f in sorted(glob.glob(path, recursive=True)) if f.endswith(".ipynb")]
    else: files = [f.absolute() for f in nbglob(path or cfg.nbs_path, as_path=True) if _keep_file(f, ".notest")]
    expected = tomllib.loads((ROOT/"scripts"/"budgets.toml").read_text()).get("notebooks", {})
    files = ordered(files, expected)
    res = (_in_process if n_workers == 0 else _in_subprocesses)(files, flags, n_workers, cell_timing_min)
    rows = [(f.name, t, ok) for f, (ok, t) in zip(files, res)]
    if timing_out:
        Path(timing_out).parent.mkdir(parents=True, exist_ok=True)
        Path(timing_out).write_text("".join(f"{n}\t{t:.1f}\t{int(ok)}\n" for n, t, ok in rows))
    failed = [n for n, _, ok in rows if not ok]
    if failed: sys.stderr.write("\nnotebook tests failed: " + ", ".join(failed) + "\n")
    else: print(f"Success: {len(rows)} notebooks.")
    return not failed

if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="nbdev-test, longest notebooks first, with module-mapped export cells")
    ap.add_argument("path", nargs="?", default=None, help="a notebook, folder or glob (default: nbs/)")
    ap.add_argument("--flags", default="", help="test flags to run (e.g. slow)")
    ap.add_argument("--n-workers", type=int, default=2, help="notebooks at a time, each in its own interpreter (0: all in this one)")
    ap.add_argument("--timing-out", default=None, help="write notebook, seconds, passed rows here")
    ap.add_argument("--cell-timing-min", type=float, default=None, help="print cells slower than this")
    a = ap.parse_args()
    install()
    sys.exit(0 if run(a.path, a.flags, a.n_workers, a.timing_out, a.cell_timing_min) else 1)
