"""The OCI runtime hook (`netctl oci-hook attach|detach`): runc and crun run
it with the container's state on stdin, at createRuntime (or prestart) and
poststop."""

from __future__ import annotations

import json
import sys

from netd.clients.publish import parse_publish
from netd.v1 import netd_pb2 as pb
from netd.v1 import netd_pb2_grpc as pb_grpc

# A container started while netd restarts waits for it instead of failing.
CALL = {"timeout": 30.0, "wait_for_ready": True}


def run(action: str, stub: pb_grpc.NetdStub) -> None:
    """runc/crun hand hooks the container state: id, pid, bundle, annotations.
    Annotations netd.ifname and netd.ip choose the interface name and a static
    address; netd.ports publishes ports (comma-separated, `--publish` syntax);
    netd.network picks the network; netd.name and netd.aliases (comma-separated)
    its DNS names. netd.resolv_conf names a file (one config.json bind-mounts
    at /etc/resolv.conf) that the attach fills with the network's DNS."""
    try:
        state = json.load(sys.stdin)
        container_id, annotations = state["id"], state.get("annotations") or {}
        ports = [parse_publish(p.strip()) for p in annotations.get("netd.ports", "").split(",") if p.strip()]
    except (ValueError, KeyError, TypeError) as e:
        raise SystemExit(f"netctl oci-hook: stdin is not an OCI state with an id and valid annotations: {e}") from None
    if action == "attach":
        reply = stub.AttachContainer(pb.AttachContainerRequest(
            container_id=container_id, pid=int(state.get("pid") or 0), owner="oci-hook",
            ifname=annotations.get("netd.ifname", ""), ip_address=annotations.get("netd.ip", ""), ports=ports,
            network=annotations.get("netd.network", ""), name=annotations.get("netd.name", ""),
            aliases=[a.strip() for a in annotations.get("netd.aliases", "").split(",") if a.strip()]), **CALL)
        if annotations.get("netd.resolv_conf") and reply.dns.nameservers:
            write_resolv_conf(annotations["netd.resolv_conf"], reply.dns)
    else:
        stub.DetachContainer(pb.DetachContainerRequest(container_id=container_id), **CALL)


def write_resolv_conf(path: str, dns: pb.DnsConfig) -> None:
    """Into the file as it is (truncated, not replaced): a bind mount of it
    shows the same inode, so the container sees what is written."""
    lines = [f"nameserver {server}" for server in dns.nameservers] + [f"search {' '.join(dns.search)}"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
