from ipaddress import IPv4Address, IPv6Address, IPv6Network

import pytest

from netd import config
from netd.errors import InvalidArgument


def only_network(argv, uplink_mtu=1500):
    (net,) = config.networks(config.from_args(argv), uplink_mtu)
    return net


def test_defaults():
    cfg = config.from_args([])
    (net,) = config.networks(cfg, uplink_mtu=1400)
    assert (str(cfg.socket), str(cfg.state_dir), net.name, net.bridge) == \
        ("/run/netd/netd.sock", "/var/lib/netd", "default", "netd0")
    assert str(net.subnet) == "10.89.0.0/16" and net.gateway == IPv4Address("10.89.0.1")
    assert net.mtu == 1400 and cfg.log_format == "json" and net.icc and net.subnet6 is None


def test_console_logs_on_a_terminal():
    assert config.from_args([], isatty=True).log_format == "console"


def test_explicit_mtu_wins_over_uplink():
    assert only_network(["--mtu", "9000"]).mtu == 9000


def test_dual_stack_gateway_mirrors_the_ipv4_offset():
    net = only_network(["--subnet6", "fd89::/64"])
    assert net.gateway6 == IPv6Address("fd89::1")
    assert str(net.address6_for(IPv4Address("10.89.1.2"))) == "fd89::102/64"


@pytest.mark.parametrize("argv,field", [
    (["--subnet", "10.0.0.1/16"], "--subnet"),
    (["--subnet", "banana"], "--subnet"),
    (["--subnet", "10.0.0.0/31"], "--subnet"),
    (["--bridge", "x" * 16], "--bridge"),
    (["--mtu", "100"], "--mtu"),
    (["--subnet6", "fd89::/120"], "--subnet6"),
])
def test_bad_flags_name_the_flag(argv, field):
    with pytest.raises(InvalidArgument, match=field):
        config.from_args(argv)


FILE = """
socket = "/run/x/netd.sock"
firewall = "iptables"
firewall_check_interval = 1

[[networks]]
name = "default"
subnet = "10.89.0.0/16"

[[networks]]
name = "backend"
bridge = "br-back"
subnet = "10.90.0.0/24"
subnet6 = "fd90::/64"
masquerade6 = true
mtu = 1400
icc = false
multicast_snooping = true
"""


def write(tmp_path, text):
    path = tmp_path / "netd.toml"
    path.write_text(text)
    return str(path)


def test_config_file_with_two_networks_and_flags_over_it(tmp_path):
    cfg = config.from_args(["--config", write(tmp_path, FILE), "--firewall", "nftables", "--subnet", "10.88.0.0/16"])
    default, backend = config.networks(cfg, uplink_mtu=1500)
    assert (str(cfg.socket), cfg.firewall, cfg.firewall_check_interval) == ("/run/x/netd.sock", "nftables", 1.0)
    assert (default.bridge, str(default.subnet), default.mtu) == ("netd0", "10.88.0.0/16", 1500)
    assert (backend.bridge, backend.mtu, backend.icc, backend.masquerade6) == ("br-back", 1400, False, True)
    assert (default.multicast_snooping, backend.multicast_snooping) == (False, True)
    assert backend.subnet6 == IPv6Network("fd90::/64") and backend.gateway == IPv4Address("10.90.0.1")


@pytest.mark.parametrize("text,key", [
    ("sockett = 'x'", "sockett is not a setting"),
    ("firewall_check_interval = 'soon'", "firewall_check_interval must be float"),
    ("[[networks]]\nname = 'a'", r"networks\[0\].subnet is required"),
    ("[[networks]]\nname = 'A B'\nsubnet = '10.0.0.0/24'", r"networks\[0\].name"),
    ("[[networks]]\nname = 'a'\nsubnet = '10.0.0.0/24'\ncolour = 'red'", r"networks\[0\].colour"),
    ("[[networks]]\nname = 'a'\nsubnet = '10.0.0.0/24'\ngateway = '10.0.1.1'", r"networks\[0\].gateway"),
    ("[[networks]]\nname = 'a'\nsubnet = '10.0.0.0/24'\nicc = 'no'", r"networks\[0\].icc must be bool"),
    ("[[networks]]\nname = 'a'\nsubnet = '10.0.0.0/24'\n[[networks]]\nname = 'b'\nsubnet = '10.0.0.128/25'",
     r"networks\[1\].subnet: network b clashes with network a"),
    ("[[networks]]\nname = 'a'\nsubnet = '10.0.0.0/24'\n[[networks]]\nname = 'a'\nsubnet = '10.0.1.0/24'",
     r"networks\[1\].name"),
    ("networks = 'x'", "networks must be a non-empty list"),
    ("this is not toml", "not valid TOML"),
])
def test_bad_config_file_names_the_key(tmp_path, text, key):
    with pytest.raises(InvalidArgument, match=key):
        config.from_args(["--config", write(tmp_path, text)])


def test_network_flags_need_a_default_network_in_the_file(tmp_path):
    path = write(tmp_path, "[[networks]]\nname = 'a'\nsubnet = '10.0.0.0/24'\n")
    assert [n.name for n in config.from_args(["--config", path]).networks] == ["a"]
    with pytest.raises(InvalidArgument, match="--bridge applies to network 'default'"):
        config.from_args(["--config", path, "--bridge", "br9"])


def test_netd_refuses_to_start_on_a_bad_config_naming_the_key(tmp_path):
    import subprocess
    import sys

    path = write(tmp_path, "[[networks]]\nname = 'a'\nsubnet = '10.0.0.0/24'\nmtu = 'big'\n")
    proc = subprocess.run([sys.executable, "-m", "netd", "--config", path], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert f"netd: config {path}: networks[0].mtu must be int" in proc.stderr
