"""Shared helpers for the server tests: random frames and concurrent remote sessions."""

from __future__ import annotations

import threading
import time

import numpy as np

from mobile_vla.serve.client import RemotePolicy

LEFT = "go around the box on the left and reach the cup"
RIGHT = "go around the box on the right and reach the cup"


def frames(n: int, seed: int = 0, shape=(48, 64, 3)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)]


def alone(policy, plan: dict[str, list[np.ndarray]]) -> dict[str, list[np.ndarray]]:
    """Each instruction's chunks from its own in-process session, one after the other."""
    out = {}
    for instruction, seq in plan.items():
        session = policy.new_session(instruction)
        out[instruction] = [session.step(f) for f in seq]
    return out


def concurrently(url: str, plan: dict[str, list[np.ndarray]], timeout: float = 120) -> dict[str, list[np.ndarray]]:
    """One client thread per instruction, all connected before any steps; their chunks."""
    got: dict[str, list[np.ndarray]] = {}
    barrier = threading.Barrier(len(plan))

    def run(instruction: str) -> None:
        with RemotePolicy(url) as remote:
            session = remote.new_session(instruction)
            barrier.wait(timeout=timeout)
            got[instruction] = [session.step(f) for f in plan[instruction]]

    threads = [threading.Thread(target=run, args=(i,)) for i in plan]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    missing = [i for i in plan if len(got.get(i, [])) != len(plan[i])]
    assert not missing, f"clients did not finish: {missing}"
    return got


def lockstep(url: str, plan: dict[str, list[np.ndarray]], head_start: dict[str, list[np.ndarray]] | None = None,
             timeout: float = 120) -> tuple[dict[str, list[np.ndarray]], list[int]]:
    """One client thread per instruction, stepping in lock-step (a barrier before every step of
    ``plan``), after its ``head_start`` frames; their chunks and the batch size of every step."""
    head_start = head_start or {}
    got: dict[str, list[np.ndarray]] = {}
    batch_sizes: list[int] = []
    barrier = threading.Barrier(len(plan))

    def run(instruction: str) -> None:
        with RemotePolicy(url, timeout_s=60) as remote:
            session = remote.new_session(instruction)
            for frame in head_start.get(instruction, []):  # sessions at different points of their episodes
                session.step(frame)
            chunks = []
            for frame in plan[instruction]:
                barrier.wait(timeout=timeout)
                chunks.append(session.step(frame))
                batch_sizes.append(session.last_timing["batch_size"])
            got[instruction] = chunks

    threads = [threading.Thread(target=run, args=(i,)) for i in plan]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    return got, batch_sizes


def make_tls_files(directory) -> dict[str, str]:
    """A throw-away CA and a server certificate it signs for 127.0.0.1 / localhost (PEM files).

    Returns ``{"ca": ..., "cert": ..., "key": ...}`` paths inside ``directory``.
    """
    import datetime
    import ipaddress
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def build(subject: str, key, issuer_name, issuer_key, ca: bool, names=()):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                              key_encipherment=False, data_encipherment=False, key_agreement=False,
                              encipher_only=False, decipher_only=False),
                critical=True,
            ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        else:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False).add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
            )
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mobile-vla test CA")])
    ca_cert = build("mobile-vla test CA", ca_key, ca_name, ca_key, ca=True)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = build("localhost", server_key, ca_name, ca_key, ca=False, names=names)
    directory = Path(directory)
    paths = {"ca": directory / "ca.pem", "cert": directory / "server.pem", "key": directory / "server.key"}
    paths["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ))
    return {k: str(v) for k, v in paths.items()}


def eventually(condition, timeout: float = 10.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` s pass (bookkeeping that finishes just after
    what the test saw, e.g. the server side of a close)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
