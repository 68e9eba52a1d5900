"""free_port: a port to listen on, never from the kernel's ephemeral range (CI saw those taken)."""

from __future__ import annotations

import random
import socket

from ruvector_dag.tools import server


def test_free_port_is_below_the_ephemeral_range_and_bindable() -> None:
    low = server._ephemeral_low()
    for _ in range(20):
        port = server.free_port()
        assert 1024 <= port < low
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", port))


def test_free_port_skips_a_port_in_use() -> None:
    first = server.free_port(random.Random(7))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", first))
        held.listen()
        assert server.free_port(random.Random(7)) != first


def test_free_ports_are_distinct() -> None:
    ports = server.free_ports(3)
    assert len(set(ports)) == 3
