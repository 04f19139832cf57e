"""Upload and replace on real RabbitMQ: gunicorn stages the file, the `flickr_upload` and
`flickr_replace` worker pools stream it to the sandbox, and a REST worker finds the photo.
Also the memory figure: a 100 MB file must not swell the web or the worker process."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import requests
from requests_toolbelt import MultipartEncoder

from flickr.fake.testing import tiny_jpeg, tiny_png
from tests.integration.conftest import Hub, wait_for_state

MB = 1024 * 1024


def upload(hub: Hub, api_key: str, user_id: str, photo, filename: str, *, target="upload", params="{}"):
    body = MultipartEncoder(
        fields={
            "user_id": user_id,
            "target": target,
            "params": params,
            "photo": (filename, photo, "application/octet-stream"),
        }
    )
    return requests.post(
        f"{hub.url}/api/v1/flickr/rest",
        data=body,
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": body.content_type},
        timeout=120,
    )


def staged(hub: Hub) -> list[str]:
    folder = Path(hub.env["UPLOAD_STAGING_DIR"])
    return sorted(os.listdir(folder)) if folder.exists() else []


def test_upload_and_replace_run_on_their_own_queues_and_the_photo_is_found(make_hub, world):
    hub = make_hub()
    hub.start_web()
    for queue in ("flickr_rest", "flickr_upload", "flickr_replace"):
        hub.start_worker(queue, threads=2)
    key, user_id = world.alpha.key, str(world.alpha.accounts[0].user_id)

    response = upload(
        hub, key, user_id, tiny_jpeg(), "pier.jpg", params='{"title": "Pier", "tags": ["rabbitmq-it"]}'
    )
    assert response.status_code == 202, response.text
    assert response.json()["data"]["queue"] == "flickr_upload"
    done = wait_for_state(hub, key, response.json()["data"]["job_id"], {"completed", "failed"})
    assert done["state"] == "completed", done
    photo_id = done["returnvalue"]["flickr"]["photoid"]["_content"]

    response = upload(
        hub, key, user_id, tiny_png(), "pier-v2.png", target="replace", params=f'{{"photo_id": "{photo_id}"}}'
    )
    assert response.json()["data"]["queue"] == "flickr_replace"
    replaced = wait_for_state(hub, key, response.json()["data"]["job_id"], {"completed", "failed"})
    assert replaced["state"] == "completed", replaced
    assert replaced["returnvalue"]["flickr"]["photoid"]["_content"] == photo_id

    search = requests.post(
        f"{hub.url}/api/v1/flickr/rest",
        json={
            "method": "flickr.photos.search",
            "user_id": user_id,
            "params": {"user_id": world.alpha.accounts[0].nsid, "tags": "rabbitmq-it"},
        },
        headers={"Authorization": f"Bearer {key}"},
        timeout=15,
    )
    found = wait_for_state(hub, key, search.json()["data"]["job_id"], {"completed", "failed"})
    assert [p["id"] for p in found["returnvalue"]["flickr"]["photos"]["photo"]] == [photo_id]

    counts = world.sandbox.app.counters.snapshot()["by_method"]
    assert (counts.get("upload"), counts.get("replace")) == (1, 1)
    assert staged(hub) == [], "the workers removed both staged files"


def test_a_refused_file_leaves_nothing_behind(make_hub, world):
    hub = make_hub(UPLOAD_MAX_BYTES=str(MB))
    hub.start_web()
    key, user_id = world.alpha.key, str(world.alpha.accounts[0].user_id)
    too_big = upload(hub, key, user_id, tiny_jpeg() + b"\0" * (3 * MB), "big.jpg")
    assert too_big.status_code == 413, too_big.text
    assert too_big.json()["error"]["code"] == "ERR_PAYLOAD_TOO_LARGE"
    not_image = upload(hub, key, user_id, b"#!/bin/sh\necho hi\n" * 100, "x.jpg")
    assert not_image.status_code == 415
    from jobs.models import Job

    assert Job.objects.count() == 0
    assert staged(hub) == []


# ------------------------------------------------------------------ memory


def _session_pids(leader: int) -> list[int]:
    """Every process in the session a hub process leads (gunicorn's and dramatiq's children)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[3]) == leader:  # the session id
            pids.append(int(entry))
    return pids


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return 0


class RssWatch(threading.Thread):
    """Samples the RSS of every process of some sessions every 10 ms; keeps each one's peak."""

    def __init__(self, leaders: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.pids = {pid: name for name, leader in leaders.items() for pid in _session_pids(leader)}
        self.baseline = {pid: _rss(pid) for pid in self.pids}
        self.peak = dict(self.baseline)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.01):
            for pid in self.pids:
                self.peak[pid] = max(self.peak[pid], _rss(pid))

    def growth(self) -> dict[str, int]:
        """The largest RSS increase of any process of each named session, in bytes."""
        out: dict[str, int] = {}
        for pid, name in self.pids.items():
            out[name] = max(out.get(name, 0), self.peak[pid] - self.baseline[pid])
        return out


def test_a_100_mb_upload_streams_through_the_web_and_the_worker_without_swelling_them(
    make_hub, world, tmp_path
):
    hub = make_hub()
    hub.start_web()
    hub.start_worker("flickr_upload", threads=2)
    key, user_id = world.alpha.key, str(world.alpha.accounts[0].user_id)

    # Warm both processes up with a small upload, so imports and pools are in the baseline.
    warm = upload(hub, key, user_id, tiny_jpeg(), "warm.jpg")
    wait_for_state(hub, key, warm.json()["data"]["job_id"], {"completed"})

    big = tmp_path / "big.jpg"
    with big.open("wb") as f:
        f.write(tiny_jpeg()[:-2])
        chunk = bytes(range(256)) * 4096  # 1 MB that does not compress to nothing
        for _ in range(100):
            f.write(chunk)
        f.write(b"\xff\xd9")
    size = big.stat().st_size

    assert hub.web is not None
    watch = RssWatch({"web": hub.web.pid, "worker": hub.workers["flickr_upload"].pid})
    watch.start()
    started = time.monotonic()
    with big.open("rb") as photo:
        response = upload(hub, key, user_id, photo, "big.jpg")
    accepted = time.monotonic() - started
    assert response.status_code == 202, response.text
    done = wait_for_state(hub, key, response.json()["data"]["job_id"], {"completed", "failed"}, timeout=120)
    total = time.monotonic() - started
    watch.stopped.set()
    watch.join()

    assert done["state"] == "completed", done
    photo = world.sandbox.app.state.library.photos[done["returnvalue"]["flickr"]["photoid"]["_content"]]
    assert photo.size_bytes == size
    growth = watch.growth()
    print(
        f"\n100 MB upload: accepted in {accepted:.2f}s, on Flickr after {total:.2f}s; "
        f"peak RSS growth web {growth['web'] / MB:.1f} MB, worker {growth['worker'] / MB:.1f} MB"
    )
    assert growth["web"] < 30 * MB
    assert growth["worker"] < 30 * MB
    assert staged(hub) == []
