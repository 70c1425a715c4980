"""The TCP connections the started processes hold open, from the kernel's socket table: which pod dials which."""

import os
import socket
import struct
from pathlib import Path


def _address(field: str) -> tuple[str, int]:
    """`0100007F:1F90` (an IPv4 address in host byte order, a port in hex) -> ("127.0.0.1", 8080)."""
    ip, port = field.split(":")
    return socket.inet_ntoa(struct.pack("<I", int(ip, 16))), int(port, 16)


def established() -> dict[int, tuple[tuple[str, int], tuple[str, int]]]:
    """Socket inode -> (local, remote) of every established IPv4 TCP connection of this network namespace."""
    found = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01":  # TCP_ESTABLISHED
            found[int(fields[9])] = (_address(fields[1]), _address(fields[2]))
    return found


def socket_inodes(group: int) -> set[int]:
    """The socket inodes every process of a process group holds (a started container and what it started)."""
    inodes = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != group:
                continue
            for fd in (entry / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(int(target[8:-1]))
        except (ProcessLookupError, FileNotFoundError, PermissionError):
            continue  # it exited meanwhile
    return inodes
