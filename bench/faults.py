"""Delivery under faults, measured: workers killed while sending, and an SMTP outage.

``python -m bench.faults kills [--kills 19]`` (real time, about two minutes a kill):
a real worker (prefork, 2 processes) and a real ``celery beat`` (one dispatcher
run a minute) over a private Redis and a throwaway PostgreSQL database send
rounds of due reminders to an SMTP sink in this process; in each round the
worker is SIGKILLed at a random moment of the sending (after a random number
of accepted messages, plus 0-20 ms), restarted two seconds later (as a service
manager would), and the round is watched until every row is sent. It reports,
per kill and in all: the rows stranded by the kill (``sending``, or held by
the killed tasks), when each went out after the kill, and every message the
SMTP server received twice, with how long before the kill its first copy had
been accepted.

``python -m bench.faults outage [--minutes 360] [--rows 120]``: the SMTP server
refuses every message (421) for that long, with the production retry
settings, then answers again. Time is the clock of the worker and of this
process (``MDT_CLOCK_FILE``), moved one dispatcher run (a minute) at a time,
so hours take minutes; the worker, Redis, PostgreSQL and SMTP are real. It
reports the attempts per row, what failed, and how long after the server
came back everything was delivered.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from bench.notifications import ID_HEADER, ROOT, database, private_redis, seed, wait

try:  # aiosmtpd is a test dependency, as for make bench
    from aiosmtpd.controller import Controller
except ImportError:  # pragma: no cover
    raise SystemExit("aiosmtpd is needed: pip install -e '.[test]'") from None

from bench.notifications import free_port


class TimedSink:
    """Accepts (or refuses) messages; keeps each accepted one's notification id and time."""

    def __init__(self) -> None:
        self.accepted: list[tuple[int, float]] = []  # (notification id, time.time())
        self.refused = 0
        self.refuse = False
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope) -> str:
        match = ID_HEADER.search(envelope.content)
        with self.lock:
            if self.refuse:
                self.refused += 1
                return "421 4.3.2 mail system unavailable"
            self.accepted.append((int(match.group(1)) if match else -1, time.time()))
        return "250 OK"

    def counts(self) -> Counter[int]:
        with self.lock:
            return Counter(i for i, _ in self.accepted)


class Process:
    """A celery worker or beat in its own process group, killed or stopped as asked."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self._out = open(log, "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen([sys.executable, "-m", "celery", "-A", "worker", *args],
                                        cwd=ROOT, env=env, stdout=self._out,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._out.close()


def worker(env: dict[str, str], workdir: Path, concurrency: int) -> Process:
    return Process(["worker", "--loglevel=WARNING", "--pool=prefork",
                    f"--concurrency={concurrency}", "-Q", env["MDT_BROKER_QUEUE"],
                    "-n", f"faults-{uuid.uuid4().hex[:6]}@%h", "--without-heartbeat",
                    "--without-mingle", "--without-gossip"], env, workdir / "worker.log")


def environment(workdir: Path, database_url: str, redis_url: str, smtp_port: int,
                **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MDT_")}
    env.update({"MDT_ENV": "test", "MDT_DATABASE_URL": database_url,
                "MDT_BROKER_URL": redis_url,
                "MDT_BROKER_QUEUE": f"mdt-faults-{uuid.uuid4().hex[:8]}",
                "MDT_INSTANCE_PATH": str(workdir), "MDT_MAIL_BACKEND": "smtp",
                "MDT_MAIL_SERVER": "127.0.0.1", "MDT_MAIL_PORT": str(smtp_port),
                "MDT_BASE_URL": "http://mdt.bench", **extra})
    return env


def setting_up(stack: ExitStack, db: str, **extra: str):
    """A database, Redis, an SMTP sink, this process's app; return (env, sink, workdir)."""
    workdir = Path(tempfile.mkdtemp(prefix="mdt-faults-"))
    stack.callback(shutil.rmtree, workdir, ignore_errors=True)
    database_url = stack.enter_context(database(db, workdir))
    redis_url, _pid = stack.enter_context(private_redis(workdir))
    sink, port = TimedSink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    stack.callback(controller.stop)
    env = environment(workdir, database_url, redis_url, port, **extra)
    os.environ.update({k: v for k, v in env.items() if k.startswith("MDT_")})
    from flask_migrate import upgrade

    from mdt import create_app
    from mdt.extensions import db as sqla

    app = create_app()
    stack.enter_context(app.app_context())
    stack.callback(sqla.engine.dispose)
    upgrade()
    return env, sink, workdir


def add_rows(count: int, tag: str, due: datetime) -> list[int]:
    """``count`` more due reminders for the seeded meeting's attendees."""
    from mdt.extensions import db
    from mdt.meetings.models import Attendance, Meeting
    from mdt.notifications.models import Notification, NotificationKind

    meeting_id = db.session.scalar(sa.select(Meeting.id).limit(1))
    people = list(db.session.scalars(sa.select(Attendance.user_id)
                                     .where(Attendance.meeting_id == meeting_id)))
    rows = [{"kind": NotificationKind.MEETING_REMINDER, "recipient_id": people[i % len(people)],
             "meeting_id": meeting_id, "due_at": due, "payload": {"offset_minutes": 1440},
             "dedup_key": f"{tag}:{i}", "status": "pending", "attempts": 0, "send_email": True,
             "created_at": due, "updated_at": due} for i in range(count)]
    db.session.execute(sa.insert(Notification), rows)
    db.session.commit()
    return list(db.session.scalars(sa.select(Notification.id).where(
        Notification.dedup_key.startswith(f"{tag}:")).order_by(Notification.id)))


def rows_of(ids: list[int]):
    from mdt.extensions import db
    from mdt.notifications.models import Notification

    db.session.rollback()
    return list(db.session.scalars(sa.select(Notification).where(Notification.id.in_(ids))))


# -- kills -------------------------------------------------------------------------------

def kill_round(number: int, *, rows: int, sink: TimedSink, env, workdir,
               concurrency: int, rng: random.Random) -> dict:
    """One round: due rows, a kill at a random moment of their sending, until all are sent."""
    from mdt.delivery import dispatcher

    ids = add_rows(rows, f"kill{number}", datetime.now(UTC) - timedelta(minutes=1))
    running = worker(env, workdir, concurrency)
    time.sleep(4)  # the worker starts (as it would be running already)
    before = len(sink.accepted)
    dispatcher.dispatch()  # as beat's next run would
    threshold = rng.randint(5, rows - 5)
    wait(lambda: len(sink.accepted) - before >= threshold, 120, "messages to be accepted",
         interval=0.001)
    time.sleep(rng.uniform(0, 0.02))
    running.kill()
    killed_at = time.time()
    running.stop()
    at_kill = {r.id: (r.status.value, r.lease_expires_at) for r in rows_of(ids)}
    lease_end = datetime.fromtimestamp(killed_at, UTC) + timedelta(minutes=2)
    sending = [i for i, (s, _) in at_kill.items() if s == "sending"]
    held = [i for i, (s, lease) in at_kill.items()
            if s == "pending" and lease is not None and lease < lease_end]
    time.sleep(2)  # restarted by the service manager
    restarted = worker(env, workdir, concurrency)
    try:
        wait(lambda: all(r.status.value == "sent" for r in rows_of(ids)), 400,
             "every row of the round to be sent", interval=0.5)
        time.sleep(1.5)  # a duplicate arriving late arrives
    finally:
        restarted.stop()
    sent_at = {r.id: r.sent_at.timestamp() for r in rows_of(ids)}
    counts = sink.counts()
    first_accept: dict[int, float] = {}
    for i, at in sink.accepted:
        first_accept.setdefault(i, at)
    doubled = {i: counts[i] for i in ids if counts[i] > 1}
    return {
        "kill": number, "threshold": threshold, "stranded_sending": len(sending),
        "stranded_held": len(held),
        "out_after_s": [sent_at[i] - killed_at for i in sending + held],
        "lost": [i for i in ids if counts[i] == 0],
        "doubled": doubled,
        "doubled_accepted_ms_before_kill": [round((killed_at - first_accept[i]) * 1000, 1)
                                            for i in doubled],
        "doubled_were_sending": [i in sending for i in doubled],
    }


def run_kills(*, kills: int, rows: int, concurrency: int, db: str, seed_value: int) -> bool:
    rng = random.Random(seed_value)
    with ExitStack() as stack:
        env, sink, workdir = setting_up(stack, db)
        seed(0)
        beat = Process(["beat", "--loglevel=WARNING",
                        f"--schedule={workdir / 'celerybeat-schedule'}"], env,
                       workdir / "beat.log")
        stack.callback(beat.stop)
        results = []
        for number in range(1, kills + 1):
            result = kill_round(number, rows=rows, sink=sink, env=env, workdir=workdir,
                                concurrency=concurrency, rng=rng)
            results.append(result)
            print(f"kill {number:2}: after {result['threshold']:3} accepted; stranded "
                  f"{result['stranded_sending']} sending + {result['stranded_held']} held, out "
                  f"after {_span(result['out_after_s'])}; doubled {len(result['doubled'])} "
                  f"(accepted {result['doubled_accepted_ms_before_kill']} ms before the kill)",
                  flush=True)
        return report_kills(results, rows=rows, concurrency=concurrency, db=db)


def _span(values: list[float]) -> str:
    return f"{min(values):.0f}-{max(values):.0f} s" if values else "-"


def report_kills(results: list[dict], *, rows: int, concurrency: int, db: str) -> bool:
    out = [s for r in results for s in r["out_after_s"]]
    doubled = [ms for r in results for ms in r["doubled_accepted_ms_before_kill"]]
    lost = sum(len(r["lost"]) for r in results)
    print()
    print(f"{len(results)} kills of a prefork x{concurrency} worker (SIGKILL to its process "
          f"group), {rows} due reminders a round, {db}, real celery beat and Redis")
    print(f"stranded rows: {sum(r['stranded_sending'] for r in results)} sending + "
          f"{sum(r['stranded_held'] for r in results)} held by the killed tasks")
    if out:
        print(f"they went out after the kill: median {statistics.median(out):.0f} s, "
              f"max {max(out):.0f} s ({max(out) / 60:.1f} min)")
    print(f"lost: {lost}; received twice: {len(doubled)} "
          f"(first copy accepted {sorted(doubled)} ms before the kill)")
    return lost == 0 and (not out or max(out) < 180)


# -- outage ------------------------------------------------------------------------------

def settle(ids: list[int], timeout: float = 120) -> None:
    """Wait until no row is queued, held or being sent (the published attempts are made)."""
    def idle() -> bool:
        return all(r.status.value not in ("pending", "sending") or r.lease_expires_at is None
                   for r in rows_of(ids))

    wait(idle, timeout, "the attempts to be made", interval=0.05)


def run_outage(*, minutes: int, rows: int, db: str) -> bool:
    from mdt import clock
    from mdt.delivery import dispatcher

    with ExitStack() as stack:
        clock_file = Path(tempfile.mkdtemp(prefix="mdt-clock-")) / "clock"
        stack.callback(shutil.rmtree, clock_file.parent, ignore_errors=True)
        start = datetime.now(UTC).replace(microsecond=0)

        def at(minute: int) -> datetime:
            moment = start + timedelta(minutes=minute)
            clock.write_file(clock_file, moment)
            clock.set_now(moment)
            return moment

        at(0)
        env, sink, workdir = setting_up(stack, db, MDT_CLOCK_FILE=str(clock_file))
        seed(0)
        ids = add_rows(rows, "outage", start - timedelta(minutes=1))
        running = worker(env, workdir, 2)
        stack.callback(running.stop)
        time.sleep(4)
        sink.refuse = True
        minute = 0
        for minute in range(minutes + 1):
            at(minute)
            if dispatcher.dispatch().published:
                settle(ids)
        during = rows_of(ids)
        attempts = [r.attempts for r in during]
        failed_during = sum(r.status.value == "failed" for r in during)
        refused = sink.refused
        sink.refuse = False
        back = minute
        while not all(r.status.value in ("sent", "failed") for r in rows_of(ids)):
            minute += 1
            at(minute)
            if dispatcher.dispatch().published:
                settle(ids)
            if minute > back + 30:
                break
        time.sleep(1.0)
        final = rows_of(ids)
        counts = sink.counts()
        delivered = sum(counts[i] >= 1 for i in ids)
        sent_times = [r.sent_at for r in final if r.sent_at is not None]
        print()
        print(f"SMTP refused every message (421) for {minutes} min of the clock "
              f"({minutes / 60:.1f} h); {rows} reminders due at its start; production retry "
              "settings (10 s doubling to 5 min, 24 h horizon); one dispatcher run a minute")
        print(f"attempts per row during the outage: min {min(attempts)}, max {max(attempts)} "
              f"({refused} refusals in all); failed during it: {failed_during}")
        if sent_times:
            last = max(sent_times) - (start + timedelta(minutes=back))
            print(f"after the server answered again: delivered {delivered}/{rows} "
                  f"(received twice: {sum(c > 1 for c in counts.values())}), the last "
                  f"{last.total_seconds() / 60:.1f} min after it came back")
        failed = [r for r in final if r.status.value == "failed"]
        if failed:
            print(f"failed: {len(failed)}, e.g. {failed[0].last_error[:120]}")
        return delivered + len(failed) == rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    kills = sub.add_parser("kills", help="kill workers while they send")
    kills.add_argument("--kills", type=int, default=19)
    kills.add_argument("--rows", type=int, default=200, help="due reminders per round")
    kills.add_argument("--concurrency", type=int, default=2)
    kills.add_argument("--seed", type=int, default=7, help="of the random kill moments")
    outage = sub.add_parser("outage", help="an SMTP server refusing for a while")
    outage.add_argument("--minutes", type=int, default=360)
    outage.add_argument("--rows", type=int, default=120)
    for command in (kills, outage):
        command.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    args = parser.parse_args(argv)
    if args.what == "kills":
        ok = run_kills(kills=args.kills, rows=args.rows, concurrency=args.concurrency,
                       db=args.db, seed_value=args.seed)
    else:
        ok = run_outage(minutes=args.minutes, rows=args.rows, db=args.db)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
