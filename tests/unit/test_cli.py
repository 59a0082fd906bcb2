"""netctl's pure parts: table layout and the completion script."""

import subprocess
import sys

import pytest

from netd.clients.netctl import table
from netd.clients.publish import parse_publish


def test_netctl_bash_completion_is_valid_bash():
    script = subprocess.run([sys.executable, "-m", "netd.clients.netctl", "completion", "bash"],
                            capture_output=True, text=True, check=True).stdout
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    for word in ("attach", "detach", "inspect", "check", "status", "--pid", "--netns", "--watch"):
        assert word in script
    words = subprocess.run(["bash", "-c", script + '\nCOMP_WORDS=(netctl at); COMP_CWORD=1; _netctl; echo "${COMPREPLY[@]}"'],
                           capture_output=True, text=True).stdout.split()
    assert words == ["attach"]


def test_table_aligns_columns_and_keeps_header_for_no_rows():
    rows = [{"container_id": "a", "ip_address": "10.89.0.2/16"}, {"container_id": "longer-id", "ip_address": "10.89.0.3/16"}]
    lines = table(rows).splitlines()
    assert lines[0].startswith("CONTAINER_ID  NETWORK  IP_ADDRESS")
    assert lines[1].index("10.89.0.2/16") == lines[2].index("10.89.0.3/16") == lines[0].index("IP_ADDRESS")
    assert table([]).splitlines()[0].startswith("CONTAINER_ID")


@pytest.mark.parametrize("text, expected", [
    ("8080:80", ("tcp", "", 8080, 80, 0)),
    ("127.0.0.1:8080:80/udp", ("udp", "127.0.0.1", 8080, 80, 0)),
    ("9000-9009:7000-7009", ("tcp", "", 9000, 7000, 10)),
    ("[2001:db8::2]:8443:443", ("tcp", "2001:db8::2", 8443, 443, 0)),
    ("[::]:53:53/udp", ("udp", "::", 53, 53, 0)),
])
def test_publish_takes_docker_syntax(text, expected):
    m = parse_publish(text)
    assert (m.protocol, m.host_ip, m.host_port, m.container_port, m.range) == expected


@pytest.mark.parametrize("text", ["80", "a:80", "9000-9001:80", "x-1:80", "8080:80-81"])
def test_publish_rejects_what_docker_rejects(text):
    with pytest.raises(ValueError):
        parse_publish(text)


def test_ls_shows_ports_like_docker_ps():
    row = {"container_id": "web", "ports": [{"protocol": "tcp", "host_ip": "", "host_port": 8080,
                                             "container_port": 80, "range": 0},
                                            {"protocol": "udp", "host_ip": "127.0.0.1", "host_port": 53,
                                             "container_port": 5353, "range": 2},
                                            {"protocol": "tcp", "host_ip": "2001:db8::2", "host_port": 8443,
                                             "container_port": 443, "range": 0}]}
    assert "0.0.0.0:8080->80/tcp, 127.0.0.1:53-54->5353-5354/udp, [2001:db8::2]:8443->443/tcp" in table([row])
