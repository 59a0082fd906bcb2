"""The README is the front door and docs/ the reference: both must match the code."""

import re
from pathlib import Path

from netd.clients.netctl import parser
from netd.config import parser as netd_parser

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
DOCS = {p.name: p.read_text() for p in (ROOT / "docs").glob("*.md")}
API = DOCS["api.md"]
PROTO = (ROOT / "proto/netd/v1/netd.proto").read_text()


def message_fields(name: str) -> list[str]:
    body = re.search(rf"message {name} {{(.*?)\n}}", PROTO, re.S).group(1)
    return re.findall(r"^\s+(?:repeated |map<\w+, \w+> )?\w+ (\w+) = \d+;", body, re.M)


def test_every_rpc_is_documented_in_the_readme_and_the_reference():
    for rpc in re.findall(r"rpc (\w+)\(", PROTO):
        assert f"`{rpc}`" in README, rpc
        assert f"`{rpc}`" in API, rpc


def test_every_endpoint_and_attach_field_is_in_the_reference():
    for field in message_fields("Endpoint") + message_fields("AttachContainerRequest"):
        assert f"`{field}`" in API, field


def test_every_netctl_command_and_netd_flag_is_documented():
    sub = next(a for a in parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    for command in sub.choices:
        assert f"netctl {command}" in API, command
    for action in netd_parser()._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag != "--help":
                assert f"`{flag}" in README, flag


def test_the_front_door_is_short_and_shows_the_two_commands():
    assert "make demo" in README and "make test" in README
    assert len(README.splitlines()) <= 250


def test_every_link_to_docs_resolves():
    for target in re.findall(r"\]\((docs/[\w.-]+\.md)", README):
        assert (ROOT / target).exists(), target
    for name, text in DOCS.items():
        for target in re.findall(r"\]\(([\w.-]+\.md)", text):
            assert (ROOT / "docs" / target).exists(), f"{name} → {target}"


def test_the_latest_bench_run_is_shown():
    assert (ROOT / "bench/results/latest.md").read_text().strip() in DOCS["performance.md"]
