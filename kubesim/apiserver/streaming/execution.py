"""pods/exec and pods/attach over the WebSocket channel protocols.

Channels (``k8s.io/apimachinery/pkg/util/remotecommand``): 0 stdin, 1 stdout, 2 stderr, 3 error
(the outcome), 4 resize (``{"Width": w, "Height": h}`` JSON); in ``v5.channel.k8s.io`` a message
``[255, n]`` half-closes channel n (stdin EOF — what ``kubectl cp`` into a pod needs). The
protocols, as negotiated upstream:

* ``v5.channel.k8s.io`` (kubectl >= 1.30, the Python client >= 31): the API server itself speaks
  it (``apiserver/pkg/util/proxy/streamtranslator.go``): it upgrades first, then reaches the
  container, so failures to reach it come back as a Status on the error channel; the outcome is
  a metav1.Status (``Success``, or ``Failure`` with reason ``NonZeroExitCode`` and the exit code as
  the ``ExitCode`` cause); after it the server sends its close frame and waits for the client to
  close (``websocket.go`` ``finish``).
* ``v4.channel.k8s.io`` / ``v4.base64.channel.k8s.io``: served by the kubelet upstream: a
  container that is not running is a 500 before the upgrade; the outcome is a v4 Status.
* ``channel.k8s.io`` / ``base64.channel.k8s.io`` / none (v1-v3): the outcome is plain text,
  and nothing on success.

The first message is an empty one on the lowest writable channel (stdout, else stderr, else
error): clients take it as "connected". Exec runs the command through :mod:`nsenter` (the
container's namespaces, root, user and environment); closing the client connection kills it.
Attach follows the container's log from its current end, routing stdout and stderr records to
their channels, until the container exits; kubesim containers have no stdin, so attach's stdin
is accepted and discarded (as the runtime does for a container created without ``stdin``).
SPDY (``X-Stream-Protocol-Version: v4.channel.k8s.io``) is not served for exec/attach: kubectl
only falls back to it when the WebSocket upgrade fails, which it does not here.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import secrets
import signal
import struct
import subprocess
import sys
import termios
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubesim import podlogs
from kubesim.apiserver import errors, rest
from kubesim.apiserver import streaming as pkg
from kubesim.apiserver.streaming import conn, filewatch, reactor, sessions, targets, websocket

if TYPE_CHECKING:
    from kubesim.apiserver import server

log = logging.getLogger("kubesim.apiserver.streaming")

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V4_BASE64 = "v4.base64.channel.k8s.io"
V1 = "channel.k8s.io"
V1_BASE64 = "base64.channel.k8s.io"
KUBELET_PROTOCOLS = [V4, V4_BASE64, V1, V1_BASE64, ""]

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE_SIGNAL = 255

FINISH_WAIT = 300.0
"""After the outcome, how long the client may take to read everything and close (upstream: 15 min)."""
OUTPUT_GRACE = 2.0
"""After the command exited, how long its leftover children may keep stdout/stderr open."""

NSENTER = Path(__file__).with_name("nsenter.py")


def _bool(values: list[str] | None) -> bool:
    raw = (values or [""])[-1]
    if raw in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if raw in ("", "0", "f", "F", "FALSE", "false", "False"):
        return False
    raise errors.bad_request(f'strconv.ParseBool: parsing "{raw}": invalid syntax')


def status_success() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def status_exit(code: int, message: str) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "message": f"command terminated with non-zero exit code: {message}",
            "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


def status_internal(message: str) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "message": f"Internal error occurred: {message}",
            "reason": "InternalError", "details": {"causes": [{"message": message}]}, "code": 500}


class Options:
    def __init__(self, query: dict[str, list[str]], kind: str) -> None:
        self.stdin = _bool(query.get("stdin"))
        self.stdout = _bool(query.get("stdout"))
        self.stderr = _bool(query.get("stderr"))
        self.tty = _bool(query.get("tty"))
        self.command = list(query.get("command") or [])
        if self.tty and self.stderr:  # remotecommand.NewOptions: a tty has no separate stderr
            self.stderr = False
        if not (self.stdin or self.stdout or self.stderr):
            raise errors.bad_request("you must specify at least 1 of stdin, stdout, stderr")
        if kind == "exec" and not self.command:
            raise errors.bad_request("you must specify at least one command for the container")


def serve(handler: server.Handler, kind: str, namespace: str, name: str, query: dict[str, list[str]]) -> int:
    api: rest.Api = handler.server.app.api
    pod = targets.get_pod(api, namespace, name)
    container = targets.validate_container(pod, (query.get("container") or [""])[-1])
    targets.require_node(pod)
    if not websocket.is_upgrade(handler.headers):
        if sessions.is_spdy_upgrade(handler):
            raise pkg.TextError(403, "unable to upgrade: kubesim serves exec and attach over WebSocket "
                                     f"({V5}, {V4}) only, not over SPDY")
        raise errors.bad_request("Upgrade request required")
    opts = Options(query, kind)
    offered = websocket.requested_protocols(pkg.header_values(handler, "Sec-WebSocket-Protocol"))
    protocol = V5 if V5 in offered else sessions.negotiate_websocket(handler, KUBELET_PROTOCOLS)
    state_dir = pkg.config.state_dir
    proc = targets.running(state_dir, pod, container)
    missing = ""
    if proc is None:
        missing = (f'container not found ("{container}")' if kind == "exec"
                   else f"container {container} not found in pod {name}_{namespace}")
        if protocol != V5:  # the kubelet answers before any upgrade
            raise pkg.TextError(500, missing)
    key = handler.headers.get("Sec-WebSocket-Key") or ""
    rx, client, leftover = sessions.take_over(handler, websocket.handshake_response(key, protocol))
    ws = conn.WebSocketConn(rx, client)
    channels = Channels(rx, client, ws, protocol, opts)
    if proc is None:
        channels.hello()
        channels.finish(status_internal(f"unable to upgrade connection: {missing}"))
    elif kind == "exec":
        ExecSession(channels, proc, opts)
    else:
        assert state_dir is not None
        AttachSession(channels, state_dir, pod, container, opts)
    ws.start(leftover)
    sessions.run(rx, client, kind)
    return 101


class Channels:
    """The channel framing of one WebSocket connection, the outcome and the closing handshake."""

    def __init__(self, rx: reactor.Reactor, client: reactor.Endpoint, ws: conn.WebSocketConn, protocol: str,
                 opts: Options) -> None:
        self.rx = rx
        self.client = client
        self.ws = ws
        self.protocol = protocol
        self.opts = opts
        self.base64 = protocol in (V4_BASE64, V1_BASE64)
        self.finished = False
        self.on_input: dict[int, Any] = {}
        self.on_close_channel: dict[int, Any] = {}
        self.on_gone: Any = None
        ws.on_message = self._message
        ws.on_closed = self._closed

    def send(self, channel: int, data: bytes) -> None:
        if self.finished and channel != ERROR:
            return
        if self.base64:
            self.ws.send(bytes([ord("0") + channel]) + base64.b64encode(data), websocket.OP_TEXT)
        else:
            self.ws.send(bytes([channel]) + data)

    def hello(self) -> None:
        """An empty message on the lowest writable channel: the client knows the session is up."""
        self.send(STDOUT if self.opts.stdout else STDERR if self.opts.stderr else ERROR, b"")

    def _message(self, opcode: int, payload: bytes) -> None:
        if not payload:
            return
        if self.protocol == V5 and payload[0] == CLOSE_SIGNAL:
            if len(payload) == 2 and payload[1] in self.on_close_channel:
                self.on_close_channel[payload[1]]()
            return
        channel = payload[0] - (ord("0") if self.base64 else 0)
        data = payload[1:]
        if self.base64:
            try:
                data = base64.b64decode(data)
            except ValueError:
                return
        handler = self.on_input.get(channel)
        if handler is not None:
            handler(data)

    def finish(self, status: dict[str, Any]) -> None:
        """Report the outcome, then close (v4/v5: JSON Status; older: the message on failure only)."""
        if self.finished:
            return
        self.finished = True
        if self.protocol in (V5, V4, V4_BASE64):
            self.send(ERROR, json.dumps(status, separators=(",", ":")).encode())
        elif status.get("status") != "Success":
            self.send(ERROR, str(status.get("message") or "").encode())
        self.ws.on_closed = self._closed_after_finish
        self.ws.close(wait=FINISH_WAIT)

    def _closed(self) -> None:
        if self.on_gone is not None:
            self.on_gone()
        self.rx.stop()

    def _closed_after_finish(self) -> None:
        self.rx.stop()


class ExecSession:
    """The command as a child process tree rooted at :mod:`nsenter`, wired to the channels."""

    def __init__(self, channels: Channels, target: targets.Running, opts: Options) -> None:
        self.ch = channels
        self.rx = channels.rx
        self.opts = opts
        self.exec_id = secrets.token_hex(32)
        self.outputs: list[reactor.FdEndpoint] = []
        self.open_outputs = 0
        self.stdin: reactor.FdEndpoint | None = None
        self.master: int | None = None
        self.exit_code: int | None = None
        self.done = False
        self._grace: reactor.Timer | None = None
        self._resize_buf = b""
        status_r, status_w = os.pipe()
        self.status_r = status_r
        self.proc: subprocess.Popen[bytes] | None = None
        try:
            self.proc = self._spawn(target, status_w)
        except OSError as exc:
            os.close(status_r)
            self.ch.hello()
            self.ch.finish(status_internal(self._failure(f"cannot start the exec helper: {exc}")))
            return
        finally:
            os.close(status_w)
        channels.on_gone = self._client_gone
        channels.client.on_drain = self._client_drained
        channels.hello()
        self._watch_exit()

    # ----- starting ----------------------------------------------------------------------------

    def _spawn(self, target: targets.Running, status_w: int) -> subprocess.Popen[bytes]:
        spec = {"pid": target.pid, "start": _start_time(target.pid), "argv": self.opts.command, "tty": self.opts.tty}
        argv = [sys.executable, "-S", "-E", str(NSENTER), str(status_w), json.dumps(spec)]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        child_fds: list[int] = []
        try:
            if self.opts.tty:
                master, slave = os.openpty()
                child_fds.append(slave)
                self.master = master
                stdin = stdout = stderr = slave
            else:
                stdin = stdout = stderr = subprocess.DEVNULL
                if self.opts.stdin:
                    r, w = os.pipe()
                    child_fds.append(r)
                    stdin = r
                    self.stdin = self._endpoint(w, "stdin")
                if self.opts.stdout:
                    r, w = os.pipe()
                    child_fds.append(w)
                    stdout = w
                    self._output(r, STDOUT)
                if self.opts.stderr:
                    r, w = os.pipe()
                    child_fds.append(w)
                    stderr = w
                    self._output(r, STDERR)
            proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr, pass_fds=(status_w,),
                                    start_new_session=True, close_fds=True, env=env, cwd="/")
        finally:
            for fd in child_fds:
                os.close(fd)
        if self.master is not None:
            master_ep = self._endpoint(self.master, "pty")
            self.stdin = master_ep if self.opts.stdin else None
            self._output_endpoint(master_ep, STDOUT)
        if self.stdin is not None:
            self.stdin.on_drain = self.ch.client.resume_reading
            self.ch.on_input[STDIN] = self._stdin
            self.ch.on_close_channel[STDIN] = self._stdin_closed
        if self.opts.tty:
            self.ch.on_input[RESIZE] = self._resize
        return proc

    def _endpoint(self, fd: int, name: str) -> reactor.FdEndpoint:
        return reactor.FdEndpoint(self.rx, fd, name)

    def _output(self, fd: int, channel: int) -> None:
        self._output_endpoint(self._endpoint(fd, "stdout" if channel == STDOUT else "stderr"), channel)

    def _output_endpoint(self, endpoint: reactor.FdEndpoint, channel: int) -> None:
        def data(chunk: bytes) -> None:
            self.ch.send(channel, chunk)
            if self.ch.client.buffered > reactor.HIGH:
                for out in self.outputs:
                    out.pause_reading()

        def eof() -> None:
            self.open_outputs -= 1
            self._maybe_done()

        endpoint.on_data = data
        endpoint.on_eof = eof
        endpoint.on_error = lambda why: eof()
        self.outputs.append(endpoint)
        self.open_outputs += 1
        self.rx.call_soon(endpoint.start_reading)

    def _watch_exit(self) -> None:
        assert self.proc is not None
        pidfd = -1
        with contextlib.suppress(AttributeError, OSError):
            pidfd = os.pidfd_open(self.proc.pid)
        if pidfd >= 0:
            def exited() -> None:
                self.rx.forget(pidfd)
                os.close(pidfd)
                self._reap()
            self.rx.set_reader(pidfd, exited)
        else:
            def poll() -> None:
                assert self.proc is not None
                if self.proc.poll() is None:
                    self.rx.call_later(0.05, poll)
                else:
                    self._reap()
            self.rx.call_later(0.05, poll)

    # ----- input ---------------------------------------------------------------------------------

    def _stdin(self, data: bytes) -> None:
        if self.stdin is None or self.stdin.closed:
            return
        self.stdin.write(data)
        if self.stdin.buffered > reactor.HIGH:
            self.ch.client.pause_reading()

    def _stdin_closed(self) -> None:
        if self.stdin is None:
            return
        if self.opts.tty:
            self.stdin.write(b"\x04")  # a terminal has no EOF of its own: ^D, as a user would type it
        else:
            self.stdin.finish_writing()

    def _resize(self, data: bytes) -> None:
        self._resize_buf += data
        decoder = json.JSONDecoder()
        text = self._resize_buf.decode(errors="replace")
        pos = 0
        while True:
            stripped = len(text) - len(text[pos:].lstrip())
            try:
                size, end = decoder.raw_decode(text, stripped)
            except ValueError:
                break
            pos = end
            if isinstance(size, dict) and self.master is not None:
                width, height = int(size.get("Width") or 0), int(size.get("Height") or 0)
                with contextlib.suppress(OSError):
                    fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
        self._resize_buf = text[pos:].encode()

    def _client_drained(self) -> None:
        for out in self.outputs:
            out.resume_reading()

    # ----- ending ---------------------------------------------------------------------------------

    def _reap(self) -> None:
        assert self.proc is not None
        self.exit_code = self.proc.wait()
        if self.open_outputs > 0:
            self._grace = self.rx.call_later(OUTPUT_GRACE, self._grace_over)
        self._maybe_done()

    def _grace_over(self) -> None:
        for out in self.outputs:
            out.close()
        self.open_outputs = 0
        self._maybe_done()

    def _maybe_done(self) -> None:
        if self.done or self.exit_code is None or self.open_outputs > 0:
            return
        self.done = True
        if self._grace is not None:
            self._grace.cancel()
        for endpoint in [*self.outputs, *([self.stdin] if self.stdin is not None else [])]:
            endpoint.close()
        self.ch.finish(self._outcome(self.exit_code, self._helper_report()))

    def _helper_report(self) -> dict[str, Any]:
        raw = b""
        with contextlib.suppress(OSError):
            os.set_blocking(self.status_r, False)
            while chunk := os.read(self.status_r, 65536):
                raw += chunk
        with contextlib.suppress(OSError):
            os.close(self.status_r)
        for line in raw.decode(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                doc = json.loads(line)
                if isinstance(doc, dict):
                    return doc
        return {}

    def _failure(self, reason: str) -> str:
        """containerd + runc's wording for an exec that could not start, as the kubelet reports it."""
        return (f'error executing command in container: failed to exec in container: failed to start exec '
                f'"{self.exec_id}": OCI runtime exec failed: exec failed: unable to start container process: '
                f"{reason}: unknown")

    def _outcome(self, code: int, report: dict[str, Any]) -> dict[str, Any]:
        reason = str(report.get("exec") or report.get("error") or "")
        if reason:
            message = self._failure(reason)
            # through the API server's v5 translator the kubelet's error is wrapped once more
            return status_internal(f"Internal error occurred: {message}" if self.ch.protocol == V5 else message)
        if code == 0:
            return status_success()
        if self.ch.protocol == V5:  # client-go decoded the kubelet's status, the translator re-encodes it
            return status_exit(code, f"command terminated with exit code {code}")
        command = " ".join(self.opts.command)
        return status_exit(code, f"error executing command [{command}], exit code {code}")

    def _client_gone(self) -> None:
        """The client hung up first: the command goes too (its process group and the helper)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        for endpoint in [*self.outputs, *([self.stdin] if self.stdin is not None else [])]:
            endpoint.close()
        with contextlib.suppress(OSError):
            os.close(self.status_r)


def _start_time(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


class AttachSession:
    """Follows the container's current log from its end until the container exits."""

    def __init__(self, channels: Channels, state_dir: Path, pod: targets.Obj, container: str, opts: Options) -> None:
        self.ch = channels
        self.rx = channels.rx
        self.state_dir = state_dir
        self.pod = pod
        self.container = container
        self.opts = opts
        path = podlogs.instances(podlogs.container_dir(state_dir, pod, container))[-1][1]
        self.follower = podlogs.Follower(path, podlogs.LogOptions(tail=0))
        self.watch = filewatch.FileWatch(path)
        self.ended = False
        if opts.stdin:
            self.ch.on_input[STDIN] = lambda data: None
        channels.on_gone = self._stop
        channels.hello()
        if self.watch.fd >= 0:
            self.rx.set_reader(self.watch.fd, self._changed)
        self._tick()

    def _changed(self) -> None:
        self.watch.drain()
        self._pump(final=False)

    def _tick(self) -> None:
        if self.ended:
            return
        self._pump(final=False)
        if not targets.shim_alive(self.state_dir, self.pod, self.container):
            self._pump(final=True)
            self._stop()
            self.ch.finish(status_success())
            return
        self.rx.call_later(1.0 if self.watch.fd >= 0 else 0.2, self._tick)

    def _pump(self, *, final: bool) -> None:
        if self.ended:
            return
        for record in self.follower.new_records(final=final):
            if record.stream == "stderr" and not self.opts.tty:
                if self.opts.stderr:
                    self.ch.send(STDERR, record.content)
            elif self.opts.stdout:
                self.ch.send(STDOUT, record.content)

    def _stop(self) -> None:
        if self.ended:
            return
        self.ended = True
        if self.watch.fd >= 0:
            self.rx.forget(self.watch.fd)
        self.watch.close()
        self.follower.close()
