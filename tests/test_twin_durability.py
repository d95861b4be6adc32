"""The twin's service loses no acknowledged event when it is killed mid-stream (SIGKILL) and restarted."""
import sqlite3, threading, time
import httpx
from twin_support import write_line, part, TwinServer


def test_kill_mid_stream_loses_no_acknowledged_event(tmp_path):
    line, db = write_line(tmp_path), f"sqlite:///{tmp_path/'line.db'}"
    acked, errors, stop = [], [], threading.Event()

    def producer(url):
        with httpx.Client(timeout=5) as c:
            for b in range(400):                                   # bounded: at most 400 batches of 25
                if stop.is_set(): return
                evs = [part(b * 25 + i) for i in range(25)]
                try: r = c.post(url + "/api/v1/events", json=dict(events=evs))
                except httpx.TransportError as e: errors.append(repr(e)); return
                if r.status_code == 200: acked.extend(e["id"] for e in evs)
                else: errors.append(r.text); return

    with TwinServer(line, db) as srv:
        t = threading.Thread(target=producer, args=(srv.url,)); t.start()
        deadline = time.monotonic() + 30
        while len(acked) < 1000 and time.monotonic() < deadline and t.is_alive(): time.sleep(0.01)
        srv.kill()                                                  # mid-stream: the producer is still posting
        stop.set(); t.join(10)
    assert len(acked) >= 1000, (len(acked), errors)
    assert errors, "the producer should have seen the connection drop"

    con = sqlite3.connect(tmp_path/"line.db")
    stored = {r[0] for r in con.execute("SELECT id FROM twin_events")}
    con.close()
    assert set(acked) <= stored, f"{len(set(acked) - stored)} acknowledged events lost"

    with TwinServer(line, db) as srv:                               # restart: the twin is rebuilt from the database
        snap = httpx.get(srv.url + "/api/v1/line").json()
        cam = next(s for s in snap["stations"] if s["id"] == "cam")
        assert cam["parts"] == len(stored) >= len(acked)
        # sending the last acknowledged batch again is a no-op
        r = httpx.post(srv.url + "/api/v1/events", json=dict(events=[part(i) for i in range(len(acked) - 25, len(acked))]))
        assert r.json()["accepted"] == 0 and r.json()["duplicates"] == 25
