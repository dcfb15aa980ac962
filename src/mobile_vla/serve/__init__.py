"""Policy serving: websocket + msgpack server (openpi-compatible), remote client, robot safety.

Modules: ``protocol`` (codec, message schema, validation), ``server`` (``PolicyServer``,
``serve_in_thread``), ``client`` (``RemotePolicy``, ``PolicyClient``), ``safety``
(``VelocityLimiter``, ``Watchdog``), ``fake`` (a deterministic stand-in policy for tests and
benchmarks). The protocol is specified in ``docs/protocol.md``.
"""
