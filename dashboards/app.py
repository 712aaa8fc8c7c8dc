"""`mixline dashboard`: a read-only local web UI over the store.

Design for readers during writes: DuckDB lets one process hold a store file open for writing
and no other process open it meanwhile, and a reader that kept the file open would block the
next writer. So the server holds no connection: each request opens the store read-only and
closes it. When a run holds the store, the open falls back to the read snapshot that the last
committed run published beside it (see `mixline.store.store`), and every page says which run
its data reflects and whether a run is in progress. Aggregates for the overview are cached per
data version (the newest run), so the expensive scans run once per committed run, not per view.

Security: it binds to 127.0.0.1 unless told otherwise (and warns then); templates autoescape
every value (web text holds HTML and script), sample text is the scrubbed text `trace` shows,
routes take no SQL and bind every parameter, and there is no write endpoint: only GET and HEAD.
Every request must name this server in its Host header (127.0.0.1, localhost, [::1], the bound
address, or a name given with --allowed-host, each with the port): otherwise a web page the user
visits could point its own domain at 127.0.0.1 (DNS rebinding) and read the pages as same-origin.
Every asset is served from this process: plotly.js from the plotly wheel, and our own CSS and JS.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from mixline.dashboards import charts, data
from mixline.store.store import Store
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from mixline.errors import ConfigError, MixlineError, NotFoundError, safe_message

HERE = Path(__file__).parent
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
           "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
WILDCARD_BINDS = {"0.0.0.0", "::", ""}


def split_host(value: str) -> tuple[str, int | None]:
    """A Host header (or --allowed-host value) as (lowercase name, port or None): `[::1]:8765` -> ('::1', 8765)."""
    value = value.strip().lower()
    if value.startswith("["):
        name, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"malformed host {value!r}")
        port_text = rest[1:]
    elif value.count(":") > 1:  # a bare IPv6 address, as --allowed-host may be given
        name, port_text = value, ""
    else:
        name, _, port_text = value.partition(":")
    if not name or (port_text and not port_text.isdigit()):
        raise ValueError(f"malformed host {value!r}")
    return name.rstrip("."), (int(port_text) if port_text else None)


class HostCheck:
    """ASGI middleware: answer 400 to any request whose Host is not one of ours (DNS rebinding).

    `allowed` holds names (`localhost`) or name:port pairs (`dash.internal:443`, for a proxy that
    forwards its own Host). A bare name must come with the server's own port when `port` is known.
    """

    def __init__(self, app: ASGIApp, names: set[str], pairs: set[tuple[str, int]], port: int | None) -> None:
        self.app, self.names, self.pairs, self.port = app, names, pairs, port
        self.state = getattr(app, "state", None)  # the Starlette app's state (its Dashboard), for callers

    def allows(self, header: str) -> bool:
        try:
            name, port = split_host(header)
        except ValueError:
            return False
        if port is not None and (name, port) in self.pairs:
            return True
        if name not in self.names:
            return False
        if self.port is None:  # embedded (a test client): the name is enough
            return True
        return port == self.port or (port is None and self.port == 80)

    def shown(self) -> str:
        names = sorted(f"[{n}]" if ":" in n else n for n in self.names)
        where = [f"{n}:{self.port}" for n in names] if self.port is not None else names
        return ", ".join(where + sorted(f"[{n}]:{p}" if ":" in n else f"{n}:{p}" for n, p in self.pairs))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        hosts = [v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"]
        if len(hosts) == 1 and self.allows(hosts[0]):
            await self.app(scope, receive, send)
            return
        given = "no Host header" if not hosts else ("several Host headers" if len(hosts) > 1 else f"Host {hosts[0][:100]!r}")
        body = (f"400 Bad Request: {given} is not this dashboard's (it answers {self.shown()}); "
                "to serve it under another name, start it with --allowed-host NAME\n").encode()
        await send({"type": "http.response.start", "status": 400,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
                                *((k.lower().encode(), v.encode()) for k, v in HEADERS.items())]})
        await send({"type": "http.response.body", "body": body})


def host_check(host: str, allowed_hosts: tuple[str, ...] | list[str], port: int | None) -> tuple[set[str], set[tuple[str, int]]]:
    """The names and name:port pairs a server bound to `host` answers to; raises ConfigError on a malformed one."""
    names = set(LOCAL_HOSTS)
    bound = host.strip().strip("[]").lower()
    if bound not in WILDCARD_BINDS:
        names.add(bound)
    pairs: set[tuple[str, int]] = set()
    for value in allowed_hosts:
        if value.strip() in ("*", ""):
            raise ConfigError(f"--allowed-host {value!r}: name each host the dashboard may be reached as; "
                              "a wildcard would let any web page read it through DNS rebinding")
        try:
            name, p = split_host(value)
        except ValueError as exc:
            raise ConfigError(f"--allowed-host {value!r}: {exc}; give a name or address, optionally with :PORT") from None
        if p is None:
            names.add(name)
        else:
            pairs.add((name, p))
    return names, pairs


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple | set):
        return [_jsonable(x) for x in v]
    if isinstance(v, float) and v != v:  # NaN is not JSON
        return None
    return v


@functools.lru_cache(maxsize=1)
def plotly_js() -> bytes:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().encode()


class Dashboard:
    def __init__(self, store_path: str | Path) -> None:
        self.store_path = str(store_path)
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                               trim_blocks=True, lstrip_blocks=True)
        self.env.filters["pct"] = lambda x: "-" if x is None else f"{100 * float(x):.1f}%"
        self.env.filters["num"] = lambda x: "-" if x is None else (f"{x:,}" if isinstance(x, int) else f"{float(x):,.3f}")
        self._cache: dict[tuple[str, Any], Any] = {}
        # Values that never change once computed: a committed run's funnel, a built mix, a diff.
        self._fixed: dict[tuple[str, ...], Any] = {}
        self._lock = threading.Lock()
        self.warmed = threading.Event()

    @contextlib.contextmanager
    def store(self) -> Iterator[Store]:
        st = Store(self.store_path, read_only=True)
        try:
            yield st
        finally:
            st.close()

    def cached(self, st: Store, name: str, fn: Callable[[], Any]) -> Any:
        """A value computed once per data version: the newest run, and which file (store or snapshot) was read."""
        version = (st.scalar("SELECT count(*) FROM runs"), str(st.scalar("SELECT max(coalesce(finished_at, started_at)) FROM runs")),
                   bool(st.snapshot))
        key = (name, version)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        value = fn()
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if k[0] != name}
            self._cache[key] = value
        return value

    # -- responses ------------------------------------------------------------------------------

    def page(self, request: Request, template: str, title: str, payload: dict[str, Any], st: Store, **extra: Any) -> Response:
        fresh = data.freshness(st)
        if request.url.path.startswith("/api/"):
            return JSONResponse(_jsonable({**payload, "freshness": fresh}), headers=HEADERS)
        html = self.env.get_template(template).render(title=title, d=payload, fresh=fresh, path=request.url.path,
                                                      charts=charts, **extra)
        return HTMLResponse(html, headers=HEADERS)

    def error(self, request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status, headers=HEADERS)
        html = self.env.get_template("error.html").render(title=f"error {status}", message=message, status=status,
                                                          fresh=None, path=request.url.path)
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    def view(self, fn: Callable[[Request, Store], Response]) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            try:
                with self.store() as st:
                    return fn(request, st)
            except NotFoundError as exc:
                return self.error(request, 404, str(exc))
            except (ConfigError, ValueError) as exc:
                return self.error(request, 400, safe_message(exc))
            except MixlineError as exc:
                return self.error(request, 503, str(exc))
            except Exception as exc:  # noqa: BLE001 - one clear line, never a traceback with data in it
                return self.error(request, 500, f"{type(exc).__name__}: {safe_message(exc)}")
        return endpoint

    def warm(self) -> None:
        try:
            with contextlib.suppress(Exception), self.store() as st:
                self.cached(st, "overview", lambda: data.overview(st))
                self.funnel(st)
        finally:
            self.warmed.set()

    # -- pages ----------------------------------------------------------------------------------

    def funnel(self, st: Store) -> list[dict[str, Any]]:
        """The funnel per curation run. A committed run's decisions never change, so each run's
        rows are computed once (the first view after it commits) and kept."""
        runs = data.curate_runs(st)
        missing = [r for r in runs if ("funnel", r) not in self._fixed]
        if missing:
            rows = data.funnel(st, missing)
            with self._lock:
                for r in missing:
                    self._fixed[("funnel", r)] = [x for x in rows if x["run_id"] == r]
        return [x for r in runs for x in self._fixed.get(("funnel", r), [])]

    def overview(self, request: Request, st: Store) -> Response:
        d = {**self.cached(st, "overview", lambda: data.overview(st)), "funnel": self.funnel(st)}
        return self.page(request, "overview.html", "Overview", d, st)

    def samples(self, request: Request, st: Store) -> Response:
        q = request.query_params
        page = int(q.get("page") or 1)
        d = data.search(st, q.get("q", "")[:200], q.get("kind", "")[:40], q.get("source", "")[:200], page)
        return self.page(request, "samples.html", "Samples", d, st)

    def sample(self, request: Request, st: Store) -> Response:
        d = data.sample(st, str(request.path_params["sample_id"])[:64])
        if request.url.path.startswith("/api/"):
            d = {k: v for k, v in d.items() if k != "svg"}
        return self.page(request, "sample.html", "Sample", d, st)

    def immutable(self, key: tuple[str, ...], fn: Callable[[], Any]) -> Any:
        """A value that never changes once computed: a mix's members are fixed when it is built."""
        with self._lock:
            if key in self._fixed:
                return self._fixed[key]
        value = fn()
        with self._lock:
            self._fixed[key] = value
        return value

    def mixes(self, request: Request, st: Store) -> Response:
        return self.page(request, "mixes.html", "Mixes", {"mixes": self.cached(st, "mixes", lambda: data.mixes(st)),
                                                          "searches": data.searches(st)}, st)

    def search(self, request: Request, st: Store) -> Response:
        return self.page(request, "search.html", "Mixture search", data.mix_search(st, str(request.path_params["ref"])[:200]), st)

    def mix(self, request: Request, st: Store) -> Response:
        from mixline.pipelines.mix import resolve_mix

        mix_id = resolve_mix(st, str(request.path_params["mix_id"])[:200])
        d = {**self.immutable(("mix", mix_id), lambda: data.mix(st, mix_id)),
             "models": st.rows("SELECT model_id, name FROM models WHERE mix_id = ? ORDER BY created_at", [mix_id])}
        return self.page(request, "mix.html", "Mix", d, st)

    def mix_diff(self, request: Request, st: Store) -> Response:
        from mixline.pipelines.mix import resolve_mix

        a, b = request.query_params.get("a", ""), request.query_params.get("b", "")
        if not a or not b:
            raise ConfigError("compare two mixes: /mixes/diff?a=MIX&b=MIX (ids, prefixes or names)")
        a, b = resolve_mix(st, a[:200]), resolve_mix(st, b[:200])
        return self.page(request, "mix_diff.html", "Mix diff", self.immutable(("diff", a, b), lambda: data.mix_diff(st, a, b)), st)

    def models(self, request: Request, st: Store) -> Response:
        return self.page(request, "models.html", "Models", {"models": data.models(st)}, st)

    def model(self, request: Request, st: Store) -> Response:
        return self.page(request, "model.html", "Model", data.model(st, str(request.path_params["model_id"])[:200]), st)

    def card(self, request: Request, st: Store) -> Response:
        from mixline.pipelines.model_card import card, render_md

        c = card(st, str(request.path_params["model_id"])[:200])
        if request.url.path.startswith("/api/"):
            return self.page(request, "card.html", "Provenance card", c, st)
        return self.page(request, "card.html", "Provenance card", {"card": c, "markdown": render_md(c)}, st)

    def classifiers(self, request: Request, st: Store) -> Response:
        return self.page(request, "classifiers.html", "Classifiers", {"classifiers": data.classifiers(st)}, st)

    def classifier(self, request: Request, st: Store) -> Response:
        return self.page(request, "classifier.html", "Classifier",
                         data.classifier(st, str(request.path_params["ref"])[:200]), st)

    def loops(self, request: Request, st: Store) -> Response:
        return self.page(request, "loops.html", "Loops", {"loops": data.loops(st)}, st)

    def loop(self, request: Request, st: Store) -> Response:
        return self.page(request, "loop.html", "Loop", data.loop(st, str(request.path_params["loop_id"])[:200]), st)

    def drift(self, request: Request, st: Store) -> Response:
        return self.page(request, "drift.html", "Drift", data.drift(st, request.query_params.get("subject", "")[:200]), st)

    def runs(self, request: Request, st: Store) -> Response:
        return self.page(request, "runs.html", "Runs", {"runs": data.runs(st)}, st)


def create_app(store_path: str | Path, *, host: str = "127.0.0.1", port: int | None = None,
               allowed_hosts: tuple[str, ...] | list[str] = ()) -> HostCheck:
    """The app for one store; every page has a JSON twin under /api/.

    It answers only requests whose Host header names it (see `HostCheck`): the local names, `host`,
    and `allowed_hosts`, with `port` when given (None: any port, for an embedded test client).
    """
    names, pairs = host_check(host, allowed_hosts, port)
    dash = Dashboard(store_path)
    pages: list[tuple[str, Callable[[Request, Store], Response]]] = [
        ("/", dash.overview), ("/samples", dash.samples), ("/samples/{sample_id}", dash.sample),
        ("/mixes", dash.mixes), ("/mixes/diff", dash.mix_diff), ("/mixes/{mix_id}", dash.mix),
        ("/models", dash.models), ("/models/{model_id}/card", dash.card), ("/models/{model_id}", dash.model),
        ("/searches/{ref}", dash.search), ("/classifiers", dash.classifiers), ("/classifiers/{ref}", dash.classifier), ("/loops", dash.loops), ("/loops/{loop_id}", dash.loop),
        ("/drift", dash.drift), ("/runs", dash.runs)]
    routes = []
    for path, fn in pages:
        routes.append(Route(path, dash.view(fn), methods=["GET", "HEAD"]))
        routes.append(Route("/api" + ("/overview" if path == "/" else path), dash.view(fn), methods=["GET", "HEAD"]))

    def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name == "plotly.min.js":
            return Response(plotly_js(), media_type="application/javascript", headers={**HEADERS, "Cache-Control": "max-age=86400"})
        files = {"app.css": "text/css", "app.js": "application/javascript"}
        if name not in files:
            return Response("not found", status_code=404, headers=HEADERS)
        return Response((HERE / "static" / name).read_bytes(), media_type=files[name], headers=HEADERS)

    routes.append(Route("/static/{name}", static, methods=["GET", "HEAD"]))
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Compute the overview's aggregates while the user opens the browser.
        threading.Thread(target=dash.warm, daemon=True).start()
        yield

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.dashboard = dash
    return HostCheck(app, names, pairs, port)


def serve(store_path: str | Path, host: str = "127.0.0.1", port: int = 8765, echo: Callable[[str], None] = print,
          allowed_hosts: tuple[str, ...] | list[str] = ()) -> None:
    import uvicorn
    from mixline.store.lake import is_lake, redact_url

    if not is_lake(str(store_path)) and not Path(store_path).exists():
        raise NotFoundError(f"store {store_path} does not exist; build one with `make demo` or `mixline ingest`")
    if host not in LOCAL_HOSTS:
        echo(f"warning: serving on {host}, not 127.0.0.1: anyone who can reach this address can read the store's "
             "scrubbed text and lineage. There is no login.")
    app = create_app(store_path, host=host, port=port, allowed_hosts=allowed_hosts)
    if host.strip("[]") in WILDCARD_BINDS:
        echo(f"note: bound to every address; requests must name 127.0.0.1, localhost or an --allowed-host in their Host "
             f"header (allowed now: {app.shown()})")
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    echo(f"mixline dashboard for {redact_url(str(store_path))} on http://{shown}:{port}/  (read-only; Ctrl-C stops it)")
    started = time.monotonic()
    uvicorn.run(app, host=host.strip("[]"), port=port, log_level="warning")
    echo(f"stopped after {time.monotonic() - started:.0f} s")
