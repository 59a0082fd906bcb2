"""The host's /proc/sys/net knobs netd depends on: forwarding, route_localnet
on its bridges, accept_ra on the uplink. Read to find what someone changed,
written to put it back."""

from __future__ import annotations

from netd.errors import KernelError

IPV4_FORWARDING = "ipv4/ip_forward"
IPV6_FORWARDING = "ipv6/conf/all/forwarding"


def route_localnet(bridge: str) -> str:
    return f"ipv4/conf/{bridge}/route_localnet"


def accept_ra(interface: str) -> str:
    return f"ipv6/conf/{interface}/accept_ra"


def read(knob: str) -> str:
    """The knob's value; "" when it does not exist (no IPv6, no such interface)."""
    try:
        with open(f"/proc/sys/net/{knob}") as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""
    except OSError as e:
        raise KernelError(f"failed to read net.{knob.replace('/', '.')}: {e.strerror}") from e


def write(knob: str, value: str) -> None:
    try:
        with open(f"/proc/sys/net/{knob}", "w") as f:
            f.write(value)
    except OSError as e:
        raise KernelError(f"failed to set net.{knob.replace('/', '.')} to {value}: {e.strerror}") from e


def ensure(knob: str, value: str) -> str | None:
    """Set the knob to `value` unless it is; the value found when it was not."""
    found = read(knob)
    if found == value:
        return None
    write(knob, value)
    return found


def name(knob: str) -> str:
    """As `sysctl` shows it: net.ipv4.ip_forward."""
    return "net." + knob.replace("/", ".")
