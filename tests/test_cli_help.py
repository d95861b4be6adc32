"""The command explains itself (issues #14 item 5, #12 item 4): help with defaults and examples on every subcommand,
`--version`, typos reported against the subcommand with the closest spelling, `--print-config` / `--config` round
trips, and errors in command terms. Fast: nothing here trains a model (`nbs/14_cli.ipynb` trains and evaluates)."""
import subprocess, sys, time
from pathlib import Path
import pytest, yaml

from defect_twin import __version__
from defect_twin.cli import build_parser

CLI = str(Path(sys.executable).parent/"defect-twin")

def run(*args, timeout=120):
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout)

def leaves(parser, words=()):
    subs = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    if not subs: return [words]
    return [l for s in subs for name, c in s.choices.items() for l in leaves(c, (*words, name))]

def test_version():
    r = run("--version")
    assert (r.returncode, r.stdout.strip()) == (0, f"defect-twin {__version__}")

@pytest.mark.parametrize("words", [(), ("data", "download"), ("train", "padim"), ("train", "classifier")])
def test_help_shows_defaults_and_examples(words):
    r = run(*words, "-h")
    assert r.returncode == 0, r.stderr
    assert "examples:\n  defect-twin" in r.stdout
    if words: assert "(default: " in r.stdout

def test_every_option_documented():
    "In process: every option of every subcommand has help, and a shown default unless it is required or a switch."
    cmds = leaves(build_parser())
    assert ("train", "padim") in cmds and ("data", "download") in cmds
    for words in cmds:
        sp = build_parser()
        for w in words: sp = next(a for a in sp._actions if a.__class__.__name__ == "_SubParsersAction").choices[w]
        fmt = sp._get_formatter()
        for act in sp._actions:
            if act.__class__.__name__ in ("_HelpAction", "_VersionAction"): continue
            assert act.help, (words, act.dest)
            h = fmt._get_help_string(act)
            assert "(default" in h or "required" in h or act.required or act.nargs == 0 or \
                (not act.option_strings and act.nargs not in ("?", "*")), (words, act.dest, h)

@pytest.mark.parametrize("argv, prog, hint", [
    (["train", "patchcore", "--data", "sample", "--out", "x", "--coreset-ration", "0.1"], "defect-twin train patchcore", "--coreset-ratio"),
    (["twin", "simulate", "example", "--data", "sample", "--scael", "2"], "defect-twin twin simulate", "--scale"),
    (["trian", "patchcore"], "defect-twin", "'train'"),
])
def test_typo_names_the_subcommand(argv, prog, hint):
    r = run(*argv)
    assert r.returncode == 2
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{prog}: error: ") and f"did you mean {hint}?" in last and f"(see `{prog} -h`)" in last, last
    assert f"usage: {prog}" in r.stderr

@pytest.mark.parametrize("kind, flags, key, value", [("patchcore", ["--coreset-ratio", "0.05", "--image-size", "320", "480"], "coreset_ratio", 0.05),
                                                      ("padim", ["--n-features", "40", "--resize", "letterbox"], "n_features", 40),
                                                      ("classifier", ["--freeze-epochs", "1", "--image-size", "160", "--no-pretrained"], "freeze_epochs", 1)])
def test_print_config_round_trip(tmp_path, kind, flags, key, value):
    r = run("train", kind, "--print-config", *flags)
    assert r.returncode == 0, r.stderr
    assert yaml.safe_load(r.stdout)[key] == value
    f = tmp_path/"c.yaml"; f.write_text(r.stdout)
    r2 = run("train", kind, "--config", f, "--print-config")
    assert r2.stdout == r.stdout
    f.write_text(r.stdout.replace("seed: 42", "seed: 1"))
    r3 = run("train", kind, "--config", f, "--print-config", "--seed", "42")      # a flag at its default still overrides
    assert yaml.safe_load(r3.stdout) == yaml.safe_load(r.stdout)

def test_config_errors_are_one_line(tmp_path):
    r = run("train", "patchcore", "--config", tmp_path/"nope.yaml", "--print-config")
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("defect-twin train patchcore: error: ")
    assert "Config file not found" in r.stderr and "Traceback" not in r.stderr
    (tmp_path/"typo.yaml").write_text("coreset: 0.1\n")
    r = run("train", "patchcore", "--config", tmp_path/"typo.yaml", "--data", "sample", "--out", tmp_path/"m")
    assert r.returncode == 2 and "unknown keys ['coreset']" in r.stderr and not (tmp_path/"m").exists()

def test_download_offline_fails_fast(tmp_path):
    "No internet here: the real server cannot be reached, and the command says how to install a copied archive."
    t0 = time.perf_counter()
    r = run("data", "download", "bottle", "--dest", tmp_path, "--timeout", "3", "--no-progress")
    took = time.perf_counter() - t0
    if r.returncode == 0: pytest.skip("this machine is online")
    assert r.returncode == 2 and took < 30, (r.returncode, took)
    err = [l for l in r.stderr.splitlines() if "error:" in l]
    assert len(err) == 1 and "--from /path/to/bottle.tar.xz" in err[0] and "Traceback" not in r.stderr, r.stderr
