"""Mail backends: write messages to a folder (development) or send them by SMTP.

``get_backend(config)`` picks one by ``MAIL_BACKEND``. A backend's ``send``
either returns (the message is accepted) or raises: ``TransientMailError`` or
``OSError`` / ``smtplib.SMTPException`` (4xx, connection trouble: try again
later) or ``PermanentMailError`` (5xx: trying again will not help).
"""
from __future__ import annotations

import os
import smtplib
import socket
import ssl
import tempfile
import threading
from email.message import Message
from pathlib import Path
from typing import Protocol


class MailError(Exception):
    """The message could not be handed over."""


class TransientMailError(MailError):
    """Try again later (a 4xx reply, a dropped connection)."""


class PermanentMailError(MailError):
    """Trying again will not help (a 5xx reply such as an unknown recipient)."""


class MailBackend(Protocol):
    def send(self, message: Message, *, key: str) -> None:
        """Hand ``message`` over; ``key`` names it (the notification id)."""


class FileBackend:
    """Write each message as ``<key>.eml`` into a folder (the development mail sink)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def send(self, message: Message, *, key: str) -> None:
        """Write the message atomically: a reader never sees half a file."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{key}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(message.as_bytes())
            # A resent notification overwrites its earlier file, same name.
            os.replace(tmp, self.directory / f"notification-{key}.eml")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class SMTPBackend:
    """Send by SMTP with a timeout, optional STARTTLS and login.

    The connection is kept open per thread and reused for the next message
    (a worker sends many in a row); it is reopened when the server hung up.
    """

    def __init__(self, host: str, port: int, *, timeout: float = 10.0, use_tls: bool = False,
                 username: str | None = None, password: str | None = None) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.use_tls, self.username, self.password = use_tls, username, password
        self._local = threading.local()

    def send(self, message: Message, *, key: str) -> None:
        """Send the message; classify the server's refusal as transient or permanent."""
        try:
            self._send_once(message, reuse=True)
        except smtplib.SMTPServerDisconnected:
            # A kept-open connection the server has since closed: one fresh try.
            self._close()
            self._send_once(message, reuse=False)

    def _send_once(self, message: Message, *, reuse: bool) -> None:
        connection = self._connection() if reuse else self._connect()
        try:
            refused = connection.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            self._reset(connection)
            raise _classify(min(code for code, _ in exc.recipients.values()), exc) from exc
        except smtplib.SMTPResponseException as exc:
            self._reset(connection)
            raise _classify(exc.smtp_code, exc) from exc
        except (smtplib.SMTPException, OSError):
            self._close()
            raise
        if refused:  # some recipients refused: we send one recipient per message
            raise _classify(min(code for code, _ in refused.values()), MailError(str(refused)))

    def _connection(self) -> smtplib.SMTP:
        connection = getattr(self._local, "connection", None)
        return connection if connection is not None else self._connect()

    def _connect(self) -> smtplib.SMTP:
        connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
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

    def _reset(self, connection: smtplib.SMTP) -> None:
        """After a refusal, RSET so the connection can carry the next message."""
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
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                connection.close()


def _classify(code: int, exc: Exception) -> MailError:
    if 500 <= code < 600:
        return PermanentMailError(f"{code} {exc}")
    return TransientMailError(f"{code} {exc}")


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
