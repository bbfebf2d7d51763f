"""Mail backends: write messages to a folder (development) or send them by SMTP.

``prepare(message)`` turns a message into an ``Outgoing`` one: its bytes and
its envelope, or ``UnbuildableMessage`` when it cannot be written (a header
that would break, an address holding a line break): trying again would not
help. ``get_backend(config)`` picks a backend by ``MAIL_BACKEND``. A
backend's ``send`` either returns (the message is accepted) or raises:
``TransientMailError`` or ``OSError`` / ``smtplib.SMTPException`` (4xx,
connection trouble, a refused login: try again later) or
``PermanentMailError`` (5xx: trying again will not help).

One SMTP exchange (a message over a kept-open connection, or connecting,
STARTTLS, login and the message) has ``MAIL_TIMEOUT`` seconds in all, not per
network read, so that a send has a known longest duration: the delivery
claim's lease is sized from it (``mdt.delivery.services.claim_lease``).
"""
from __future__ import annotations

import os
import smtplib
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass
from email.generator import BytesGenerator
from email.message import Message
from email.utils import getaddresses, parseaddr
from io import BytesIO
from pathlib import Path
from typing import Any, Protocol


class MailError(Exception):
    """The message could not be handed over."""


class TransientMailError(MailError):
    """Try again later (a 4xx reply, a dropped connection)."""


class PermanentMailError(MailError):
    """Trying again will not help (a 5xx reply such as an unknown recipient)."""


class UnbuildableMessage(MailError):
    """The message cannot be written as an e-mail; trying again will not help."""


@dataclass(frozen=True)
class Outgoing:
    """A message ready to hand over: the message, its bytes (CRLF lines) and its envelope."""

    message: Message
    data: bytes
    sender: str
    recipients: tuple[str, ...]

    @property
    def international(self) -> bool:
        """Whether an address is not ASCII (the server must then offer SMTPUTF8)."""
        return not all(address.isascii() for address in (self.sender, *self.recipients))


def prepare(message: Message, *, sender: str | None = None,
            recipients: tuple[str, ...] | None = None) -> Outgoing:
    """Write ``message`` once, for any backend; the envelope defaults to its From and To.

    Raises ``UnbuildableMessage`` (or the ``email`` package's own error, for a
    header it cannot write) when the message cannot be sent as it is.
    """
    if sender is None:
        sender = parseaddr(message.get("From", ""))[1]
    if recipients is None:
        recipients = tuple(address for _, address in getaddresses(message.get_all("To", [])))
    if not recipients:
        raise UnbuildableMessage("the message has no recipient")
    for role, address in (("sender", sender), *(("recipient", r) for r in recipients)):
        _check_address(role, address)
    buffer = BytesIO()
    BytesGenerator(buffer, policy=message.policy).flatten(message, linesep="\r\n")
    return Outgoing(message, buffer.getvalue(), sender, recipients)


def _check_address(role: str, address: str) -> None:
    """Refuse an address SMTP could not carry (empty, a space or line break in it, no @)."""
    usable = (address and "@" in address and address.isprintable()
              and not any(ch.isspace() for ch in address))
    if not usable:
        raise UnbuildableMessage(f"the {role}'s address is not usable: it is empty, has no @, "
                                 "or holds a space, line break or other control character")


class MailBackend(Protocol):
    def send(self, outgoing: Outgoing, *, key: str) -> None:
        """Hand ``outgoing`` over; ``key`` names it (the notification id)."""


class FileBackend:
    """Write each message as ``<key>.eml`` into a folder (the development mail sink)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def send(self, outgoing: Outgoing, *, key: str) -> None:
        """Write the message atomically: a reader never sees half a file."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{key}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(outgoing.data)
            # A resent notification overwrites its earlier file, same name.
            os.replace(tmp, self.directory / f"notification-{key}.eml")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class _Connection(smtplib.SMTP):
    """An SMTP connection whose commands share one deadline (``time.monotonic()``)."""

    deadline: float | None = None

    def send(self, s: Any) -> None:
        """Send a command with what is left of the deadline as the socket's timeout."""
        if self.deadline is not None and self.sock is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the SMTP exchange took longer than MDT_MAIL_TIMEOUT")
            self.sock.settimeout(remaining)
        super().send(s)

    def getreply(self) -> tuple[int, bytes]:
        """Read a reply; a server that did not answer in time is a timeout, not a hang-up.

        (smtplib reports both as ``SMTPServerDisconnected``, and a hang-up of
        a kept-open connection is worth a second try; a timeout is not.)
        """
        try:
            return super().getreply()
        except smtplib.SMTPServerDisconnected as exc:
            if isinstance(exc.__context__, TimeoutError):
                raise TimeoutError("the SMTP server did not answer within MDT_MAIL_TIMEOUT") \
                    from exc
            raise


class SMTPBackend:
    """Send by SMTP with a timeout per message, optional STARTTLS and login.

    The connection is kept open per thread and reused for the next message
    (a worker sends many in a row); it is reopened when the server hung up.
    Each attempt has ``timeout`` seconds in all (commands and replies), so a
    send takes at most two attempts' worth: the kept-open connection, then a
    fresh one.
    """

    def __init__(self, host: str, port: int, *, timeout: float = 10.0, use_tls: bool = False,
                 username: str | None = None, password: str | None = None) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.use_tls, self.username, self.password = use_tls, username, password
        self._local = threading.local()

    def send(self, outgoing: Outgoing, *, key: str) -> None:
        """Send the message; classify the server's refusal as transient or permanent."""
        try:
            self._send_once(outgoing, reuse=True)
        except smtplib.SMTPServerDisconnected:
            # A kept-open connection the server has since closed: one fresh try.
            self._close()
            self._send_once(outgoing, reuse=False)

    def _send_once(self, outgoing: Outgoing, *, reuse: bool) -> None:
        deadline = time.monotonic() + self.timeout
        connection = self._connection(deadline) if reuse else self._connect(deadline)
        connection.deadline = deadline
        options = ("SMTPUTF8", "BODY=8BITMIME") if outgoing.international else ()
        try:
            refused = connection.sendmail(outgoing.sender, list(outgoing.recipients),
                                          outgoing.data, mail_options=options)
        except smtplib.SMTPRecipientsRefused as exc:
            self._reset(connection)
            raise _classify(min(code for code, _ in exc.recipients.values()), exc) from exc
        except smtplib.SMTPResponseException as exc:
            self._reset(connection)
            raise _classify(exc.smtp_code, exc) from exc
        except BaseException:  # a connection in an unknown state is not used again
            self._close()
            raise
        if refused:  # some recipients refused: we send one recipient per message
            raise _classify(min(code for code, _ in refused.values()), MailError(str(refused)))

    def _connection(self, deadline: float) -> _Connection:
        connection = getattr(self._local, "connection", None)
        return connection if connection is not None else self._connect(deadline)

    def _connect(self, deadline: float) -> _Connection:
        connection = _Connection(timeout=self.timeout)
        connection.deadline = deadline
        try:
            connection.connect(self.host, self.port)
            # smtplib writes a message's end in several small packets; without
            # this, Nagle's algorithm and delayed ACKs add ~40 ms per message.
            if connection.sock is not None:
                connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.use_tls:
                connection.starttls(context=ssl.create_default_context())
            if self.username:
                connection.login(self.username, self.password or "")
        except BaseException:
            connection.close()
            raise
        self._local.connection = connection
        return connection

    def _reset(self, connection: _Connection) -> None:
        """After a refusal, RSET so the connection can carry the next message."""
        connection.deadline = time.monotonic() + self.timeout
        try:
            connection.rset()
        except (smtplib.SMTPException, OSError):
            self._close()

    def close(self) -> None:
        """Close this thread's kept-open connection, if any."""
        self._close()

    def _close(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            connection.deadline = time.monotonic() + self.timeout
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                connection.close()


def _classify(code: int, exc: Exception) -> MailError:
    """Return the error for the server's reply: 5xx permanent, else transient ("421 4.3.2 …")."""
    text = _reply_text(exc)
    error = PermanentMailError if 500 <= code < 600 else TransientMailError
    return error(f"{code} {text}" if text else str(code))


def _reply_text(exc: Exception) -> str:
    """Return the server's words from an smtplib error (one reply, or the recipients' worst)."""
    reply: bytes | str
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        replies = sorted(exc.recipients.values())
        reply = replies[0][1] if replies else b""
    elif isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error
    else:
        return str(exc)
    return (reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)).strip()


_backends: dict[tuple, MailBackend] = {}


def get_backend(config) -> MailBackend:
    """Return the backend ``MAIL_BACKEND`` names, built once per configuration."""
    name = config["MAIL_BACKEND"]
    if name == "file":
        key: tuple = ("file", config["MAIL_SINK_DIR"])
    elif name == "smtp":
        key = ("smtp", config["MAIL_SERVER"], int(config["MAIL_PORT"]),
               float(config["MAIL_TIMEOUT"]), bool(config["MAIL_USE_TLS"]),
               config.get("MAIL_USERNAME"), config.get("MAIL_PASSWORD"))
    else:
        raise ValueError(f"MAIL_BACKEND must be 'file' or 'smtp', not {name!r}")
    if key not in _backends:
        _backends[key] = FileBackend(key[1]) if name == "file" else SMTPBackend(
            key[1], key[2], timeout=key[3], use_tls=key[4], username=key[5], password=key[6])
    return _backends[key]
