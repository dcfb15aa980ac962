"""Thin robot-side client for a Mobile VLA policy server (websocket + msgpack, openpi-compatible).

    from mobile_vla_client import PolicyClient
    client = PolicyClient("ws://server:8765")
    client.reset("go around the box on the left and reach the cup")
    chunk = client.step(frame_rgb)            # (N, 2) float32, m/s

Dependencies: numpy, msgpack, websockets. Python >= 3.8.
"""

from mobile_vla_client.client import PolicyClient, RemoteError
from mobile_vla_client.msgpack_numpy import pack, unpack

__all__ = ["PolicyClient", "RemoteError", "pack", "unpack"]
__version__ = "0.1.0"
