from ipaddress import IPv4Address

import pytest

from netd import config
from netd.errors import InvalidArgument


def test_defaults():
    cfg = config.from_args([])
    net = config.network(cfg, uplink_mtu=1400)
    assert (str(cfg.socket), str(cfg.state_dir), net.bridge) == ("/run/netd/netd.sock", "/var/lib/netd", "netd0")
    assert str(net.subnet) == "10.89.0.0/16" and net.gateway == IPv4Address("10.89.0.1")
    assert net.mtu == 1400 and cfg.log_format == "json"


def test_console_logs_on_a_terminal():
    assert config.from_args([], isatty=True).log_format == "console"


def test_explicit_mtu_wins_over_uplink():
    assert config.network(config.from_args(["--mtu", "9000"]), uplink_mtu=1500).mtu == 9000


@pytest.mark.parametrize("argv,field", [
    (["--subnet", "10.0.0.1/16"], "--subnet"),
    (["--subnet", "banana"], "--subnet"),
    (["--subnet", "10.0.0.0/31"], "--subnet"),
    (["--bridge", "x" * 16], "--bridge"),
    (["--mtu", "100"], "--mtu"),
])
def test_bad_flags_name_the_flag(argv, field):
    with pytest.raises(InvalidArgument, match=field):
        config.from_args(argv)
