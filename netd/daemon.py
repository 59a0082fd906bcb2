"""Wiring: flags, logging, state dir, socket, background loops, signals, sd_notify."""

from __future__ import annotations

import fcntl
import gc
import grp
import logging
import os
import resource
import secrets
import signal
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import structlog

from netd import config, events, firewall, metrics
from netd.api.server import Server
from netd.dns import Dns, host_resolvers
from netd.errors import FailedPrecondition, NetdError
from netd.firewall.hostports import HostPorts
from netd.kernel import links, netns, sysctl, watch
from netd.service import Problem, Service
from netd.store.sqlite import SqliteStore

log = structlog.get_logger("netd")
SHUTDOWN_GRACE_SECONDS = 15


def configure_logging(fmt: str) -> None:
    processors: list = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if fmt == "json":
        processors += [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()]
    else:
        processors += [structlog.dev.ConsoleRenderer(colors=False)]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def sd_notify(state: str) -> None:
    """Tell systemd (Type=notify) how we are; a no-op outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(address)
            s.sendall(state.encode())
    except OSError as e:
        log.warning("sd_notify_failed", error=str(e))


def watchdog_interval() -> float | None:
    """Half of systemd's WatchdogSec, if systemd asked this process for pings."""
    usec, pid = os.environ.get("WATCHDOG_USEC"), os.environ.get("WATCHDOG_PID")
    if not usec or (pid and int(pid) != os.getpid()):
        return None
    return int(usec) / 2_000_000


def lock_state_dir(state_dir: Path) -> int:
    """One netd per state dir: a second one would hand out the same addresses."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(state_dir / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise FailedPrecondition(f"another netd is running with state dir {state_dir}") from None
    return fd


def instance_of(state_dir: Path) -> tuple[str, bool]:
    """This netd's instance id, kept in the state dir: the mark on all it
    creates (links' alias, firewall table and chain names), so that it
    touches nothing another netd, or anyone else, made. And whether the
    state dir was a netd's from before instances, whose objects carry no
    mark yet: then they are taken over."""
    path = state_dir / "instance"
    try:
        return path.read_text().strip(), False
    except FileNotFoundError:
        pass
    instance = secrets.token_hex(4)
    taking_over = (state_dir / "netd.db").exists()
    path.write_text(instance + "\n")
    return instance, taking_over


def check_socket_dir(socket_path: Path) -> None:
    directory = socket_path.parent
    directory.mkdir(parents=True, exist_ok=True, mode=0o755)
    mode = directory.stat().st_mode
    if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
        raise FailedPrecondition(f"socket directory {directory} is world-writable: others could replace the socket")


def set_socket_group(socket_path: Path, group: str) -> None:
    if not group:
        return
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise FailedPrecondition(f"--socket-group {group}: no such group") from None
    os.chown(socket_path, 0, gid)


def in_background(name: str, loop: Callable[[], object], stop: threading.Event, pause: float) -> None:
    """Run loop() until stop; a failure is logged and the loop starts again."""

    def target() -> None:
        while not stop.is_set():
            try:
                loop()
            except Exception as e:  # noqa: BLE001 - a background loop must survive
                log.error("background_failed", loop=name, error=str(e))
            stop.wait(pause)

    threading.Thread(target=target, name=name, daemon=True).start()


def heal(service: Service, set_health: Callable[[list[Problem]], None]) -> None:
    """One round of self-repair; health says what is still broken."""
    repairs, problems = service.heal()
    for kind, count in repairs.items():
        metrics.count_repairs(kind, count)
    set_health(problems)


def verify(service: Service) -> None:
    """Garbage collection and a look inside every container, once, after start-up."""
    started = time.monotonic()
    try:
        repairs = service.verify_containers()
    except NetdError as e:
        log.error("verify_failed", error=str(e))
        return
    metrics.count_repairs("reconcile", repairs)
    log.info("verified", endpoints=len(service.list()), repairs=repairs,
             ms=round((time.monotonic() - started) * 1000))


def start_background_loops(service: Service, set_health: Callable[[list[Problem]], None], cfg: config.DaemonConfig,
                           stop: threading.Event) -> None:
    threading.Thread(target=lambda: verify(service), name="verify-containers", daemon=True).start()
    in_background("healer", lambda: heal(service, set_health), stop, cfg.firewall_check_interval)
    in_background("link-watcher", lambda: watch.watch_links(
        lambda name, index: metrics.count_repairs("container_gone", service.forget_if_gone(name, index)),
        service.link_went_down,
        lambda: metrics.count_repairs("container_gone", service.sweep()), stop), stop, 1.0)


def keep_systemd_posted(service: Service, stop: threading.Event) -> None:
    """Until stopped: STATUS lines, and watchdog pings while calls can get through allocation."""
    watchdog = watchdog_interval()
    while not stop.wait(watchdog or 10.0):
        if service.responsive(timeout=5.0):
            status = f"STATUS=serving {len(service.list())} endpoints"
            sd_notify(f"WATCHDOG=1\n{status}" if watchdog else status)
        else:
            log.error("unresponsive", reason="allocation lock held for more than 5 s")


def raise_fd_limit() -> None:
    """Each held host port is a socket (a published range of 1000 ports is
    1000): allow as many open files as the hard limit does."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def serve(cfg: config.DaemonConfig) -> int:
    started = time.monotonic()
    raise_fd_limit()
    lock_fd = lock_state_dir(cfg.state_dir)
    instance, taking_over = instance_of(cfg.state_dir)
    check_socket_dir(cfg.socket)
    store = SqliteStore(cfg.state_dir / "netd.db")
    uplink_mtu, agent = links.uplink_mtu(), None
    if cfg.cluster:
        from netd import cluster  # etcd's client (and requests) only in cluster mode: ~0.1 s to import

        agent, leased = cluster.join(cfg.cluster, cfg.networks, cfg.state_dir, f"netd:{instance}", uplink_mtu)
        cfg = replace(cfg, networks=leased)
    networks = config.networks(cfg, uplink_mtu)
    fw = firewall.select(cfg.firewall, instance)
    if taking_over:
        firewall.remove_legacy()
    firewall.remove_others(fw, instance)
    service = Service(networks=networks, store=store, links=links, namespaces=netns, firewall=fw, sysctls=sysctl,
                      host_ports=HostPorts(), mark=f"netd:{instance}", adopt_unmarked=taking_over,
                      manage_accept_ra=cfg.manage_accept_ra, cluster=agent, events=events.Bus(),
                      dns=Dns(list(cfg.dns_upstreams) or host_resolvers()), config_file=str(cfg.config_file),
                      address_pools=cfg.address_pools)
    service.load_networks()
    service.prepare()
    if agent:
        agent.setup(next(n.mtu for n in networks if n.cluster))
    # The store and the kernel agree again before the socket exists: a
    # caller meanwhile finds none, and waits (wait_for_ready) or retries.
    repairs = service.reconcile()
    service.hold_published_ports()
    service.serve_dns()
    grpc_server = Server(service, cfg.socket)
    set_socket_group(cfg.socket, cfg.socket_group)
    # Everything allocated so far (modules, gRPC, the store's mirror) lives
    # as long as netd: keep it out of the collector's full passes, whose
    # pauses otherwise show up as tens of milliseconds on some calls.
    gc.freeze()
    grpc_server.set_health(service.problems())
    grpc_server.start()
    if cfg.metrics_address:
        metrics.enable(cfg.metrics_address, service)
    metrics.count_repairs("reconcile", repairs)
    count = len(service.list())
    log.info("serving", socket=str(cfg.socket), instance=instance,
             networks={n.name: f"{n.bridge} {n.subnet} {n.subnet6 or ''} mtu {n.mtu}".replace("  ", " ")
                       for n in networks},
             firewall=fw.name, endpoints=count, repairs=repairs, ms=round((time.monotonic() - started) * 1000))
    sd_notify(f"READY=1\nSTATUS=serving {count} endpoints")

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    start_background_loops(service, grpc_server.set_health, cfg, stop)
    if agent:
        agent.run(stop)
    keep_systemd_posted(service, stop)

    # In-flight calls finish, new ones get UNAVAILABLE; endpoints stay up so
    # containers keep their network while netd restarts.
    sd_notify("STOPPING=1")
    if agent:
        agent.stop()
    grpc_server.set_health([Problem("netd is stopping")])
    grpc_server.stop(SHUTDOWN_GRACE_SECONDS)
    service.dns.close()
    store.close()
    os.close(lock_fd)
    log.info("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        cfg = config.from_args(argv, isatty=sys.stderr.isatty())
    except NetdError as e:
        print(f"netd: {e}", file=sys.stderr)
        return 2
    configure_logging(cfg.log_format)
    try:
        return serve(cfg)
    except NetdError as e:
        log.error("start_failed", error=str(e))
        return 1
