"""Who may use the web view: the listening policy, and HTTP basic
authentication against a file of scrypt-hashed passwords.

Standard library only (``news-monitor web passwd`` needs no web server).
The file holds one ``user:scrypt$n$r$p$salt$hash`` line per user (base64
salt and hash); lines starting with ``#`` are comments. Without the file the
view listens on loopback only (:func:`listen_problem`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

__all__ = ["ScryptParams", "check_password", "hash_password", "is_loopback",
           "listen_problem", "read_passwords", "set_password"]

# scrypt's cost: 16 MiB of memory and ~50 ms a check (OWASP's minimum is
# n=2**17 with r=8; n=2**14 keeps a check cheap on a 2-core box, and every
# successful check is cached per connection credentials in the app).
N, R, P = 2 ** 14, 8, 1
ScryptParams = tuple[int, int, int]


def hash_password(password: str, *, params: ScryptParams = (N, R, P)) -> str:
    n, r, p = params
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return (f"scrypt${n}${r}${p}${base64.b64encode(salt).decode()}$"
            f"{base64.b64encode(digest).decode()}")


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` is the one ``stored`` (a :func:`hash_password` string) hashes."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n),
                             r=int(r), p=int(p), dklen=len(want))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def read_passwords(path: Path) -> dict[str, str]:
    """The users of a password file and their hashes. Raises OSError; a line
    that is no ``user:hash`` raises ValueError naming its line."""
    users: dict[str, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, stored = line.partition(":")
        if not sep or not user or not stored.startswith("scrypt$"):
            raise ValueError(f"{path}:{n}: not a user:scrypt$... line")
        users[user] = stored
    return users


def set_password(path: Path, user: str, password: str) -> bool:
    """Add ``user`` to the file, or change their password; True when the user
    is new. The file is rewritten whole (mode 0600) and replaced atomically."""
    if not user or ":" in user or any(c.isspace() for c in user):
        raise ValueError(f"{user!r}: a user name has no colon and no space")
    users: Mapping[str, str] = read_passwords(path) if path.exists() else {}
    new = user not in users
    lines = [f"{u}:{h}" for u, h in users.items() if u != user]
    lines.append(f"{user}:{hash_password(password)}")
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("# news-monitor web view users: `news-monitor web passwd USER` edits this\n")
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return new


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen_problem(host: str, port: int, authenticated: bool) -> str | None:
    """Why the view may not listen at ``host:port``, or None: without
    authentication, only a loopback address is allowed."""
    if authenticated or is_loopback(host):
        return None
    return (f"refusing to serve the web view on {host}:{port} without authentication: "
            "anyone who can reach it could read the hits and change silences. Listen on "
            "127.0.0.1 (or [::1]), or set [web] passwords to a file made with "
            "`news-monitor web passwd USER`")
