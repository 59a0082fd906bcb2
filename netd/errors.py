"""The one error tree of netd.

Every error netd raises on purpose is a NetdError. Each class names the gRPC
status it becomes at the edge (api/servicer.py), so the mapping lives here, next to
the meaning:

    NetdError
    ├── InvalidArgument        INVALID_ARGUMENT   malformed field, bad value
    │   └── AddressOutOfRange  INVALID_ARGUMENT   static address not usable in the subnet
    ├── ContainerNotFound      NOT_FOUND          no such PID or netns path
    ├── EndpointNotFound       NOT_FOUND          no endpoint for that container id
    ├── NetworkNotFound        NOT_FOUND          no network of that name
    ├── AlreadyExists          ALREADY_EXISTS
    │   ├── AlreadyAttached    ALREADY_EXISTS     container id already has an endpoint
    │   └── AddressInUse       ALREADY_EXISTS     static address taken by another endpoint
    ├── ResourceExhausted      RESOURCE_EXHAUSTED
    │   ├── PoolExhausted      RESOURCE_EXHAUSTED no free address left
    │   └── BridgeFull         RESOURCE_EXHAUSTED bridge port limit reached
    ├── FailedPrecondition     FAILED_PRECONDITION e.g. the netns is netd's own
    ├── Unavailable            UNAVAILABLE        netd cannot serve the call now
    ├── DeadlineExceeded       DEADLINE_EXCEEDED  the caller's deadline passed before the work started
    └── InternalError          INTERNAL           the system failed, not the input
        ├── KernelError        netlink / netns operation failed
        ├── FirewallError      firewall batch failed
        ├── CommandError       a subprocess failed
        └── StoreError         the state database failed

Messages follow "failed to VERB OBJECT NAME: cause" for internal errors and
name the offending field or resource for the others.
"""


class NetdError(Exception):
    status = "UNKNOWN"


class InvalidArgument(NetdError):
    status = "INVALID_ARGUMENT"


class AddressOutOfRange(InvalidArgument):
    pass


class ContainerNotFound(NetdError):
    status = "NOT_FOUND"


class EndpointNotFound(NetdError):
    status = "NOT_FOUND"


class NetworkNotFound(NetdError):
    status = "NOT_FOUND"


class AlreadyExists(NetdError):
    status = "ALREADY_EXISTS"


class AlreadyAttached(AlreadyExists):
    pass


class AddressInUse(AlreadyExists):
    pass


class ResourceExhausted(NetdError):
    status = "RESOURCE_EXHAUSTED"


class PoolExhausted(ResourceExhausted):
    pass


class BridgeFull(ResourceExhausted):
    pass


class FailedPrecondition(NetdError):
    status = "FAILED_PRECONDITION"


class Unavailable(NetdError):
    status = "UNAVAILABLE"


class DeadlineExceeded(NetdError):
    status = "DEADLINE_EXCEEDED"


class InternalError(NetdError):
    status = "INTERNAL"


class KernelError(InternalError):
    pass


class FirewallError(InternalError):
    pass


class CommandError(InternalError):
    pass


class StoreError(InternalError):
    pass
