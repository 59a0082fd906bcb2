"""The API is usable from another language with nothing but the .proto: a Node.js client."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "node"
pytestmark = pytest.mark.skipif(not (shutil.which("node") and shutil.which("npm")), reason="needs node and npm")


@pytest.fixture(scope="module")
def node_modules():
    if not (EXAMPLE / "node_modules" / "@grpc" / "grpc-js").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=EXAMPLE, check=True, timeout=300)


def test_node_client_attaches_lists_and_detaches(node_modules, netd, client):
    c = netd.container()
    result = subprocess.run(["node", str(EXAMPLE / "client.js"), str(netd.socket), "node1", str(c.pid)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    steps = [json.loads(line) for line in result.stdout.splitlines()]
    assert steps[0]["endpoint"]["ip_address"] == "10.89.0.2/16" and steps[0]["endpoint"]["pid"] == c.pid
    assert [e["container_id"] for e in steps[1]["endpoints"]] == ["node1"]
    assert steps[2] == {"step": "detach", "detached": True}
    assert client.list() == []


def test_node_client_reports_status_codes(node_modules, netd):
    result = subprocess.run(["node", str(EXAMPLE / "client.js"), str(netd.socket), "bad/id", "1"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "INVALID_ARGUMENT" in result.stderr and "container_id" in result.stderr
