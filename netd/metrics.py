"""Optional Prometheus metrics (--metrics-address). Off by default, and then
nothing is imported or counted: prometheus_client costs 0.1 s of start-up."""

from __future__ import annotations

from typing import Any

_metrics: dict[str, Any] = {}


def enable(address: str, service: Any) -> None:
    """Serve /metrics on HOST:PORT; endpoint and pool gauges are read from the service at scrape time."""
    from prometheus_client import Counter, Histogram, start_http_server
    from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily

    host, _, port = address.rpartition(":")
    _metrics.update(
        calls=Counter("netd_calls", "gRPC calls by method and status code", ["method", "code"]),
        seconds=Histogram("netd_call_duration_seconds", "gRPC call latency by method", ["method"],
                          buckets=(0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)),
        repairs=Counter("netd_repairs", "Repairs netd made on its own, by kind", ["kind"]),
    )

    class PoolCollector:
        def collect(self):  # noqa: ANN202 - prometheus_client protocol
            endpoints = GaugeMetricFamily("netd_endpoints", "Attached endpoints", labels=["network"])
            pool = GaugeMetricFamily("netd_pool_addresses", "Pool addresses by state", labels=["network", "state"])
            for net in service.networks:
                used, free = service.pool_usage(net.name)
                endpoints.add_metric([net.name], len(service.list(net.name)))
                pool.add_metric([net.name, "used"], used)
                pool.add_metric([net.name, "free"], free)
            found = [endpoints, pool]
            agent = service.cluster
            if agent is not None:
                nodes = GaugeMetricFamily("netd_cluster_nodes", "Hosts of the cluster netd knows, itself included")
                nodes.add_metric([], agent.known())
                errors = CounterMetricFamily("netd_etcd_errors", "etcd calls that failed or found no endpoint")
                errors.add_metric([], agent.errors)
                found += [nodes, errors]
            return found

    REGISTRY.register(PoolCollector())
    start_http_server(int(port), addr=host.strip("[]") or "127.0.0.1")


def observe_call(method: str, code: str, seconds: float) -> None:
    if _metrics:
        _metrics["calls"].labels(method, code).inc()
        _metrics["seconds"].labels(method).observe(seconds)


def count_repairs(kind: str, n: int | bool = 1) -> None:
    if _metrics and n:
        _metrics["repairs"].labels(kind).inc(int(n))
