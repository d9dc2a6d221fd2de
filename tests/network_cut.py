"""A network cut a test can make: a TCP proxy on 127.0.0.1 between a browser and a server that drops every
connection at once and refuses new ones until mended.

Playwright's ``context.set_offline(True)`` does not cut a websocket that is already open in Chromium (the page
stayed connected through a 10 s "offline" spell here and got the run's remaining output afterwards), so it cannot
show what a visitor whose network drops for longer than Streamlit's reconnect time sees. Through this proxy the
browser's websocket is closed at the cut (as a Wi-Fi or NAT switch resets it), its reconnect attempts fail until
the cut is mended, and the server's session, disconnected at the cut, expires meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Iterator


class CutProxy:
    """TCP from ``port`` (a free one) to ``target``; :meth:`cut` drops everything, :meth:`mend` lets it through."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = 0
        self.is_cut = False
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.AbstractServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except (ConnectionError, asyncio.CancelledError, OSError):
            pass
        finally:
            sink.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.is_cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._writers -= {writer, up_writer}

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def _abort_all(self) -> None:
        self.is_cut = True
        for writer in list(self._writers):
            writer.transport.abort()  # a reset, not a polite close: what a dropped network leaves behind

    def cut(self) -> None:
        """Every open connection reset now; new ones refused until :meth:`mend`."""
        done = threading.Event()
        self._loop.call_soon_threadsafe(lambda: (self._abort_all(), done.set()))
        done.wait(5)

    def mend(self) -> None:
        self.is_cut = False

    @contextlib.contextmanager
    def running(self) -> Iterator["CutProxy"]:
        thread = threading.Thread(target=self._loop.run_forever, name="cut-proxy", daemon=True)
        thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        try:
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            thread.join(10)
            self._loop.close()

    async def _stop(self) -> None:
        self._abort_all()
        if self._server is not None:
            self._server.close()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@contextlib.contextmanager
def cut_proxy(url: str) -> Iterator[CutProxy]:
    """A :class:`CutProxy` in front of the server at ``url`` (``http://127.0.0.1:PORT``) while the block runs."""
    host, port = url.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    with CutProxy(host, int(port)).running() as proxy:
        yield proxy
