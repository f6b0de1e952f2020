"""One set of connections per OpenAI-compatible server, shared by every backend that talks to it.

A *server* is what a request's wire identity names: a base URL and an API key (:class:`ServerAddress`). A run with
a generator, three judges and a critic on one ``vllm serve`` holds one set of connections and one in-flight limit
for all five, not five pools of their own: the server sees the concurrency its config asked for, not the sum, and
sequential requests of different models reuse one kept-alive connection.

The contract:

- **Members.** A backend :func:`join` s its server when it is built and :func:`leave` s it in ``aclose()`` (or
  when it is garbage-collected); joining again after leaving is allowed (the backend's next request does it).
- **The limit** of a server is the largest ``max_concurrency`` among its members. It grows when a member with a
  larger one joins and does not shrink while the server's clients live; each member also stays within its own
  ``max_concurrency`` (its own semaphore, acquired before the server's, so a member waiting on itself holds no
  server slot).
- **Clients per event loop.** httpx connections belong to the loop that opened them, and tests run many loops,
  so a :class:`Server` (clients + limiter) exists per (loop, address), made on the first request on that loop.
  Its connections are spread over ``ceil(limit / CONNECTIONS_PER_POOL)`` clients (2 connections each at most:
  one pool's CPU per request grows with its size, see :data:`CONNECTIONS_PER_POOL`), each made when a request
  first needs it, with httpx ``max_connections`` and ``max_keepalive_connections`` set to its share (httpx keeps
  only 20 alive by default). When the limit grows under live clients, later requests get new clients sized to it
  and the old ones are closed once their last request is done.
- **Closing.** The last member's ``leave`` closes the server's clients on every loop (awaited on the running one;
  those on a closed loop are dropped, their loop has nothing left to close them with). A loop that ends while
  members remain (``asyncio.run`` returning, a backend then used on the next loop) closes its server's clients
  as it shuts down (``shutdown_asyncgens``), so its kept-alive sockets are not left to the garbage collector.
- **The key** lives in :class:`ServerAddress`, whose ``repr`` leaves it out; nothing here logs it.

The registry is process-wide on purpose (the one global allowed: a registry); its mutations hold a lock, because
Ray actors and test helpers may drive loops from several threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
import weakref
from collections.abc import AsyncGenerator, Hashable
from dataclasses import dataclass, field

import httpx
import openai
from openai import AsyncOpenAI

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServerAddress:
    """Where requests go and as whom: equal addresses share connections. The key is left out of ``repr``."""

    base_url: str
    api_key: str = field(repr=False)


#: connections per httpx pool. httpcore scans every connection of a pool for every request it queues, so the
#: client's CPU per request grows with the pool's size (``benchmarks/bench_client.py``: 32 in flight on one pool
#: cost 2.5 ms of client CPU per request, on four pools of 8 0.86 ms, on sixteen pools of 2 0.75 ms; in the whole
#: pipeline at 8 in flight, ``bench_pipeline.py``, pools of 2 against one of 8, alternated: tribunal / raw client
#: 1.05 and 0.94 against 0.90 and 0.81); a server's limit is spread over ``ceil(limit / CONNECTIONS_PER_POOL)``
#: clients, each a pool of at most this many
CONNECTIONS_PER_POOL = 2


class Server:
    """One server's clients and in-flight limit on one event loop.

    The limit is spread over ``ceil(limit / CONNECTIONS_PER_POOL)`` clients of equal pools (made as requests need
    them); each request takes the least busy, so no pool ever queues a request and sequential requests reuse one
    kept-alive connection.

    Args:
        address: the server.
        limit: requests in flight together (and the pools' size in all).
        client: a client to use instead of making any (a backend given ``client=``: unshared, never replaced).
    """

    def __init__(self, address: ServerAddress, limit: int, *, client: AsyncOpenAI | None = None) -> None:
        self.address = address
        self.limit = limit
        self.limiter = asyncio.Semaphore(limit)
        self.closed = False
        self._fixed = client is not None
        self._clients: list[AsyncOpenAI | None] = [client] if client is not None else self._slots(limit)
        self._users: dict[int, int] = {}  # id(client) -> requests using it now
        self._retired: list[AsyncOpenAI] = []
        self._watch: AsyncGenerator[None, None] | None = None
        self._tls: ssl.SSLContext | None = None  # one for all its clients: loading the CA bundle takes ~20 ms

    def __repr__(self) -> str:
        return f"Server(base_url={self.address.base_url!r}, limit={self.limit}, closed={self.closed})"

    @property
    def clients(self) -> tuple[AsyncOpenAI, ...]:
        """The clients new requests use, those made so far (none before the first request and after
        :meth:`aclose`)."""
        return tuple(c for c in self._clients if c is not None)

    @staticmethod
    def _slots(limit: int) -> list[AsyncOpenAI | None]:
        return [None] * -(-limit // CONNECTIONS_PER_POOL)

    def grow(self, limit: int) -> None:
        """Raise the limit to ``limit``; live clients sized to the old one are retired (the next requests make new
        ones) and closed when their last request is done."""
        if limit <= self.limit:
            return
        for _ in range(limit - self.limit):
            self.limiter.release()  # an asyncio.Semaphore's value has no ceiling: each release adds one slot
        self.limit = limit
        if not self._fixed:
            self._retired.extend(self.clients)
            self._clients = self._slots(limit)

    def checkout(self) -> AsyncOpenAI:
        """The client for one request, the least busy (made now if it does not exist yet); give it back with
        :meth:`checkin`."""
        clients, users = self._clients, self._users
        index = 0
        if len(clients) > 1:
            index = min(range(len(clients)), key=lambda i: users.get(id(clients[i]), 0) if clients[i] else 0)
        client = clients[index]
        if client is None:
            client = clients[index] = self._make_client(-(-self.limit // len(clients)))
        key = id(client)
        users[key] = users.get(key, 0) + 1
        return client

    async def checkin(self, client: AsyncOpenAI) -> None:
        """A request on ``client`` is done; a retired client with no request left is closed."""
        key = id(client)
        left = self._users[key] - 1
        if left:
            self._users[key] = left
            return
        del self._users[key]
        if self._retired:
            idle = [c for c in self._retired if id(c) not in self._users]
            self._retired = [c for c in self._retired if id(c) in self._users]
            for old in idle:
                await old.close()

    async def aclose(self) -> None:
        """Close every client of this server (the current one and the retired ones)."""
        self.closed = True
        await self._close_clients()
        if self._watch is not None:
            watch, self._watch = self._watch, None
            await watch.aclose()

    def close_with_loop(self) -> None:
        """Have the running loop close this server's clients when it shuts down, if nothing closed them before.

        An async generator started on a loop is closed by the loop's ``shutdown_asyncgens`` (``asyncio.run`` calls
        it before closing the loop): the one started here runs :meth:`aclose`'s work in its ``finally``.
        """

        async def until_shutdown() -> AsyncGenerator[None, None]:
            try:
                yield
            finally:
                self.closed = True
                await self._close_clients()

        watch = until_shutdown()
        first = watch.__anext__()  # the loop's firstiter hook registers the generator here
        with contextlib.suppress(StopIteration):  # it stops at its yield at once
            first.send(None)
        self._watch = watch

    async def _close_clients(self) -> None:
        clients = [*self._retired, *self.clients]
        self._clients, self._retired = [None] * len(self._clients), []
        for client in clients:
            await client.close()

    def _make_client(self, connections: int) -> AsyncOpenAI:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        if self._tls is None:
            self._tls = httpx.create_ssl_context()  # what httpx makes for verify=True, honouring SSL_CERT_FILE/DIR
        log.debug("opening a connection pool of %d to %s", connections, self.address.base_url)
        return AsyncOpenAI(
            api_key=self.address.api_key,
            base_url=self.address.base_url,
            max_retries=0,  # tenacity retries, in the backend
            http_client=openai.DefaultAsyncHttpxClient(limits=limits, verify=self._tls),
        )


_lock = threading.Lock()
_members: dict[ServerAddress, weakref.WeakKeyDictionary[Hashable, int]] = {}
_servers: dict[tuple[asyncio.AbstractEventLoop, ServerAddress], Server] = {}


def join(address: ServerAddress, member: Hashable, max_concurrency: int) -> None:
    """Count ``member`` (a backend) among ``address``'s users, with its own ``max_concurrency``; idempotent. The
    server's limit, on every loop where it is open, grows to the members' largest."""
    with _lock:
        members = _members.setdefault(address, weakref.WeakKeyDictionary())
        members[member] = max_concurrency
        limit = max(members.values())
        try:
            here: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        for (loop, where), server in _servers.items():
            if where != address:
                continue
            if loop is here or not loop.is_running():
                server.grow(limit)
            else:  # an asyncio.Semaphore is not thread-safe: grow it on its own loop
                loop.call_soon_threadsafe(server.grow, limit)


def is_member(address: ServerAddress, member: Hashable) -> bool:
    """Whether ``member`` has joined ``address`` and not left it since."""
    members = _members.get(address)
    return members is not None and member in members


def server_limit(address: ServerAddress) -> int:
    """The largest ``max_concurrency`` among ``address``'s members (0 when it has none)."""
    with _lock:
        return max(_members.get(address, {}).values(), default=0)


def server_for(address: ServerAddress) -> Server:
    """The running loop's :class:`Server` for ``address``, made now (no client yet) if there is none."""
    loop = asyncio.get_running_loop()
    with _lock:
        server = _servers.get((loop, address))
        if server is None or server.closed:
            for key in [k for k in _servers if k[0].is_closed()]:  # their loops are gone: nothing to close with
                del _servers[key]
            limit = max(_members.get(address, {}).values(), default=1)
            server = _servers[(loop, address)] = Server(address, limit)
            server.close_with_loop()
        return server


async def leave(address: ServerAddress, member: Hashable) -> None:
    """``member`` no longer uses ``address``; idempotent. The last member out closes the server's clients on
    every loop: awaited on the running one, handed to a running other loop, dropped with a closed one."""
    with _lock:
        members = _members.get(address)
        if members is None or member not in members:
            return
        del members[member]
        if members:
            return
        del _members[address]
        closing = [(key[0], _servers.pop(key)) for key in list(_servers) if key[1] == address]
    running = asyncio.get_running_loop()
    for loop, server in closing:
        if loop is running:
            await server.aclose()
        elif not loop.is_closed() and loop.is_running():
            asyncio.run_coroutine_threadsafe(server.aclose(), loop)
        else:
            server.closed = True


def open_servers() -> list[Server]:
    """The servers whose clients may be open, on any loop (for tests and diagnostics)."""
    with _lock:
        return [s for s in _servers.values() if not s.closed]


__all__ = [
    "CONNECTIONS_PER_POOL",
    "Server",
    "ServerAddress",
    "is_member",
    "join",
    "leave",
    "open_servers",
    "server_for",
    "server_limit",
]
