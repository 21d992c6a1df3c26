"""Test driver: N GET requests through one auth object of integrations/python.

usage: drive_python.py requests|httpx|httpx-async URL N
Prints one status code per line.
"""

import asyncio
import sys

from lightfi_auth import LightfiAuth, LightfiHttpxAuth

kind, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])

if kind == "requests":
    import requests

    session = requests.Session()
    session.auth = LightfiAuth()
    for _ in range(n):
        print(session.post(url, json={"n": 1}, timeout=60).status_code, flush=True)
elif kind == "httpx":
    import httpx

    with httpx.Client(auth=LightfiHttpxAuth(), timeout=60, follow_redirects=True) as client:
        for _ in range(n):
            print(client.post(url, json={"n": 1}).status_code, flush=True)
elif kind == "httpx-async":
    import httpx

    async def main():
        async with httpx.AsyncClient(auth=LightfiHttpxAuth(), timeout=60, follow_redirects=True) as client:
            for _ in range(n):
                print((await client.post(url, json={"n": 1})).status_code, flush=True)

    asyncio.run(main())
else:
    sys.exit(f"unknown kind {kind}")
