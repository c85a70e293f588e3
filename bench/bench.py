#!/usr/bin/python3
"""Tessera benchmark driver. Run it through bench/run (see bench/README.md):
that script installs what is needed, builds, and starts this inside a
network namespace that has only loopback.

Phases, all against one tessera server on 127.0.0.1:
  capacity  one room, N = 2, 4, 9, 16, 25, ... participants until it is no
            longer real time; per N: server and client CPU (from /proc),
            server memory, receive frame rates, stalls, glass-to-glass latency
  join      joins into a room of `join_n`: WebSocket open -> first decoded
            mixed frame at the joiner, and -> the others see its tile
  rooms     rooms of 4 participants, 1, 2, 3, ... at once until one fails
  bare      the same decode + composite + encode (+ audio) work as a plain
            gst-launch-1.0 pipeline from files: the physical limit
Participants: one "stamp" sender (live encode of a machine-readable clock,
see tools/client/stamp.h), one decoding probe that reads it, and load
clients that send pre-encoded files and count packets without decoding.
"""
import argparse
import collections
import datetime
import json
import math
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
SERVER_BIN = BUILD / "src/app/tessera"
CLIENT_BIN = BUILD / "tools/client/tessera-client"
OPUS_MODES_PRELOAD = BUILD / "src/opus/libtessera-opus-modes.so"
MEDIA = BUILD / "bench-media"
RESULTS = ROOT / "bench/results"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

MEDIA_SECONDS = 10          # length of each pre-encoded loop
LOAD_BITRATE = 600000       # what a live tessera-client sends (bits/s)
REALTIME_FPS = 29.0
MAX_DELAY_MS = 5000         # a longer glass-to-glass delay is a misread stamp
# Load clients declare these maxBitrate values in turn (None: no limit), so
# that a server with a tier ladder encodes every tier; one without ignores them.
LOAD_MAX_BITRATES = [None, 800000, 250000]
CODEC_ROOM = 9              # the room of the codecs phase (issue 15: "a room of 9")
# The tier ladder's default sizes and bit rates relative to the canvas and
# video.bitrate (what the server documents for video.tiers), for the bare pipeline.
TIER_SCALE = {"high": (1, 1.0), "medium": (2, 0.4), "low": (4, 0.13)}
# The tier a load client's maxBitrate (LOAD_MAX_BITRATES) puts it on, for the bare pipeline.
TIER_OF_LIMIT = {None: "high", 800000: "medium", 250000: "low"}


# ---------------------------------------------------------------------------
# /proc

def cpu_seconds(pid):
    """utime + stime of a process, seconds; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def rss_bytes(pid):
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def run_delay(pid):
    """Seconds the process's threads spent runnable but waiting for a CPU
    (/proc/<pid>/task/*/schedstat): on a shared machine, the CPU it wanted
    and did not get."""
    total = 0
    try:
        names = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for tid in names:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[1])
        except (OSError, ValueError, IndexError):
            pass
    return total / 1e9


def threads_and_switches(pid):
    """(threads, context switches summed over them) of a process."""
    total, tasks = 0, 0
    try:
        names = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0, 0
    for tid in names:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if "ctxt_switches" in line:  # voluntary and nonvoluntary
                        total += int(line.split()[1])
            tasks += 1
        except (OSError, ValueError, IndexError):
            pass
    return tasks, total


def stop_process(proc):
    """SIGTERM, then SIGKILL if it has not exited within 10 s."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_port():
    """A TCP port free on loopback now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v), max(1, math.ceil(p / 100 * len(v)))) - 1]


# ---------------------------------------------------------------------------
# Processes

class Server:
    def __init__(self, logdir, extra=(), wrap=(), name="tessera"):
        self.log = open(logdir / f"{name}.log", "w")
        self.proc = subprocess.Popen(
            [*wrap, str(SERVER_BIN), "--host", "127.0.0.1", "--port", "0", "--ice-address", "127.0.0.1",
             "--max-participants", "500", "--connections-per-address", "0",
             "--joins-per-minute", "0", "--server-max-participants", "0", "--viewers-per-address", "0",
             "--live-dir", str(logdir / "live"), *extra],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log, text=True)
        deadline = time.monotonic() + 30
        self.url = None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.search(r"listening on (http://\S+)", line)
            if m:
                self.url = m.group(1).rstrip("/")
                break
        if not self.url:
            raise RuntimeError("tessera did not start; see " + str(logdir / f"{name}.log"))
        threading.Thread(target=self._drain, daemon=True).start()
        self.ws = self.url.replace("http://", "ws://") + "/ws"
        self.unanswered = []  # HTTP requests the server did not answer

    def _drain(self):
        for line in self.proc.stdout:
            self.log.write(line)

    def cpu(self):
        return cpu_seconds(self.proc.pid)

    def rss(self):
        return rss_bytes(self.proc.pid)

    def room_count(self):
        """Rooms the server has (GET /api/rooms): leftovers of earlier phases cost CPU too."""
        try:
            return len(json.loads(urllib.request.urlopen(f"{self.url}/api/rooms", timeout=10).read()))
        except (OSError, ValueError):
            return None

    def tiers(self, room):
        """The distinct video tiers the room's participants are on (API)."""
        try:
            info = json.loads(urllib.request.urlopen(f"{self.url}/api/rooms/{room}", timeout=10).read())
        except (OSError, ValueError):
            return []
        return sorted({p.get("tier") for p in info.get("participants", []) if p.get("tier")},
                      key=lambda t: list(TIER_SCALE).index(t) if t in TIER_SCALE else 9)

    def encoders(self, room):
        """{codec: encoders running} from /metrics (tessera_encoders)."""
        try:
            text = urllib.request.urlopen(self.url + "/metrics", timeout=10).read().decode()
        except OSError as e:
            self.unanswered.append(f"/metrics at {time.strftime('%H:%M:%S')}: {e}")
            return {}
        return {m.group(1): int(float(m.group(2))) for m in
                re.finditer(r'^tessera_encoders\{room="' + re.escape(room) + r'",codec="([^"]+)"\} (\S+)$', text, re.M)}

    def receive_codecs(self, room):
        """{codec: participants receiving it} from GET /api/rooms/{room}."""
        try:
            info = json.loads(urllib.request.urlopen(f"{self.url}/api/rooms/{room}", timeout=10).read())
        except (OSError, ValueError):
            return {}
        return dict(collections.Counter(p.get("receiveCodec") for p in info.get("participants", [])))

    def request(self, method, path, body=None):
        """(status, text) of one API request with a JSON body."""
        req = urllib.request.Request(self.url + path, method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def participants(self, room):
        """The room's participants as GET /api/rooms/{room} lists them; [] if it does not answer."""
        try:
            info = json.loads(urllib.request.urlopen(f"{self.url}/api/rooms/{room}", timeout=10).read())
        except (OSError, ValueError):
            return []
        return info.get("participants", [])

    def metrics_text(self):
        """GET /metrics; "" (and a count in self.unanswered) if the server does not answer in 10 s."""
        try:
            return urllib.request.urlopen(self.url + "/metrics", timeout=10).read().decode()
        except OSError as e:
            self.unanswered.append(f"/metrics at {time.strftime('%H:%M:%S')}: {e}")
            return ""

    def main_loop(self):
        """(times its main loop was held over a second, the longest hold of the last 10-20 s in
        seconds) from /metrics; Nones if it does not answer."""
        text = self.metrics_text()
        stalls = re.search(r"^tessera_main_loop_stalls_total (\S+)$", text, re.M)
        delay = re.search(r"^tessera_main_loop_delay_seconds (\S+)$", text, re.M)
        return (float(stalls.group(1)) if stalls else None, float(delay.group(1)) if delay else None)

    def metrics(self):
        """{room: {"frames": n, "dropped": n, "decoders": n}} from /metrics; {} if the server
        does not answer."""
        text = self.metrics_text()
        rooms = {}
        for line in text.splitlines():
            m = re.match(r'tessera_room_(frames_total|frames_dropped_total|video_decoders)\{room="([^"]+)"\} (\S+)', line)
            if m:
                key = {"frames_total": "frames", "frames_dropped_total": "dropped"}.get(m.group(1), "decoders")
                rooms.setdefault(m.group(2), {})[key] = float(m.group(3))
        return rooms

    def stop(self):
        stop_process(self.proc)


JANUS_HOST = "10.99.0.1"  # bench/run's veth test host: Janus does not use loopback for media
JANUS_PLUGIN_DIR = Path("/usr/lib/x86_64-linux-gnu/janus")


class Janus:
    """Debian's janus with only the AudioBridge plugin and the HTTP transport."""

    def __init__(self, logdir):
        home = logdir / "janus"
        for sub in ("plugins", "transports", "configs", "events", "loggers"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        (home / "plugins/libjanus_audiobridge.so").symlink_to(JANUS_PLUGIN_DIR / "plugins/libjanus_audiobridge.so")
        (home / "transports/libjanus_http.so").symlink_to(JANUS_PLUGIN_DIR / "transports/libjanus_http.so")
        (home / "configs/janus.jcfg").write_text(
            f'general: {{ plugins_folder = "{home}/plugins" transports_folder = "{home}/transports" '
            f'events_folder = "{home}/events" loggers_folder = "{home}/loggers" debug_level = 3 }}\n'
            'nat: { ice_enforce_list = "vb0" ignore_mdns = true }\n'
            'media: { rtp_port_range = "20000-40000" }\n')
        (home / "configs/janus.transport.http.jcfg").write_text(
            'general: { json = "compact" base_path = "/janus" http = true port = 8088 https = false }\n'
            'admin: { admin_http = false }\n')
        (home / "configs/janus.plugin.audiobridge.jcfg").write_text("general: { }\n")
        self.log = open(logdir / "janus.log", "w")
        self.proc = subprocess.Popen(["janus", "-F", str(home / "configs"), "-o"], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        self.url = f"http://{JANUS_HOST}:8088/janus"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/info", timeout=2).read()
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("janus did not start; see " + str(logdir / "janus.log"))

    def cpu(self):
        return cpu_seconds(self.proc.pid)

    def rss(self):
        return rss_bytes(self.proc.pid)

    def stop(self):
        stop_process(self.proc)


class Client:
    """One tessera-client process; stdout JSON lines read by a thread."""

    def __init__(self, server, room, name, logdir, args, ice="127.0.0.1", wrap=(), ws=None):
        self.name = name
        self.events = []
        self.cond = threading.Condition()
        self.replies = queue.Queue()
        self.log = open(logdir / f"client-{room}-{name}.log", "w")
        cmd = [*wrap, str(CLIENT_BIN), "--server", ws or server.ws, "--room", room, "--name", name,
               "--ice-address", ice, "--timestamps", "--connect-timeout", "60", *args]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, bufsize=1)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                j = json.loads(line)
            except ValueError:
                continue
            if "reply" in j:
                self.replies.put(j)
            if "event" in j:
                # Into its log, beside its stderr: what happened when, after the run.
                self.log.write(line)
                self.log.flush()
                with self.cond:
                    self.events.append(j)
                    self.cond.notify_all()
        with self.cond:
            self.events.append({"event": "exit"})
            self.cond.notify_all()

    def wait_event(self, name, timeout, after=0):
        """The first event `name` at index >= after, or None on timeout/exit."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for e in self.events[after:]:
                    if e["event"] == name:
                        return e
                    if e["event"] == "exit":
                        return None
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def event_count(self):
        with self.cond:
            return len(self.events)

    def send(self, line):
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass

    def cpu(self):
        return cpu_seconds(self.proc.pid)

    def leave(self):
        try:
            self.proc.stdin.close()  # end of stdin: the client leaves
        except (BrokenPipeError, OSError):
            pass

    def wait(self, timeout=10):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def reports(clients, timeout=20):
    """Asks every client for a report at once; {client: report or None}."""
    for c in clients:
        while not c.replies.empty():
            c.replies.get_nowait()
        c.send("report")
    out = {}
    deadline = time.monotonic() + timeout
    for c in clients:
        try:
            out[c] = c.replies.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            out[c] = None
    return out


def measure(server, clients, window, kind="video", count="frames"):
    """One measurement window. Server and client CPU (cores), and per
    receiver the rate of its received `kind` RTP `count` ("frames" or
    "packets") and its new stalls; a client that does not report counts as
    a stall. Also the reports and /metrics at both ends, for more."""
    def snapshot():
        return {"t": time.monotonic(), "server": server.cpu(), "clients": {c: c.cpu() for c in clients},
                "metrics": server.metrics() if isinstance(server, Server) else {},
                "run": run_delay(server.proc.pid), "switches": threads_and_switches(server.proc.pid)}
    r0 = reports(clients)
    a = snapshot()
    time.sleep(window)
    b = snapshot()
    r1 = reports(clients)
    dt = b["t"] - a["t"]
    rates, stalls, missing = [], 0, 0
    for c in clients:
        x, y = r0.get(c), r1.get(c)
        if not x or not y:
            missing += 1
            continue
        # A --count client's report holds its sessions' reports, in session order.
        for xs, ys in zip(x.get("sessions", [x]), y.get("sessions", [y])):
            rates.append((ys["rtp"][kind][count] - xs["rtp"][kind][count]) / dt)
            stalls += ys["rtp"][kind]["stalls"] - xs["rtp"][kind]["stalls"]
            stalls += ys["frameStalls"]["stalls"] - xs["frameStalls"]["stalls"]
    return {"dt": dt, "serverCores": (b["server"] - a["server"]) / dt,
            "clientCores": {c: ((b["clients"][c] or 0) - (a["clients"][c] or 0)) / dt for c in clients},
            "serverRssMB": server.rss() / 2**20, "minRate": min(rates) if rates else 0.0,
            "stalls": stalls + missing, "missing": missing, "reports": (r0, r1),
            "metrics": (a["metrics"], b["metrics"]), "serverWaitCores": (b["run"] - a["run"]) / dt,
            "serverThreads": b["switches"][0], "switchesPerS": (b["switches"][1] - a["switches"][1]) / dt}


# ---------------------------------------------------------------------------
# Media: one pre-encoded file per load participant, each its own colour
# and tone, made once and cached in build/bench-media.

def colour(i):
    """Distinct saturated colours, never near magenta (the stamp's colour)."""
    hues = [h for h in range(0, 360, 7) if not 250 <= h <= 340]
    h = hues[(i * 11) % len(hues)] / 60.0
    v, s = 0.85, 0.8 if i % 2 else 0.6
    c = v * s
    x = c * (1 - abs(h % 2 - 1))
    r, g, b = [(c, x, 0), (x, c, 0), (0, c, x), (0, x, c), (x, 0, c), (c, 0, x)][int(h) % 6]
    m = v - c
    return "0xFF%02X%02X%02X" % tuple(int((u + m) * 255) for u in (r, g, b))


def media_path(i, codec="vp8"):
    return MEDIA / (f"load-v1-{i}.mkv" if codec == "vp8" else f"load-{codec}-v1-{i}.mkv")


def media_file(i, codec="vp8"):
    """VP8 (or H.264 constrained baseline) 640x360@30 (a ball on a colour, 15 %
    camera-like noise so that the encoder reaches its bitrate as a camera
    would) + Opus tone, MEDIA_SECONDS."""
    path = media_path(i, codec)
    if path.exists():
        return path, None
    MEDIA.mkdir(parents=True, exist_ok=True)
    frames = MEDIA_SECONDS * 30
    tmp = path.with_suffix(".tmp")
    pipeline = (
        f"compositor name=c background=black sink_1::alpha=0.15 "
        f"! video/x-raw,format=I420,width=640,height=360,framerate=30/1 "
        + (f"! vp8enc deadline=1 cpu-used=8 threads=1 end-usage=cbr target-bitrate={LOAD_BITRATE} "
           f"keyframe-max-dist=30 lag-in-frames=0 error-resilient=default ! queue ! mux. " if codec == "vp8" else
           f"! x264enc tune=zerolatency speed-preset=ultrafast threads=1 bitrate={LOAD_BITRATE // 1000} "
           f"key-int-max=30 bframes=0 ! video/x-h264,profile=constrained-baseline ! h264parse ! queue ! mux. ") +
        f"videotestsrc num-buffers={frames} pattern=ball background-color={colour(i)} "
        f"! video/x-raw,width=640,height=360,framerate=30/1 ! c.sink_0 "
        f"videotestsrc num-buffers={frames} pattern=snow ! video/x-raw,width=640,height=360,framerate=30/1 ! c.sink_1 "
        f"audiotestsrc num-buffers={MEDIA_SECONDS * 50} samplesperbuffer=960 wave=sine freq={200 + 17 * i} volume=0.03 "
        f"! audio/x-raw,rate=48000,channels=1 ! opusenc frame-size=20 ! queue ! mux. "
        f"matroskamux name=mux ! filesink location={tmp}")
    proc = subprocess.Popen(["gst-launch-1.0", "-q", *pipeline.split()], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    return path, (proc, tmp)


def load_codec(i, h264_every):
    """The video codec of load file i: with --h264-every K, every K-th load
    client from the first (1, 1+K, ...) sends and receives H.264; the probe
    (file 0) and the rest VP8."""
    return "h264" if h264_every and i % h264_every == 1 % h264_every and i > 0 else "vp8"


def make_media(count, h264_every=0, codecs=None):
    """Load files 0..count-1, file i in load_codec(i, h264_every) or, with
    `codecs`, in each of those codecs."""
    paths, pending = [], []
    for i, codec in ((i, c) for i in range(count) for c in (codecs or [load_codec(i, h264_every)])):
        path, job = media_file(i, codec)
        paths.append(path)
        if job:
            pending.append((path, job))
    running = []
    while pending or running:
        while pending and len(running) < (os.cpu_count() or 2):
            running.append(pending.pop(0))
        path, (proc, tmp) = running.pop(0)
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"cannot make {path}: {err.decode()[-500:]}")
        tmp.rename(path)
    return paths


# ---------------------------------------------------------------------------
# The bare pipeline: the server's per-room media work from files, built from
# the same pipelines/*.pipeline fragments (same encoder/decoder settings).

def fragment(name, suffix, drop_first=False, **overrides):
    text = (ROOT / "pipelines" / f"{name}.pipeline").read_text()
    text = " ".join(line.split("#", 1)[0] for line in text.splitlines()).strip()
    values = {"bitrate": "1500", "bitrate_bps": "1500000", "keyframe_interval": "60", "framerate": "30",
              "width": "1280", "height": "720", "tile_width": "640", "tile_height": "360",
              "audio_bitrate": "64000",
              "keyframe_max_percent": "450"}  # the server's default: video.keyFrameMaxMs 150 x 30 fps / 10
    values.update({k: str(v) for k, v in overrides.items()})
    text = re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], text)
    text = re.sub(r"\bname=(\w+)", lambda m: f"name={m.group(1)}_{suffix}", text)
    if drop_first:  # the depayloader: files are not RTP
        text = text.split("!", 1)[1]
    return text


def grid_tiles(n, width=1280, height=720, padding=4):
    """Roughly data/layouts/grid.json: equal cells, 16:9 tiles fitted inside."""
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    cw, ch = width // cols, height // rows
    tiles = []
    for i in range(n):
        w, h = cw - 2 * padding, ch - 2 * padding
        if w * 9 > h * 16:
            w = h * 16 // 9
        else:
            h = w * 9 // 16
        x = (i % cols) * cw + (cw - w) // 2
        y = (i // cols) * ch + (ch - h) // 2
        tiles.append((x, y, w & ~1, h & ~1))
    return tiles


# Variants of the bare pipeline: what the server does today, and the parts
# of it, to find where the cost goes (bench/README.md, findings).
BARE_VARIANTS = {
    "server": "as the server does it: video + K+1 audio (K=3: the full mix and 3 speaker mixes, 4 Opus encodes)",
    "video": "video only: N decodes, composite, one VP8 encode per tier in use, N payloaders",
    "video-scale-once": "video only, each input scaled once, straight to its tile (no 640x360 step)",
    "audio": "audio only, as before K+1: N decodes, N mixers of N-1 inputs, N Opus encodes",
    "audio-k+1": "audio only, as now: K+1 with K=3 speakers: N decodes, 4 mixers, 4 Opus encodes",
}


def bare_pipeline(files, variant="server", tiers=("high",), receivers=None):
    """receivers: the (tier, codec) of each file's participant, which it sends
    (its file) and receives; by default VP8 and `tiers` in turn, every tier
    encoded."""
    n = len(files)
    encodes = list(dict.fromkeys(receivers)) if receivers else [(t, "vp8") for t in tiers]
    receivers = receivers or [(tiers[i % len(tiers)], "vp8") for i in range(n)]
    video = variant in ("server", "video", "video-scale-once")
    audio = variant in ("server", "audio", "audio-k+1")
    tiles = grid_tiles(n)
    parts = []
    if video:
        once = variant == "video-scale-once"
        pads = " ".join(f"sink_{i}::xpos={x} sink_{i}::ypos={y}" + ("" if once else f" sink_{i}::width={w} sink_{i}::height={h}")
                        for i, (x, y, w, h) in enumerate(tiles))
        parts.append(f"compositor name=comp background=black {pads} "
                     f"! video/x-raw,format=I420,width=1280,height=720,framerate=30/1 ! tee name=ctee")
        # One encode per (tier, codec) in use, from the same fragment at the tier's size and bit rate.
        for t, codec in encodes:
            div, share = TIER_SCALE.get(t, (1, 1.0))
            w, h, rate = 1280 // div, 720 // div, int(1500000 * share)
            parts.append(f"ctee. ! queue ! videoscale ! video/x-raw,width={w},height={h} ! "
                         f"{fragment('encode-' + codec, f'enc_{t}_{codec}', width=w, height=h, bitrate=rate // 1000, bitrate_bps=rate)}"
                         f" ! tee name=vtee_{t}_{codec}")
    for i, f in enumerate(files):
        parts.append(f"filesrc location={f} ! matroskademux name=d{i}")
        if video:
            x, y, w, h = tiles[i]
            size = {"tile_width": w, "tile_height": h} if variant == "video-scale-once" else {}
            t, codec = receivers[i]
            parts.append(f"vtee_{t}_{codec}. ! queue ! {fragment('pay-' + codec, f'p{i}')} "
                         f"! fakesink sync=false async=false")
            parts.append(f"d{i}.video_0 ! queue ! {fragment('decode-' + codec, f'v{i}', True, **size)} ! comp.sink_{i}")
        if audio:
            parts.append(f"d{i}.audio_0 ! queue ! {fragment('decode-opus', f'a{i}', drop_first=True)} ! tee name=at{i}")
    if audio:
        # Receivers: before K+1 one mix-minus (and one encode) each; the
        # server now mixes the full mix for everyone who is not speaking +
        # one per speaker slot (K = 3, the default).
        mixes = ([(j, [i for i in range(n) if i != j]) for j in range(n)] if variant == "audio" else
                 [(0, list(range(n)))] + [(j, [i for i in range(n) if i != j]) for j in (1, 2, 3) if j < n])
        for j, inputs in mixes:
            parts.append(f"audiomixer name=am{j} ! {fragment('audio-encode', f's{j}')} ! {fragment('pay-opus', f'ap{j}')} "
                         f"! fakesink sync=false async=false")
            parts += [f"at{i}. ! queue ! am{j}." for i in inputs]
    return " ".join(parts)


# A fixed single-threaded workload, timed in CPU seconds at the start and the
# end of every run: the cores here are shared with other tenants, and on a
# day they take half of them the same work costs 2-3x the CPU time (the bare
# pipeline's 0.63 cores for N = 16 in one full run, 1.58 in another, the
# same pipeline). Comparing this number tells a slow machine from a regression.
REFERENCE_ENCODE = ("videotestsrc num-buffers=300 pattern=ball ! video/x-raw,width=1280,height=720,framerate=30/1 "
                    "! vp8enc deadline=1 cpu-used=16 threads=1 end-usage=cbr target-bitrate=1500000 ! fakesink")


def gst_launch(text, stderr=subprocess.DEVNULL):
    """Runs gst-launch-1.0 on `text` to its end: its exit status, its
    rusage (CPU time, peak RSS) and its wall time in seconds. With the
    server's cache of libopus's mode lookups (src/opus/modes.cpp,
    preloaded), or the bare pipeline's Opus would pay for `cpuid` on every
    packet and the server's ratio to it would flatter the server."""
    start = time.monotonic()
    env = dict(os.environ, LD_PRELOAD=str(OPUS_MODES_PRELOAD))
    proc = subprocess.Popen(["gst-launch-1.0", "-q", *text.split()], stdout=subprocess.DEVNULL, stderr=stderr,
                            env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = status
    return status, usage, time.monotonic() - start


def reference_encode_seconds():
    """CPU seconds of REFERENCE_ENCODE (None if it failed)."""
    status, usage, _ = gst_launch(REFERENCE_ENCODE)
    return usage.ru_utime + usage.ru_stime if status == 0 else None


def run_bare(files, logdir, variant="server", tiers=("high",), receivers=None, name=None):
    """CPU-seconds per media-second of the bare pipeline, and its peak RSS."""
    text = bare_pipeline(files, variant, tiers, receivers)
    stem = logdir / f"bare-{name or len(files)}-{variant}"
    stem.with_suffix(".txt").write_text(text)
    with open(stem.with_suffix(".log"), "w") as log:
        status, usage, wall = gst_launch(text, log)
    if status != 0:
        return None
    return {"cores": (usage.ru_utime + usage.ru_stime) / MEDIA_SECONDS, "wall": wall,
            "rssMB": usage.ru_maxrss / 1024}


# ---------------------------------------------------------------------------
# The call

class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
        self.stamp = stamp
        self.logdir = BUILD / "bench-logs" / stamp
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.load_start = os.getloadavg()
        self.files = []
        self.server = None
        self.t0 = time.monotonic()
        self.errors = []
        self.failed_phases = []
        self.live = []  # every client started, so that a failed phase can stop its own
        self.budget = 110 if self.quick else 570  # seconds: the 2 and 10 minutes, less the bare runs
        self.window = 5 if self.quick else 10
        self.settle = 2 if self.quick else 4

    def phase(self, name, fn, empty):
        """Runs a later phase; if it fails, the report says so and keeps the rest."""
        try:
            return fn()
        except Exception as e:  # a report with a hole beats no report
            self.log(f"{name}: failed: {e!r}")
            self.errors.append(f"{name} phase failed: {e!r}")
            self.failed_phases.append(name)
            running = [c for c in self.live if c.proc.poll() is None]
            for c in running:
                c.leave()
            for c in running:
                c.wait()
            return empty

    def over_budget(self, fraction):
        """True once `fraction` of the time budget is spent: later phases then
        measure less rather than overrun (said in the log and the report)."""
        if time.monotonic() - self.t0 > fraction * self.budget:
            self.log(f"time budget: {fraction:.0%} of {self.budget} s spent, measuring less")
            return True
        return False

    def log(self, *a):
        print(*a, file=sys.stderr, flush=True)

    def start_clients(self, room, specs, server=None, wrap=()):
        """specs: [(name, args)]; started in small batches, each waited for
        until connected, on `server` (default the bench's) under `wrap`.
        Returns (clients, failures)."""
        started, failed = [], []
        batch = 3
        for k in range(0, len(specs), batch):
            group = [Client(server or self.server, room, name, self.logdir, args, wrap=wrap)
                     for name, args in specs[k:k + batch]]
            self.live += group
            for c in group:
                if c.wait_event("connected", 60):
                    started.append(c)
                else:
                    failed.append(c)
        return started, failed

    def load_spec(self, i, decode=False, codec=None):
        """Load client i: file i in `codec` (default load_codec), sent and received in it."""
        codec = codec or load_codec(i, self.args.h264_every)
        args = ["--send-file", str(media_path(i, codec))]
        if codec != "vp8":
            args += ["--video-codec", codec]
        if not decode:
            args.append("--no-decode")
        limit = LOAD_MAX_BITRATES[i % len(LOAD_MAX_BITRATES)]
        if limit:
            args += ["--max-bitrate", str(limit)]
        return (f"load{i}", args)

    def window_measure(self, room, clients, probe, server=None):
        """CPU, memory, receive rates and stalls over one window."""
        server = server or self.server
        procs = clients
        w = measure(server, procs, self.window)
        dt, (r0, r1) = w["dt"], w["reports"]
        m0, m1 = (m.get(room, {}) for m in w["metrics"])
        out = {
            "serverCores": w["serverCores"],
            "clientCores": sum(w["clientCores"].values()),
            "serverRssMB": w["serverRssMB"],
            "serverThreads": w["serverThreads"],
            "serverWaitCores": w["serverWaitCores"],
            "switchesPerS": w["switchesPerS"],
            "outFps": (m1.get("frames", 0) - m0.get("frames", 0)) / dt,
            "droppedFps": (m1.get("dropped", 0) - m0.get("dropped", 0)) / dt,
            "minRecvFps": w["minRate"],
            "stalls": w["stalls"],
            "missingReports": w["missing"],
            "tiers": server.tiers(room),
        }
        loads = [c for c in procs if c.name.startswith("load")]
        if loads:
            out["loadClientCores"] = sum(w["clientCores"][c] for c in loads) / len(loads)
        if probe and r0.get(probe) and r1.get(probe):
            a, b = r0[probe], r1[probe]
            out["probeFps"] = (b["frames"] - a["frames"]) / dt
            for kind in ("video", "audio"):
                # The samples that arrived in this window only; a delay over
                # MAX_DELAY_MS is a misread stamp (or a frozen call), counted apart.
                before = a.get("latency", {}).get(kind, {}).get("samples", 0)
                ms = b.get("latency", {}).get(kind, {}).get("ms", [])[before:]
                out[kind + "Rejected"] = sum(1 for d in ms if d > MAX_DELAY_MS)
                ms = [d for d in ms if d <= MAX_DELAY_MS]
                out[kind + "P50"], out[kind + "P95"] = pct(ms, 50), pct(ms, 95)
                out[kind + "Samples"] = len(ms)
        out["realtime"] = (out["minRecvFps"] >= REALTIME_FPS and out["stalls"] == 0
                           and out.get("probeFps", 30) >= REALTIME_FPS)
        return out

    def join_times(self, room, count):
        """Joins of a stamp sender that decodes: open -> its first mixed frame,
        and open -> the probe sees its tile. The last joiner stays."""
        own, seen, connected, offered, joiner = [], [], [], [], None
        for k in range(count):
            mark = self.probe.event_count()
            joiner = Client(self.server, room, f"joiner{k}", self.logdir, ["--stamp"])
            opened = joiner.wait_event("open", 30)
            offer = joiner.wait_event("offer", 30)
            conn = joiner.wait_event("connected", 30)
            if opened and offer:
                offered.append(offer["ts"] - opened["ts"])
            first = joiner.wait_event("first-frame", 30)
            if opened and conn:
                connected.append(conn["ts"] - opened["ts"])
            visible = self.probe.wait_event("stamp-visible", 30, after=mark)
            if opened and first:
                own.append(first["ts"] - opened["ts"])
            if opened and visible:
                seen.append(visible["ts"] - opened["ts"])
            if k + 1 < count:
                mark = self.probe.event_count()
                joiner.leave()
                joiner.wait()
                self.probe.wait_event("stamp-hidden", 5, after=mark)
                time.sleep(0.5)
        return {"joins": count, "offer": offered, "connected": connected, "firstFrame": own, "seenByOthers": seen}, joiner

    def capacity(self):
        ns = [2, 4, 9] if self.quick else [2, 4, 9, 16, 25, 36, 49, 64]
        if self.args.max_n:
            ns = [n for n in ns if n <= self.args.max_n]
        join_n = 4 if self.quick else 9
        room = "capacity"
        self.files = make_media(ns[0], self.args.h264_every)
        results, join = [], None
        # The probe decodes and reads stamps; it sends a looped file like the loads.
        self.probe = Client(self.server, room, "probe", self.logdir, ["--send-file", str(self.files[0]), "--read-stamp"])
        if not self.probe.wait_event("connected", 60):
            raise RuntimeError("the probe did not connect")
        clients, stamp = [self.probe], None
        loads = 0
        for n in ns:
            if len(results) >= 2 and self.over_budget(0.4):
                break
            # n = probe + stamp sender + loads
            want = n - 2
            self.files = make_media(n, self.args.h264_every)  # cached in build/bench-media after the first run
            specs = [self.load_spec(1 + i) for i in range(loads, want)]
            self.log(f"capacity: N={n}: starting {len(specs)} load clients")
            started, failed = self.start_clients(room, specs)
            clients += started
            loads = want
            if stamp is None:
                stamp = Client(self.server, room, "stamp", self.logdir, ["--stamp", "--no-decode"])
                if stamp.wait_event("connected", 60):
                    clients.append(stamp)
            if n == join_n and join is None:
                # Replace the stamp sender by joiners; the last one stays.
                self.log(f"join: {self.args.joins} joins into a room of {n}")
                clients.remove(stamp)
                stamp.leave()
                stamp.wait()
                join, stamp = self.join_times(room, self.args.joins)
                clients.append(stamp)
            time.sleep(self.settle)
            m = self.window_measure(room, clients, self.probe)
            m["n"] = n
            m["failedJoins"] = len(failed)
            if failed:
                m["realtime"] = False
            results.append(m)
            self.log(f"capacity: N={n}: server {m['serverCores']:.2f} cores, clients {m['clientCores']:.2f}, "
                     f"min recv {m['minRecvFps']:.1f} fps, stalls {m['stalls']}, realtime {m['realtime']}")
            # Two failures in a row end the sweep: on a shared machine one
            # failure may be someone else's build.
            if len(results) >= 2 and not results[-1]["realtime"] and not results[-2]["realtime"]:
                break
        for c in clients:
            c.leave()
        for c in clients:
            c.wait()
        return results, join

    def pinned(self):
        """The capacity sweep again, with a server of its own pinned to CPU 0
        and every client to CPU 1 (taskset), so that the clients' share of
        the machine does not hide the server's capacity: participants per
        server core. No joins, no bare pipeline."""
        ns = [2, 4, 9] if self.quick else [2, 4, 9, 16]
        if self.args.max_n:
            ns = [n for n in ns if n <= self.args.max_n]
        room, wrap = "pinned", ("taskset", "-c", "1")
        self.files = make_media(max(ns), self.args.h264_every)
        server = Server(self.logdir, self.args.server_arg or (), wrap=("taskset", "-c", "0"), name="tessera-pinned")
        clients, results = [], []
        try:
            def join(name, args):
                c = Client(server, room, name, self.logdir, args, wrap=wrap)
                self.live.append(c)
                return c
            probe = join("probe", ["--send-file", str(self.files[0]), "--read-stamp"])
            if not probe.wait_event("connected", 60):
                raise RuntimeError("pinned: the probe did not connect")
            stamp = join("stamp", ["--stamp", "--no-decode"])
            clients = [probe] + ([stamp] if stamp.wait_event("connected", 60) else [])
            loads = 0
            for n in ns:
                if len(results) >= 2 and self.over_budget(0.5):
                    break
                started, failed = self.start_clients(room, [self.load_spec(1 + i) for i in range(loads, n - 2)],
                                                     server, wrap)
                clients += started
                loads = n - 2
                time.sleep(self.settle)
                m = self.window_measure(room, clients, probe, server)
                m["n"] = n
                if failed or len(clients) < n:
                    m["realtime"] = False
                results.append(m)
                self.log(f"pinned: N={n}: server {m['serverCores']:.2f} cores (of 1), clients "
                         f"{m['clientCores']:.2f} (of 1), min recv {m['minRecvFps']:.1f} fps, realtime {m['realtime']}")
                if len(results) >= 2 and not results[-1]["realtime"] and not results[-2]["realtime"]:
                    break
        finally:
            for c in clients:
                c.leave()
            for c in clients:
                c.wait()
            server.stop()
        return results

    def wait_sessions(self, client, count, timeout):
        """Waits until `count` sessions of a --count client have connected
        (each gets up to `timeout` s); how many did."""
        done, after = 0, 0
        while done < count:
            e = client.wait_event("connected", timeout, after)
            if e is None:
                break
            with client.cond:
                after = client.events.index(e) + 1
            done += 1
        return done

    def large_room(self, server, join, room, n, layout, files, probe_args, others):
        """The large-call room: a decoding probe (files[0], plus probe_args),
        `layout`, the `others` [(name, args)], and N - 2 load sessions of one
        process (files[1], not decoding). `join(name, args)` starts a client
        in the room. Returns the probe, the others' clients, the load
        process and how many of its sessions connected."""
        probe = join("probe", ["--send-file", str(files[0]), *probe_args])
        if not probe.wait_event("connected", 60):
            raise RuntimeError(f"{room}: the probe did not connect")
        if server.request("PUT", f"/api/rooms/{room}/layout", {"layout": layout})[0] != 200:
            raise RuntimeError(f"{room}: cannot set the layout {layout}")
        extra = [join(name, args) for name, args in others]
        loads = join("load", ["--count", str(n - 2), "--send-file", str(files[1]), "--no-decode"])
        self.log(f"{room}: starting {n - 2} load sessions in one process")
        connected = self.wait_sessions(loads, n - 2, 60)
        # Each receiver starts on the lowest tier and steps up once a probe of
        # its link passed (docs/architecture.md): the room is up once
        # everyone connected is on the high tier (30 s at most).
        started, on_high = time.monotonic(), False
        while not on_high and time.monotonic() - started < 30:
            ps = [p for p in server.participants(room) if p.get("connected")]
            on_high = len(ps) >= connected + 1 + len(extra) and all(p.get("tier") == "high" for p in ps)
            time.sleep(0.5)
        self.log(f"{room}: everyone on the high tier after {time.monotonic() - started:.1f} s" if on_high
                 else f"{room}: not everyone on the high tier after 30 s")
        return probe, extra, loads, connected

    def large(self):
        """Large calls (issue 12): N participants with video in the speaker + 8
        layout (data/layouts/recent.json: 9 shown, so 9 decoded) and the same N
        in the full grid (every sender decoded). N - 2 are the sessions of one
        `tessera-client --count` process (one shared pre-encoded file, not
        decoding, maxBitrate none / 800k / 250k not set: all on the high tier),
        plus the probe (decodes, reads stamps) and a stamp sender, as in the
        capacity phase, which decides real time the same way."""
        ns = [30] if self.quick else [30, 50]
        files = make_media(2, 0)
        out = []
        for n in ns:
            for layout in ("recent", "grid"):
                room = f"large-{layout}-{n}"

                def join(name, args, room=room):
                    c = Client(self.server, room, name, self.logdir, args)
                    self.live.append(c)
                    return c
                stalls0, _ = self.server.main_loop()
                probe, (stamp,), loads, connected = self.large_room(
                    self.server, join, room, n, layout, files, ["--read-stamp"], [("stamp", ["--stamp", "--no-decode"])])
                stamp_ok = stamp.wait_event("connected", 60) is not None
                clients = [probe, loads] + ([stamp] if stamp_ok else [])
                time.sleep(self.settle)
                m = self.window_measure(room, clients, probe)
                decoders = self.server.metrics().get(room, {}).get("decoders")
                stalls1, held = self.server.main_loop()
                m.update({"n": n, "layout": layout, "connected": connected + 1 + stamp_ok, "decoders": decoders,
                          "loadSessionCores": m.get("loadClientCores", 0) / (n - 2),
                          "loopStalls": None if None in (stalls0, stalls1) else stalls1 - stalls0, "loopHeldS": held})
                if connected < n - 2 or not stamp_ok:
                    m["realtime"] = False
                out.append(m)
                self.log(f"large: N={n}, {layout}: server {m['serverCores']:.2f} cores, decoders {decoders}, "
                         f"min recv {m['minRecvFps']:.1f} fps, stalls {m['stalls']}, realtime {m['realtime']}")
                for c in clients if stamp_ok else clients + [stamp]:
                    c.leave()
                for c in clients if stamp_ok else clients + [stamp]:
                    c.wait(30)
        return out

    def codecs(self):
        """The cost of a second codec (issue 15): one room of CODEC_ROOM load
        clients, all on VP8, then with a third of them on H.264 (sending and
        receiving it), first one on each tier (every tier encodes both
        codecs), then the high tier's three (that tier encodes H.264 only). A
        client changes codec by leaving and joining again with the other file."""
        room = "codecs"
        n = CODEC_ROOM
        make_media(n + 1, codecs=["vp8", "h264"])
        # Load client i declares LOAD_MAX_BITRATES[i % 3]: 1, 2, 3 are on one
        # tier each; 3, 6, 9 are the high tier's.
        arrangements = [("all VP8", set()), ("3 of 9 on H.264, one per tier", {1, 2, 3}),
                        ("3 of 9 on H.264, the high tier's", {3, 6, 9})]
        clients = {}  # i -> (codec, Client)
        out = []
        try:
            for k, (label, h264) in enumerate(arrangements):
                want = {i: "h264" if i in h264 else "vp8" for i in range(1, n + 1)}
                changing = [i for i in want if i in clients and clients[i][0] != want[i]]
                for i in changing:
                    clients[i][1].leave()
                for i in changing:
                    clients[i][1].wait()
                    del clients[i]
                specs = {f"load{i}-{want[i]}-{k}": (i, self.load_spec(i, codec=want[i])[1]) for i in want if i not in clients}
                self.log(f"codecs: {label}: starting {len(specs)} load clients")
                started, failed = self.start_clients(room, [(name, a) for name, (_, a) in specs.items()])
                for c in started:
                    i = specs[c.name][0]
                    clients[i] = (want[i], c)
                time.sleep(self.settle)
                m = self.window_measure(room, [c for _, c in clients.values()], None)
                m["arrangement"] = label
                # What the bare pipeline is to do for this room: each one's file, tier and codec.
                m["receivers"] = [(str(media_path(i, want[i])), TIER_OF_LIMIT[LOAD_MAX_BITRATES[i % len(LOAD_MAX_BITRATES)]],
                                   want[i]) for i in sorted(want)]
                m["failedJoins"] = len(failed)
                m["encoders"] = self.server.encoders(room)
                m["receiveCodecs"] = self.server.receive_codecs(room)
                if failed:
                    m["realtime"] = False
                out.append(m)
                self.log(f"codecs: {label}: server {m['serverCores']:.2f} cores, encoders {m['encoders']}, "
                         f"receivers {m['receiveCodecs']}, min recv {m['minRecvFps']:.1f} fps, stalls {m['stalls']}")
        finally:
            for _, c in clients.values():
                c.leave()
            for _, c in clients.values():
                c.wait()
        return out

    def rooms(self):
        """Rooms of 4 load participants; add rooms until two steps in a row are not real time."""
        out = []
        groups = []
        limit = 2 if self.quick else 8
        for r in range(1, limit + 1):
            if r > 1 and self.over_budget(0.55):
                break
            room = f"four{r}"
            specs = [self.load_spec((4 * r + i) % len(self.files)) for i in range(4)]
            specs = [(f"{room}-{name}", a) for name, a in specs]
            started, failed = self.start_clients(room, specs)
            groups.append(started)
            everyone = [c for g in groups for c in g]
            time.sleep(self.settle)
            w = measure(self.server, everyone, self.window)
            m0, m1 = w["metrics"]
            stalls = w["stalls"]
            outs = [(m1.get(k, {}).get("frames", 0) - m0.get(k, {}).get("frames", 0)) / w["dt"]
                    for k in m1 if k.startswith("four")]
            res = {"rooms": r, "serverCores": w["serverCores"], "serverRssMB": w["serverRssMB"],
                   "minRecvFps": w["minRate"], "minOutFps": min(outs) if outs else 0,
                   "stalls": stalls, "failedJoins": len(failed)}
            res["realtime"] = res["minRecvFps"] >= REALTIME_FPS and stalls == 0 and not failed
            out.append(res)
            self.log(f"rooms: {r} rooms of 4: server {res['serverCores']:.2f} cores, min recv "
                     f"{res['minRecvFps']:.1f} fps, stalls {stalls}, realtime {res['realtime']}")
            if len(out) >= 2 and not out[-1]["realtime"] and not out[-2]["realtime"]:
                break
        for c in [c for g in groups for c in g]:
            c.leave()
        for c in [c for g in groups for c in g]:
            c.wait()
        return out

    def audio_only(self):
        """N audio-only participants (pre-encoded Opus, no decoding) in one
        Tessera room and in one Janus AudioBridge room: CPU per participant."""
        ns = [10] if self.quick else [10, 25, 40]
        if self.args.max_audio_n:
            ns = [n for n in ns if n <= self.args.max_audio_n] or [self.args.max_audio_n]
        self.files = make_media(max(len(self.files), 2), self.args.h264_every)
        out = {"tessera": [], "janus": []}
        janus = None
        try:
            if shutil.which("janus"):
                janus = Janus(self.logdir)
            else:
                self.log("audio: janus is not installed; Tessera only")
            for target in ("tessera", "janus"):
                if target == "janus" and not janus:
                    continue
                server = self.server if target == "tessera" else janus
                clients = []
                for n in ns:
                    specs = []
                    for i in range(len(clients), n):
                        args = ["--send-file", str(self.files[i % len(self.files)]), "--no-decode", "--audio-only"]
                        if target == "janus":
                            args += ["--janus", janus.url, "--janus-room", "1234"]
                        specs.append((f"{target}-audio{i}", args))
                    # Each server gets its first N whatever the time: the
                    # comparison is the point; larger N only within budget.
                    if n != ns[0] and self.over_budget(0.6 if target == "tessera" else 0.8):
                        break
                    for k in range(0, len(specs), 8):
                        group = [Client(self.server, "audio", name, self.logdir, a,
                                        ice="127.0.0.1" if target == "tessera" else JANUS_HOST)
                                 for name, a in specs[k:k + 8]]
                        self.live += group
                        clients += [c for c in group if c.wait_event("connected", 60)]
                    time.sleep(self.settle)
                    w = measure(server, clients, self.window, "audio", "packets")
                    stalls = w["stalls"]
                    res = {"n": n, "connected": len(clients), "serverCores": w["serverCores"],
                           "roomsAlive": self.server.room_count() if target == "tessera" else 1,
                           "serverRssMB": w["serverRssMB"], "clientCores": sum(w["clientCores"].values()),
                           "minPacketsPerS": w["minRate"], "stalls": stalls}
                    res["realtime"] = res["connected"] == n and res["minPacketsPerS"] >= 45 and stalls == 0
                    out[target].append(res)
                    self.log(f"audio: {target} N={n}: {res['serverCores']:.3f} cores, "
                             f"{res['serverCores'] / n * 1000:.1f} mcores each, min {res['minPacketsPerS']:.0f} "
                             f"packets/s, stalls {stalls}")
                for c in clients:
                    c.leave()
                for c in clients:
                    c.wait()
        finally:
            if janus:
                janus.stop()
        return out

    class ShapedLink:
        """A veth pair (TESTING.md, "A real bottleneck"): its server end nb0
        in this namespace, shaped with tbf on demand; clients joined with
        join_limited() in a network namespace of their own behind nb1. Its
        own server: the phases' server offers loopback candidates only."""
        SERVER_IP, CLIENT_IP = "10.98.0.1", "10.98.0.2"

        def __init__(self, bench, name):
            self.bench = bench
            subprocess.run("ip link del nb0 2>/dev/null", shell=True)
            subprocess.run(f"ip link add nb0 type veth peer name nb1 && ip addr add {self.SERVER_IP}/24 dev nb0 && "
                           "ip link set nb0 up", shell=True, check=True)
            self.logdir = bench.logdir / name
            self.logdir.mkdir(exist_ok=True)
            self.server = Server(self.logdir, ["--host", "0.0.0.0", "--ice-address", self.SERVER_IP,
                                               *(bench.args.server_arg or ())])
            self.ws = f"ws://{self.SERVER_IP}:{self.server.url.rsplit(':', 1)[1]}/ws"
            self.clients = []

        def join(self, room, name, args):
            """A client on an unlimited link (loopback to the server's address)."""
            c = Client(self.server, room, name, self.logdir, args, ws=self.ws)
            self.clients.append(c)
            return c

        def join_limited(self, room, name, args):
            """The client behind nb1, once nb1 is in its namespace."""
            wait_link = ("i=0; until ip link show nb1 >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 600 ] && exit 97; "
                         f"sleep 0.05; done; ip link set lo up && ip addr add {self.CLIENT_IP}/24 dev nb1 && "
                         'ip link set nb1 up && exec "$@"')
            c = Client(self.server, room, name, self.logdir, args, ice=self.CLIENT_IP, ws=self.ws,
                       wrap=["unshare", "--net", "sh", "-c", wait_link, "sh"])
            self.clients.append(c)
            deadline = time.monotonic() + 30
            while not os.path.exists(f"/proc/{c.proc.pid}/ns/net") or \
                    os.readlink(f"/proc/{c.proc.pid}/ns/net") == os.readlink("/proc/self/ns/net"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} got no namespace")
                time.sleep(0.05)
            subprocess.run(["ip", "link", "set", "nb1", "netns", str(c.proc.pid)], check=True)
            return c

        def limit(self, bps, burst="16kbit"):
            subprocess.run(["tc", "qdisc", "replace", "dev", "nb0", "root", "tbf", "rate", f"{bps // 1000}kbit",
                            "burst", burst, "latency", "200ms"], check=True)

        def unlimit(self):
            subprocess.run(["tc", "qdisc", "del", "dev", "nb0", "root"], check=True)

        def close(self):
            for c in self.clients:
                c.leave()
            for c in self.clients:
                c.wait()
            self.server.stop()
            subprocess.run("ip link del nb0 2>/dev/null", shell=True)

    def bottleneck(self):
        """A receiver behind a real bottleneck (issue 12): a veth pair whose
        server end is shaped with tbf (ShapedLink), the receiver in a network
        namespace of its own, two camera-like load senders in its room. For
        each limit: the time from the limit to the receiver's step down (its
        tier in the API, polled every 100 ms), what the server then sends it
        against the limit (its `bitrateOut`), the frames and stalls it
        decodes meanwhile, and the time from lifting the limit to its top
        tier (300 kbit/s) or to video (64 kbit/s)."""
        limits = [300_000] if self.quick else [300_000, 64_000]
        hold = 10 if self.quick else 20
        link = self.ShapedLink(self, "bottleneck")
        room, out = "narrow", []

        def seen():
            return next((p for p in link.server.participants(room) if p.get("name") == "limited"), {})

        def until(pred, timeout):
            """Seconds until pred(seen()) held (polled every 100 ms), or None."""
            t0 = time.monotonic()
            while time.monotonic() - t0 < timeout:
                if pred(seen()):
                    return time.monotonic() - t0
                time.sleep(0.1)
            return None

        try:
            for i in range(2):
                c = link.join(room, f"sender{i}", ["--send-file", str(self.files[i]), "--no-decode"])
                if not c.wait_event("connected", 60):
                    raise RuntimeError(f"sender{i} did not connect")
            limited = link.join_limited(room, "limited", [])
            if not limited.wait_event("first-frame", 60):
                raise RuntimeError("the limited receiver decoded no frame")
            if until(lambda p: p.get("tier") == "high", 30) is None:
                raise RuntimeError("the limited receiver is not on the high tier before any limit")
            for limit in limits:
                link.limit(limit)
                target = "audio" if limit < 150_000 else "low"
                limited_at = time.monotonic()
                down = until(lambda p: p.get("tier") not in (None, "high"), 30)
                reached = until(lambda p: p.get("tier") == target, 30)
                reached = None if reached is None else time.monotonic() - limited_at
                # The API's bitrateOut covers the last few seconds: past the step down first.
                time.sleep(3)
                r0 = reports([limited])[limited]
                sent = []
                for _ in range(hold):
                    time.sleep(1)
                    sent.append(seen().get("bitrateOut", 0))
                r1 = reports([limited])[limited]
                tiers_end = seen().get("tier")
                link.limit(1_000_000_000, burst="1mbit")
                back = until(lambda p: p.get("tier") == "high" if target == "low" else p.get("tier") != "audio", 60)
                link.unlimit()
                frames = stalls = audio_gap = None
                if r0 and r1:
                    frames = (r1["rtp"]["video"]["frames"] - r0["rtp"]["video"]["frames"]) / hold
                    stalls = r1["frameStalls"]["stalls"] - r0["frameStalls"]["stalls"]
                    audio_gap = r1["rtp"]["audio"]["maxGapMs"]
                m = {"limit": limit, "target": target, "downS": down, "reachedS": reached, "tierEnd": tiers_end,
                     "sentBps": sum(sent) / len(sent), "fps": frames, "stalls": stalls, "audioMaxGapMs": audio_gap,
                     "backS": back}
                self.log(f"bottleneck: {limit // 1000} kbit/s: down in {fmt(down, 1)} s, {target} in "
                         f"{fmt(reached, 1)} s, sent {m['sentBps'] / 1000:.0f} kbit/s, {fmt(frames, 1)} fps, "
                         f"back in {fmt(back, 1)} s")
                out.append(m)
                if until(lambda p: p.get("tier") == "high", 60) is None:
                    break
        finally:
            link.close()
        return out

    def narrow_large(self):
        """Issue 12's "done means": a receiver on a 300 kbit/s link joins a
        room of N in the speaker + 8 layout and follows it while everyone
        else keeps HD. The room (a probe that decodes, N - 2 load sessions
        of one process, as the large-call phase) is up first; the limit is
        on before the receiver joins. Its first picture from its start, then
        over `hold` seconds: its tier, frames, stalls (gaps over 1 s) and
        longest audio gap; the others' tiers, polled every second; and the
        room's own receive rates and the server's cores."""
        n, hold = 30, 10 if self.quick else 20
        limit = 300_000
        files = make_media(2, 0)
        link = self.ShapedLink(self, "narrow-large")
        room = f"narrow-large-{n}"
        try:
            probe, _, loads, connected = self.large_room(link.server, lambda name, args: link.join(room, name, args),
                                                         room, n, "recent", files, [], [])
            link.limit(limit)
            self.log(f"narrow: a receiver joins behind {limit // 1000} kbit/s")
            stalls0, _ = link.server.main_loop()
            started = time.monotonic()
            limited = link.join_limited(room, "limited", [])
            first = limited.wait_event("first-frame", 60)
            first_s = time.monotonic() - started if first else None
            opened = limited.wait_event("open", 0)
            from_open_s = (first["ts"] - opened["ts"]) / 1000 if first and opened else None
            others_off, tiers, held = 0, collections.Counter(), 0.0
            w = None
            if first:
                r0 = reports([limited])[limited]
                # The window's measure() runs on its own thread; the tiers are polled meanwhile.
                result = {}
                t = threading.Thread(target=lambda: result.update(measure(link.server, [probe, loads], hold)))
                t.start()
                while t.is_alive():
                    ps = link.server.participants(room)
                    others_off = max(others_off, sum(1 for p in ps if p.get("name") != "limited"
                                                     and p.get("tier") not in (None, "high")))
                    tiers.update(p.get("tier") for p in ps if p.get("name") == "limited")
                    held = max(held, link.server.main_loop()[1] or 0)
                    time.sleep(1)
                t.join()
                w = result
                r1 = reports([limited])[limited]
            stalls1, _ = link.server.main_loop()
            m = {"n": n, "limit": limit, "connected": connected + 1, "firstPictureS": first_s,
                 "firstPictureFromOpenS": from_open_s, "limitedTiers": dict(tiers), "othersOffHigh": others_off,
                 "loopStalls": None if None in (stalls0, stalls1) else stalls1 - stalls0, "loopHeldS": held}
            if first and r0 and r1:
                m.update({"fps": (r1["rtp"]["video"]["frames"] - r0["rtp"]["video"]["frames"]) / hold,
                          "stalls": r1["frameStalls"]["stalls"] - r0["frameStalls"]["stalls"],
                          "audioMaxGapMs": r1["rtp"]["audio"]["maxGapMs"]})
            if w:
                m.update({"serverCores": w["serverCores"], "roomMinRecvFps": w["minRate"], "roomStalls": w["stalls"]})
            self.log(f"narrow: first picture in {fmt(first_s, 1)} s ({fmt(from_open_s, 1)} s from its WebSocket "
                     f"open), main loop held over 1 s {fmt(m['loopStalls'], 0)} times, tiers {dict(tiers)}, "
                     f"{fmt(m.get('fps'), 1)} fps, stalls {m.get('stalls')}, audio gap {fmt(m.get('audioMaxGapMs'), 0)} ms, others off "
                     f"high {others_off}, room min {fmt(m.get('roomMinRecvFps'), 1)} fps")
            return [m]
        finally:
            link.close()

    def viewers(self):
        """WHEP viewers of one room of 4 load participants (issue 14): server
        cores with 0, 10 (and 50) viewers, the sessions of one tessera-client
        --count process per step, not decoding; then the room live to HLS, and to HLS and RTMP (a local ffmpeg
        that takes the stream and throws it away)."""
        counts = [0, 10] if self.quick else [0, 10, 50]
        room = "viewers"
        specs = [self.load_spec(i % len(self.files)) for i in range(4)]
        members, failed = self.start_clients(room, [(f"{room}-{name}", a) for name, a in specs])
        if failed:
            raise RuntimeError(f"{len(failed)} of the room's 4 load clients did not connect")
        out = {"points": [], "live": []}
        viewers, ffmpeg = [], None  # viewers: the --count processes
        watching = 0  # their connected sessions
        endpoint = f"{self.server.url}/whep/{room}"

        def point(what, extra):
            time.sleep(self.settle)
            w = measure(self.server, members + viewers, self.window)
            res = {"what": what, "viewers": watching, "serverCores": w["serverCores"],
                   "serverRssMB": w["serverRssMB"], "serverThreads": w["serverThreads"],
                   "clientCores": sum(w["clientCores"].values()), "minRecvFps": w["minRate"], "stalls": w["stalls"],
                   "encoders": sum(self.server.encoders(room).values()), **extra}
            res["realtime"] = res["minRecvFps"] >= REALTIME_FPS and res["stalls"] == 0
            self.log(f"viewers: {what}: server {res['serverCores']:.2f} cores, {res['encoders']} encoders, "
                     f"min recv {res['minRecvFps']:.1f} fps, stalls {res['stalls']}")
            return res

        try:
            for n in counts:
                if n > watching:
                    # One process for the step's new viewers (`--count`: each a WHEP session of its own, ~20
                    # mcores against ~45-70 for a process each), so that 50 fit beside the server.
                    group = Client(self.server, room, f"viewers{n}", self.logdir,
                                   ["--whep", endpoint, "--no-decode", "--count", str(n - watching)])
                    self.live.append(group)
                    watching += self.wait_sessions(group, n - watching, 60)
                    viewers.append(group)
                out["points"].append(point(f"{n} viewers", {"asked": n}))
            if not self.over_budget(0.9):
                status, body = self.server.request("POST", f"/api/rooms/{room}/live", {"hls": True})
                if status != 201:
                    raise RuntimeError(f"POST live (hls): {status} {body}")
                out["live"].append(point("live: HLS", {"targets": "HLS"}))
                if shutil.which("ffmpeg"):
                    port = free_port()
                    ffmpeg = subprocess.Popen(
                        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-listen", "1", "-i",
                         f"rtmp://127.0.0.1:{port}/live/bench", "-c", "copy", "-f", "null", "-"],
                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                        stderr=open(self.logdir / "ffmpeg-rtmp.log", "w"))
                    time.sleep(1)  # ffmpeg listens within a moment; a refused push shows as a failed target
                    status, body = self.server.request("POST", f"/api/rooms/{room}/live",
                                                       {"rtmp": f"rtmp://127.0.0.1:{port}/live/bench"})
                    if status != 201:
                        raise RuntimeError(f"POST live (rtmp): {status} {body}")
                    out["live"].append(point("live: HLS + RTMP", {"targets": "HLS + RTMP"}))
                self.server.request("DELETE", f"/api/rooms/{room}/live")
        finally:
            for c in members + viewers:
                c.leave()
            for c in members + viewers:
                c.wait()
            if ffmpeg:
                stop_process(ffmpeg)
        return out

    def run(self):
        self.log(f"bench: {'quick' if self.quick else 'full'} run; logs in {self.logdir}")
        rss0 = None
        self.server = Server(self.logdir, self.args.server_arg or ())
        try:
            time.sleep(1)
            rss0 = self.server.rss() / 2**20
            only = self.args.only_large
            capacity, join = ([], None) if only else self.capacity()
            pinned = [] if self.args.skip_pinned or only else self.phase("pinned", self.pinned, [])
            codecs = [] if self.args.skip_codecs or only else self.phase("codecs", self.codecs, [])
            rooms = [] if self.args.skip_rooms or only else self.phase("rooms", self.rooms, [])
            audio = {} if self.args.skip_audio or only else self.phase("audio", self.audio_only, {})
            viewers = {} if self.args.skip_viewers or only else self.phase("viewers", self.viewers, {})
            large = [] if self.args.skip_large else self.phase("large", self.large, [])
            bottleneck = [] if self.args.skip_bottleneck or only else self.phase("bottleneck", self.bottleneck, [])
            narrow = ([] if self.args.skip_bottleneck or self.args.skip_large else
                      self.phase("narrow", self.narrow_large, []))
        finally:
            self.server.stop()
            self.errors += self.server.unanswered
        bare, variants = {}, {}
        if not capacity:  # --only-large
            return {"capacity": [], "pinned": [], "join": None, "codecs": [], "rooms": [], "audio": {}, "viewers": {}, "bare": {},
                    "variants": {}, "large": large, "narrow": narrow, "idleRssMB": rss0, "errors": self.errors}
        passing = [m["n"] for m in capacity if m["realtime"]] or [capacity[0]["n"]]
        tiers_at = {m["n"]: tuple(m.get("tiers") or ["high"]) for m in capacity}
        # The bare pipeline decodes and encodes VP8 only: with H.264 load clients it would not be the same work.
        for n in [] if self.args.h264_every else sorted({passing[-1]} if self.quick else {passing[-1], capacity[-1]["n"]}):
            self.log(f"bare: the same work for N={n} ({len(tiers_at[n])} tiers) as one gst-launch-1.0 pipeline")
            bare[n] = run_bare(self.files[:n], self.logdir, "server", tiers_at[n])
        if not self.quick and not self.args.h264_every:
            n = capacity[-1]["n"]
            for v in BARE_VARIANTS:
                self.log(f"bare: variant {v}, N={n}")
                variants[v] = bare[n] if v == "server" else run_bare(self.files[:n], self.logdir, v, tiers_at[n])
            variants = {"n": n, "results": variants}
        for k, m in enumerate(codecs):
            self.log(f"bare: the codecs room {m['arrangement']!r} as one gst-launch-1.0 pipeline")
            m["bare"] = run_bare([f for f, _, _ in m["receivers"]], self.logdir, "server",
                                 receivers=[(t, c) for _, t, c in m["receivers"]], name=f"codecs{k}")
        return {"capacity": capacity, "pinned": pinned, "join": join, "codecs": codecs, "rooms": rooms, "audio": audio,
                "viewers": viewers, "bottleneck": bottleneck, "bare": bare, "large": large, "narrow": narrow,
                "variants": variants, "idleRssMB": rss0, "errors": self.errors}


# ---------------------------------------------------------------------------
# Output

def machine():
    model = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    return {"cpus": os.cpu_count(), "model": model, "commit": commit}


def fmt(v, digits=2):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def markdown(bench, res, mach):
    cap, join, rooms, bare = res["capacity"], res["join"], res["rooms"], res["bare"]
    la = bench.load_start
    most = max((m.get("tiers") or [] for m in cap), key=len, default=[])
    tier_text = (f"{len(most)} video tiers in use ({', '.join(most)}: one encode each)" if len(most) > 1 else
                 "1 video tier (one encode for everyone)")
    tier_text += "; load clients declare maxBitrate none / 800k / 250k in turn"
    if bench.args.h264_every:
        tier_text += (f"; every {bench.args.h264_every}th load client from the first sends and receives "
                      "H.264 (its own encodes per tier), the rest VP8")
    lines = [
        f"# Tessera benchmark, {bench.stamp}",
        "",
        f"Machine: {mach['cpus']} CPUs, {mach['model']}; commit {mach['commit']}; "
        f"{'--quick' if bench.quick else 'full'} run. Load average at start: {la[0]:.2f} "
        f"(1 min), {la[1]:.2f} (5 min){' — the machine was shared, numbers are noisy' if la[0] > 0.5 * mach['cpus'] else ''}. "
        f"Reference encode (bench.py's REFERENCE_ENCODE, one thread): {fmt(mach['referenceEncodeS'][0])} CPU-s "
        f"before the run, {fmt(mach['referenceEncodeS'][1])} after (compare runs by it: more means slower cores).",
        "",
        f"What ran: one room, composite 1280x720@30 VP8, **{tier_text}**, "
        "K+1 audio (the full mix and K = 3 speaker mix-minus encodes). Participants send 640x360@30 VP8 "
        "(~600 kbit/s) + Opus: N-2 load clients send pre-encoded files and do not decode, one probe "
        "decodes the mix and reads the stamps, one stamp sender live-encodes a clock. All on loopback "
        "(Janus on a private veth pair), in a fresh network namespace. CPU is utime+stime from `/proc/<pid>/stat` over a "
        f"{bench.window} s window, in cores; real time = every receiver gets >= {REALTIME_FPS:.0f} fps of "
        "the mix and no receiver has a gap over 1 s. \"Run-queue wait\" is the time the server's threads "
        "spent runnable but not running (`/proc/<pid>/task/*/schedstat`), summed over threads, per second: "
        "near 0 on an idle machine; high when other processes (or the server's own threads) take the CPUs.",
        "",
        "## Capacity and cost: one room of N",
        "",
        "| N | tiers | real time | server cores | per participant | server run-queue wait (thread-s/s) | server RSS MB | server threads, context switches/s | output fps (dropped) | min recv fps | stalls > 1 s | client cores (all) | video g2g p50/p95 ms | audio g2g p50/p95 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in cap:
        lines.append(
            f"| {m['n']} | {len(m.get('tiers') or []) or '?'} | {'yes' if m['realtime'] else '**no**'} | {fmt(m['serverCores'])} | "
            f"{fmt(m['serverCores'] / m['n'], 3)} | {fmt(m['serverWaitCores'])} | {fmt(m['serverRssMB'], 0)} | "
            f"{m['serverThreads']}, {fmt(m['switchesPerS'], 0)} | {fmt(m['outFps'], 1)} "
            f"({fmt(m['droppedFps'], 1)}) | {fmt(m['minRecvFps'], 1)} | {m['stalls']} | {fmt(m['clientCores'])} | "
            f"{fmt(m.get('videoP50'), 0)} / {fmt(m.get('videoP95'), 0)} | {fmt(m.get('audioP50'), 0)} / {fmt(m.get('audioP95'), 0)} |")
    passing = [m for m in cap if m["realtime"]]
    per_load = [m["loadClientCores"] for m in cap if m.get("loadClientCores")]
    lines += ["", f"Largest real-time room: **N = {passing[-1]['n'] if passing else 'none'}** "
              f"(of {', '.join(str(m['n']) for m in cap)} tried; the sweep stops after two failures in a row). "
              f"Server memory: {fmt(res['idleRssMB'], 0)} MB idle."
              + (f" One load client (pre-encoded send, no decode) costs {fmt(sum(per_load) / len(per_load), 3)} cores."
                 if per_load else "")]
    if len(cap) >= 2:
        a, b = cap[0], cap[-1]
        if b["n"] > a["n"]:
            lines.append(f"Marginal memory: {fmt((b['serverRssMB'] - a['serverRssMB']) / (b['n'] - a['n']), 1)} MB "
                         f"per participant (N={a['n']} to {b['n']}).")
    pinned = res.get("pinned") or []
    if pinned:
        lines += ["", "## Capacity per server core: the server pinned to one core, the clients to the other", "",
                  "The same sweep with a server of its own started under `taskset -c 0` and every client under "
                  "`taskset -c 1`: the clients' share of this machine no longer takes the server's; \"server "
                  "cores\" is out of the one it has.", "",
                  "| N | real time | server cores (of 1) | per participant | server run-queue wait (thread-s/s) | "
                  "client cores (of 1) | output fps (dropped) | min recv fps | stalls > 1 s | video g2g p50/p95 ms | "
                  "audio g2g p50/p95 ms |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for m in pinned:
            lines.append(
                f"| {m['n']} | {'yes' if m['realtime'] else '**no**'} | {fmt(m['serverCores'])} | "
                f"{fmt(m['serverCores'] / m['n'], 3)} | {fmt(m['serverWaitCores'])} | {fmt(m['clientCores'])} | "
                f"{fmt(m['outFps'], 1)} ({fmt(m['droppedFps'], 1)}) | {fmt(m['minRecvFps'], 1)} | {m['stalls']} | "
                f"{fmt(m.get('videoP50'), 0)} / {fmt(m.get('videoP95'), 0)} | "
                f"{fmt(m.get('audioP50'), 0)} / {fmt(m.get('audioP95'), 0)} |")
        best = [m["n"] for m in pinned if m["realtime"]]
        lines += ["", f"Participants per server core: **{best[-1] if best else 'none'}** in real time "
                  f"(of {', '.join(str(m['n']) for m in pinned)} tried)."]
    lines += ["", "## The physical limit: the same work as a bare gst-launch-1.0 pipeline", "",
              "The same `pipelines/*.pipeline` fragments (decoders, VP8 encoder, per-receiver Opus encoders, "
              "payloaders), from files, no network, no webrtcbin, as fast as it runs: CPU-seconds per media-second.",
              "", "| N | bare cores | Tessera server cores | ratio |", "|---|---|---|---|"]
    for n, b in sorted(bare.items()):
        t = next((m["serverCores"] for m in cap if m["n"] == n), None)
        if b:
            lines.append(f"| {n} | {fmt(b['cores'])} | {fmt(t)} | {fmt(t / b['cores'] if t and b['cores'] else None)}x |")
        else:
            lines.append(f"| {n} | failed | {fmt(t)} | – |")
    if join:
        lines += ["", f"## Join time ({join['joins']} joins into the capacity room)", "",
                  "| measure | p50 ms | p95 ms | samples |", "|---|---|---|---|",
                  f"| WebSocket open → the joiner's offer sent (client-side webrtcbin set-up) | {fmt(pct(join['offer'], 50), 0)} | "
                  f"{fmt(pct(join['offer'], 95), 0)} | {len(join['offer'])} |",
                  f"| WebSocket open → peer connection connected (ICE + DTLS) | {fmt(pct(join['connected'], 50), 0)} | "
                  f"{fmt(pct(join['connected'], 95), 0)} | {len(join['connected'])} |",
                  f"| WebSocket open → first decoded mixed frame at the joiner | {fmt(pct(join['firstFrame'], 50), 0)} | "
                  f"{fmt(pct(join['firstFrame'], 95), 0)} | {len(join['firstFrame'])} |",
                  f"| WebSocket open → another participant sees the joiner's tile | {fmt(pct(join['seenByOthers'], 50), 0)} | "
                  f"{fmt(pct(join['seenByOthers'], 95), 0)} | {len(join['seenByOthers'])} |"]
    codecs = res.get("codecs") or []
    if codecs:
        lines += ["", f"## The cost of a second codec: one room of {CODEC_ROOM} load clients", "",
                  "The same room, measured three times in a row: every load client sending and receiving VP8, then "
                  "a third of them leaving and joining again in H.264 (pre-encoded H.264 sent, H.264 received): one "
                  "on each tier (every tier encodes both codecs), then the high tier's three (that tier encodes H.264 "
                  "only). Load clients declare maxBitrate none / 800k / 250k in turn. Encoders from `/metrics` "
                  "(`tessera_encoders`), receivers' codecs from `GET /api/rooms/codecs`. \"Bare\" is the same "
                  "work as one gst-launch-1.0 pipeline (as above: each file decoded in its codec, one encode per "
                  "(tier, codec) in use, a payloader per receiver in its codec, the audio mix-minus), run after "
                  "the server stopped: CPU time per media second, which a loaded machine inflates less than it "
                  "starves a real-time server.", "",
                  "| room | real time | server cores | server run-queue wait (thread-s/s) | bare cores | encoders (per codec) | "
                  "receivers (per codec) | tiers | server RSS MB | output fps | min recv fps | stalls > 1 s |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        per_codec = lambda d: ", ".join(f"{k} {v}" for k, v in sorted(d.items()) if v) or "?"
        for m in codecs:
            lines.append(f"| {m['arrangement']} | {'yes' if m['realtime'] else '**no**'} | {fmt(m['serverCores'])} | "
                         f"{fmt(m['serverWaitCores'])} | {fmt((m.get('bare') or {}).get('cores'))} | "
                         f"{sum(m['encoders'].values())} ({per_codec(m['encoders'])}) | {per_codec(m['receiveCodecs'])} | "
                         f"{len(m.get('tiers') or []) or '?'} | {fmt(m['serverRssMB'], 0)} | {fmt(m['outFps'], 1)} | "
                         f"{fmt(m['minRecvFps'], 1)} | {m['stalls']} |")
    var = res.get("variants") or {}
    if var:
        lines += ["", f"## Where the bare pipeline's time goes, N = {var['n']}", "",
                  "| variant | cores |", "|---|---|"]
        for v, r in var["results"].items():
            lines.append(f"| {BARE_VARIANTS[v]} | {fmt(r['cores']) if r else 'failed'} |")
    if rooms:
        lines += ["", "## Rooms of 4 at once (load clients only)", "",
                  "| rooms | real time | server cores | per room | server RSS MB | min output fps | min recv fps | stalls |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in rooms:
            lines.append(f"| {r['rooms']} | {'yes' if r['realtime'] else '**no**'} | {fmt(r['serverCores'])} | "
                         f"{fmt(r['serverCores'] / r['rooms'])} | {fmt(r['serverRssMB'], 0)} | {fmt(r['minOutFps'], 1)} | "
                         f"{fmt(r['minRecvFps'], 1)} | {r['stalls']} |")
    audio = res.get("audio") or {}
    if audio.get("tessera") or audio.get("janus"):
        lines += ["", "## Audio only: Tessera vs Janus AudioBridge", "",
                  "N participants sending pre-encoded Opus (no video), not decoding, each a tone; Janus does one "
                  "mix-minus and one Opus encode per participant, Tessera K+1 (the full mix for all but the "
                  "K = 3 speakers, and one mix-minus for each of them). Janus runs on a veth test host in the same namespace "
                  f"({JANUS_HOST}; it does not use loopback for media).", "",
                  "| N | server | real time | rooms on the server | server cores | per participant (mcores) | server RSS MB | min packets/s at a receiver | stalls |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for target in ("tessera", "janus"):
            for r in audio.get(target, []):
                lines.append(f"| {r['n']} | {'Tessera' if target == 'tessera' else 'Janus AudioBridge'} | "
                             f"{'yes' if r['realtime'] else '**no**'} ({r['connected']} connected) | {fmt(r.get('roomsAlive'))} | "
                             f"{fmt(r['serverCores'])} | "
                             f"{fmt(r['serverCores'] / r['n'] * 1000, 1)} | {fmt(r['serverRssMB'], 0)} | "
                             f"{fmt(r['minPacketsPerS'], 0)} | {r['stalls']} |")
    viewers = res.get("viewers") or {}
    if viewers.get("points"):
        base = viewers["points"][0]
        lines += ["", "## Viewers and live streaming: one room of 4 load clients", "",
                  "WHEP viewers (one `tessera-client --whep --count K` process per step, its sessions not decoding) of the room's mix, added in steps; then the "
                  "room live to HLS (`hlssink2`, served by Tessera), then to HLS and RTMP (`rtmp2sink` into a local "
                  "`ffmpeg -listen 1` that discards it). \"Per viewer\" is the server's cores over the room without "
                  "viewers, divided by the viewers; \"encoders\" counts the room's video encoders (`tessera_encoders`): "
                  "viewers share the tier encoders, a live stream adds its own H.264 + AAC encode.", "",
                  "| step | viewers | real time | server cores | per viewer (mcores) | encoders | server threads | "
                  "server RSS MB | client cores (all) | min recv fps | stalls |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in viewers["points"] + viewers.get("live", []):
            per = ((r["serverCores"] - base["serverCores"]) / r["viewers"] * 1000
                   if r["viewers"] and "targets" not in r else None)
            lines.append(f"| {r['what']} | {r['viewers']} | {'yes' if r['realtime'] else '**no**'} | "
                         f"{fmt(r['serverCores'])} | {fmt(per, 1)} | {r['encoders']} | {r['serverThreads']} | "
                         f"{fmt(r['serverRssMB'], 0)} | {fmt(r.get('clientCores'))} | {fmt(r['minRecvFps'], 1)} | "
                         f"{r['stalls']} |")
    if res.get("bottleneck"):
        lines += ["", "## A receiver behind a real bottleneck", "",
                  "Two load senders and one decoding receiver whose link (a veth pair, the receiver in a network "
                  "namespace of its own) is shaped with `tbf rate R burst 16kbit latency 200ms` while it is on the "
                  "high tier. \"Down\": from the limit to its first step down, \"reached\": to the tier the limit "
                  "calls for (low at 300 kbit/s, audio only at 64), both from its tier in the API polled every "
                  "100 ms; \"sent\": the server's `bitrateOut` to it, the mean of one poll a second from 3 s after that; "
                  "then the frames it decoded, its stalls (gaps over 1 s) and its longest audio gap over that "
                  "time; \"back\": from lifting the limit to the high tier (300 kbit/s) or to video (64 kbit/s).",
                  "",
                  "| limit | down (s) | reached (s) | tier at the end | sent (kbit/s) | sent / limit | fps | stalls | "
                  "longest audio gap (ms) | back (s) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for m in res["bottleneck"]:
            lines.append(f"| {m['limit'] // 1000} kbit/s | {fmt(m['downS'], 1)} | {fmt(m['reachedS'], 1)} "
                         f"({m['target']}) | {m['tierEnd']} | {m['sentBps'] / 1000:.0f} | "
                         f"{fmt(m['sentBps'] / m['limit'])} | {fmt(m['fps'], 1)} | {m['stalls']} | "
                         f"{fmt(m['audioMaxGapMs'], 0)} | {fmt(m['backS'], 1)} |")
    if res.get("large"):
        lines += ["", "## Large calls: speaker + 8 vs the full grid", "",
                  "One room of N with video: N - 2 load participants are the sessions of one `tessera-client "
                  "--count` process (one shared pre-encoded file, not decoding, all on the high tier), plus the "
                  "probe and the stamp sender. `recent` is data/layouts/recent.json (the speaker + the 8 most "
                  "recent speakers: 9 shown, the rest neither decoded nor composited); `grid` shows and decodes "
                  "everyone. \"Decoders\" is `tessera_room_video_decoders` at the end of the window; \"per load "
                  "session\" is the load process's cores over its sessions.", "",
                  "| N | layout | connected | real time | server cores | server run-queue wait (thread-s/s) | decoders | "
                  "output fps (dropped) | min recv fps | stalls | client cores (all) | per load session (mcores) | "
                  "server RSS MB | server threads | main loop held > 1 s (times; longest at the end, s) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in res["large"]:
            lines.append(f"| {r['n']} | {r['layout']} | {r['connected']} | {'yes' if r['realtime'] else '**no**'} | "
                         f"{fmt(r['serverCores'])} | {fmt(r['serverWaitCores'])} | {fmt(r['decoders'], 0)} | "
                         f"{fmt(r['outFps'], 1)} ({fmt(r['droppedFps'], 1)}) | {fmt(r['minRecvFps'], 1)} | "
                         f"{r['stalls']} | {fmt(r['clientCores'])} | {fmt(r['loadSessionCores'] * 1000, 1)} | "
                         f"{fmt(r['serverRssMB'], 0)} | {r['serverThreads']} | "
                         f"{fmt(r.get('loopStalls'), 0)}; {fmt(r.get('loopHeldS'), 2)} |")
    if res.get("narrow"):
        lines += ["", "## A 300 kbit/s receiver joins a room of 30 (issue 12's \"done means\")", "",
                  "The room of the large-call phase in `recent` (a probe that decodes, N - 2 load sessions in one "
                  "process), on a veth pair whose server end is shaped with `tbf rate 300kbit burst 16kbit latency "
                  "200ms` before the receiver joins from a network namespace behind it. \"First picture\": from "
                  "starting its process to its first decoded frame (and from its WebSocket's opening, without "
                  "the client's own start-up). Then over the window: its tiers (polled once "
                  "a second), its decoded frames, stalls (gaps over 1 s) and longest audio gap (over its whole "
                  "call); how many of the others were ever off the high tier; the slowest of the others and their "
                  "stalls; how often the server's main loop was held over a second from the join to the end of "
                  "the window, and the longest hold seen.", "",
                  "| N | limit | connected | first picture (s) | from WebSocket open (s) | its tiers (polls) | fps | "
                  "stalls | longest audio gap (ms) | others ever off high | room min recv fps | room stalls | "
                  "server cores | main loop held > 1 s (times; longest s) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in res["narrow"]:
            tiers = ", ".join(f"{t} {k}" for t, k in r["limitedTiers"].items()) or "–"
            lines.append(f"| {r['n']} | {r['limit'] // 1000} kbit/s | {r['connected']} | "
                         f"{fmt(r['firstPictureS'], 1)} | {fmt(r.get('firstPictureFromOpenS'), 1)} | {tiers} | "
                         f"{fmt(r.get('fps'), 1)} | {fmt(r.get('stalls'))} | "
                         f"{fmt(r.get('audioMaxGapMs'), 0)} | {r['othersOffHigh']} | "
                         f"{fmt(r.get('roomMinRecvFps'), 1)} | {fmt(r.get('roomStalls'))} | "
                         f"{fmt(r.get('serverCores'))} | "
                         f"{fmt(r.get('loopStalls'), 0)}; {fmt(r.get('loopHeldS'), 2)} |")
    if res.get("errors"):
        lines += ["", "## Problems during the run", ""] + [f"- {e}" for e in res["errors"]]
    lines.append("")
    return "\n".join(lines)


def plot(res, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    cap = res["capacity"]
    ns = [m["n"] for m in cap]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    a.plot(ns, [m["serverCores"] for m in cap], "o-", label="Tessera server")
    a.plot(ns, [m["clientCores"] for m in cap], "s--", label="all clients")
    bare = sorted((n, v["cores"]) for n, v in res["bare"].items() if v)
    if bare:
        a.plot([n for n, _ in bare], [c for _, c in bare], "^:", label="bare gst-launch (limit)")
    a.axhline(os.cpu_count() or 2, color="grey", lw=0.8)
    for m in cap:
        if not m["realtime"]:
            a.annotate("not real time", (m["n"], m["serverCores"]), fontsize=8)
    a.set_xlabel("participants in the room")
    a.set_ylabel("CPU cores")
    a.set_title("CPU vs participants")
    a.legend(fontsize=8)
    for key, label, style in (("videoP50", "video p50", "o-"), ("videoP95", "video p95", "o--"),
                              ("audioP50", "audio p50", "s-"), ("audioP95", "audio p95", "s--")):
        pts = [(m["n"], m[key]) for m in cap if m.get(key)]
        if pts:
            b.plot([p[0] for p in pts], [p[1] for p in pts], style, label=label)
    b.set_xlabel("participants in the room")
    b.set_ylabel("glass-to-glass ms")
    b.set_title("Added latency vs participants")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return True


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="N up to 9, short windows: under 2 minutes")
    p.add_argument("--max-n", type=int, help="stop the capacity sweep at this N")
    p.add_argument("--joins", type=int, default=None, help="joins to time (default 4 quick, 8 full)")
    p.add_argument("--skip-rooms", action="store_true", help="skip the rooms-of-4 phase")
    p.add_argument("--skip-pinned", action="store_true",
                   help="skip the capacity sweep with the server pinned to one core and the clients to the other")
    p.add_argument("--skip-codecs", action="store_true", help="skip the VP8 vs VP8 + H.264 room phase")
    p.add_argument("--skip-audio", action="store_true", help="skip the audio-only Tessera vs Janus phase")
    p.add_argument("--skip-viewers", action="store_true", help="skip the WHEP viewers and live streaming phase")
    p.add_argument("--skip-bottleneck", action="store_true",
                   help="skip the 300 and 64 kbit/s bottleneck phase and the 300 kbit/s joiner of a room of 30")
    p.add_argument("--skip-large", action="store_true", help="skip the large-call phase (30 and 50, speaker + 8 vs grid)")
    p.add_argument("--only-large", action="store_true", help="run the large-call phases only (the room of 30 and 50, and its 300 kbit/s joiner; no capacity sweep, no bare pipeline)")
    p.add_argument("--max-audio-n", type=int, help="largest audio-only room (default 10 quick, 50 full)")
    p.add_argument("--server-arg", action="append", help="extra tessera flag (repeatable), e.g. --server-arg=--jitter-latency=50")
    p.add_argument("--h264-every", type=int, default=0, metavar="K",
                   help="every K-th load client (from the first) sends and receives H.264 instead of VP8: "
                        "the cost of a second codec (3: a third)")
    p.add_argument("--out", help="results file stem (default bench/results/<UTC time>)")
    args = p.parse_args()
    if args.joins is None:
        args.joins = 3 if args.quick else 8
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    names = sorted(line.split(":")[1].strip().split("@")[0] for line in links.splitlines())
    if names != ["lo", "vb0", "vb1"]:
        sys.exit("bench.py: run it through bench/run (a network namespace with only lo)")
    t0 = time.monotonic()
    reference = [reference_encode_seconds()]
    bench = Bench(args)
    res = bench.run()
    reference.append(reference_encode_seconds())
    mach = machine()
    mach["referenceEncodeS"] = reference
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = Path(args.out) if args.out else RESULTS / bench.stamp
    md = markdown(bench, res, mach)
    res["machine"], res["loadStart"], res["quick"] = mach, bench.load_start, bench.quick
    stem.with_suffix(".json").write_text(json.dumps(res, indent=1, default=str))
    png = stem.with_suffix(".png")
    if plot(res, png):
        md += f"\n![CPU and latency vs participants]({png.name})\n"
    stem.with_suffix(".md").write_text(md)
    print(md)
    print(f"\nwritten: {stem}.md, {stem}.json{', ' + str(png) if png.exists() else ''} "
          f"({time.monotonic() - t0:.0f} s)")
    if bench.failed_phases:
        # The table is printed and written anyway; the exit status says it has holes.
        sys.exit(f"bench.py: phases failed: {', '.join(bench.failed_phases)}")


if __name__ == "__main__":
    main()
