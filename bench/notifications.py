"""10,000 due notifications through the worker and Redis into an SMTP sink.

Measures, in one run and with the same worker (prefork, ``--concurrency``
processes, Redis broker):

* the bare rate: ``count`` tasks that do nothing, from the first publish
  until the queue is drained and every task acknowledged (``acks_late``);
* the notification rate: ``count`` due meeting reminders, from the start of
  the dispatcher pass (which publishes one deliver task per row) until the
  last message is accepted by a local SMTP server (aiosmtpd) and every row
  is ``sent``. Each message is claimed, rendered (text and HTML templates,
  agenda), sent over a kept-open SMTP connection and marked sent.

Then it counts messages per notification id at the SMTP server: zero lost
and zero doubled, or the run fails. It uses a private redis-server and a
throwaway PostgreSQL database (or SQLite file), and cleans up.
"""
from __future__ import annotations

import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import date, timedelta
from datetime import time as dtime
from pathlib import Path

import sqlalchemy as sa
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("MDT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
RECIPIENTS = 100
ID_HEADER = re.compile(rb"^X-MDT-Notification: (\d+)\r?$", re.MULTILINE)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class CountingSink:
    """An SMTP handler that only counts messages per notification id (cheap on CPU)."""

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.total = 0
        self.last_at = 0.0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        match = ID_HEADER.search(envelope.content)
        with self.lock:
            self.counts[int(match.group(1)) if match else -1] += 1
            self.total += 1
            self.last_at = time.monotonic()
        return "250 OK"


@contextmanager
def smtp_sink() -> Iterator[tuple[CountingSink, int]]:
    sink, port = CountingSink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


@contextmanager
def private_redis(workdir: Path) -> Iterator[tuple[str, int]]:
    if shutil.which("redis-server") is None:
        raise SystemExit("redis-server is needed for the benchmark (apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(lambda: _redis_client(f"redis://127.0.0.1:{port}/0").ping(), 10, "redis-server")
        yield f"redis://127.0.0.1:{port}/0", process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


def _redis_client(url: str):
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=1)


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'bench.sqlite'}"
        return
    name = f"mdt_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://"),
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def wait(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if value := predicate():
                return value
        except Exception:  # noqa: BLE001 (a server still starting)
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(interval)


def seed(count: int) -> list[int]:
    """One upcoming meeting with a three-case agenda, 100 attendees, ``count`` due reminders."""
    from mdt import clock
    from mdt.auth.models import Discipline, Role, User, UserRole
    from mdt.cases.models import Case, Patient, Sex
    from mdt.extensions import db
    from mdt.meetings.models import AgendaItem, Attendance, Meeting, MeetingSeries
    from mdt.notifications.models import Notification, NotificationKind

    now = clock.now().replace(microsecond=0)
    coordinator = User(email="coordinator@bench.mdt", name="Coordinator", password_hash="x",
                       discipline=Discipline.NURSING,
                       role_rows=[UserRole(role=Role.COORDINATOR)])
    series = MeetingSeries(name="Bone metastasis MDT", weekday=3, start_time=dtime(14),
                           time_zone="Asia/Shanghai")
    starts_at = now + timedelta(days=3)
    meeting = Meeting(series=series, starts_at=starts_at, occurrence_date=starts_at.date(),
                      duration_minutes=90, time_zone="Asia/Shanghai", location="Room 3")
    db.session.add_all([coordinator, meeting])
    for n in range(3):
        patient = Patient(hospital_number=f"B{n:07d}", name=f"Bench Patient {n}",
                          date_of_birth=date(1958, 3, 1), sex=Sex.FEMALE)
        case = Case(patient=patient, referring_clinician=coordinator, ecog=1,
                    question="SBRT to the painful T7 lesion, or cementoplasty first?")
        db.session.add(AgendaItem(meeting=meeting, case=case, position=n + 1))
    people = [User(email=f"person{n}@bench.mdt", name=f"Person {n}", password_hash="x",
                   discipline=Discipline.RADIATION_ONCOLOGY,
                   role_rows=[UserRole(role=Role.SPECIALIST)]) for n in range(RECIPIENTS)]
    db.session.add_all(people)
    db.session.add_all(Attendance(meeting=meeting, user=p) for p in people)
    db.session.commit()
    due = now - timedelta(minutes=1)
    rows = [{"kind": NotificationKind.MEETING_REMINDER, "recipient_id": people[i % RECIPIENTS].id,
             "meeting_id": meeting.id, "due_at": due, "payload": {"offset_minutes": 1440},
             "dedup_key": f"bench:{i}", "status": "pending", "attempts": 0, "send_email": True,
             "created_at": now, "updated_at": now} for i in range(count)]
    for start in range(0, count, 2000):
        db.session.execute(sa.insert(Notification), rows[start:start + 2000])
    db.session.commit()
    return list(db.session.scalars(sa.select(Notification.id).order_by(Notification.id)))


class BenchWorker:
    def __init__(self, env: dict[str, str], concurrency: int, log: Path) -> None:
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "worker", "worker", "--loglevel=WARNING",
             "--pool=prefork", f"--concurrency={concurrency}", "-I", "bench.tasks",
             "-Q", env["MDT_BROKER_QUEUE"], "-n", f"bench-{uuid.uuid4().hex[:6]}@%h",
             "--without-heartbeat", "--without-mingle", "--without-gossip"],
            cwd=ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT,
            start_new_session=True)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._out.close()


def drained(redis_url: str, queue: str) -> bool:
    """Nothing queued and nothing delivered but unacknowledged."""
    client = _redis_client(redis_url)
    try:
        return client.llen(queue) == 0 and client.hlen("unacked") == 0
    finally:
        client.close()


def warm_up(redis_url: str, queue: str) -> None:
    """Run a few bare tasks so every worker process has imported and connected."""
    from mdt.delivery import broker

    for n in range(20):
        broker.publish("bench.noop", n)
    wait(lambda: drained(redis_url, queue), 60, "the worker to warm up")


def measure_bare(redis_url: str, queue: str, count: int) -> float:
    from mdt.delivery import broker

    started = time.monotonic()
    for n in range(count):
        broker.publish("bench.noop", n)
    wait(lambda: drained(redis_url, queue), 600, "the bare tasks", interval=0.01)
    return time.monotonic() - started


def measure_notifications(sink: CountingSink, count: int) -> tuple[float, float, dict]:
    from mdt.delivery import dispatcher as delivery

    started = time.monotonic()
    result = delivery.dispatch()
    published_in = time.monotonic() - started
    wait(lambda: sink.total >= count, 1800, "the notifications", interval=0.01)
    return sink.last_at - started, published_in, vars(result)


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_by_component(worker_pgid: int, redis_pid: int) -> dict[str, float]:
    """CPU seconds used so far by the worker's processes, Redis, PostgreSQL and this process."""
    usage = {"worker": 0.0, "redis": 0.0, "postgresql (all)": 0.0}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        seconds = (int(fields[11]) + int(fields[12])) / _TICK
        pid, pgrp = int(stat.parent.name), int(fields[2])
        if pgrp == worker_pgid:
            usage["worker"] += seconds
        elif pid == redis_pid:
            usage["redis"] += seconds
        elif name.startswith("postgres"):
            usage["postgresql (all)"] += seconds
    own = os.times()
    usage["bench (dispatcher, SMTP sink)"] = own.user + own.system
    return usage


def run(*, count: int, concurrency: int, db: str) -> bool:
    """Run the notification benchmark; print the figures; return whether it passed."""
    workdir = Path(tempfile.mkdtemp(prefix="mdt-bench-"))
    queue = f"mdt-bench-{uuid.uuid4().hex[:8]}"
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        database_url = stack.enter_context(database(db, workdir))
        redis_url, redis_pid = stack.enter_context(private_redis(workdir))
        sink, smtp_port = stack.enter_context(smtp_sink())
        env = {k: v for k, v in os.environ.items() if not k.startswith("MDT_")}
        env.update({"MDT_ENV": "test", "MDT_DATABASE_URL": database_url,
                    "MDT_BROKER_URL": redis_url, "MDT_BROKER_QUEUE": queue,
                    "MDT_INSTANCE_PATH": str(workdir), "MDT_MAIL_BACKEND": "smtp",
                    "MDT_MAIL_SERVER": "127.0.0.1", "MDT_MAIL_PORT": str(smtp_port),
                    "MDT_BASE_URL": "http://mdt.bench"})
        os.environ.update({k: v for k, v in env.items() if k.startswith("MDT_")})
        from flask_migrate import upgrade

        from mdt import create_app
        from mdt.extensions import db as sqla

        app = create_app()
        stack.enter_context(app.app_context())
        stack.callback(sqla.engine.dispose)
        upgrade()
        print(f"seeding {count} due notifications ({db}) ...", flush=True)
        ids = seed(count)
        worker = BenchWorker(env, concurrency, workdir / "worker.log")
        stack.callback(worker.stop)
        warm_up(redis_url, queue)
        print(f"bare tasks x{count} ...", flush=True)
        bare = measure_bare(redis_url, queue, count)
        print(f"notifications x{count} ...", flush=True)
        cpu_before = cpu_by_component(worker.process.pid, redis_pid)
        elapsed, published_in, dispatch = measure_notifications(sink, count)
        cpu_after = cpu_by_component(worker.process.pid, redis_pid)
        cpu = {k: cpu_after[k] - cpu_before[k] for k in cpu_before}
        time.sleep(1.0)  # let any duplicate that would arrive late arrive
        sent = sqla.session.scalar(sa.text("SELECT count(*) FROM notifications "
                                           "WHERE status = 'sent'"))
        lost = [i for i in ids if sink.counts[i] == 0]
        doubled = {i: c for i, c in sink.counts.items() if c > 1}
        report(count=count, concurrency=concurrency, db=db, bare=bare, elapsed=elapsed,
               published_in=published_in, dispatch=dispatch, sent=sent, lost=lost,
               doubled=doubled, received=sink.total, cpu=cpu)
        return not lost and not doubled and sent == count and sink.total == count


def report(*, count, concurrency, db, bare, elapsed, published_in, dispatch, sent, lost,
           doubled, received, cpu) -> None:
    bare_rate, rate = count / bare, count / elapsed
    processor = platform.processor() or platform.machine()
    print()
    print(f"machine: {os.cpu_count()} cores ({processor}), Python {platform.python_version()}, "
          f"{platform.system()} {platform.release()}")
    print(f"worker: prefork x{concurrency}, broker Redis (private), database {db}, "
          "SMTP aiosmtpd on localhost")
    print(f"bare Celery task (does nothing):  {count} in {bare:6.2f} s = {bare_rate:7.0f} /s")
    print(f"notifications, due to SMTP:       {count} in {elapsed:6.2f} s = {rate:7.0f} /s "
          f"(dispatcher published them in {published_in:.2f} s)")
    print(f"ratio notifications / bare:       {rate / bare_rate:.2f} (aim: at least 0.33)")
    print(f"received {received}, rows sent {sent}, lost {len(lost)}, doubled {len(doubled)}"
          f"  -> {'OK' if not lost and not doubled and sent == count else 'FAILED'}")
    print(f"dispatcher: {dispatch}")
    print(f"CPU during the notification run ({elapsed:.1f} s on {os.cpu_count()} cores): "
          + ", ".join(f"{k} {v:.1f} s ({v / count * 1000:.1f} ms per notification)"
                      for k, v in cpu.items()))
