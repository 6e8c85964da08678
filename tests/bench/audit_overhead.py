"""What the audit log costs a write: the same requests with AuditMiddleware and with it left out.

    .venv/bin/python tests/bench/audit_overhead.py [--requests 300] [--rounds 3]

In-process (fastapi TestClient, SQLite in a temp dir, no worker): per round, each app answers `--requests`
PATCH /api/v1/hosts/{id} (a real write: a label changes) in turn; the report is the median latency of each and
their ratio per round, and the median of the rounds' ratios (a shared machine: compare ratios, not times).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import REPO, pct
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi.testclient import TestClient
from smcp_api import main as api_main
from smcp_api.core.config import Settings


class Passthrough:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def start(root: Path, audited: bool) -> tuple[TestClient, dict[str, str], str]:
    original = api_main.AuditMiddleware
    if not audited:
        api_main.AuditMiddleware = Passthrough  # type: ignore[assignment,misc]
    try:
        app = api_main.create_app(
            # no worker: no job users are made; the jobs directory's parents must be searchable (isolation)
            Settings(data_dir=root / "data", jobs_dir=root / "jobs", ansible_config=REPO / "ansible.cfg", workers=0),
            start_worker=False,
        )
    finally:
        api_main.AuditMiddleware = original  # type: ignore[misc]
    client = TestClient(app)
    client.__enter__()
    headers = {"Authorization": f"Bearer {(root / 'data' / 'admin.token').read_text().strip()}"}
    key = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    cred = client.post("/api/v1/credentials", json={"name": "k", "private_key": key.decode()}, headers=headers)
    host = client.post(
        "/api/v1/hosts",
        json={"name": "h1", "address": "192.0.2.10", "credential_id": cred.json()["id"]},
        headers=headers,
    )
    assert host.status_code == 201, host.text
    return client, headers, host.json()["id"]


def run(client: TestClient, headers: dict[str, str], host_id: str, n: int) -> list[float]:
    times = []
    for i in range(n):
        began = time.perf_counter()
        answer = client.patch(f"/api/v1/hosts/{host_id}", json={"labels": {"n": str(i)}}, headers=headers)
        times.append(time.perf_counter() - began)
        assert answer.status_code == 200, answer.text
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="smcp-audit-bench-") as tmp:
        Path(tmp).chmod(0o711)
        for name in ("plain", "audited"):
            (Path(tmp) / name).mkdir(mode=0o711)
        apps = {name: start(Path(tmp) / name, name == "audited") for name in ("plain", "audited")}
        ratios = []
        for r in range(1, args.rounds + 1):
            med = {}
            for name, (client, headers, host_id) in apps.items():
                times = run(client, headers, host_id, args.requests)
                med[name] = statistics.median(times)
                print(f"round {r} {name:8} median {med[name] * 1000:.2f} ms  p95 {pct(times, 95) * 1000:.2f} ms")
            ratios.append(med["audited"] / med["plain"])
            print(f"round {r} ratio audited/plain {ratios[-1]:.2f}")
        print(f"median ratio audited/plain over {args.rounds} rounds: {statistics.median(ratios):.2f}")
        for client, _, _ in apps.values():
            client.__exit__(None, None, None)


if __name__ == "__main__":
    main()
