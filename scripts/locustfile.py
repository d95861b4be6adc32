"""Locust user for the inspection service: POST /api/v1/detect with images from $DT_LOAD_IMAGES, no think time.

Run by scripts/loadtest.py (headless, 127.0.0.1 only, fixed users and duration); by hand:
    DT_LOAD_IMAGES=defect_twin/assets/bottle_sample/test locust -f scripts/locustfile.py --headless -u 8 -r 8 -t 20s \
        --host http://127.0.0.1:8000
"""
import os, pathlib, random, uuid
from locust import FastHttpUser, task, constant

def _multipart(name:str, data:bytes) -> tuple[bytes, str]:
    "A multipart/form-data body with one `file` field, and its content type."
    b = uuid.uuid4().hex
    body = (f"--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{b}--\r\n".encode()
    return body, f"multipart/form-data; boundary={b}"

_root = pathlib.Path(os.environ.get("DT_LOAD_IMAGES", "defect_twin/assets/bottle_sample/test"))
BODIES = [_multipart(p.name, p.read_bytes()) for p in sorted(_root.rglob("*.png"))]
if not BODIES: raise SystemExit(f"no PNG images under {_root} (set DT_LOAD_IMAGES)")

class Inspector(FastHttpUser):
    "One client at a bench: uploads an image, reads the verdict, uploads the next one at once."
    wait_time = constant(0)

    @task
    def detect(self):
        body, ctype = random.choice(BODIES)
        with self.client.post("/api/v1/detect", data=body, headers={"Content-Type": ctype}, catch_response=True,
                              name="/api/v1/detect") as r:
            if r.status_code != 200: r.failure(f"HTTP {r.status_code}: {r.text[:200]}")
            elif r.json().get("label") not in ("good", "defect"): r.failure(f"no verdict in {r.text[:200]}")
