"""The web view's pages and JSON API, as one Starlette application.

Reads through :class:`~monitor.store.Store` and :mod:`monitor.status`; the
only writes are the operator's (feedback, silences, retries), each one Store
call. Every endpoint is a plain function Starlette runs in its thread pool
(the Store blocks). Templates are Jinja2 with autoescaping on: every stored
text is escaped, and links go through :func:`monitor.highlight.safe_url`.

Safety, per request (:func:`_guard`): HTTP basic authentication when a password
file is given; a write only by POST from the same origin (``Sec-Fetch-Site``,
else ``Origin``, must name this site: a cross-site form or fetch is refused,
and the API takes JSON only, which no cross-site form can send); and headers
that make the pages inert elsewhere (CSP ``script-src 'self'``, no framing).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jinja2
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from monitor import status as statusdoc
from monitor import timespec
from monitor.digest import story_entry
from monitor.errors import MonitorError
from monitor.highlight import Span, highlight, safe_url, snippet
from monitor.models import StoredHit
from monitor.text import strip_control
from monitor.timespec import parse_duration
from monitor.web.auth import check_password

if TYPE_CHECKING:
    from monitor.match import Matcher
    from monitor.rules import Rule, RuleSet
    from monitor.settings import Settings
    from monitor.store import Store

__all__ = ["BACKTEST_ITEMS", "PAGE", "Source", "View", "create_app"]

log = logging.getLogger("monitor.web")
HERE = Path(__file__).resolve().parent
PAGE = 50  # stories a page
#: Hits read for a page of stories, at most, per story: a story's hits beyond
#: them (a story of many reports) are listed on the next page under it again.
SPREAD = 4
MAX_PAGE = 500  # the API's largest limit
BACKTEST_ITEMS = 1000  # the rule page's backtest: over the newest stored items (~0.1 s)
#: /feeds shows a status document at most this old: counting a million items
#: per feed takes ~0.8 s, so it is refreshed in the background, never in a request
#: but the first.
FEEDS_TTL = 30.0
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
           "Cache-Control": "no-store"}


@dataclass(frozen=True)
class View:
    """What a request reads: the configuration and rules in force, and the store."""

    settings: Settings
    rules: RuleSet
    store: Store


#: The daemon's is its current settings, rules and store (a reload replaces them).
Source = Callable[[], View]


class _Matchers:
    """One compiled :class:`Matcher` per rule set (compiling costs ~0.1 s)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: RuleSet | None = None
        self._matcher: Matcher | None = None

    def get(self, rules: RuleSet) -> Matcher:
        from monitor.match import Matcher

        with self._lock:
            if self._key is not rules or self._matcher is None:
                self._key, self._matcher = rules, Matcher(rules)
            return self._matcher


class _Stale:
    """One value, recomputed in a background thread once older than ``ttl``
    seconds, the old one served meanwhile (stale-while-revalidate)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._value: Any = None
        self._at = 0.0
        self._key: object = None
        self._busy = False

    def get(self, key: object, compute: Callable[[], Any]) -> tuple[Any, float]:
        """The value and when it was computed (``time.time()``)."""
        import time

        with self._lock:
            fresh = self._key == key and time.monotonic() - self._at < self.ttl
            have = self._key == key and self._value is not None
            if have and (fresh or self._busy):
                return self._value, self._wall
            if have:
                self._busy = True
        if not have:  # the first request (or another store): computed now
            return self._refresh(key, compute)

        def refresh() -> None:
            try:
                self._refresh(key, compute)
            except Exception:  # the next request tries again (and shows the error)
                pass
            finally:
                with self._lock:
                    self._busy = False

        threading.Thread(target=refresh, daemon=True, name="web-refresh").start()
        return self._value, self._wall

    def _refresh(self, key: object, compute: Callable[[], Any]) -> tuple[Any, float]:
        import time

        value = compute()
        with self._lock:
            self._key, self._value, self._at, self._wall = key, value, time.monotonic(), time.time()
            return value, self._wall

    _wall = 0.0


class _Users:
    """HTTP basic authentication against the hashed passwords; a successful
    check is remembered (by a hash of the credentials) so that scrypt runs once
    per user and password, not once per request."""

    def __init__(self, users: Mapping[str, str] | None) -> None:
        self.users = dict(users) if users is not None else None
        self._ok: set[bytes] = set()
        self._lock = threading.Lock()

    def who(self, header: str | None) -> str | None:
        """The user the Authorization header proves, else None."""
        import base64
        import binascii

        if self.users is None or not header or not header.lower().startswith("basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        stored = self.users.get(user)
        if stored is None:
            return None
        key = hashlib.sha256(f"{user}\0{password}\0{stored}".encode()).digest()
        with self._lock:
            if key in self._ok:
                return user
        if not check_password(password, stored):
            return None
        with self._lock:
            if len(self._ok) > 1000:
                self._ok.clear()
            self._ok.add(key)
        return user


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined,
                             finalize=_finalize)
    env.filters["when"] = _when
    env.filters["safe_url"] = safe_url
    env.filters["pct"] = lambda x: "–" if x is None else f"{100 * x:.0f}%"
    return env


def _finalize(value: Any) -> Any:
    """Feed text may carry control characters: none reaches a page. (Markup, a
    macro's or a filter's output, was built from values that passed here.)"""
    if isinstance(value, str) and not isinstance(value, Markup):
        return strip_control(value)
    return value


def _when(value: datetime | str | None) -> str:
    """A time as pages show it: UTC, to the minute."""
    if value is None:
        return "–"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


class Problem(Exception):
    """A request the view refuses: its status and message, shown as a page or JSON."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def parse_since(text: str | None) -> datetime | None:
    """``2d`` back from now, or an ISO date/time (UTC unless it says otherwise)."""
    if not text:
        return None
    try:
        return timespec.parse_since(text)
    except ValueError:
        raise Problem(400, f"since {text!r} is neither a duration such as 2d nor an ISO "
                           "date") from None


def _int(value: str | None, name: str, *, default: int | None = None) -> int | None:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise Problem(400, f"{name} {value!r} is not a number") from None


def marked(h: StoredHit, field: str, *, limit: int | None = None) -> tuple[Span, ...]:
    """A field of a hit's item with the rule's evidence in it marked."""
    text = h.title if field == "title" else h.summary
    spans = [(e.start, e.end) for e in h.evidence if e.field == field]
    return highlight(text, spans, limit=limit)


def create_app(source: Source, *, users: Mapping[str, str] | None = None) -> Starlette:
    """The web view over what ``source`` gives; ``users`` (user → hash, see
    :mod:`monitor.web.auth`) turns authentication on."""
    env = _environment()
    matchers = _Matchers()
    feeds_doc = _Stale(FEEDS_TTL)
    auth = _Users(users)

    def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = env.get_template(name).render(request=request, nav=name.split(".")[0],
                                             path=request.url.path, **context)
        return HTMLResponse(html, status_code=status)

    def endpoint(fn: Callable[[Request, View], Response], *, api: bool = False
                 ) -> Callable[[Request], Response]:
        def run(request: Request) -> Response:
            try:
                who = _guard(request, auth)
                request.state.who = who
                response = fn(request, source())
            except Problem as e:
                response = (JSONResponse({"error": e.message}, status_code=e.status) if api
                            else render(request, "error.html", e.status, message=e.message))
                if e.status == 401:
                    response.headers["WWW-Authenticate"] = 'Basic realm="news-monitor"'
            except MonitorError as e:  # the store failed: say so, keep serving
                message = f"the store failed: {e}"
                response = (JSONResponse({"error": message}, status_code=503) if api
                            else render(request, "error.html", 503, message=message))
            except Exception:
                log.exception("%s %s", request.method, request.url.path)
                message = "internal error (the log says more)"
                response = (JSONResponse({"error": message}, status_code=500) if api
                            else render(request, "error.html", 500, message=message))
            response.headers.update(HEADERS)
            return response
        return run

    def hit_filters(request: Request, view: View) -> dict[str, Any]:
        qp = request.query_params
        rule, desk = qp.get("rule") or None, qp.get("desk") or None
        rule_ids: list[str] | None = None
        if desk:
            d = view.settings.desk(desk)
            if d is None:
                raise Problem(404, f"no desk {desk!r}")
            rule_ids = list(view.rules.ids) if "*" in d.rules else list(d.rules)
        if rule:
            rule_ids = [rule] if rule_ids is None or rule in rule_ids else []
        return {"rule_ids": rule_ids, "q": qp.get("q") or None,
                "since": parse_since(qp.get("since")),
                "before": _int(qp.get("before"), "before")}

    def index(request: Request, view: View) -> Response:
        # Stories, newest first, each once on a page under its strongest report
        # (as a digest lists it): the page's hits, grouped by their story.
        query = hit_filters(request, view)
        hits = view.store.search_hits(**query, limit=PAGE * SPREAD + 1)
        window = hits[:PAGE * SPREAD]
        groups: dict[int, list[StoredHit]] = {}
        shown = 0  # the page's hits: those before the first hit of the next page's story
        for h in window:
            key = h.story if h.story is not None else -h.item_id
            if key not in groups:
                if len(groups) == PAGE:
                    break
                groups[key] = []
            groups[key].append(h)
            shown += 1
        more = shown < len(hits)
        keep = {k: v for k, v in request.query_params.items() if k != "before" and v}
        older = (f"/?{urlencode({**keep, 'before': window[shown - 1].id})}"
                 if more and shown else None)
        sizes = view.store.story_sizes(k for k in groups if k > 0)
        titles = {r.id: r.title for r in view.rules.rules}
        rows = []
        for key, group in groups.items():
            story = story_entry(group, titles)
            lead = story.lead
            rows.append({
                "story": story, "hit": lead,
                "reports": sizes.get(key, 1), "rules": sorted({h.rule_id for h in group}),
                "newest": max(h.matched_at for h in group),
                "snippet": snippet(lead.summary, [(e.start, e.end) for e in lead.evidence
                                                  if e.field == "summary"], 200)})
        return render(request, "index.html", rows=rows, older=older, filters=keep,
                      rules=view.rules.rules, desks=view.settings.desks)

    def hit_page(request: Request, view: View) -> Response:
        h = _hit(request, view)
        rule = view.rules.get(h.rule_id)
        return render(request, "hit.html", hit=h, rule=rule, title=marked(h, "title"),
                      summary=marked(h, "summary"), link=safe_url(h.link),
                      story=view.store.story_hits(h),
                      deliveries=view.store.hit_deliveries(h.id),
                      history=view.store.feedback_history(h.id))

    def hit_feedback(request: Request, view: View) -> Response:
        h = _hit(request, view)
        verdict = _form(request).get("verdict", "")
        if verdict not in ("relevant", "noise"):
            raise Problem(400, "verdict must be relevant or noise")
        view.store.add_feedback(h.id, verdict, request.state.who)
        h = _hit(request, view)
        if request.headers.get("HX-Request"):
            return render(request, "_feedback.html", hit=h,
                          history=view.store.feedback_history(h.id))
        return RedirectResponse(f"/hits/{h.id}", status_code=303)

    def feeds_page(request: Request, view: View) -> Response:
        def page() -> str:  # the document and its page: 1,000 feeds take ~0.1 s to render
            doc = statusdoc.status_document(view.settings, view.store)
            return env.get_template("feeds.html").render(
                request=request, nav="feeds", path="/feeds", doc=doc, at=datetime.now(UTC))

        html, _ = feeds_doc.get((id(view.settings), id(view.store)), page)  # reload: anew
        return HTMLResponse(html)

    def rules_page(request: Request, view: View) -> Response:
        rows = []
        for r in view.rules.rules:
            c = view.store.feedback_counts(r.id)
            judged = c["relevant"] + c["noise"]
            rows.append({"rule": r, "counts": c,
                         "precision": c["relevant"] / judged if judged else None})
        return render(request, "rules.html", rows=rows)

    def rule_page(request: Request, view: View) -> Response:
        rule = _rule(request, view)
        counts = view.store.feedback_counts(rule.id)
        judged = counts["relevant"] + counts["noise"]
        return render(request, "rule.html", rule=rule, counts=counts,
                      precision=counts["relevant"] / judged if judged else None,
                      recent=view.store.search_hits(rule_ids=[rule.id], limit=20),
                      noise=view.store.judged_hits(rule_id=rule.id, verdict="noise", limit=20),
                      backtest_items=BACKTEST_ITEMS)

    def rule_test(request: Request, view: View) -> Response:
        from monitor.evaluate import explain_lines

        rule = _rule(request, view)
        form = _form(request)
        title, summary = form.get("title", ""), form.get("summary", "")
        why = matchers.get(view.rules).explain(rule.id, title, summary)
        return render(request, "_explain.html", lines=explain_lines(why, rule),
                      matched=why.matched, rule=rule, title=title, summary=summary,
                      fragment=bool(request.headers.get("HX-Request")))

    def rule_backtest(request: Request, view: View) -> Response:
        from monitor.evaluate import backtest

        rule = _rule(request, view)
        from monitor.rules import RuleSet

        items = view.store.recent_items(BACKTEST_ITEMS)
        by_key = {(r["guid"], r["feed"]): r["id"] for r in items}
        oldest = min((r["id"] for r in items), default=0)
        deployed = view.store.rule_hit_keys(rule.id, oldest)
        one = RuleSet((rule,))
        result = backtest(matchers.get(one), reversed(items), deployed & set(by_key))
        return render(request, "_backtest.html", rule=rule, result=result,
                      fragment=bool(request.headers.get("HX-Request")))

    def silences_page(request: Request, view: View) -> Response:
        now = datetime.now(UTC)
        return render(request, "silences.html", silences=view.store.list_silences(active_at=now),
                      rules=view.rules.rules, desks=view.settings.desks)

    def silence_window(view: View, data: Mapping[str, str]) -> tuple[str, str | None, float]:
        rule, desk = data.get("rule", ""), data.get("desk") or None
        if view.rules.get(rule) is None:
            raise Problem(400, f"no rule {rule!r}")
        if desk is not None and view.settings.desk(desk) is None:
            raise Problem(400, f"no desk {desk!r}")
        try:
            seconds = parse_duration(data.get("for", "") or "1d")
        except ValueError:
            raise Problem(400, f"for {data.get('for')!r} is not a duration such as 2h") from None
        return rule, desk, seconds

    def silence_preview(request: Request, view: View) -> Response:
        rule, desk, seconds = silence_window(view, request.query_params)
        since = datetime.now(UTC) - timedelta(seconds=seconds)
        count = view.store.count_hits(rule_id=rule, since=since)
        recent = view.store.search_hits(rule_ids=[rule], since=since, limit=20)
        return render(request, "_preview.html", rule=rule, desk=desk, count=count,
                      recent=recent, window=request.query_params.get("for") or "1d",
                      fragment=bool(request.headers.get("HX-Request")))

    def silence_add(request: Request, view: View) -> Response:
        form = _form(request)
        rule, desk, seconds = silence_window(view, form)
        who = request.state.who or "?"
        reason = form.get("reason", "").strip() or f"from the web view by {who}"
        view.store.add_silence(rule, desk, datetime.now(UTC) + timedelta(seconds=seconds),
                               reason[:500])
        return RedirectResponse("/silences", status_code=303)

    def silence_remove(request: Request, view: View) -> Response:
        silence_id = _int(request.path_params["id"], "silence")
        if not view.store.remove_silence(silence_id or 0):
            raise Problem(404, f"no active silence {silence_id}")
        return RedirectResponse("/silences", status_code=303)

    def deliveries_page(request: Request, view: View) -> Response:
        failed = view.store.list_deliveries(states=["failed"], limit=100)
        pending = view.store.list_deliveries(states=["pending"], limit=100)
        return render(request, "deliveries.html", failed=failed, pending=pending,
                      requeued=request.query_params.get("requeued"))

    def delivery_retry(request: Request, view: View) -> Response:
        raw = request.path_params.get("id")
        ids = None if raw is None else [_int(raw, "delivery") or 0]
        done = view.store.requeue_failed(ids)
        if ids is not None and not done:
            raise Problem(404, f"no failed delivery {raw}")
        return RedirectResponse(f"/deliveries?requeued={len(done)}", status_code=303)

    def api_hits(request: Request, view: View) -> Response:
        query = hit_filters(request, view)
        limit = _int(request.query_params.get("limit"), "limit", default=PAGE) or 0
        hits = view.store.search_hits(**query, limit=max(0, min(limit, MAX_PAGE)))
        body = "".join(json.dumps(statusdoc.hit_object(h), ensure_ascii=False) + "\n"
                       for h in hits)
        if request.query_params.get("format") == "jsonl":
            return Response(body, media_type="application/x-ndjson; charset=utf-8")
        return JSONResponse([statusdoc.hit_object(h) for h in hits])

    def api_feedback(request: Request, view: View) -> Response:
        h = _hit(request, view)
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise Problem(415, "send JSON: {\"verdict\": \"relevant\" | \"noise\"}")
        try:
            data = json.loads(request.scope.get("news_monitor.body") or b"null")
        except ValueError:
            raise Problem(400, "the body is not JSON") from None
        verdict = data.get("verdict") if isinstance(data, dict) else None
        if verdict not in ("relevant", "noise"):
            raise Problem(400, "verdict must be \"relevant\" or \"noise\"")
        view.store.add_feedback(h.id, verdict, request.state.who)
        return JSONResponse(statusdoc.hit_object(_hit(request, view)))

    def not_found(request: Request, view: View) -> Response:
        raise Problem(404, f"nothing at {request.url.path}")

    routes = [
        Route("/", endpoint(index)),
        Route("/hits/{id}", endpoint(hit_page)),
        Route("/hits/{id}/feedback", endpoint(hit_feedback), methods=["POST"]),
        Route("/feeds", endpoint(feeds_page)),
        Route("/rules", endpoint(rules_page)),
        Route("/rules/{id}", endpoint(rule_page)),
        Route("/rules/{id}/test", endpoint(rule_test), methods=["POST"]),
        Route("/rules/{id}/backtest", endpoint(rule_backtest), methods=["POST"]),
        Route("/silences", endpoint(silences_page)),
        Route("/silences", endpoint(silence_add), methods=["POST"]),
        Route("/silences/preview", endpoint(silence_preview)),
        Route("/silences/{id}/remove", endpoint(silence_remove), methods=["POST"]),
        Route("/deliveries", endpoint(deliveries_page)),
        Route("/deliveries/retry", endpoint(delivery_retry), methods=["POST"]),
        Route("/deliveries/{id}/retry", endpoint(delivery_retry), methods=["POST"]),
        Route("/favicon.ico", lambda request: Response(status_code=204, headers=HEADERS)),
        Route("/api/hits", endpoint(api_hits, api=True)),
        Route("/api/hits/{id}/feedback", endpoint(api_feedback, api=True), methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes)
    app.add_middleware(_BodyMiddleware)
    fallback = endpoint(not_found)

    async def missing(request: Request, exc: Exception) -> Response:
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(fallback, request)

    app.add_exception_handler(404, missing)
    app.add_exception_handler(405, missing)
    return app


class _BodyMiddleware:
    """Reads a POST's body (at most 64 KiB) before the endpoint runs in its
    thread, where ``await request.body()`` is not available."""

    LIMIT = 64 * 1024

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.LIMIT:
                response = JSONResponse({"error": "request too large"}, status_code=413)
                await response(scope, receive, send)
                return
        scope["news_monitor.body"] = body

        async def replay() -> Any:
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def _guard(request: Request, users: _Users) -> str | None:
    """Authentication, and the same-origin rule for writes; the user's name."""
    who = users.who(request.headers.get("authorization"))
    if users.users is not None and who is None:
        raise Problem(401, "sign in: this web view needs a user name and password")
    if request.method == "POST":
        # Browsers send Sec-Fetch-Site with every request (the last ones since
        # 2023); older ones an Origin on every POST. Tools send neither.
        site = request.headers.get("sec-fetch-site")
        origin = request.headers.get("origin")
        if site is not None:
            if site not in ("same-origin", "none"):
                raise Problem(403, f"a write from another site ({site}) is refused")
        elif origin == "null":
            raise Problem(403, "a write from an opaque origin is refused")
        elif origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
            raise Problem(403, f"a write from another origin ({origin}) is refused")
    return who


def _form(request: Request) -> dict[str, str]:
    """An url-encoded form's fields (the last of each name)."""
    body: bytes = request.scope.get("news_monitor.body") or b""
    return {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


def _hit(request: Request, view: View) -> StoredHit:
    hit_id = _int(request.path_params["id"], "hit")
    h = view.store.get_hit(hit_id or 0)
    if h is None:
        raise Problem(404, f"no hit {hit_id}")
    return h


def _rule(request: Request, view: View) -> Rule:
    rule = view.rules.get(request.path_params["id"])
    if rule is None:
        raise Problem(404, f"no rule {request.path_params['id']!r}")
    return rule

