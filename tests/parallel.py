"""The same JSON POST sent by many clients at the same moment, for the tests that check
credits and events under real concurrency through HTTP."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request


def post_at_once(url: str, raw_key: str, body: dict, count: int, *, timeout: float = 120,
                 reconnect: bool = False) -> list[tuple[int, dict]]:
    """`count` threads POST `body` to `url` with the key, released together by a barrier;
    returns (status, JSON body) per request, in the order they finished. `reconnect`: a
    connection reset before the request reached the server (the test server's listen
    backlog of 5 overflows when dozens connect at once) is tried again."""
    data = json.dumps(body).encode()
    results: list[tuple[int, dict]] = []
    start = threading.Barrier(count)

    def client() -> None:
        request = urllib.request.Request(url, data=data, method="POST", headers={
            "Authorization": f"Bearer {raw_key}", "Content-Type": "application/json",
            # The live server started before the per-test settings: it redirects plain HTTP
            # unless the request says it came through a TLS-terminating proxy.
            "X-Forwarded-Proto": "https"})
        start.wait()
        for _ in range(20 if reconnect else 1):
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    results.append((response.status, json.loads(response.read())))
            except urllib.error.HTTPError as error:
                results.append((error.code, json.loads(error.read())))
            except (ConnectionResetError, urllib.error.URLError) as error:
                if not reconnect or (isinstance(error, urllib.error.URLError)
                                     and not isinstance(error.reason, ConnectionError)):
                    raise
                time.sleep(0.05)
                continue
            return

    threads = [threading.Thread(target=client) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
