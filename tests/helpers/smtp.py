"""A real SMTP server (aiosmtpd) on a free port that records what it receives."""
from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from collections import Counter
from collections.abc import Callable
from email.message import EmailMessage

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Sink:
    """The aiosmtpd handler: keeps accepted messages; ``reply`` may refuse some."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refused = 0
        self.lock = threading.Lock()
        #: Called with each message before it is accepted; returns an SMTP
        #: reply such as "451 try later" to refuse it, or None to accept.
        self.reply: Callable[[EmailMessage], str | None] | None = None
        #: Hold the message that arrives once this many were accepted: the
        #: sender waits for our reply until ``release`` is set (a test kills
        #: it meanwhile); the held message is then refused, never accepted.
        self.hold_at: int | None = None
        self.holding = threading.Event()
        self.release = threading.Event()
        #: Seconds to wait before answering MAIL, RCPT and the end of DATA (a slow server).
        self.slow = 0.0

    async def handle_MAIL(self, server, session, envelope, address, mail_options) -> str:
        await asyncio.sleep(self.slow)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        await asyncio.sleep(self.slow)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        await asyncio.sleep(self.slow)
        message = email.message_from_bytes(envelope.original_content or envelope.content,
                                           policy=email.policy.default)
        if self.hold_at is not None and len(self.messages) == self.hold_at \
                and not self.holding.is_set():
            self.holding.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
            return "421 4.4.2 connection lost before the message was accepted"
        refusal = self.reply(message) if self.reply else None
        with self.lock:
            if refusal:
                self.refused += 1
                return refusal
            message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
            self.messages.append(message)
        return "250 OK"

    def snapshot(self) -> list[EmailMessage]:
        with self.lock:
            return list(self.messages)

    def per_notification(self) -> Counter:
        """How many messages arrived for each notification id."""
        return Counter(int(m["X-MDT-Notification"]) for m in self.snapshot())


class SMTPServer:
    """``with SMTPServer() as smtp: ... smtp.port, smtp.sink.messages``."""

    def __init__(self) -> None:
        self.sink = Sink()
        self.port = free_port()
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SMTPServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.sink.release.set()
        self.controller.stop()
