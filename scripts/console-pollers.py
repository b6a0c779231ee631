"""Simulated ops consoles for scripts/bench-serve.sh: BROWSERS tabs, each asking what the console page asks
(the outbox, the inbox's waiting and in-error lists, the sources) every EVERY seconds over its own
keep-alive connection, until SECONDS have passed. Prints the requests made and any that failed.

Usage: python3 console-pollers.py BROWSERS EVERY SECONDS HOST:PORT KEY
"""
import http.client
import sys
import threading
import time

browsers, every, seconds, where, key = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
PATHS = ["/v1/outbox", "/v1/inbox?status=new", "/v1/inbox?status=error", "/v1/sources"]
done = [0] * browsers
failed = [0] * browsers
end = time.monotonic() + seconds


def browser(i):
    host, port = where.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    # tabs opened at different moments, as people do
    time.sleep(every * i / browsers)
    while time.monotonic() < end:
        started = time.monotonic()
        for path in PATHS:
            try:
                conn.request("GET", path, headers={"X-Api-Key": key})
                r = conn.getresponse()
                r.read()
                done[i] += 1
                if r.status != 200:
                    failed[i] += 1
            except OSError:
                failed[i] += 1
                conn = http.client.HTTPConnection(host, int(port), timeout=10)
        time.sleep(max(0.0, every - (time.monotonic() - started)))


threads = [threading.Thread(target=browser, args=(i,)) for i in range(browsers)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(f"console: {browsers} browsers, {sum(done)} requests, {sum(failed)} failed")
sys.exit(1 if sum(failed) else 0)
