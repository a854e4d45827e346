#!/usr/bin/env python3
"""The chat example end to end in a browser.

Starts a chat server, a terminal client ("tom") and two headless Chromium
pages ("ann" and "ben") driven through chromedriver's WebDriver protocol
(plain HTTP and JSON, so nothing beyond Python's standard library is
needed). All three join "general" and post; the test checks that each saw
the other two's messages, in the same order as everyone else, and that
closing ben's page makes the room tell ann and tom that ben left.

Usage: chat_browser_test.py PATH-TO-chat-BINARY
Needs /usr/bin/chromium and /usr/bin/chromedriver (Debian packages chromium
and chromium-driver; .ci/install-deps installs them).
"""

import json
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

DEADLINE = 30.0  # seconds for any one expected event


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class LineReader:
    """Collects a process's stdout lines on a thread; waits with deadlines."""

    def __init__(self, proc):
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._pump, args=(proc.stdout,), daemon=True).start()

    def _pump(self, stream):
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, needle, what):
        end = time.monotonic() + DEADLINE
        while True:
            left = end - time.monotonic()
            if left <= 0:
                fail(f"{what}: no line containing {needle!r}; saw {self.seen}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            self.seen.append(line)
            if needle in line:
                return line


class WebDriver:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=DEADLINE) as resp:
            return json.loads(resp.read())["value"]

    def ready(self):
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            try:
                self.call("GET", "/status")
                return
            except OSError:
                time.sleep(0.05)  # chromedriver is starting; its port is not open yet
        fail("chromedriver did not start")


class Page:
    def __init__(self, wd, url):
        self.wd = wd
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage"]}}}}
        self.sid = wd.call("POST", "/session", caps)["sessionId"]
        self.call("POST", "/url", {"url": url})

    def call(self, method, path, body=None):
        return self.wd.call(method, f"/session/{self.sid}{path}", body)

    def element(self, css):
        el = self.call("POST", "/element", {"using": "css selector", "value": css})
        return next(iter(el.values()))

    def type(self, css, text):
        el = self.element(css)
        self.call("POST", f"/element/{el}/clear", {})
        self.call("POST", f"/element/{el}/value", {"text": text})

    def click(self, css):
        self.call("POST", f"/element/{self.element(css)}/click", {})

    def js(self, script):
        return self.call("POST", "/execute/sync", {"script": script, "args": []})

    def log(self):
        return self.js("return [...document.querySelectorAll('#log li')].map(li => li.textContent)")

    def wait(self, predicate, what):
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            if predicate():
                return
            time.sleep(0.05)  # WebDriver has no events to wait on; poll the page
        fail(f"{what}; page log: {self.log()}")

    def wait_log(self, needle, who):
        self.wait(lambda: any(needle in l for l in self.log()), f"{who} never showed {needle!r}")

    def close(self):
        self.call("DELETE", "")


def main():
    if len(sys.argv) != 2:
        fail("usage: chat_browser_test.py PATH-TO-chat")
    chat = sys.argv[1]
    for tool in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        if not os.path.exists(tool):
            fail(f"{tool} is missing (Debian packages chromium and chromium-driver)")

    procs = []
    with tempfile.NamedTemporaryFile("w", delete=False) as f:
        f.write("browser-test-secret-0123456789-5f1d2a7e9b3c4d60a1b2\n")
        secret = f.name
    try:
        server = subprocess.Popen([chat, "server", "--secret-file", secret],
                                  stdout=subprocess.PIPE, text=True)
        procs.append(server)
        first = server.stdout.readline()
        # "chat server on 127.0.0.1:P, web on http://127.0.0.1:H/"
        address = first.split(" on ")[1].split(",")[0]
        web = first.split("web on ")[1].strip()
        print(f"server: {first.strip()}", flush=True)

        tom = subprocess.Popen([chat, "client", "--secret-file", secret, "--server", address,
                                "--name", "tom"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
        procs.append(tom)
        tom_out = LineReader(tom)
        tom_out.wait_for("[general] * tom joined", "tom")

        port = free_port()
        driver = subprocess.Popen(["/usr/bin/chromedriver", f"--port={port}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(driver)
        wd = WebDriver(port)
        wd.ready()

        pages = {}
        for name in ("ann", "ben"):
            p = Page(wd, web)
            pages[name] = p
            p.wait(lambda p=p: p.js("return document.getElementById('status').textContent")
                   == "open, not connected", f"{name}'s WebSocket did not open")
            p.type("#name", name)
            p.click("#connect")
            p.wait(lambda p=p, name=name: p.js("return document.getElementById('status').textContent")
                   == "connected as " + name, f"{name} was not welcomed")
            p.click("#join")
            p.wait_log(f"[general] * {name} joined", name)
        ann, ben = pages["ann"], pages["ben"]
        ann.wait_log("[general] * ben joined", "ann")
        tom_out.wait_for("[general] * ben joined", "tom")

        ann.type("#text", "hello from ann")
        ann.click("#send")
        ben.type("#text", "hello from ben")
        ben.click("#send")
        tom.stdin.write("hello from tom\n")
        tom.stdin.flush()

        said = ["ann: hello from ann", "ben: hello from ben", "tom: hello from tom"]
        for who, page in pages.items():
            for s in said:
                page.wait_log(f"[general] {s}", who)
        for s in said:
            tom_out.wait_for(f"[general] {s}", "tom")

        # One room, one order: everyone saw the three messages in the same order.
        def order(lines):
            return [s for l in lines for s in said if l == f"[general] {s}"]
        orders = {"ann": order(ann.log()), "ben": order(ben.log()), "tom": order(tom_out.seen)}
        for who, o in orders.items():
            print(f"{who} saw, in order: {o}", flush=True)
        if len({tuple(o) for o in orders.values()}) != 1:
            fail(f"the three clients saw different orders: {orders}")

        # Closing ben's page closes its WebSocket: the room tells the others.
        ben.close()
        ann.wait_log("[general] * ben left (disconnected)", "ann")
        tom_out.wait_for("[general] * ben left (disconnected)", "tom")
        print("ann's page:", json.dumps(ann.log()), flush=True)
        ann.close()
        print("PASS: two browser pages and a terminal client chatted through the rooms", flush=True)
    finally:
        for p in reversed(procs):
            if p.stdin:
                p.stdin.close()  # a terminal client leaves at the end of its input
                try:
                    p.wait(timeout=10)
                    continue
                except subprocess.TimeoutExpired:
                    pass
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        os.unlink(secret)


if __name__ == "__main__":
    main()
