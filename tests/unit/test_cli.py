"""netctl's pure parts: table layout and the completion script."""

import subprocess
import sys

from netd.cli import table


def test_netctl_bash_completion_is_valid_bash():
    script = subprocess.run([sys.executable, "-m", "netd.cli", "completion", "bash"],
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
    assert lines[0].startswith("CONTAINER_ID  IP_ADDRESS")
    assert lines[1].index("10.89.0.2/16") == lines[2].index("10.89.0.3/16") == lines[0].index("IP_ADDRESS")
    assert table([]).splitlines()[0].startswith("CONTAINER_ID")
