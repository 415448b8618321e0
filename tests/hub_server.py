"""A local, in-memory stand-in for the Hugging Face Hub, enough for the real ``huggingface_hub`` client.

Serves what ``create_repo``, ``upload_folder``, ``Trainer.push_to_hub`` and ``from_pretrained`` call (the Hub
HTTP API as ``huggingface_hub`` uses it): repo creation (409 with ``url`` when it exists), YAML validation, preupload (every file
``regular``, so contents travel inline as base64 and no LFS/xet is involved), NDJSON commits, revision info and
``HEAD``/``GET`` on ``resolve``, plus the tree listing ``snapshot_download`` asks for. Every request is recorded (method, path, headers, body) so tests can check what was
sent, and ``fail_next_commits(n)`` makes the next ``n`` commits answer HTTP 500.

Use::

    with LocalHub() as hub:
        patch_hub_endpoint(monkeypatch, hub.url)
        ...
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

_REPO = r"(?P<repo>[^/]+(?:/[^/]+)?)"
_API = re.compile(rf"^/api/models/{_REPO}/(?P<op>preupload|commit|revision|branch)/(?P<rev>[^/]+)$")
_TREE = re.compile(rf"^/api/models/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?$")
_INFO = re.compile(rf"^/api/models/{_REPO}$")
_RESOLVE = re.compile(rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Repo:
    files: dict[str, bytes] = field(default_factory=dict)
    commits: list[str] = field(default_factory=list)
    private: bool | None = None
    branches: list[str] = field(default_factory=lambda: ["main"])

    @property
    def head(self) -> str:
        return self.commits[-1] if self.commits else "0" * 40


class LocalHub:
    """The server: ``url`` once started, ``repos`` (id -> [`Repo`]) and ``requests`` (a list of [`RecordedRequest`])."""

    def __init__(self):
        self.repos: dict[str, Repo] = {}
        self.requests: list[RecordedRequest] = []
        self.lock = threading.Lock()
        self._fail_commits = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ control
    def start(self) -> LocalHub:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> LocalHub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def fail_next_commits(self, n: int) -> None:
        """The next ``n`` commit requests answer HTTP 500 and change nothing."""
        with self.lock:
            self._fail_commits = n

    def requests_to(self, fragment: str) -> list[RecordedRequest]:
        return [r for r in self.requests if fragment in r.path]


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _make_handler(hub: LocalHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        def _body(self) -> bytes:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
            path = urlsplit(self.path).path
            with hub.lock:
                hub.requests.append(RecordedRequest(self.command, path, dict(self.headers.items()), body))
            return body

        def _send(self, status: int, payload=None, headers: dict[str, str] | None = None, raw: bytes | None = None):
            data = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
            self.send_response(status)
            if raw is None:
                self.send_header("Content-Type", "application/json")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _not_found(self, code: str, message: str) -> None:
            self._send(404, {"error": message}, {"X-Error-Code": code, "X-Error-Message": message})

        # ---------------------------------------------------------------- POST
        def do_POST(self) -> None:
            body = self._body()
            path = urlsplit(self.path).path
            if path == "/api/repos/create":
                req = json.loads(body or b"{}")
                repo_id = f"{req['organization']}/{req['name']}" if req.get("organization") else req["name"]
                url = f"{hub.url}/{repo_id}"
                with hub.lock:
                    if repo_id in hub.repos:
                        return self._send(409, {"error": "You already created this model repo", "url": url})
                    private = req.get("private") or req.get("visibility") == "private"  # older / newer clients
                    hub.repos[repo_id] = Repo(private=bool(private))
                return self._send(200, {"url": url, "name": repo_id})
            if path == "/api/validate-yaml":
                return self._send(200, {"errors": [], "warnings": []})
            m = _API.match(path)
            if m is None or m["repo"] not in hub.repos:
                return self._not_found("RepoNotFound", f"Repository not found: {path}")
            repo = hub.repos[m["repo"]]
            if m["op"] == "branch":  # branches are recorded but share the files of main
                with hub.lock:
                    if m["rev"] in repo.branches:
                        return self._send(409, {"error": "Reference already exists"})
                    repo.branches.append(m["rev"])
                return self._send(200, {})
            if m["op"] == "preupload":
                files = json.loads(body)["files"]
                answer = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]
                for a in answer:
                    a["oid"] = _git_sha1(repo.files[a["path"]]) if a["path"] in repo.files else None
                return self._send(200, {"files": answer, "commitOid": repo.head})
            if m["op"] == "commit":
                with hub.lock:
                    if hub._fail_commits > 0:
                        hub._fail_commits -= 1
                        return self._send(500, {"error": "Internal Error (simulated by LocalHub)"})
                    lines = [json.loads(line) for line in body.splitlines() if line.strip()]
                    for item in lines:
                        key, value = item["key"], item["value"]
                        if key == "file":
                            repo.files[value["path"]] = base64.b64decode(value["content"])
                        elif key == "deletedFile":
                            repo.files.pop(value["path"], None)
                        elif key == "deletedFolder":
                            prefix = value["path"].rstrip("/") + "/"
                            for p in [p for p in repo.files if p.startswith(prefix)]:
                                del repo.files[p]
                        elif key != "header":
                            return self._send(400, {"error": f"LocalHub does not support {key!r} entries"})
                    sha = hashlib.sha1(repr((repo.head, sorted(repo.files.items()))).encode()).hexdigest()
                    repo.commits.append(sha)
                return self._send(200, {"commitUrl": f"{hub.url}/{m['repo']}/commit/{sha}", "commitOid": sha})
            return self._not_found("EntryNotFound", f"Unknown endpoint: {path}")

        # ---------------------------------------------------------------- GET / HEAD
        def do_GET(self) -> None:
            self._body()
            path = urlsplit(self.path).path
            m = _API.match(path) or _INFO.match(path)
            if m is not None and (m.groupdict().get("op") in (None, "revision")):
                repo = hub.repos.get(m["repo"])
                if repo is None:
                    return self._not_found("RepoNotFound", f"Repository not found: {m['repo']}")
                siblings = [{"rfilename": p, "size": len(d)} for p, d in sorted(repo.files.items())]
                info = {"id": m["repo"], "modelId": m["repo"], "sha": repo.head, "siblings": siblings}
                return self._send(200, {**info, "private": bool(repo.private), "tags": [], "downloads": 0})
            m = _TREE.match(path)
            if m is not None and m["repo"] in hub.repos:
                prefix = unquote(m["path"] or "").strip("/")
                files = hub.repos[m["repo"]].files
                entries = [
                    {"type": "file", "path": p, "size": len(d), "oid": _git_sha1(d)}
                    for p, d in sorted(files.items())
                    if not prefix or p.startswith(prefix + "/")
                ]
                return self._send(200, entries)  # flat listing, as with recursive=true
            m = _RESOLVE.match(path)
            if m is None:
                return self._not_found("EntryNotFound", f"Unknown endpoint: {path}")
            repo = hub.repos.get(m["repo"])
            if repo is None:
                return self._not_found("RepoNotFound", f"Repository not found: {m['repo']}")
            data = repo.files.get(unquote(m["path"]))
            if data is None:
                return self._not_found("EntryNotFound", f"Entry not found: {m['path']}")
            headers = {"X-Repo-Commit": repo.head, "ETag": f'"{_git_sha1(data)}"'}
            self._send(200, headers={**headers, "Content-Type": "application/octet-stream"}, raw=data)

        do_HEAD = do_GET

    return Handler


def patch_hub_endpoint(monkeypatch, url: str) -> None:
    """Points ``huggingface_hub`` and ``transformers`` at ``url`` for one test, whatever the environment says.

    ``HF_ENDPOINT`` is read when huggingface_hub is imported, so the derived constants are patched directly;
    offline mode (``HF_HUB_OFFLINE``) is turned off for the test, telemetry too, and xet uploads are disabled so
    that commits go through the plain ``create_commit`` path (which validates the README's YAML and does not retry
    failed commits; the xet path retries a 500 five times with backoff).
    """
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", url)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    # With telemetry on, building request headers fetches {constants.ENDPOINT}/api/agent-harnesses once a day.
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    try:
        import transformers.utils.hub as transformers_hub

        monkeypatch.setattr(transformers_hub, "_hf_api", None)  # rebuilt on first use with the patched endpoint
    except (ImportError, AttributeError):  # pragma: no cover - other transformers versions
        pass
