"""Mail backends: .eml files for development, SMTP (a real aiosmtpd server) for production."""
from __future__ import annotations

import time
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from mdt.delivery import mail

from .helpers.smtp import SMTPServer, free_port


def message(to="a.doctor@example.org", subject="Reminder") -> mail.Outgoing:
    msg = EmailMessage()
    msg["From"] = "MDT <mdt@hospital.example>"
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content("Body")
    return mail.prepare(msg)


@pytest.fixture
def smtp():
    with SMTPServer() as server:
        yield server


@pytest.fixture
def smtp_backend():
    backends: list[mail.SMTPBackend] = []

    def build(port: int) -> mail.SMTPBackend:
        backends.append(mail.SMTPBackend("127.0.0.1", port, timeout=5))
        return backends[-1]

    yield build
    for backend in backends:
        backend.close()


def test_file_backend_writes_one_eml_per_notification_atomically(tmp_path):
    backend = mail.FileBackend(tmp_path / "mail")
    backend.send(message(subject="First"), key="41")
    backend.send(message(subject="Second"), key="42")
    backend.send(message(subject="Second, resent"), key="42")
    files = sorted(p.name for p in (tmp_path / "mail").iterdir())
    assert files == ["notification-41.eml", "notification-42.eml"]  # no temporary files left
    parsed = message_from_bytes((tmp_path / "mail" / "notification-42.eml").read_bytes(),
                                policy=policy.default)
    assert parsed["Subject"] == "Second, resent"


def test_smtp_backend_delivers_and_reuses_its_connection(smtp, smtp_backend):
    backend = smtp_backend(smtp.port)
    for i in range(3):
        backend.send(message(to=f"p{i}@example.org", subject=f"S{i}"), key=str(i))
    received = smtp.sink.snapshot()
    assert [m["Subject"] for m in received] == ["S0", "S1", "S2"]
    assert [m["X-Envelope-To"] for m in received] == [f"p{i}@example.org" for i in range(3)]


def test_smtp_backend_reconnects_after_the_server_hung_up(smtp, smtp_backend):
    backend = smtp_backend(smtp.port)
    backend.send(message(subject="before"), key="1")
    backend._local.connection.sock.close()  # the server timed the idle connection out
    backend.send(message(subject="after"), key="2")
    assert [m["Subject"] for m in smtp.sink.snapshot()] == ["before", "after"]


def test_smtp_4xx_is_transient_and_the_connection_stays_usable(smtp, smtp_backend):
    smtp.sink.reply = lambda msg: "451 4.3.0 try again later" if msg["Subject"] == "busy" else None
    backend = smtp_backend(smtp.port)
    with pytest.raises(mail.TransientMailError, match="451"):
        backend.send(message(subject="busy"), key="1")
    backend.send(message(subject="fine"), key="2")
    assert [m["Subject"] for m in smtp.sink.snapshot()] == ["fine"]


def test_smtp_5xx_is_permanent(smtp, smtp_backend):
    smtp.sink.reply = lambda msg: "550 5.1.1 mailbox unavailable"
    with pytest.raises(mail.PermanentMailError, match="550"):
        smtp_backend(smtp.port).send(message(), key="1")


def test_smtp_server_down_raises_a_connection_error(smtp_backend):
    with pytest.raises(OSError):
        smtp_backend(free_port()).send(message(), key="1")


def test_one_exchange_has_the_timeout_in_all_not_per_reply(smtp):
    smtp.sink.slow = 0.4  # each of MAIL, RCPT and DATA answered after 0.4 s: 1.2 s in all
    backend = mail.SMTPBackend("127.0.0.1", smtp.port, timeout=1.0)
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            backend.send(message(), key="1")
    finally:
        backend.close()
    # Every reply came well within the timeout; the exchange as a whole did not.
    assert time.monotonic() - started < 1.35
    smtp.sink.slow = 0.2  # 0.6 s in all: within the timeout
    backend = mail.SMTPBackend("127.0.0.1", smtp.port, timeout=1.0)
    try:
        backend.send(message(subject="in time"), key="2")
    finally:
        backend.close()
    assert "in time" in [m["Subject"] for m in smtp.sink.snapshot()]


@pytest.mark.parametrize("to", ["a.doctor@example.org\r\nBcc: leak@attacker.example",
                                "nobody", ""])
def test_a_message_smtp_could_not_carry_is_refused_before_sending(to):
    msg = EmailMessage()
    msg["From"] = "MDT <mdt@hospital.example>"
    msg["Subject"] = "Reminder"
    msg.set_content("Body")
    with pytest.raises(mail.UnbuildableMessage):
        mail.prepare(msg, recipients=(to,))


def test_prepare_writes_crlf_lines_and_takes_the_envelope_from_the_headers():
    outgoing = message(to="Dr A <a.doctor@example.org>")
    assert (outgoing.sender, outgoing.recipients) == ("mdt@hospital.example",
                                                      ("a.doctor@example.org",))
    assert b"\r\nSubject: Reminder\r\n" in outgoing.data and b"\n\n" not in outgoing.data
    assert not outgoing.international


def test_get_backend_follows_the_configuration(tmp_path):
    config = {"MAIL_BACKEND": "file", "MAIL_SINK_DIR": str(tmp_path)}
    assert isinstance(mail.get_backend(config), mail.FileBackend)
    assert mail.get_backend(config) is mail.get_backend(dict(config))
    smtp_config = {"MAIL_BACKEND": "smtp", "MAIL_SERVER": "mail.example", "MAIL_PORT": "587",
                   "MAIL_TIMEOUT": 3, "MAIL_USE_TLS": True, "MAIL_USERNAME": "u",
                   "MAIL_PASSWORD": "p"}
    backend = mail.get_backend(smtp_config)
    assert (backend.host, backend.port, backend.timeout, backend.use_tls, backend.username) == (
        "mail.example", 587, 3.0, True, "u")
    with pytest.raises(ValueError, match="MAIL_BACKEND"):
        mail.get_backend({"MAIL_BACKEND": "pigeon"})
