"""Headless Chromium for the Hub's web UI tests (tests/hub/test_hub_*.py): finding and starting
the browser, a minimal DevTools Protocol client, and a PNG check that a screenshot decodes and is
not blank (no PIL needed). Needs `chromium` (Debian package) and websocket-client."""
import base64
import json
import os
import shutil
import struct
import subprocess
import time
import urllib.request
import zlib


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


# ------------------------------------------------------------------ PNG check (no PIL needed)
def png_pixels(data):
    """Decodes an 8-bit RGB/RGBA non-interlaced PNG; returns (width, height, channels, rows)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, hdr = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            hdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    w, h, depth, ctype, _, _, interlace = hdr
    assert depth == 8 and ctype in (2, 6) and interlace == 0, hdr
    ch = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * ch
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(h):
        f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - ch] if x >= ch else 0
            b = prev[x]
            c = prev[x - ch] if x >= ch else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, ch, rows


def check_png(path):
    w, h, ch, rows = png_pixels(open(path, "rb").read())
    assert w >= 800 and h >= 600, (w, h)
    colours, dark = set(), 0
    for y in range(0, h, 4):
        r = rows[y]
        for x in range(0, w, 4):
            px = r[x * ch:x * ch + 3]
            colours.add(px)
            if sum(px) < 300:
                dark += 1
    assert len(colours) > 20, f"{path}: looks blank ({len(colours)} colours)"
    assert dark > 50, f"{path}: almost no dark (text) pixels"
    return w, h, len(colours)


# ------------------------------------------------------------------ DevTools Protocol client
class Cdp:
    def __init__(self, ws_url):
        import websocket  # websocket-client
        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events = []

    def send(self, method, **params):
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_event(self, name, timeout=30):
        end = time.time() + timeout
        while time.time() < end:
            for i, e in enumerate(self.events):
                if e.get("method") == name:
                    return self.events.pop(i)
            self.ws.settimeout(max(0.1, end - time.time()))
            self.events.append(json.loads(self.ws.recv()))
        raise TimeoutError(name)

    def navigate(self, url):
        self.events = [e for e in self.events if e.get("method") != "Page.loadEventFired"]
        r = self.send("Page.navigate", url=url)
        if r.get("errorText"):
            raise RuntimeError(f"navigate {url}: {r['errorText']}")
        self.wait_event("Page.loadEventFired")

    def eval(self, expr, await_promise=False):
        r = self.send("Runtime.evaluate", expression=expr, returnByValue=True,
                      awaitPromise=await_promise)
        if "exceptionDetails" in r:
            raise RuntimeError(f"JS error in {expr!r}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expr, timeout=15):
        end = time.time() + timeout
        while time.time() < end:
            if self.eval(expr):
                return
            time.sleep(0.1)
        raise TimeoutError(expr)

    def screenshot(self, path):
        data = base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])
        with open(path, "wb") as f:
            f.write(data)
        return check_png(path)

    def dialogs(self):
        return [e for e in self.events if e.get("method") == "Page.javascriptDialogOpening"]


def launch(tmp, width=1280, height=900):
    """Starts headless Chromium with a profile under tmp and attaches to its page; returns
    (process, Cdp) with Page and Runtime enabled and the viewport set. The caller stops the
    process (stop())."""
    chromium = find_chromium()
    assert chromium, "chromium is not installed"
    profile = os.path.join(tmp, "chromium-profile")
    browser = subprocess.Popen(
        [chromium, "--headless=new", "--no-sandbox", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "--remote-allow-origins=*", "--disable-gpu",
         "--no-first-run", "--no-default-browser-check", f"--window-size={width},{height}",
         "--hide-scrollbars", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "chromium.log"), "w"))
    port_file = os.path.join(profile, "DevToolsActivePort")
    end = time.time() + 60
    while not (os.path.exists(port_file) and open(port_file).read().count("\n") >= 1):
        assert browser.poll() is None and time.time() < end, "chromium did not start"
        time.sleep(0.2)
    dport = int(open(port_file).read().split("\n")[0])
    targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{dport}/json/list"))
    cdp = Cdp(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])
    cdp.send("Page.enable")
    cdp.send("Runtime.enable")
    cdp.send("Emulation.setDeviceMetricsOverride", width=width, height=height,
             deviceScaleFactor=1, mobile=False)
    return browser, cdp


def stop(browser):
    browser.terminate()
    try:
        browser.wait(timeout=20)
    except subprocess.TimeoutExpired:
        browser.kill()



def stop_all(browser, server):
    """A browser test's `finally`: the browser (if it started), then the hub server."""
    if browser:
        stop(browser)
    server.terminate()
    server.wait(timeout=30)
