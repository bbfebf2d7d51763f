"""Delivery: how notification rows become e-mails (what they say is ``mdt.notifications``).

The protocol, end to end:

1. A change commits a ``pending`` row with a due time (``services``).
2. The dispatcher (beat, every minute; one at a time under a database lease)
   puts back to ``pending`` the rows whose worker died while ``sending``, then
   publishes one deliver task per chunk of ``pending`` rows whose next attempt
   is due (``NOTIFY_DELIVER_BATCH``) and leases them (``lease_expires_at``)
   so that they are not published again while they wait in the queue. If the broker
   is down, nothing is stamped and the next run retries.
3. The deliver task holds its rows (their lease becomes the claim lease,
   sized to the mail timeout) and takes them one by one: it claims each with
   a conditional UPDATE (pending → sending) and goes on only if it won, so a
   task delivered twice sends once. It renders, sends, and marks the row
   ``sent``; on a transient error it puts that row back to ``pending`` with
   the time of its next attempt (``retry``: held in the database, published
   by the dispatcher like any due row, never a countdown); past the retry
   horizon (24 h) the row is ``failed``, for a coordinator to resend. Rows of one task share
   the meeting, agenda and SMTP connection, never a claim or an outcome. A
   worker that dies leaves its rows to the dispatcher once their lease passes.

Unlike every other feature's services, delivery commits, per row and per
step: the claim must be durable before the message leaves, and the outcome
the moment the server accepted it; only a crash in between (milliseconds)
can send a message twice. So it runs only in worker tasks and
CLI commands, never in a web request (the operator page's resend is the one
exception, and it only flushes, like any service).

Modules: ``dispatcher`` (the lease and the dispatcher pass), ``services``
(claim, render, send, record), ``retry`` (when to try again, when to give
up), ``operations`` (status, retries, resend, for the
operator page ``views`` and the CLI ``cli``), ``mail`` (file and SMTP
backends), ``broker`` (publishing by task name), ``models`` (dispatcher runs,
leases).
"""
