"""Which replica reads which camera: rendezvous hashing of camera ids over the live members.

Every replica reads the same camera file and runs only the cameras it *owns*. The owner of a
camera is the member with the highest score ``sha256(member + "\\0" + camera_id)`` (rendezvous,
or highest-random-weight, hashing). Every replica that sees the same member list computes the
same owner, with no coordination; when a member leaves, only its cameras move (each to the member
with the next highest score), and when one joins it takes about ``1/N`` of the cameras.

The member list comes from ``VISION_SHARD_PEERS``:

- ``count:N``: members ``0`` .. ``N-1`` (give each replica its ordinal as ``VISION_SHARD_ID``);
- ``file:PATH``: one member id per line, re-read at every refresh (blank lines and ``#`` comments
  ignored);
- ``dns:NAME``: the addresses ``NAME`` resolves to, re-resolved at every refresh. In Kubernetes,
  a headless Service lists exactly the *ready* pods, so with ``VISION_SHARD_ID`` = the pod IP a
  replica that dies or is scaled away drops out and its cameras move (docs/kubernetes.md).

A replica whose id is not among the members owns nothing (it is not ready yet, or was removed).
When the list cannot be read (missing file, DNS failure) the previous one is kept.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

MAX_MEMBERS = 10_000


class ShardConfigError(ValueError):
    """``VISION_SHARD_PEERS`` or ``VISION_SHARD_ID`` is malformed."""


def score(member: str, camera_id: str) -> int:
    """The rendezvous weight of ``member`` for ``camera_id``: the first 8 bytes of a SHA-256, as an int."""
    digest = hashlib.sha256(f"{member}\0{camera_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def owner(camera_id: str, members: Iterable[str]) -> str | None:
    """The member that reads ``camera_id``; None when there are no members. Ties break on the id."""
    return max(members, key=lambda m: (score(m, camera_id), m), default=None)


@dataclass(frozen=True)
class Shard:
    """This replica (``self_id``) and where the member list comes from (``peers``)."""

    self_id: str
    peers: str
    read_members: Callable[[], frozenset[str]]

    def members(self) -> frozenset[str]:
        """The current member list; raises OSError (or ShardConfigError) when it cannot be read."""
        return self.read_members()

    def owns(self, camera_id: str, members: frozenset[str]) -> bool:
        return owner(camera_id, members) == self.self_id


def _count_members(count: int) -> Callable[[], frozenset[str]]:
    members = frozenset(str(i) for i in range(count))
    return lambda: members


def _file_members(path: Path) -> Callable[[], frozenset[str]]:
    def read() -> frozenset[str]:
        lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
        members = frozenset(line for line in lines if line)
        if len(members) > MAX_MEMBERS:
            raise ShardConfigError(f"{path}: more than {MAX_MEMBERS} members")
        return members

    return read


def _dns_members(name: str, self_id: str) -> Callable[[], frozenset[str]]:
    # Only addresses of this replica's own family: a dual-stack name lists every pod twice, and
    # cameras hashed to the other family's addresses would be owned by an id no replica has.
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(self_id).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_UNSPEC

    def read() -> frozenset[str]:
        infos = socket.getaddrinfo(name, None, family=family, proto=socket.IPPROTO_TCP)
        return frozenset(str(info[4][0]) for info in infos)

    return read


def parse_shard(self_id: str, peers: str) -> Shard:
    """Build a :class:`Shard` from ``VISION_SHARD_ID`` and ``VISION_SHARD_PEERS`` (see module doc)."""
    self_id = self_id.strip()
    if not self_id:
        raise ShardConfigError("VISION_SHARD_ID is required when VISION_SHARD_PEERS is set")
    kind, sep, value = peers.partition(":")
    value = value.strip()
    if not sep or not value:
        raise ShardConfigError(f"VISION_SHARD_PEERS must be count:N, file:PATH or dns:NAME, not {peers!r}")
    if kind == "count":
        try:
            count = int(value)
        except ValueError:
            raise ShardConfigError(f"VISION_SHARD_PEERS count:{value} is not a whole number") from None
        if not 1 <= count <= MAX_MEMBERS:
            raise ShardConfigError(f"VISION_SHARD_PEERS count must be between 1 and {MAX_MEMBERS}")
        return Shard(self_id, peers, _count_members(count))
    if kind == "file":
        return Shard(self_id, peers, _file_members(Path(value)))
    if kind == "dns":
        return Shard(self_id, peers, _dns_members(value, self_id))
    raise ShardConfigError(f"VISION_SHARD_PEERS must be count:N, file:PATH or dns:NAME, not {peers!r}")
