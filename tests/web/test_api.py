"""The HTTP API through FastAPI's test client: the result is `identify --json`'s object, every library
escape is refused, non-audio and oversized uploads get 415 and 413, a full queue answers 503 with
Retry-After, temp files always go, CORS is off unless asked for."""

import json
import os
import shutil
import threading
import time

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from timbrescope.cli import main
from timbrescope.errors import AudioError
from timbrescope.inference import Recognizer
from timbrescope.web import ServeSettings, create_app
from timbrescope.web.jobs import JobQueue, QueueFull

from audio_corpus import tone


@pytest.fixture(scope="module")
def recognizer():
    return Recognizer()


@pytest.fixture(scope="module")
def library(tmp_path_factory, example):
    """A served folder with audio, a sub-folder, hidden files, and links that leave it."""
    root = tmp_path_factory.mktemp("served") / "library"
    (root / "strings" / "quartet").mkdir(parents=True)
    shutil.copy(example, root / "example.wav")
    sf.write(root / "strings" / "quartet" / "Cello Take 2.flac", tone(16000 * 2, 110.0), 16000)
    (root / "notes.txt").write_text("not audio")
    (root / ".hidden.wav").write_bytes((root / "example.wav").read_bytes())
    outside = root.parent / "outside"
    outside.mkdir()
    sf.write(outside / "secret.wav", tone(), 16000)
    (root / "leak.wav").symlink_to(outside / "secret.wav")
    (root / "leakdir").symlink_to(outside, target_is_directory=True)
    (root / "inner.wav").symlink_to(root / "example.wav")
    return root


def _client(recognizer, library=None, **settings):
    return TestClient(create_app(ServeSettings(library=str(library) if library else None, **settings), recognizer))


@pytest.fixture(scope="module")
def client(recognizer, library):
    with _client(recognizer, library, max_upload_mb=1.0) as client:
        yield client


def test_identify_answers_exactly_the_cli_json(client, library, capsys):
    assert main(["identify", "--json", str(library / "example.wav")]) == 0
    expected = json.loads(capsys.readouterr().out)
    with open(library / "example.wav", "rb") as f:
        response = client.post("/api/v1/identify", files={"file": ("example.wav", f, "audio/wav")})
    assert response.status_code == 200
    assert response.json() == {**expected, "path": "example.wav"}
    library_answer = client.post("/api/v1/library/identify", params={"path": "example.wav"})
    assert library_answer.json() == response.json()
    assert list(client.app.state.uploads.iterdir()) == []


def test_model_and_health_describe_the_served_model(client, recognizer):
    model = client.get("/api/v1/model").json()
    assert model["labels"] == recognizer.labels and model["name"] == "timbrenet-default.onnx"
    assert model["thresholds"] == recognizer.thresholds and model["families"]["violin"] == "bowed_string"
    assert model["sources"]["organ"] == "electronic" and model["sources"]["violin"] == "acoustic"
    assert model["decision"]["window_seconds"] == 5.0
    assert client.get("/api/v1/health").json() | {"waiting": 0} == {
        "status": "ok", "version": model["version"], "workers": 1, "waiting": 0, "queue": 64, "library": True}


def test_a_job_reports_progress_then_its_result_and_csv(client, library):
    with open(library / "example.wav", "rb") as f:
        queued = client.post("/api/v1/identify", params={"wait": "false"}, files={"file": ("a/b\\Take 1.wav", f)})
    assert queued.status_code == 202 and queued.headers["location"] == f"/api/v1/jobs/{queued.json()['id']}"
    assert queued.json()["name"] == "Take 1.wav" and queued.json()["status"] in ("queued", "running", "done")
    for _ in range(200):
        job = client.get(f"/api/v1/jobs/{queued.json()['id']}").json()
        if job["status"] == "done":
            break
        time.sleep(0.05)
    assert job["progress"] == 1.0 and job["result"]["duration"] == 12.0 and job["result"]["path"] == "Take 1.wav"
    csv = client.get(f"/api/v1/jobs/{job['id']}/result.csv")
    assert csv.headers["content-disposition"] == 'attachment; filename="Take_1.csv"'
    rows = [line.split(",") for line in csv.text.splitlines()]
    assert rows[0] == ["kind", "label", "family", "score", "detected", "start", "end"]
    assert len([r for r in rows if r[0] == "instrument"]) == len(job["result"]["instruments"])
    assert len([r for r in rows if r[0] == "segment"]) == len(job["result"]["segments"])
    assert client.get("/api/v1/jobs/nope").json() == {"error": "no job nope"}


@pytest.mark.parametrize("name, content, status", [
    ("notes.wav", b"just some text\n" * 50, 415),
    ("picture.mp3", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, 415),
    ("empty.flac", b"", 415),
    ("big.wav", b"\0" * (1 << 20 + 1), 413),
])
def test_what_is_not_audio_or_too_big_is_refused(client, name, content, status):
    response = client.post("/api/v1/identify", files={"file": (name, content)})
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error"} and "\n" not in response.json()["error"]
    assert list(client.app.state.uploads.iterdir()) == []


def test_an_upload_without_content_length_is_cut_off_at_the_limit(client):
    def chunks():
        for _ in range(40):
            yield b"\0" * 65536

    response = client.post("/api/v1/identify", content=chunks(),
                           headers={"content-type": "multipart/form-data; boundary=x"})
    assert response.status_code == 413 and "limit of 1 MB" in response.json()["error"]
    assert client.post("/api/v1/identify", data={"other": "1"}).status_code == 422


@pytest.mark.parametrize("path", ["..", "../outside/secret.wav", "strings/../../outside/secret.wav",
                                  "/etc/passwd", "leak.wav", "leakdir/secret.wav", "leakdir", "a\x00b.wav",
                                  "..\\outside\\secret.wav"])
def test_every_escape_from_the_library_is_refused(client, path):
    for method, url in [("get", "/api/v1/library"), ("get", "/api/v1/library/audio"),
                        ("post", "/api/v1/library/identify")]:
        response = getattr(client, method)(url, params={"path": path})
        assert response.status_code == 403, (url, path, response.text)


def test_encoded_escapes_in_the_raw_url_are_refused(client):
    for raw in ["%2e%2e%2foutside%2fsecret.wav", "..%2Foutside%2Fsecret.wav", "%2Fetc%2Fpasswd"]:
        assert client.get(f"/api/v1/library/audio?path={raw}").status_code == 403, raw
    assert client.get("/api/v1/library/audio?path=%252e%252e%252foutside").status_code == 404  # a literal name


def test_the_library_lists_searches_and_serves_only_its_audio(client, library):
    top = client.get("/api/v1/library").json()
    assert top == {"path": "", "folders": ["strings"], "files": [
        {"path": "example.wav", "size": os.path.getsize(library / "example.wav"), "mtime": pytest.approx(
            os.path.getmtime(library / "example.wav"))},
        {"path": "inner.wav", "size": os.path.getsize(library / "example.wav"), "mtime": pytest.approx(
            os.path.getmtime(library / "example.wav"))}]}
    assert client.get("/api/v1/library", params={"path": "strings"}).json()["folders"] == ["strings/quartet"]
    found = client.get("/api/v1/library", params={"q": "cello take"}).json()
    assert [f["path"] for f in found["files"]] == ["strings/quartet/Cello Take 2.flac"] and not found["truncated"]
    audio = client.get("/api/v1/library/audio", params={"path": "strings/quartet/Cello Take 2.flac"})
    assert audio.status_code == 200 and audio.content == (library / "strings/quartet/Cello Take 2.flac").read_bytes()
    for missing in ["nope.wav", "notes.txt", ".hidden.wav", "strings"]:
        assert client.get("/api/v1/library/audio", params={"path": missing}).status_code == 404, missing


def test_without_a_library_its_routes_say_so(recognizer):
    with _client(recognizer) as client:
        response = client.get("/api/v1/library")
    assert response.status_code == 404 and "--library" in response.json()["error"]


class _Held:
    """A recognizer stand-in whose analyses wait for ``release``; ``fail`` makes them raise."""

    labels, thresholds, frame_thresholds, hop_seconds, meta = [], {}, {}, 0.04, {"path": "held.onnx"}

    def __init__(self, fail: Exception | None = None):
        self.release, self.started, self.fail = threading.Event(), threading.Semaphore(0), fail

    def identify(self, source, progress=None):
        self.started.release()
        self.release.wait(10)
        if self.fail:
            raise self.fail
        progress(1.0)
        return Recognizer().identify(source)


def test_a_full_queue_answers_503_with_retry_after_and_recovers(library):
    held = _Held()
    with _client(held, workers=1, queue=1) as client:
        def send():
            with open(library / "example.wav", "rb") as f:
                return client.post("/api/v1/identify", params={"wait": "false"}, files={"file": ("x.wav", f)})

        first = send()
        assert held.started.acquire(timeout=5)  # the worker holds the first: one place is left
        second, third = send(), send()
        assert (first.status_code, second.status_code, third.status_code) == (202, 202, 503)
        assert int(third.headers["retry-after"]) >= 1 and "busy" in third.json()["error"]
        assert len(list(client.app.state.uploads.iterdir())) == 2  # the refused upload is gone
        held.release.set()
        for job in (first, second):
            for _ in range(200):
                if client.get(f"/api/v1/jobs/{job.json()['id']}").json()["status"] == "done":
                    break
                time.sleep(0.05)
            else:
                raise AssertionError("the job did not finish")
        last = send()
        assert last.status_code == 202
        for _ in range(200):
            if client.get(f"/api/v1/jobs/{last.json()['id']}").json()["status"] == "done":
                break
            time.sleep(0.05)
        assert list(client.app.state.uploads.iterdir()) == []


def test_a_failed_or_slow_analysis_is_a_one_line_error_and_its_file_goes(library):
    held = _Held(fail=AudioError("x.wav: no audio frame could be decoded"))
    held.release.set()
    with _client(held) as client:
        with open(library / "example.wav", "rb") as f:
            response = client.post("/api/v1/identify", files={"file": ("x.wav", f)})
        assert response.status_code == 422 and response.json() == {"error": "x.wav: no audio frame could be decoded"}
        assert list(client.app.state.uploads.iterdir()) == []
    queue = JobQueue(Recognizer(), workers=1, capacity=2, timeout_seconds=0.0)
    try:
        long = library.parent / "long.wav"
        sf.write(long, np.zeros(22050 * 130, np.float32) + 0.01, 22050)
        job = queue.submit("long.wav", long, True, 130.0)
        assert job.done.wait(30)
        assert job.status == "failed" and job.error == "long.wav: the analysis took over 0 s"
        assert not long.exists()
    finally:
        queue.close()
    queue = JobQueue(Recognizer(), workers=0, capacity=2, timeout_seconds=60.0)  # no worker: 2 places fill
    try:
        queue.submit("a", library / "example.wav", False, 1.0)
        queue.submit("b", library / "example.wav", False, 1.0)
        with pytest.raises(QueueFull, match="2 recordings wait"):
            queue.submit("c", library / "example.wav", False, 1.0)
        assert (library / "example.wav").exists()  # a library file is never deleted
    finally:
        queue.close()


def test_cors_is_off_unless_asked_for(recognizer):
    origin = {"Origin": "https://example.org"}
    with _client(recognizer) as client:
        assert "access-control-allow-origin" not in client.get("/api/v1/health", headers=origin).headers
    with _client(recognizer, cors=("https://example.org",)) as client:
        assert client.get("/api/v1/health", headers=origin).headers["access-control-allow-origin"] == "https://example.org"


def test_the_page_and_docs_load_nothing_from_elsewhere(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="timeline"' in page.text
    docs = client.get("/docs").text
    assert client.get("/openapi.json").json()["paths"].keys() >= {"/api/v1/identify", "/api/v1/model", "/api/v1/health",
                                                                  "/api/v1/library", "/api/v1/library/identify"}
    for text in [page.text, docs, client.get("/static/app.js").text, client.get("/static/app.css").text]:
        assert "http://" not in text and "https://" not in text and "//cdn" not in text
    for asset in ["/static/app.js", "/static/app.css", "/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css"]:
        assert client.get(asset).status_code == 200, asset
