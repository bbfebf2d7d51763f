"""Sessions: whose a cookie is, how long it lives, and how it ends.

- **Identity.** The session and the remember-me cookie carry the Flask-Login id
  ``"<user id>:<session generation>:<signed in at>"`` (``User.get_id``).
  ``load_user`` refuses a generation other than the user's current one, so
  raising it (``auth.services.end_sessions``: sign-out, a password change or
  reset, deactivation, an administrator's "sign out everywhere") ends every
  session and remember-me cookie of that person at once, copies included.
- **Remember me** lasts ``MDT_REMEMBER_DAYS`` (``REMEMBER_COOKIE_DURATION``),
  counted by the server from the sign-in time in the cookie, not only by the
  browser's expiry date; ``0`` turns "Keep me signed in" off.
- **Idle timeout.** ``session["_last_seen"]`` is refreshed by each request; a
  session idle for ``MDT_IDLE_TIMEOUT_MINUTES`` is signed out at its next
  request (``enforce_limits``) and sent to the sign-in page with the page to
  return to. A remember-me cookie restores a sign-in after the browser was
  closed, and starts a new idle period.
- **Sign-in** starts from an empty session with a new CSRF token; **sign-out**
  empties the session and drops the remember-me cookie.
"""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import current_app, flash, g, redirect, request, session, url_for
from flask_login import current_user, login_user, logout_user
from flask_login.utils import decode_cookie
from flask_wtf.csrf import generate_csrf
from werkzeug.wrappers import Response

from mdt import clock
from mdt.auth.models import User
from mdt.extensions import db

#: Session key: when the session last made a request (epoch seconds, app clock).
LAST_SEEN = "_last_seen"
#: Ids longer than this are not ids (and would overflow a 64-bit column).
_MAX_DIGITS = 18


def parse_session_id(value: str | None) -> tuple[int, int, int] | None:
    """Return ``(user id, generation, signed in at)`` of a Flask-Login id; None if malformed."""
    parts = (value or "").split(":")
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() and len(p) <= _MAX_DIGITS
                                  for p in parts):
        return None
    user_id, generation, signed_in = (int(p) for p in parts)
    return user_id, generation, signed_in


def load_user(session_id: str) -> User | None:
    """Return the user of a session or remember-me cookie, unless it was ended or they left."""
    parsed = parse_session_id(session_id)
    if parsed is None:
        return None
    user = db.session.get(User, parsed[0])
    if user is None or not user.is_active or user.session_generation != parsed[1]:
        return None
    return user


def remember_lifetime() -> timedelta:
    """Return how long "Keep me signed in" lasts (zero: not offered)."""
    duration = current_app.config["REMEMBER_COOKIE_DURATION"]
    return duration if isinstance(duration, timedelta) else timedelta(seconds=duration)


def idle_timeout() -> timedelta:
    """Return how long a session may go without a request before it is signed out."""
    return timedelta(minutes=current_app.config["IDLE_TIMEOUT_MINUTES"])


def sign_in(user: User, *, remember: bool) -> None:
    """Start a session for ``user``: nothing kept from before, a new CSRF token."""
    remember = remember and remember_lifetime() > timedelta(0)
    had_cookie = _remember_cookie_name() in request.cookies
    session.clear()
    login_user(user, remember=remember)
    if had_cookie and not remember:
        session["_remember"] = "clear"  # someone else's, or an older one: drop it
    session[LAST_SEEN] = clock.now().timestamp()
    rotate_csrf_token()


def sign_out() -> None:
    """End this browser's session: empty it and drop the remember-me cookie."""
    logout_user()
    drop_cookie = session.get("_remember")  # set by logout_user when there is a cookie
    session.clear()
    if drop_cookie:
        session["_remember"] = drop_cookie


def rotate_csrf_token() -> None:
    """Replace the session's CSRF token, so a token seen before sign-in no longer works."""
    name = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    session.pop(name, None)
    g.pop(name, None)
    generate_csrf()


def enforce_limits() -> Response | None:
    """Apply the idle timeout and the remember-me lifetime before a view runs.

    Returns the redirect to the sign-in page for a session that was idle too long
    (with a message and ``next`` back to the page), else None and marks the session
    as seen now.
    """
    if request.endpoint == "static":
        return None
    _refuse_expired_remember_cookie()
    if _is_idle():
        target = return_path()
        sign_out()
        minutes = current_app.config["IDLE_TIMEOUT_MINUTES"]
        flash(f"You were signed out after {minutes} minutes without activity. Sign in to "
              "continue where you were.", "info")
        return redirect(url_for("auth.login", next=target))
    if current_user.is_authenticated:
        session[LAST_SEEN] = clock.now().timestamp()
    elif _remember_cookie_name() in request.cookies:
        session["_remember"] = "clear"  # a cookie that no longer signs anyone in
    return None


def _is_idle() -> bool:
    if "_user_id" not in session:
        return False
    last_seen = session.get(LAST_SEEN)
    if not isinstance(last_seen, (int, float)):
        return False
    return clock.now().timestamp() - last_seen > idle_timeout().total_seconds()


def _refuse_expired_remember_cookie() -> None:
    """Have Flask-Login ignore, and the browser drop, a remember-me cookie past its lifetime."""
    cookie = request.cookies.get(_remember_cookie_name())
    if "_user_id" in session or not cookie:
        return
    parsed = parse_session_id(decode_cookie(cookie))
    lifetime = remember_lifetime().total_seconds()
    if parsed is None or clock.now().timestamp() - parsed[2] > lifetime:
        session["_remember"] = "clear"


def _remember_cookie_name() -> str:
    return current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")


def safe_next(target: str | None) -> str | None:
    """Return ``target`` if it is a path on this site, else None (no open redirect).

    Refused: a scheme or host, ``//`` and ``/\\`` (which browsers read as a host),
    and control characters (header injection; browsers drop tabs and newlines).
    """
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    if "\\" in target or any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return None
    parts = urlsplit(target)
    return None if parts.scheme or parts.netloc else target


def return_path() -> str | None:
    """Return the page to come back to after signing in again: this one, or the referring page.

    A GET returns to itself; a form post to the page the form was on (the
    ``Referer``, when it is this site), since the post itself cannot be replayed.
    """
    if request.method in ("GET", "HEAD"):
        query = request.query_string.decode("latin-1")
        return safe_next(request.path + (f"?{query}" if query else ""))
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc != request.host:
        return None
    return safe_next(referrer.path + (f"?{referrer.query}" if referrer.query else ""))
