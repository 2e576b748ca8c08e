"""HTTP/2 for the fake Vault: Go's net/http, which Vault's listener uses, offers "h2" by
ALPN beside "http/1.1" on TLS (Vault serves its API through http.Server, whose TLS
listener enables HTTP/2 by default). Each HTTP/2 stream becomes one HTTP/1.1 request for
the fake's ordinary handler, run in its own thread as Go runs each stream in its own
goroutine (a slow answer does not hold up the others), and its HTTP/1.1 answer goes back
as frames. One thread owns the TLS socket and does all reading and writing.

Faults keep their meaning: "drop" closes the connection without an answer, "reset" sends
the headers and half the body, then a TCP reset. Needs python3-h2; imported only when a
client negotiated h2.
"""

import collections
import io
import queue
import select
import socket
import threading
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

# RFC 9113 8.2.2: connection-specific fields must not appear in HTTP/2
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding",
              "upgrade"}


class _Conn:
    """What the handler sees as self.connection: the client certificate, read once by
    the I/O thread, and socket operations recorded for the I/O thread to carry out."""

    def __init__(self, peercert, peercert_der):
        self._peer, self._der = peercert, peercert_der
        self.action = None      # None, "drop" or "reset"

    def getpeercert(self, binary_form=False):
        return self._der if binary_form else self._peer

    def shutdown(self, how):
        self.action = self.action or "drop"

    def setsockopt(self, *args):
        self.action = "reset"

    def close(self):
        self.action = self.action or "drop"

    def settimeout(self, t):
        pass


def bridge_class(handler_cls):
    class H2Bridge(handler_cls):
        """One HTTP/1.1 exchange over memory buffers."""

        def __init__(self, raw, conn, client_address, server):
            self._raw, self._conn = raw, conn
            self.proto = "HTTP/2"
            super().__init__(conn, client_address, server)

        def setup(self):
            self.connection = self._conn
            self.rfile = io.BytesIO(self._raw)
            self.wfile = io.BytesIO()

        def finish(self):
            pass
    return H2Bridge


def _to_http11(headers, body):
    pseudo = {k: v for k, v in headers if k.startswith(":")}
    lines = ["%s %s HTTP/1.1" % (pseudo.get(":method", "GET"), pseudo.get(":path", "/"))]
    if ":authority" in pseudo:
        lines.append("Host: " + pseudo[":authority"])
    for k, v in headers:
        if not k.startswith(":") and k not in ("content-length", "host"):
            lines.append("%s: %s" % (k, v))
    lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + bytes(body)


def _from_http11(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    headers = [(":status", lines[0].split(" ")[1])]
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() not in HOP_BY_HOP:
            headers.append((k.strip().lower(), v.strip()))
    return headers, body


class H2Session:
    def __init__(self, tls, client_address, server, handler_cls):
        self.tls, self.addr, self.server = tls, client_address, server
        self.bridge = bridge_class(handler_cls)
        self.conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        self.streams = {}
        self.done = queue.Queue()       # (stream id, answer bytes, action) from workers
        self.sending = collections.OrderedDict()    # stream id -> body left to send
        self.wake_r, self.wake_w = socket.socketpair()
        self.peer = (tls.getpeercert(), tls.getpeercert(binary_form=True))

    def flush(self):
        out = self.conn.data_to_send()
        if out:
            self.tls.sendall(out)

    def work(self, sid, headers, body):
        conn = _Conn(*self.peer)
        try:
            h = self.bridge(_to_http11(headers, body), conn, self.addr, self.server)
            raw = h.wfile.getvalue()
        except Exception:       # the handler already answered 500 where it could
            raw = b""
        self.done.put((sid, raw, conn.action))
        try:
            self.wake_w.send(b"x")
        except OSError:
            pass

    def start(self, sid, headers, body):
        threading.Thread(target=self.work, args=(sid, headers, body), daemon=True).start()

    def handle_events(self, events):
        for ev in events:
            if isinstance(ev, h2.events.RequestReceived):
                self.streams[ev.stream_id] = (ev.headers, bytearray())
                if ev.stream_ended:
                    self.start(ev.stream_id, *self.streams.pop(ev.stream_id))
            elif isinstance(ev, h2.events.DataReceived):
                if ev.stream_id in self.streams:
                    self.streams[ev.stream_id][1].extend(ev.data)
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                if ev.stream_id in self.streams:
                    self.start(ev.stream_id, *self.streams.pop(ev.stream_id))
            elif isinstance(ev, h2.events.StreamReset):
                self.streams.pop(ev.stream_id, None)
                self.sending.pop(ev.stream_id, None)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                return False
        return True

    def answer(self, sid, raw, action):
        """False when the connection is to end (a drop or reset fault)."""
        if action == "drop" or not raw:
            self.tls.shutdown(socket.SHUT_RDWR)
            return False
        headers, body = _from_http11(raw)
        self.conn.send_headers(sid, headers, end_stream=not body and action is None)
        if action == "reset":
            # the body so far, then a TCP reset instead of the rest (SO_LINGER 0)
            if body:
                self.conn.send_data(sid, body[:self.conn.local_flow_control_window(sid)])
            self.flush()
            # Let the client read what was sent: a reset discards data still unread in
            # its socket, and HTTP/2 framing puts more in flight than HTTP/1.1 does.
            time.sleep(0.2)
            self.tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                b"\x01\x00\x00\x00\x00\x00\x00\x00")
            return False
        if body:
            self.sending[sid] = memoryview(body)
        return True

    def send_pending(self):
        for sid in list(self.sending):
            view = self.sending[sid]
            while view:
                try:
                    window = min(self.conn.local_flow_control_window(sid),
                                 self.conn.max_outbound_frame_size)
                except (h2.exceptions.StreamClosedError, KeyError):
                    view = None
                    break
                if window <= 0:
                    break
                chunk, view = view[:window], view[window:]
                self.conn.send_data(sid, bytes(chunk), end_stream=not view)
            if view:
                self.sending[sid] = view
            else:
                del self.sending[sid]

    def run(self):
        try:
            self.conn.initiate_connection()
            self.flush()
            while True:
                if not self.tls.pending():
                    ready, _, _ = select.select([self.tls, self.wake_r], [], [],
                                                self.tls.gettimeout())
                    if not ready:
                        return          # idle connection
                else:
                    ready = [self.tls]
                if self.wake_r in ready:
                    self.wake_r.recv(4096)
                    while not self.done.empty():
                        if not self.answer(*self.done.get()):
                            return
                if self.tls in ready:
                    data = self.tls.recv(65535)
                    if not data:
                        return
                    try:
                        if not self.handle_events(self.conn.receive_data(data)):
                            self.flush()
                            return
                    except h2.exceptions.ProtocolError:
                        self.flush()
                        return
                self.send_pending()
                self.flush()
        finally:
            self.wake_r.close()
            self.wake_w.close()
