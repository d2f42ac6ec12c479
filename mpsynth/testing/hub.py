"""A local HTTP server speaking the Hugging Face Hub endpoints `huggingface_hub` uses to create a
repository and commit files to it, so the upload is tested with the real client: every file is
asked to come inline (the "regular" upload mode), and each commit is kept with its files."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Commit:
    repo: str
    message: str
    files: dict[str, bytes]
    token: str | None


@dataclass
class HubLog:
    requests: list[dict[str, Any]] = field(default_factory=list)
    repos: dict[str, dict[str, Any]] = field(default_factory=dict)
    commits: list[Commit] = field(default_factory=list)
    cards: list[str] = field(default_factory=list)  # README front matter sent for validation


class FakeHub:
    def __init__(self) -> None:
        self.log = HubLog()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, method: str, path: str, body: bytes, token: str | None) -> tuple[int, Any]:
        parts = path.split("?")[0].strip("/").split("/")
        if method == "POST" and parts[:3] == ["api", "repos", "create"]:
            request = json.loads(body)
            repo = f"{request.get('organization') or 'user'}/{request['name']}"
            self.log.repos[repo] = request
            return 200, {"url": f"{self.url}/datasets/{repo}", "name": repo}
        if method == "POST" and parts[:2] == ["api", "validate-yaml"]:
            errors = _card_errors(json.loads(body).get("content", ""))
            self.log.cards.append(json.loads(body).get("content", ""))
            return (400 if errors else 200), {"errors": errors, "warnings": []}
        if method == "POST" and len(parts) >= 6 and parts[4] == "preupload":
            files = json.loads(body).get("files", [])
            return 200, {
                "files": [
                    {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                    for f in files
                ]
            }
        if method == "POST" and len(parts) >= 6 and parts[4] == "commit":
            repo = "/".join(parts[2:4])
            header, files = {}, {}
            for line in body.decode().splitlines():
                item = json.loads(line)
                if item["key"] == "header":
                    header = item["value"]
                elif item["key"] == "file":
                    files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            self.log.commits.append(Commit(repo, header.get("summary", ""), files, token))
            oid = hashlib.sha1(body).hexdigest()
            return 200, {"commitUrl": f"{self.url}/datasets/{repo}/commit/{oid}", "commitOid": oid}
        return 404, {"error": f"the fake hub does not serve {method} {path}"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.headers.get("Content-Encoding") == "gzip":
                    import gzip

                    body = gzip.decompress(body)
                auth = self.headers.get("Authorization") or ""
                token = auth.removeprefix("Bearer ") or None
                hub.log.requests.append({"method": method, "path": self.path})
                status, answer = hub._answer(method, self.path, body, token)
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:
                self._serve("POST")

            def do_GET(self) -> None:
                self._serve("GET")

            def do_HEAD(self) -> None:
                self._serve("HEAD")

        return Handler


def _card_errors(content: str) -> list[dict[str, str]]:
    """What the Hub would refuse in a dataset card's YAML header (the checks its loader needs)."""
    import yaml

    if content.lstrip().startswith("---"):  # the card itself: its front matter
        content = content.lstrip()[3:].split("\n---", 1)[0]
    try:
        header = yaml.safe_load(content) or {}
    except yaml.YAMLError as error:
        return [{"message": f"the YAML header does not parse: {error}"}]
    if not isinstance(header, dict):
        return [{"message": "the YAML header is not a mapping"}]
    errors = []
    if not isinstance(header.get("license", ""), str):
        errors.append({"message": "license must be a string"})
    for config in header.get("configs", []):
        if (
            not isinstance(config, dict)
            or "config_name" not in config
            or "data_files" not in config
        ):
            errors.append({"message": f"configs: {config!r} needs config_name and data_files"})
    return errors
