"""The daemon as operators and systemd see it: start-up checks, socket, netctl, signals."""

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

import pytest

from tests.sandbox import wait_for


def test_socket_is_0660_root_and_directory_not_world_writable(netd):
    st = os.stat(netd.socket)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660 and st.st_uid == 0
    assert not os.stat(netd.socket.parent).st_mode & stat.S_IWOTH


CONNECT = "import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1]); print('connected')"


def connect_as(group, path):
    """Connect to netd's socket as user nobody with only the given group."""
    if not os.path.exists("/usr/bin/python3"):
        pytest.skip("needs /usr/bin/python3 (an interpreter user nobody may run)")
    return subprocess.run(
        ["setpriv", "--reuid=nobody", f"--regid={group}", "--clear-groups", "/usr/bin/python3", "-c", CONNECT, path],
        capture_output=True, text=True,
    )


def test_non_root_user_cannot_connect_without_the_socket_group(sandbox):
    os.chmod(sandbox.workdir, 0o755)  # only the socket's own mode may stand in the way
    sandbox.start_netd("--socket-group", "nogroup")
    assert os.stat(sandbox.socket).st_gid == 65534
    refused = connect_as("daemon", str(sandbox.socket))
    assert refused.returncode != 0 and "PermissionError" in refused.stderr
    allowed = connect_as("nogroup", str(sandbox.socket))
    assert allowed.returncode == 0 and "connected" in allowed.stdout, allowed.stderr


def test_each_mutating_call_logs_who_attached_the_endpoint(netd):
    c = netd.container()
    netd.netctl("attach", "c1", "--pid", str(c.pid))
    netd.netctl("detach", "c1")
    events = {e["event"]: e for e in netd.netd_log()}
    assert events["attached"]["owner"] == events["detached"]["owner"] == "netctl"
    assert events["attached"]["container_id"] == events["detached"]["container_id"] == "c1"


def test_refuses_a_subnet_that_overlaps_the_uplink(sandbox):
    proc = sandbox.start_netd("--subnet", "198.51.100.0/24", wait=False)
    assert proc.wait(20) == 1
    events = sandbox.netd_log()
    assert events[-1]["event"] == "start_failed" and "overlaps" in events[-1]["error"]
    assert "uplink0" in events[-1]["error"]
    assert "netd0" not in {l["ifname"] for l in sandbox.host_json("link", "show")}


def test_second_netd_on_the_same_state_dir_is_refused(netd):
    second = subprocess.run(
        ["ip", "netns", "exec", netd.host, sys.executable, "-m", "netd", "--socket", str(netd.workdir / "b.sock"),
         "--state-dir", str(netd.state_dir), "--log-format", "json"],
        capture_output=True, text=True, timeout=30,
    )
    assert second.returncode == 1 and "another netd is running" in second.stderr
    assert netd.netctl("status").returncode == 0


def test_sigterm_exits_zero_and_leaves_endpoints(netd):
    c = netd.container()
    netd.netctl("attach", "c1", "--pid", str(c.pid))
    assert netd.stop_netd() == 0
    assert "10.89.0.2/16" in c.run("ip", "-br", "addr", "show", "eth0").stdout
    assert netd.netd_log()[-1]["event"] == "stopped"


def test_netctl_table_and_json(netd):
    c1, c2 = netd.container(), netd.container()
    out = netd.netctl("attach", "c1", "--pid", str(c1.pid), "--ip", "10.89.0.50").stdout
    assert out.splitlines()[0].split()[:5] == ["CONTAINER_ID", "NETWORK", "IP_ADDRESS", "NAME", "IFNAME"]
    attached = json.loads(netd.netctl("attach", "c2", "--pid", str(c2.pid), "-o", "json").stdout)
    assert attached["container_id"] == "c2" and attached["ip_address"] == "10.89.0.51/16"
    assert attached["pid"] == c2.pid
    table = netd.netctl("ls").stdout.splitlines()
    assert len(table) == 3 and table[1].split()[:3] == ["c1", "default", "10.89.0.50/16"]
    header = table[0]
    assert table[2].index("10.89.0.51/16") == header.index("IP_ADDRESS")  # aligned columns
    listed = json.loads(netd.netctl("ls", "-o", "json").stdout)
    assert [e["container_id"] for e in listed] == ["c1", "c2"]
    assert set(listed[0]) >= {"container_id", "network", "ifname", "host_ifname", "ip_address", "gateway",
                              "mac_address", "pid", "netns_path", "created_at"}
    assert netd.netctl("detach", "c1").stdout.strip() == "c1: detached"
    assert json.loads(netd.netctl("detach", "c1", "-o", "json").stdout) == {"detached": False}


def test_netctl_status_and_unreachable(netd):
    c = netd.container()
    netd.netctl("attach", "c1", "--pid", str(c.pid))
    assert netd.netctl("status").stdout.startswith("SERVING")
    status = json.loads(netd.netctl("status", "-o", "json").stdout)
    assert status["status"] == "SERVING" and status["firewall_driver"] == "nftables"
    assert status["networks"] == [{
        "name": "default", "bridge": "netd0", "subnet": "10.89.0.0/16", "gateway": "10.89.0.1", "mtu": 1500,
        "endpoints": 1, "addresses_used": 1, "addresses_free": 65532, "icc": True, "masquerade": True,
        "subnet6": "", "gateway6": "", "masquerade6": False, "source": "config", "internal": False, "dns": False,
        "labels": {},
    }]
    netd.stop_netd()
    result = netd.netctl("status", check=False)
    assert result.returncode == 3 and "not reachable" in result.stderr


def test_netctl_reads_netd_socket_from_the_environment(netd):
    env = dict(os.environ, NETD_SOCKET=str(netd.socket))
    result = subprocess.run([sys.executable, "-m", "netd.clients.netctl", "ls", "-o", "json"], env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0 and json.loads(result.stdout) == []


def test_sd_notify_ready_when_serving(sandbox):
    notify_path = str(sandbox.workdir / "notify.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(notify_path)
    listener.settimeout(20)
    os.environ.update(NOTIFY_SOCKET=notify_path, WATCHDOG_USEC="200000")
    try:
        sandbox.start_netd(wait=False)
        messages = [listener.recv(4096).decode() for _ in range(3)]
    finally:
        del os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"]
        listener.close()
    assert messages[0].startswith("READY=1") and "STATUS=serving 0 endpoints" in messages[0]
    assert messages[1].startswith("WATCHDOG=1") and messages[2].startswith("WATCHDOG=1")
    assert sandbox.netctl("status").returncode == 0


SCRAPE = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())"


def test_prometheus_metrics(sandbox):
    sandbox.start_netd("--metrics-address", "127.0.0.1:9369")
    c = sandbox.container()
    sandbox.netctl("attach", "c1", "--pid", str(c.pid))
    sandbox.netctl("attach", "c1", "--pid", str(c.pid), check=False)  # ALREADY_EXISTS
    sandbox.in_host("nft", "flush", "ruleset")
    wait_for(lambda: any(e["event"] == "firewall_repaired" for e in sandbox.netd_log()), "repair", timeout=5)
    text = sandbox.in_host(sys.executable, "-c", SCRAPE, "http://127.0.0.1:9369/metrics").stdout
    samples = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
               for line in text.splitlines() if line and not line.startswith("#")}
    assert samples['netd_calls_total{code="OK",method="AttachContainer"}'] == 1
    assert samples['netd_calls_total{code="ALREADY_EXISTS",method="AttachContainer"}'] == 1
    assert samples['netd_call_duration_seconds_count{method="AttachContainer"}'] == 2
    assert samples['netd_endpoints{network="default"}'] == 1
    assert samples['netd_pool_addresses{network="default",state="used"}'] == 1
    assert samples['netd_pool_addresses{network="default",state="free"}'] == 65532
    assert samples['netd_repairs_total{kind="firewall"}'] == 1


def test_metrics_are_off_by_default(netd):
    result = netd.in_host(sys.executable, "-c", SCRAPE, "http://127.0.0.1:9369/metrics", check=False)
    assert result.returncode != 0


def test_netctl_inspect_shows_the_kernel_view(netd):
    c = netd.container()
    netd.netctl("attach", "c1", "--pid", str(c.pid))
    c.run("ping", "-c2", "-W2", "10.89.0.1")
    data = json.loads(netd.netctl("inspect", "c1", "-o", "json").stdout)
    assert data["endpoint"]["container_id"] == "c1"
    host, inner = data["host_link"], data["container_link"]
    assert host["up"] and host["carrier"] and inner["up"] and inner["name"] == "eth0"
    assert inner["mac_address"] == data["endpoint"]["mac_address"]
    assert int(inner["tx_packets"]) >= 2 and int(host["rx_packets"]) >= 2
    assert data["container_addresses"] == ["10.89.0.2/16"]
    assert "0.0.0.0/0 via 10.89.0.1" in data["container_routes"]
    text = netd.netctl("inspect", "c1").stdout
    assert "host_link: vnd" in text and "container_link: eth0 UP carrier" in text


def test_netctl_check_finds_drift(netd):
    c = netd.container()
    netd.netctl("attach", "c1", "--pid", str(c.pid))
    assert netd.netctl("check", "c1").stdout.strip() == "ok"
    c.run("ip", "route", "del", "default")
    result = netd.netctl("check", "c1", check=False)
    assert result.returncode == 1 and "no default route via 10.89.0.1" in result.stdout
    missing = netd.netctl("check", "nope", check=False)
    assert missing.returncode == 1 and missing.stderr.startswith("netctl: NOT_FOUND: container nope")


def test_netctl_ls_watch_redraws_until_interrupted(netd):
    proc = subprocess.Popen([sys.executable, "-m", "netd.clients.netctl", "--socket", str(netd.socket), "ls", "--watch", "0.2"],
                            stdout=subprocess.PIPE, text=True)
    tables = 0
    while tables < 2:
        line = proc.stdout.readline()
        assert line, f"netctl exited with {proc.wait()} before drawing twice"
        tables += line.startswith("CONTAINER_ID")
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=10)
    assert proc.returncode == 0



def test_a_cni_call_made_while_netd_restarts_waits_for_it(sandbox):
    """Between two netds there is no socket to connect to: netd-cni waits
    for the next one instead of failing the container's start."""
    from tests.integration.test_cni import cni

    sandbox.start_netd()
    assert sandbox.stop_netd() == 0
    path, answer = sandbox.named_netns_add("restart"), {}
    call = threading.Thread(target=lambda: answer.update(result=cni(sandbox, "ADD", "during-restart", path)))
    call.start()
    time.sleep(1.0)
    assert call.is_alive() and not answer  # neither refused nor failed: waiting
    sandbox.start_netd()
    call.join(30)
    code, result = answer["result"]
    assert code == 0 and result["ips"][0]["address"].startswith("10.89."), result
