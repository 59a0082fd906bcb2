"""The rooms of netd/ import only down the map in shared/design/ARCHITECTURE.md."""

import ast
from pathlib import Path

import pytest

NETD = Path(__file__).resolve().parents[2] / "netd"
BASE = {"model", "errors", "validate", "ipam", "runner", "metrics", "events", "notify"}
ALLOWED = {
    "api": {"service", "v1", "__version__"} | BASE,
    "clients": {"v1"},
    "service": {"cluster", "dns", "kernel", "firewall", "store"} | BASE,
    "cluster": {"kernel", "model", "errors"},
    "dns": {"model", "errors", "runner"},
    "kernel": {"model", "errors", "notify"},
    "firewall": {"model", "errors", "runner", "notify"},
    "store": {"model", "errors"},
    **{module: BASE for module in BASE},
}


def imported_rooms(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "netd":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("netd."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("netd.")}
    return found


def room_of(path: Path) -> str:
    parts = path.relative_to(NETD).with_suffix("").parts
    return parts[0]


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_room_imports_only_down_the_map(room):
    files = list((NETD / room).rglob("*.py")) if (NETD / room).is_dir() else [NETD / f"{room}.py"]
    assert files and all(f.exists() for f in files)
    wrong = {f"{f.relative_to(NETD)} imports netd.{target}"
             for f in files for target in imported_rooms(f) - ALLOWED[room] - {room}}
    assert not wrong, sorted(wrong)


def test_every_room_is_on_the_map():
    wiring = {"__init__", "__main__", "daemon", "config", "v1"}
    rooms = {room_of(p) for p in NETD.rglob("*.py") if "__pycache__" not in p.parts}
    assert rooms - wiring == set(ALLOWED)
