"""gRPC clients of netd: netctl, netd-cni, the OCI hook. They import only
the generated code, so they can run anywhere a runtime does."""

# Where netd listens unless told otherwise; the daemon's default too.
DEFAULT_SOCKET = "/run/netd/netd.sock"
