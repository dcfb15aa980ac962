"""Policy serving: websocket + msgpack server (openpi-compatible), remote client, robot safety.

Server layers, each one job: ``protocol`` (codec, message schema, validation; pure),
``dispatch`` (connections, authentication, sessions, replies; transport-neutral),
``batching`` (the bounded step queue, batched inference across sessions), ``websocket`` (the
transport and its limits, TLS, draining), ``config`` (``ServerConfig``), ``server``
(``PolicyServer``, ``serve_in_thread``, ``serve_forever``). A second transport is a new module
beside ``websocket`` driving a ``Dispatcher``.

Robot side: ``client`` (``RemotePolicy``, ``PolicyClient``), ``safety`` (``VelocityLimiter``,
``Watchdog``); ``fake`` is a deterministic stand-in policy for tests and benchmarks. The
protocol is specified in ``docs/protocol.md``; ``clients/python`` is the thin robot client.
"""
