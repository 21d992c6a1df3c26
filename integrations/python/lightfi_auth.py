"""LightFi API authentication for Python's requests and httpx, via lightfi-token.

Copy this file next to your code (it has no dependencies besides the HTTP
library you use), then:

    import requests
    from lightfi_auth import LightfiAuth

    session = requests.Session()
    session.auth = LightfiAuth()
    session.get("https://api.lightfi.example/v1/sites")

    import httpx
    from lightfi_auth import LightfiHttpxAuth

    with httpx.Client(auth=LightfiHttpxAuth()) as client:
        client.get("https://api.lightfi.example/v1/sites")

Both run `lightfi-token --format json` (found on PATH) when they need a token,
read it from the program's stdout (never from or into argv), and keep it in
memory until `margin` seconds before it expires. After a 401 they get a fresh
token (`--force-refresh`) and send the request once more. Create one auth
object and reuse it: the cache lives in the object.

lightfi-token's own messages (the login URL, errors) go to this process's
stderr. When lightfi-token fails, LightfiTokenError says why (exit code 3:
not logged in, run `lightfi-token login`).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from typing import Optional, Sequence

__all__ = ["LightfiToken", "LightfiTokenError", "LightfiAuth", "LightfiHttpxAuth"]

_EXIT_CODES = {
    2: "usage error (check the extra arguments given to lightfi-token)",
    3: "not logged in: run `lightfi-token login`",
    4: "configuration error (client id, config.toml or client secret)",
    5: "the LightFi authorization server is unreachable or failing; retry later",
    6: "another lightfi-token process held the profile's lock too long",
}

# After a forced refresh, a 401 within this many seconds is not answered by
# another refresh: a brand-new token that is rejected will not be fixed by
# the next one, and the token endpoint is rate-limited.
_REFRESH_BACKOFF = 30.0


class LightfiTokenError(RuntimeError):
    """lightfi-token could not provide a token; `exit_code` is its exit status."""

    def __init__(self, message: str, exit_code: Optional[int] = None):
        super().__init__(message)
        self.exit_code = exit_code


class LightfiToken:
    """Access tokens from the lightfi-token command, cached in memory.

    `command`: the program (default: `lightfi-token` on PATH); `args`: extra
    arguments, e.g. `["--profile", "staging"]`; `margin`: seconds before
    expiry at which a cached token is no longer used. Thread-safe.
    """

    def __init__(self, command: str = "lightfi-token", args: Sequence[str] = (), margin: float = 60.0):
        self.command = command
        self.args = list(args)
        self.margin = margin
        self._lock = threading.Lock()
        # (token, monotonic deadline), replaced as a whole so readers need no lock.
        self._cached: Optional[tuple[str, float]] = None
        self._forced_at: Optional[float] = None

    def _valid(self) -> Optional[str]:
        cached = self._cached
        if cached is not None and time.monotonic() < cached[1]:
            return cached[0]
        return None

    def token(self) -> str:
        """A token valid for at least `margin` more seconds."""
        token = self._valid()
        if token is not None:
            return token
        with self._lock:
            token = self._valid()
            return token if token is not None else self._fetch(force_refresh=False)

    def cached(self) -> Optional[str]:
        """The cached token if it is still usable, without running anything."""
        return self._valid()

    def after_401(self, rejected: str) -> Optional[str]:
        """The token to retry with after `rejected` got a 401, or None not to retry."""
        with self._lock:
            token = self._valid()
            if token is not None and token != rejected:
                return token  # another thread has already replaced it
            if self._forced_at is not None and time.monotonic() - self._forced_at < _REFRESH_BACKOFF:
                return None
            self._forced_at = time.monotonic()
            return self._fetch(force_refresh=True)

    def _fetch(self, force_refresh: bool) -> str:
        argv = [self.command, *self.args, "--format", "json"]
        if force_refresh:
            argv.append("--force-refresh")
        started = time.monotonic()
        try:
            # stdin and stderr are inherited: at a terminal lightfi-token may
            # run a browser login and show its URL; only stdout is read.
            proc = subprocess.run(argv, stdout=subprocess.PIPE, check=False)
        except FileNotFoundError:
            raise LightfiTokenError(
                f"{self.command!r} was not found on PATH: install lightfi-token, or pass command=<full path>"
            ) from None
        if proc.returncode != 0:
            reason = _EXIT_CODES.get(proc.returncode, "unexpected failure")
            raise LightfiTokenError(
                f"lightfi-token exited with status {proc.returncode}: {reason} (its message is on stderr)",
                proc.returncode,
            )
        try:
            answer = json.loads(proc.stdout)
            token = answer["access_token"]
            expires_in = float(answer["expires_in"])
        except (ValueError, KeyError, TypeError):
            raise LightfiTokenError("lightfi-token printed something other than its json format") from None
        self._cached = (token, started + expires_in - self.margin)
        return token


try:
    import requests
    import requests.auth
except ImportError:  # pragma: no cover - requests is optional
    requests = None

if requests is not None:

    class LightfiAuth(requests.auth.AuthBase):
        """`requests` authentication: `session.auth = LightfiAuth()`.

        Keyword arguments are those of LightfiToken; or pass `source=` to
        share one LightfiToken between several auth objects.
        """

        def __init__(self, source: Optional[LightfiToken] = None, **kwargs):
            self.source = source if source is not None else LightfiToken(**kwargs)

        def __call__(self, r):
            r.headers["Authorization"] = "Bearer " + self.source.token()
            r.register_hook("response", self._retry_after_401)
            return r

        def _retry_after_401(self, response, **kwargs):
            request = response.request
            if response.status_code != 401 or getattr(request, "_lightfi_retried", False):
                return response
            sent = request.headers.get("Authorization", "")
            if not sent.startswith("Bearer "):
                # requests removed the token on a redirect to another host:
                # that host's 401 is not ours to answer, and it gets no token.
                return response
            if request.body is not None and not isinstance(request.body, (bytes, str)):
                return response  # a streamed body cannot be sent twice
            token = self.source.after_401(sent.removeprefix("Bearer "))
            if token is None:
                return response
            response.content  # read the body so the connection can be reused
            response.close()
            retry = request.copy()
            retry.headers["Authorization"] = "Bearer " + token
            retry._lightfi_retried = True
            new = response.connection.send(retry, **kwargs)
            new.history.append(response)
            new.request = retry
            return new


try:
    import httpx
except ImportError:  # pragma: no cover - httpx is optional
    httpx = None

if httpx is not None:

    def _same_origin(a, b) -> bool:
        # A 401 from the host a redirect led to is not cured by a new token.
        return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)

    class LightfiHttpxAuth(httpx.Auth):
        """`httpx` authentication for Client and AsyncClient: `httpx.Client(auth=LightfiHttpxAuth())`.

        Keyword arguments are those of LightfiToken; or pass `source=`.
        In an AsyncClient, lightfi-token runs in a worker thread, so the event
        loop is not blocked while a token is refreshed.
        """

        # The body is read first so that it can be sent again after a 401.
        requires_request_body = True

        def __init__(self, source: Optional[LightfiToken] = None, **kwargs):
            self.source = source if source is not None else LightfiToken(**kwargs)

        def sync_auth_flow(self, request):
            request.read()
            token = self.source.token()
            request.headers["Authorization"] = "Bearer " + token
            response = yield request
            if response.status_code == 401 and _same_origin(response.request.url, request.url):
                retry_token = self.source.after_401(token)
                if retry_token is not None:
                    request.headers["Authorization"] = "Bearer " + retry_token
                    yield request

        async def async_auth_flow(self, request):
            import anyio.to_thread  # httpx depends on anyio

            await request.aread()
            token = self.source.cached() or await anyio.to_thread.run_sync(self.source.token)
            request.headers["Authorization"] = "Bearer " + token
            response = yield request
            if response.status_code == 401 and _same_origin(response.request.url, request.url):
                retry_token = await anyio.to_thread.run_sync(self.source.after_401, token)
                if retry_token is not None:
                    request.headers["Authorization"] = "Bearer " + retry_token
                    yield request
