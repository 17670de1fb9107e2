"""HTTP as pg_net does it: libcurl (through pycurl), with the options pg_net's worker sets on each request.

libcurl rather than aiohttp because parity is in its details: header lines go out as written (a header name with
spaces included), `localhost` resolves to both ::1 and 127.0.0.1 and the two are raced (happy eyeballs), redirects
are followed as curl follows them (a POST answered 301/302/303 becomes a GET), and `error_msg` is
curl_easy_strerror's text or pg_net's detailed timeout message.

Batches run in a worker thread (so the event loop never blocks on the network) on one curl multi handle, whose
connection cache keeps connections open from batch to batch as pg_net's worker does. The SSRF
guard sits in CURLOPT_OPENSOCKETFUNCTION: every address curl is about to connect to, on every redirect hop and
after DNS resolution, is checked against `tripsage.ssrf` and the net allow-list.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import pycurl

from tripsage import __version__, ssrf

USER_AGENT = f"pg_net/0.20 (tripsage {__version__})"
SELECT_TIMEOUT = 0.05  # seconds a multi-handle wait may block before the abort flag is looked at again

# pg_net is built against the libcurl of its platform (7.x on Supabase's images); libcurl 8 reworded a few
# messages ("Couldn't" -> "Could not"). pg_net's texts are kept.
CURL_7_WORDING = {
    pycurl.E_COULDNT_RESOLVE_PROXY: "Couldn't resolve proxy name",
    pycurl.E_COULDNT_RESOLVE_HOST: "Couldn't resolve host name",
    pycurl.E_COULDNT_CONNECT: "Couldn't connect to server",
    pycurl.E_FTP_CANT_GET_HOST: "FTP: can't figure out the host in the PASV response",
    pycurl.E_FTP_COULDNT_SET_TYPE: "FTP: couldn't set file type",
    pycurl.E_FTP_COULDNT_RETR_FILE: "FTP: couldn't retrieve (RETR failed) the specified file",
    pycurl.E_BAD_DOWNLOAD_RESUME: "Couldn't resume download",
    pycurl.E_FILE_COULDNT_READ_FILE: "Couldn't read a file:// file",
    pycurl.E_SSL_CIPHER: "Couldn't use specified SSL cipher",
    pycurl.E_SSL_ENGINE_INITFAILED: "Failed to initialise SSL crypto engine",
}


def system_trust_store() -> tuple[str | None, str | None]:
    """The system's CA file and directory (SSL_CERT_FILE / SSL_CERT_DIR, else OpenSSL's defaults).

    pg_net's libcurl is the platform's, which trusts the system store; the libcurl inside pycurl's wheel looks for
    a bundle where its build platform keeps one (/etc/pki/...), missing on Debian, so it is told where to look.
    """
    paths = ssl.get_default_verify_paths()
    return paths.cafile, paths.capath


def curl_strerror(code: int) -> str:
    """curl_easy_strerror(code), in the wording pg_net stores."""
    return CURL_7_WORDING.get(code) or pycurl.easy_strerror(code)


@dataclass
class Request:
    id: int
    method: str
    url: str
    header_lines: list[str] | None  # "name: value" lines; None when the request's headers are NULL
    body: bytes | None
    timeout_milliseconds: int


@dataclass
class Response:
    id: int
    status_code: int | None = None
    content_type: str | None = None
    headers: dict[str, str] | None = None
    content: str | None = None
    timed_out: bool = False
    error_msg: str | None = None


@dataclass
class _Transfer:
    """One request in flight: its curl handle and what its callbacks collected."""

    request: Request
    handle: pycurl.Curl
    body: bytearray = field(default_factory=bytearray)
    responses: list[list[tuple[str, str]]] = field(default_factory=list)  # header fields, per response received
    refused: str | None = None  # why the SSRF guard refused an address
    sockets: list[socket.socket] = field(default_factory=list)  # pycurl uses duplicates: ours are closed after
    hop_url: str = ""  # the URL curl connects for next: the request's, then each redirect's Location
    status: int = 0  # of the response whose header lines are arriving

    def __post_init__(self) -> None:
        self.hop_url = self.request.url


class Transport:
    """Sends batches of requests on one curl multi handle, whose connection cache (as in pg_net's worker) keeps
    connections to a receiver open from one batch to the next. `abort()` ends a batch in progress (its requests
    then count as not sent); `close()` aborts and frees the multi handle."""

    def __init__(self, allow: ssrf.AllowList, *, ca_file: str | None = None) -> None:
        self.allow = allow
        self.ca_file, self.ca_path = (ca_file, None) if ca_file else system_trust_store()
        self._abort = threading.Event()
        self._lock = threading.Lock()  # one batch at a time on the multi handle
        self._multi: pycurl.CurlMulti | None = None

    def abort(self) -> None:
        self._abort.set()

    def close(self) -> None:
        """Blocking until a batch in progress has stopped (run it in a thread)."""
        self._abort.set()
        with self._lock:
            if self._multi is not None:
                self._multi.close()
                self._multi = None

    def send_batch(self, requests: Sequence[Request]) -> list[Response]:
        """Send `requests` concurrently; blocking (run it in a thread). Responses in the order of `requests`."""
        with self._lock:
            self._abort.clear()
            if self._multi is None:
                self._multi = pycurl.CurlMulti()
            return self._run(self._multi, requests)

    def _run(self, multi: pycurl.CurlMulti, requests: Sequence[Request]) -> list[Response]:
        transfers: list[_Transfer] = []
        refused: list[Response] = []  # options libcurl refused (say, a negative timeout): that request fails alone
        for request in requests:
            try:
                transfers.append(self._prepare(request))
            except pycurl.error as error:
                refused.append(Response(id=request.id, timed_out=False, error_msg=curl_strerror(int(error.args[0]))))
        by_handle = {id(t.handle): t for t in transfers}
        codes: dict[int, int] = {}
        try:
            for transfer in transfers:
                multi.add_handle(transfer.handle)
            while len(codes) < len(transfers):
                if self._abort.is_set():
                    raise InterruptedError("net batch aborted")
                while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
                    pass
                while True:
                    queued, done, failed = multi.info_read()
                    for handle in done:
                        codes[id(handle)] = pycurl.E_OK
                    for handle, code, _message in failed:
                        codes[id(handle)] = code
                    if not queued:
                        break
                if len(codes) < len(transfers):
                    multi.select(SELECT_TIMEOUT)
            return refused + [_response(by_handle[id(t.handle)], codes[id(t.handle)]) for t in transfers]
        finally:
            for transfer in transfers:
                multi.remove_handle(transfer.handle)
                transfer.handle.close()
                for sock in transfer.sockets:
                    sock.close()

    def _prepare(self, request: Request) -> _Transfer:
        """A curl handle with the options pg_net's worker sets (src/core.c, init_curl_handle)."""
        curl = pycurl.Curl()
        try:
            return self._configure(_Transfer(request, curl))
        except pycurl.error:
            curl.close()
            raise

    def _configure(self, transfer: _Transfer) -> _Transfer:
        curl, request = transfer.handle, transfer.request
        method = request.method.upper()
        if request.header_lines is not None:  # pg_net sends a User-Agent only along with the request's headers
            curl.setopt(pycurl.HTTPHEADER, [*request.header_lines, f"User-Agent: {USER_AGENT}"])
        else:  # pycurl sets a User-Agent of its own; libcurl (so pg_net) sends none: "User-Agent:" removes it
            curl.setopt(pycurl.HTTPHEADER, ["User-Agent:"])
        # pg_net passes the body as a C string: it ends at the first NUL byte.
        body = None if request.body is None else request.body.split(b"\0", 1)[0]
        if method == "GET" and body is not None:
            curl.setopt(pycurl.POSTFIELDS, body)
            curl.setopt(pycurl.CUSTOMREQUEST, "GET")
        elif method == "POST":
            if body is not None:
                curl.setopt(pycurl.POSTFIELDS, body)
            else:
                curl.setopt(pycurl.POST, 1)
                curl.setopt(pycurl.POSTFIELDSIZE, 0)
        elif method == "DELETE":
            curl.setopt(pycurl.CUSTOMREQUEST, "DELETE")
            if body is not None:
                curl.setopt(pycurl.POSTFIELDS, body)
        curl.setopt(pycurl.URL, request.url)
        curl.setopt(pycurl.TIMEOUT_MS, request.timeout_milliseconds)
        curl.setopt(pycurl.FOLLOWLOCATION, True)
        curl.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        curl.setopt(pycurl.REDIR_PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        curl.setopt(pycurl.NOSIGNAL, True)
        # No proxy from the environment (http_proxy, ...): the SSRF guard must see the address actually reached.
        curl.setopt(pycurl.PROXY, "")
        if self.ca_file:
            curl.setopt(pycurl.CAINFO, self.ca_file)
        if self.ca_path:
            curl.setopt(pycurl.CAPATH, self.ca_path)
        curl.setopt(pycurl.WRITEFUNCTION, transfer.body.extend)
        curl.setopt(pycurl.HEADERFUNCTION, lambda line: _header_line(transfer, line))
        curl.setopt(pycurl.OPENSOCKETFUNCTION, lambda purpose, address: self._open_socket(transfer, address))
        return transfer

    def _open_socket(self, transfer: _Transfer, address: Any) -> socket.socket | int:
        ip = ipaddress.ip_address(str(address.addr[0]).split("%")[0])
        host = urlsplit(transfer.hop_url).hostname or ""
        allowed = self.allow.allows_host(host) or self.allow.allows_address(ip)
        if not allowed and (reason := ssrf.blocked_reason(ip)) is not None:
            transfer.refused = f"{ip} is {reason}"
            return int(pycurl.SOCKET_BAD)
        sock = socket.socket(address.family, address.socktype, address.protocol)
        transfer.sockets.append(sock)
        return sock


def _header_line(transfer: _Transfer, raw: bytes) -> None:
    line = raw.decode("utf-8", "replace").rstrip("\r\n")
    if line.startswith("HTTP/"):  # a status line: a new response (after a redirect, or a 1xx)
        transfer.responses.append([])
        code = line.split(" ", 2)[1] if line.count(" ") else ""
        transfer.status = int(code) if code.isdigit() else 0
    elif ":" in line and transfer.responses:
        name, _, value = line.partition(":")
        value = value.strip(" \t")
        transfer.responses[-1].append((name, value))
        # pycurl callbacks may not ask curl for its effective URL, so the SSRF guard follows redirects itself.
        if name.lower() == "location" and 300 <= transfer.status < 400:
            with contextlib.suppress(ValueError):  # a Location curl cannot follow either
                transfer.hop_url = urljoin(transfer.hop_url, value)


def _final_responses(transfer: _Transfer) -> list[list[tuple[str, str]]]:
    """The responses curl's header API counts: informational (1xx) ones are not requests of their own."""
    return [fields for fields in transfer.responses if fields or len(transfer.responses) == 1]


def _response(transfer: _Transfer, code: int) -> Response:
    curl = transfer.handle
    request = transfer.request
    if code == pycurl.E_OK:
        responses = _final_responses(transfer) or [[]]
        last = responses[-1]
        content_types = [value for name, value in last if name.lower() == "content-type"]
        return Response(
            id=request.id,
            status_code=int(curl.getinfo(pycurl.RESPONSE_CODE)),
            content_type=content_types[0] if content_types else None,
            # pg_net reads the headers with curl_easy_nextheader(..., request 0, ...): those of the first response,
            # so after a redirect the 3xx's own headers (and a repeated name keeps its last value).
            headers=dict(responses[0]),
            content=_content(transfer.body),
            timed_out=False,
        )
    if code == pycurl.E_OPERATION_TIMEDOUT:
        return Response(id=request.id, timed_out=True, error_msg=timeout_message(curl, request.timeout_milliseconds))
    message = curl_strerror(code)
    if code == pycurl.E_COULDNT_CONNECT and transfer.refused is not None:
        message = f"{message} ({transfer.refused}: refused by the SSRF guard, see TRIPSAGE_NET_ALLOW_HOSTS)"
    return Response(id=request.id, timed_out=False, error_msg=message)


def _content(body: bytearray) -> str | None:
    """The body as pg_net stores it: a C string (up to the first NUL byte), NULL when empty."""
    text = bytes(body).split(b"\0", 1)[0]
    return text.decode("utf-8", "replace") if text else None


def timeout_message(curl: pycurl.Curl, timeout_milliseconds: int) -> str:
    """pg_net's detailed timeout message (src/errors.c): which step the time went to, from curl's timings."""
    namelookup = float(curl.getinfo(pycurl.NAMELOOKUP_TIME))
    connect = float(curl.getinfo(pycurl.CONNECT_TIME))
    appconnect = float(curl.getinfo(pycurl.APPCONNECT_TIME))
    pretransfer = float(curl.getinfo(pycurl.PRETRANSFER_TIME))
    total = float(curl.getinfo(pycurl.TOTAL_TIME))
    tls = str(curl.getinfo(pycurl.EFFECTIVE_URL)).lower().startswith("https:")
    if namelookup == 0 and connect == 0:  # timed out resolving the name
        dns, handshake, http = total, 0.0, 0.0
    # Timed out connecting (TCP or TLS). pg_net's libcurl 7 leaves pretransfer at 0 then; libcurl 8 sets it even on
    # a failed handshake, so an unfinished connect or TLS handshake is looked at too.
    elif pretransfer == 0 or connect == 0 or (tls and appconnect == 0):
        dns, handshake, http = namelookup, total - namelookup, 0.0
    else:  # timed out in the HTTP exchange
        tls_time = appconnect - connect if appconnect > 0 else 0.0
        dns, handshake, http = namelookup, (connect - namelookup) + tls_time, total - pretransfer
    return (
        f"Timeout of {timeout_milliseconds} ms reached. Total time: {total * 1000:f} ms "
        f"(DNS time: {dns * 1000:f} ms, TCP/SSL handshake time: {handshake * 1000:f} ms, "
        f"HTTP Request/Response time: {http * 1000:f} ms)"
    )
