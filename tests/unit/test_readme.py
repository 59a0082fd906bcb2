"""The README is the front door: its API reference and commands must match the code."""

import re
from pathlib import Path

from netd.clients.netctl import parser
from netd.config import parser as netd_parser

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
PROTO = (ROOT / "proto/netd/v1/netd.proto").read_text()


def message_fields(name: str) -> list[str]:
    body = re.search(rf"message {name} {{(.*?)\n}}", PROTO, re.S).group(1)
    return re.findall(r"^\s+(?:repeated )?\w+ (\w+) = \d+;", body, re.M)


def test_every_rpc_is_documented():
    for rpc in re.findall(r"rpc (\w+)\(", PROTO):
        assert f"`{rpc}`" in README, rpc


def test_every_endpoint_field_is_documented():
    for field in message_fields("Endpoint"):
        assert f"`{field}`" in README, field


def test_request_fields_are_documented():
    for field in message_fields("AttachContainerRequest"):
        assert f"`{field}`" in README, field


def test_every_netctl_command_and_netd_flag_is_documented():
    sub = next(a for a in parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    for command in sub.choices:
        assert f"netctl {command}" in README or f"`{command}" in README, command
    for action in netd_parser()._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag != "--help":
                assert f"`{flag}" in README, flag


def test_the_two_front_door_commands_are_there():
    assert "make demo" in README and "make test" in README


def test_the_latest_bench_run_is_shown():
    assert (ROOT / "bench/results/latest.md").read_text().strip() in README
