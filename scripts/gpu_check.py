#!/usr/bin/env python
"""GPU check for defect_twin: Swin-Tiny classifier and PatchCore through ONNX Runtime's CUDA provider beside
PyTorch CUDA eager, and one classifier training step. Prints a latency table and writes gpu_check.json.

    python scripts/gpu_check.py [--out DIR] [--patchcore MODEL_DIR] [--iters N]

Without a CUDA GPU (or without onnxruntime-gpu) it says so and exits with status 0: there is nothing to check.
Weights: Swin-Tiny uses ImageNet weights when timm finds them offline, else random ones (latency does not depend
on the weights). PatchCore: the given trained model folder, else one fitted here on the bundled bottle sample.
"""
import argparse, json, sys, tempfile, time
from pathlib import Path

def _skip(msg):
    print(f"gpu_check: {msg}; nothing to check on this machine.")
    return 0

def _stats(ms, batch):
    import numpy as np
    ms = np.asarray(ms)
    return dict(mean_ms=float(ms.mean()), p50_ms=float(np.percentile(ms, 50)), p95_ms=float(np.percentile(ms, 95)),
                per_image_ms=float(ms.mean() / batch), throughput=float(batch * 1e3 / ms.mean()))

def _time(fn, iters, sync=None, warmup=5):
    for _ in range(warmup): fn()
    if sync: sync()
    ts = []
    for _ in range(iters):
        t = time.perf_counter(); fn()
        if sync: sync()
        ts.append((time.perf_counter() - t) * 1e3)
    return ts

def _bench_pair(folder, module, batches, iters, torch, rows, label, dev="cuda"):
    "PyTorch CUDA eager (fp32 and autocast fp16) vs ORT CUDA (fp32 and fp16 variants) on one model folder."
    import numpy as np
    from defect_twin.inference import Engine
    from defect_twin.export import quantize_variant
    variants = ["fp32"]
    try: quantize_variant(folder, "fp16"); variants.append("fp16")
    except Exception as e: print(f"{label}: no fp16 variant ({e})")
    prov = ["CUDAExecutionProvider", "CPUExecutionProvider"] if dev == "cuda" else ["CPUExecutionProvider"]
    engines = {v: Engine(folder, variant=v, providers=prov) for v in variants}
    for v, e in engines.items():
        if e.session.get_providers()[0] != prov[0]:
            raise RuntimeError(f"ORT fell back to {e.session.get_providers()} for {v}: check the CUDA/cuDNN libraries of onnxruntime-gpu")
    m = module.to(dev).eval()
    sync = torch.cuda.synchronize if dev == "cuda" else None
    half = torch.float16 if dev == "cuda" else torch.bfloat16
    H, W = engines["fp32"].spec.size
    for b in batches:
        x = np.random.default_rng(0).standard_normal((b, 3, H, W), dtype=np.float32)
        xt = torch.from_numpy(x).to(dev)
        def t32():
            with torch.inference_mode(): m(xt)
        def t16():
            with torch.inference_mode(), torch.autocast(dev, dtype=half): m(xt)
        runs = [(f"pytorch-{dev} fp32", t32, sync), (f"pytorch-{dev} amp", t16, sync)]
        runs += [(f"ort-{dev} {v}", (lambda e=e: e.run(x)), None) for v, e in engines.items()]
        for name, fn, sync in runs:
            try: rows.append(dict(model=label, backend=name, batch=b, **_stats(_time(fn, iters, sync), b)))
            except Exception as e: rows.append(dict(model=label, backend=name, batch=b, error=f"{type(e).__name__}: {e}"[:200]))
            r = rows[-1]; print(f"{label:10s} {name:18s} batch {b:3d}: " + (f"{r['mean_ms']:8.2f} ms  p95 {r['p95_ms']:8.2f}  {r['throughput']:8.1f} img/s" if "error" not in r else r["error"]), flush=True)

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=".", help="folder for gpu_check.json")
    ap.add_argument("--patchcore", default=None, help="trained PatchCore model folder (default: fit one on the bundled sample)")
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--cpu-dry-run", action="store_true", help="run every step on the CPU (to test this script without a GPU)")
    a = ap.parse_args(argv)
    try: import torch
    except ImportError: return _skip("PyTorch is not installed")
    dev = "cpu" if a.cpu_dry_run else "cuda"
    if dev == "cuda" and not torch.cuda.is_available(): return _skip("no CUDA GPU is visible to PyTorch (torch.cuda.is_available() is False)")
    import onnxruntime as ort
    if dev == "cuda" and "CUDAExecutionProvider" not in ort.get_available_providers():
        return _skip(f"this onnxruntime build has no CUDA provider ({ort.get_available_providers()}); pip install onnxruntime-gpu")
    from torch import nn
    from defect_twin.core import ModelFolder, setup_logging, sample_path
    from defect_twin.backbones import create_backbone, default_spec
    from defect_twin.export import export_onnx, load_for_export
    from defect_twin.classifier import ClassifierScore
    setup_logging()
    batches = [int(b) for b in a.batches.split(",")]
    info = dict(gpu=torch.cuda.get_device_name(0) if dev == "cuda" else "none (CPU dry run)", torch=torch.__version__, onnxruntime=ort.__version__, providers=ort.get_available_providers())
    print(json.dumps(info))
    rows, tmp = [], Path(tempfile.mkdtemp())

    # 1. Swin-Tiny classifier (project head), exported with parity, then CUDA timings
    name = "swin_tiny_patch4_window7_224"
    try: b = create_backbone(name)
    except Exception as e:
        print(f"{name}: no ImageNet weights offline ({type(e).__name__}); timing random weights")
        b = create_backbone(name, pretrained=False)
    clf = ClassifierScore(nn.Sequential(b, nn.Linear(b.num_features, 512), nn.ReLU(), nn.Dropout(0.3), nn.Linear(512, 2)).eval(), 0)
    mf = ModelFolder(tmp/"swin")
    mf.write_json(mf.META, dict(kind="classifier", name="gpu-check-swin", version="0", backbone=name, classes=["defect", "good"], data="sample"))
    default_spec(name).save(mf.file(mf.SPEC)); mf.write_json(mf.THRESHOLD, dict(value=0.5, rule="untrained", score="p(defect)"))
    export_onnx(mf.path, module=clf)
    _bench_pair(mf.path, clf, batches, a.iters, torch, rows, "swin-tiny", dev)

    # 2. PatchCore: the given folder, else fitted on the bundled sample
    try:
        from defect_twin.patchcore import PatchCore
        pc_dir = Path(a.patchcore) if a.patchcore else None
        if pc_dir is None:
            from defect_twin.datasets import mvtec_index
            pc_dir = tmp/"patchcore"
            idx = mvtec_index(sample_path())
            PatchCore(device=dev).fit(idx[idx.split == "train"]).save(pc_dir)
        export_onnx(pc_dir)
        module, _ = load_for_export(pc_dir)
        _bench_pair(pc_dir, module, batches, a.iters, torch, rows, "patchcore", dev)
    except Exception as e:
        rows.append(dict(model="patchcore", error=f"{type(e).__name__}: {e}"[:300])); print("patchcore:", rows[-1]["error"])

    # 3. one classifier training step (AdamW, AMP), batch 32
    clf = clf.to(dev).train()
    opt = torch.optim.AdamW(clf.parameters(), 1e-4)
    scaler = torch.amp.GradScaler(dev, enabled=dev == "cuda")
    tb = 32 if dev == "cuda" else 2
    x, y = torch.randn(tb, 3, 224, 224, device=dev), torch.randint(0, 2, (tb,), device=dev)
    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev, dtype=torch.float16 if dev == "cuda" else torch.bfloat16):
            loss = nn.functional.cross_entropy(clf.net(x), y)
        scaler.scale(loss).backward(); scaler.step(opt); scaler.update()
    rows.append(dict(model="swin-tiny", backend="train step amp", batch=tb,
                     **_stats(_time(step, max(2, a.iters // 5), torch.cuda.synchronize if dev == "cuda" else None, warmup=1), tb)))
    print(f"swin-tiny  train step (AMP, AdamW) batch {tb}: {rows[-1]['mean_ms']:.1f} ms")

    out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    (out/"gpu_check.json").write_text(json.dumps(dict(info=info, rows=rows), indent=2))
    try:
        import pandas as pd
        print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    except ImportError: pass
    print(f"wrote {out/'gpu_check.json'}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
