#!/usr/bin/python3
"""The installed package at work: starts /usr/bin/tessera with the installed
config as the tessera user (as tessera.service does, without systemd as PID
1), waits for its READY=1 on a notify socket, checks /healthz and the web
client, joins a room with the installed tessera-client twice and checks the
mix (colours, mix-minus tones), records the room into
/var/lib/tessera/recordings, reloads with SIGHUP and stops with SIGTERM.

Run it as root in a network namespace with only lo (tests/package/run.sh
does). Prints "ok NAME" or "FAIL NAME: why" per check; exits 1 on a failure.
Usage: service.py WORKDIR
"""
import json
import os
import pwd
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

WORK = sys.argv[1]
BASE = "http://127.0.0.1:8080"  # the port of the installed config
RECORDINGS = "/var/lib/tessera/recordings"
failures = 0


def check(name, ok, why=""):
    global failures
    print(f"ok {name}" if ok else f"FAIL {name}: {why}", flush=True)
    if not ok:
        failures += 1
    return ok


def http(method, path, body=None):
    request = urllib.request.Request(BASE + path, method=method, data=body)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_for(what, deadline_s, probe):
    """Calls probe() until it returns a true value or the deadline passes."""
    end = time.monotonic() + deadline_s
    while True:
        value = probe()
        if value or time.monotonic() > end:
            return value
        time.sleep(0.2)


class Notifications:
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET."""

    def __init__(self, path):
        self.path = path
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(path)
        os.chmod(path, 0o777)  # the service user sends to it
        self.socket.settimeout(0.2)
        self.received = []

    def wait(self, state, deadline_s):
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            try:
                self.received.append(self.socket.recv(4096).decode())
            except socket.timeout:
                pass
            for message in self.received:
                if state in message.split("\n"):
                    return message
        return None


class Client:
    """/usr/bin/tessera-client, driven on stdin, its JSON lines read from stdout."""

    def __init__(self, name, color, tone):
        self.name = name
        self.log = open(os.path.join(WORK, f"client-{name}.log"), "w")
        self.process = subprocess.Popen(
            ["/usr/bin/tessera-client", "--server", "ws://127.0.0.1:8080/ws", "--room", "pkg", "--name", name,
             "--color", color, "--tone", str(tone), "--detect", "440,660", "--ice-address", "127.0.0.1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, bufsize=1)
        self.lines = queue.Queue()
        self.events = set()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.log.write(line)
            try:
                self.lines.put(json.loads(line))
            except json.JSONDecodeError:
                pass

    def _drain(self, timeout):
        try:
            item = self.lines.get(timeout=timeout)
        except queue.Empty:
            return None
        if "event" in item:
            self.events.add(item["event"])
        return item

    def wait_event(self, event, deadline_s):
        end = time.monotonic() + deadline_s
        while event not in self.events and time.monotonic() < end:
            self._drain(0.2)
        return event in self.events

    def report(self):
        try:
            self.process.stdin.write("report\n")
            self.process.stdin.flush()
        except BrokenPipeError:  # the client gave up and exited
            return None
        end = time.monotonic() + 10
        while time.monotonic() < end:
            item = self._drain(0.2)
            if item is not None and item.get("reply") == "report":
                return item
        return None

    def leave(self):
        try:
            self.process.stdin.write("leave\n")
            self.process.stdin.flush()
            self.process.wait(timeout=20)
        except (BrokenPipeError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()


def coverage(report, rgb):
    """Share of the thumbnail's cells within a small distance of rgb."""
    thumb = report.get("thumb") if report else None
    if not thumb:
        return 0.0
    data = bytes.fromhex(thumb["rgb"])
    cells = len(data) // 3
    close = sum(1 for i in range(cells)
                if sum(abs(data[3 * i + k] - rgb[k]) for k in range(3)) < 120)
    return close / cells


def mix_ok(report, other_rgb, own_tone, other_tone):
    tones = (report or {}).get("tones", {})
    return (coverage(report, (255, 0, 0)) > 0.1 and coverage(report, (0, 0, 255)) > 0.1
            and tones.get(other_tone, -120) > -40 and tones.get(own_tone, 0) < -40)


def main():
    notify = Notifications(os.path.join(WORK, "notify"))
    stderr_path = os.path.join(WORK, "tessera.stderr")
    stderr = open(stderr_path, "w")
    # As the journal would: journald knows stderr by its device and inode.
    info = os.fstat(stderr.fileno())
    env = dict(os.environ, NOTIFY_SOCKET=notify.path, JOURNAL_STREAM=f"{info.st_dev}:{info.st_ino}")
    user = pwd.getpwnam("tessera")
    # What tessera.service does: the tessera user, no new privileges, the
    # state directory as working directory. Flags still override the config:
    # --log-level for the priority check; --ice-address because ICE leaves
    # out loopback unless asked, and this namespace has nothing else.
    server = subprocess.Popen(
        ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups", "--no-new-privs",
         "/usr/bin/tessera", "--config", "/etc/tessera/config.json", "--log-level", "info",
         "--ice-address", "127.0.0.1"],
        cwd="/var/lib/tessera", env=env, stdout=stderr, stderr=stderr, preexec_fn=lambda: os.umask(0o027))
    clients = []
    try:
        ready = notify.wait("READY=1", 60)
        if not check("ready notification", ready is not None, f"no READY=1 within 60 s; got {notify.received}"):
            return
        check("status names the listen URL", "STATUS=listening on http://127.0.0.1:8080" in ready, ready)
        check("runs as the tessera user",
              os.stat(f"/proc/{server.pid}").st_uid == user.pw_uid, "process owner is not tessera")
        check("healthz", http("GET", "/healthz") == (200, "ok"), str(http("GET", "/healthz")))
        status, page = http("GET", "/")
        check("web client from /usr/share/tessera/www", status == 200 and "<html" in page.lower(), str(status))

        clients = [Client("red", "0xFF0000", 440), Client("blue", "0x0000FF", 660)]
        for c in clients:
            check(f"{c.name} connected", c.wait_event("connected", 60), f"events {sorted(c.events)}")
        status, body = http("POST", "/api/rooms/pkg/recording", b'{"format": "mkv"}')
        started = status == 201 and json.loads(body).get("file", "").startswith(RECORDINGS + "/")
        check("recording starts in " + RECORDINGS, started, f"{status} {body}")

        red, blue = clients
        red_ok = wait_for("red mix", 45, lambda: mix_ok(red.report(), (0, 0, 255), "440", "660"))
        blue_ok = wait_for("blue mix", 45, lambda: mix_ok(blue.report(), (255, 0, 0), "660", "440"))
        check("red sees both colours and hears only blue", red_ok, json.dumps(red.report())[:300])
        check("blue sees both colours and hears only red", blue_ok, json.dumps(blue.report())[:300])

        if started:
            time.sleep(2)  # a recording of some seconds, not of an instant
            status, body = http("DELETE", "/api/rooms/pkg/recording")
            file = json.loads(body).get("file", "") if status == 200 else ""
            check("recording stops", status == 200 and json.loads(body).get("duration", 0) > 1, f"{status} {body}")
            landed = os.path.isfile(file) and os.path.getsize(file) > 10000 and \
                os.stat(file).st_uid == user.pw_uid and os.path.dirname(file) == RECORDINGS
            check("recording lands in " + RECORDINGS + ", owned by tessera", landed,
                  f"{file}: {os.stat(file) if os.path.exists(file) else 'missing'}")

        # ExecReload.
        server.send_signal(signal.SIGHUP)
        reloaded = wait_for("reload", 20, lambda: "layouts reloaded from /usr/share/tessera/layouts"
                            in open(stderr_path).read())
        check("SIGHUP reloads the installed layouts", reloaded, "no reload line on stderr")
    finally:
        for c in clients:
            c.leave()
        server.send_signal(signal.SIGTERM)
        stopping = notify.wait("STOPPING=1", 30)
        try:
            code = server.wait(timeout=40)
        except subprocess.TimeoutExpired:
            server.kill()
            code = server.wait()
        check("stopping notification", stopping is not None, f"got {notify.received}")
        check("SIGTERM exits 0", code == 0, f"exit status {code}")
        log = open(stderr_path).read()
        # At logLevel info, with stderr on the journal: syslog priority prefixes.
        check("journal lines carry their priority", "<6>tessera-app: listening on" in log, log[-500:])


main()
sys.exit(1 if failures else 0)
