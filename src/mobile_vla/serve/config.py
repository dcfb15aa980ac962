"""Server settings shared by the dispatcher and every transport, with their documented defaults."""

from __future__ import annotations

import dataclasses

from mobile_vla.errors import MobileVLAError
from mobile_vla.serve.protocol import DEFAULT_MAX_MESSAGE_BYTES


@dataclasses.dataclass
class ServerConfig:
    """What ``mobile-vla serve`` flags set (``docs/serving.md`` lists them with their defaults).

    Timeouts are in seconds; a timeout of 0 (or None) disables it.
    """

    host: str = "127.0.0.1"
    port: int = 8765  # 0 picks a free port (tests)
    token: str | None = None
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    workers: int = 1
    max_connections: int = 64
    auth_timeout_s: float = 10.0  # only when a token is set
    preauth_max_bytes: int = 4096  # only when a token is set: the cap before authentication
    idle_timeout_s: float = 300.0  # no message for this long ends the session
    max_queue: int = 32  # steps waiting for inference beyond this are answered "overloaded"
    batch_window_ms: float = 5.0  # 0 turns batching off
    max_batch: int = 16
    # torch intra-op threads of a server process (``serve_forever``; 0 keeps torch's default). One:
    # on a few cores the inference thread, the frame-resizing threads and the event loop use the
    # cores better than intra-op threads, which gain nothing on the small models and stall badly
    # when another job shares the cores.
    torch_threads: int = 1
    # The policy in a child process of its own (serve/inference_process.py), so that the model
    # never waits for the GIL of the event loop and the resizing threads. Off by default: on the
    # 2-core benchmark machine it did not raise throughput beyond the noise (docs/benchmarks.md).
    # Only where the server loads the policy itself (`mobile-vla serve`); a policy object handed
    # to serve_in_thread stays in its process.
    inference_process: bool = False
    drain_timeout_s: float = 10.0  # on SIGTERM: how long in-flight steps may take to finish
    tls_cert: str | None = None
    tls_key: str | None = None

    def validate(self) -> ServerConfig:
        positive = {
            "max_message_bytes": self.max_message_bytes,
            "workers": self.workers,
            "max_connections": self.max_connections,
            "preauth_max_bytes": self.preauth_max_bytes,
            "max_queue": self.max_queue,
            "max_batch": self.max_batch,
        }
        for name, value in positive.items():
            if value < 1:
                raise MobileVLAError(f"{name} must be >= 1, got {value}")
        if self.torch_threads < 0:
            raise MobileVLAError(f"torch_threads must be >= 0, got {self.torch_threads}")
        for name in ("auth_timeout_s", "idle_timeout_s", "batch_window_ms", "drain_timeout_s"):
            if (getattr(self, name) or 0) < 0:
                raise MobileVLAError(f"{name} must be >= 0, got {getattr(self, name)}")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise MobileVLAError("TLS needs both a certificate and its key (--tls-cert and --tls-key)")
        return self

    @property
    def scheme(self) -> str:
        return "wss" if self.tls_cert else "ws"
