"""The gRPC edge. Imported before grpc is, anywhere in the daemon."""

import os

# gRPC's older listener reads a request on the poller thread, which wakes
# the asyncio loop itself; its EventEngine listener hands the request to
# another thread first. Without it: attach p50 0.94-0.96x, netd's CPU per
# attach 0.90-0.94x (make bench-ab, 300 and 600 alternating attaches).
# grpc reads GRPC_EXPERIMENTS once, at import; an operator's setting wins.
os.environ.setdefault("GRPC_EXPERIMENTS", "-event_engine_listener")
