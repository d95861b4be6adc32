"""The timing table printed at the end of every `make test` / `.ci/run` (issue #20).

Reads what the run wrote into `_out/timing/`: `steps.tsv` (scripts/test.sh and .ci/run: step, seconds, exit code),
`notebooks.tsv` (tools/nbcov.py: notebook, seconds, passed) and `pytest*.xml` (pytest's JUnit reports), and prints each
step against its budget in `scripts/budgets.toml`, then the 10 slowest notebooks and the 10 slowest tests.

Usage: `python tools/timing.py [--dir _out/timing] [--since EPOCH]`; `--since` (or $CI_T0) adds the wall-clock total.
"""
import argparse, csv, os, sys, time, tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def budgets(path=ROOT/"scripts"/"budgets.toml") -> dict:
    "The budgets file: `total`, `[steps]` and `[notebooks]` in seconds."
    return tomllib.loads(Path(path).read_text())

def read_tsv(path) -> list:
    "Rows of a tab-separated file, or [] when it does not exist."
    if not Path(path).exists(): return []
    with open(path, newline="") as f: return [r for r in csv.reader(f, delimiter="\t") if r and not r[0].startswith("#")]

def slowest_tests(xml_dir, n=10) -> list:
    "(seconds, test id) of the `n` slowest pytest tests in the JUnit XML reports `pytest*.xml` of `xml_dir`."
    cases = [(float(c.get("time", 0)), f"{c.get('classname', '')}::{c.get('name', '')}")
             for x in sorted(Path(xml_dir).glob("pytest*.xml")) for c in ET.parse(x).iter("testcase")]
    return sorted(cases, reverse=True)[:n]

def table(rows, heads) -> str:
    "A plain aligned text table."
    rows = [[str(c) for c in r] for r in rows]
    w = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(heads)]
    line = lambda cs: "  ".join(c.rjust(w[i]) if i else c.ljust(w[i]) for i, c in enumerate(cs))
    return "\n".join([line(heads), line(["-" * x for x in w]), *map(line, rows)])

def report(d:Path, since:float|None=None) -> str:
    "The whole timing report as text."
    b = budgets(); out = []
    steps = read_tsv(d/"steps.tsv")
    rows = []
    for name, secs, rc in steps:
        budget = b["steps"].get(name)
        flag = "FAILED" if rc != "0" else ("OVER" if budget is not None and float(secs) > budget else "ok")
        rows.append([name, f"{float(secs):.0f}", "-" if budget is None else budget, flag])
    total = sum(float(s) for _, s, _ in steps)
    rows.append(["sum of steps (lane B overlaps lane A)", f"{total:.0f}", b["total"], "OVER" if total > b["total"] else "ok"])
    if since: rows.append(["wall clock since start", f"{time.time() - since:.0f}", b["total"], "OVER" if time.time() - since > b["total"] else "ok"])
    out += ["timing of this run (seconds; budgets in scripts/budgets.toml)", table(rows, ["step", "seconds", "budget", ""])]
    nbs = sorted(((float(s), n, p) for n, s, p in read_tsv(d/"notebooks.tsv")), reverse=True)[:10]
    if nbs:
        out += ["", "10 slowest notebooks (two at a time, each in its own interpreter)",
                table([[n, f"{s:.0f}", b["notebooks"].get(n, "-"), "ok" if p == "1" else "FAILED"] for s, n, p in nbs],
                      ["notebook", "seconds", "budget", ""])]
    tests = slowest_tests(d)
    if tests: out += ["", "10 slowest tests", table([[t, f"{s:.0f}"] for s, t in tests], ["test", "seconds"])]
    return "\n".join(out)

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default=str(ROOT/"_out"/"timing"))
    ap.add_argument("--since", type=float, default=float(os.environ["CI_T0"]) if os.environ.get("CI_T0") else None)
    a = ap.parse_args()
    print(report(Path(a.dir), a.since)); sys.exit(0)
