"""Drives one headless QEMU run of AethelOS for the qemu-*-test.sh scripts.

The serial line is QEMU's stdout on a pipe: every byte is kept in `buf` and written to the
serial log as it arrives. Waits run against one deadline, set when QEMU starts. Commands are
typed a byte at a time with a short pause (like a person, so the 16-byte UART FIFO never
overflows between the shell's polls). QEMU's human monitor is reached on a unix socket.
The scripts embed their Python and import this file with the scripts folder on sys.path.
"""
import os
import select
import socket
import subprocess
import sys
import time

PROMPT = b"aethel> "
MONITOR_PROMPT = b"(qemu) "


class Monitor:
    """QEMU's human monitor on a unix socket; one connection, kept open."""

    def __init__(self, path, attempts=100, pause=0.05):
        # QEMU makes the socket a moment after it starts: try for a while before giving up.
        last = None
        for _ in range(attempts):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self.sock.connect(path)
                break
            except OSError as e:
                self.sock.close()
                last = e
                time.sleep(pause)
        else:
            raise ConnectionError("QEMU monitor at %s did not answer: %s" % (path, last))
        self.at_prompt = False  # the greeting's prompt has not been read yet

    def send(self, command):
        """Sends one command without waiting for its reply (see drain)."""
        self.sock.sendall(command.encode() + b"\n")
        self.at_prompt = False

    def drain(self):
        """Reads and drops whatever the monitor has said so far, without blocking."""
        self.sock.setblocking(False)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                self.at_prompt = data.endswith(MONITOR_PROMPT)
        except BlockingIOError:
            pass
        finally:
            self.sock.setblocking(True)

    def command(self, command, timeout):
        """Sends one command and returns what the monitor said up to its next prompt (or until
        it hung up, as after `quit`). Raises socket.timeout if no prompt came in `timeout` s."""
        self.sock.settimeout(timeout)
        if not self.at_prompt:
            self._read_to_prompt()
        self.send(command)
        return self._read_to_prompt()

    def _read_to_prompt(self):
        reply = b""
        while MONITOR_PROMPT not in reply:
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            reply += chunk
        self.at_prompt = reply.endswith(MONITOR_PROMPT)
        return reply

    def close(self):
        self.sock.close()


class Qemu:
    """One QEMU run: start it, pump its serial output, wait for text, type, talk to its monitor.

    `stdin=False` gives QEMU no input pipe (nothing is typed on the serial line then).
    `monitor_path` is the unix socket QEMU's `-monitor unix:...,server` listens on, if any.
    close() (or leaving a `with` block) kills QEMU if it still runs and closes the log."""

    def __init__(self, cmd, log_path, timeout_s, stdin=True, monitor_path=None):
        self.started = time.monotonic()
        self.deadline = self.started + timeout_s
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.buf = bytearray()
        self.log = open(log_path, "wb")
        self.monitor_path = monitor_path
        self.mon = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def elapsed(self):
        return time.monotonic() - self.started

    def pump(self, wait):
        """Takes in what QEMU printed, waiting up to `wait` s for something. Raises
        RuntimeError once QEMU's output has ended (it exited)."""
        r, _, _ = select.select([self.proc.stdout], [], [], wait)
        if r:
            data = os.read(self.proc.stdout.fileno(), 1 << 20)
            if not data:
                # Its stdout closes a moment before it can be reaped: wait briefly for the status.
                try:
                    status = self.proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    status = None
                raise RuntimeError("QEMU exited (status %s)" % status)
            self.buf.extend(data)
            self.log.write(data)
            self.log.flush()

    def wait_for(self, token, start=0):
        """Index in buf of the first `token` at or after `start`; raises TimeoutError at the deadline."""
        searched = start
        while True:
            i = self.buf.find(token, max(start, searched - len(token)))
            if i >= 0:
                return i
            searched = len(self.buf)
            if time.monotonic() > self.deadline:
                raise TimeoutError("timed out waiting for %r" % token)
            self.pump(0.05)

    def text(self, start, end=None):
        return self.buf[start:end].decode("utf-8", "replace")

    def tail(self, n=2000):
        return self.buf[-n:].decode("utf-8", "replace")

    def reply(self, start):
        """The serial text from `start` up to the next shell prompt (waited for)."""
        return self.text(start, self.wait_for(PROMPT, start))

    def type_text(self, text, per_char_delay=0.005):
        """Types `text` on the serial line one byte at a time, taking in output as it goes."""
        for ch in text.encode():
            self.proc.stdin.write(bytes([ch]))
            self.proc.stdin.flush()
            time.sleep(per_char_delay)
            self.pump(0)

    def exchange(self, line):
        """Types `line` and Enter; returns what the shell printed up to its next prompt."""
        start = len(self.buf)
        self.type_text(line + "\r")
        return self.reply(start)

    def wait_exit(self, within_s):
        """Pumps until QEMU exits by itself or `within_s` s pass; its exit status, or None."""
        limit = time.monotonic() + within_s
        status = None
        while time.monotonic() < limit:
            status = self.proc.poll()
            try:
                self.pump(0.1)
            except RuntimeError:  # end of output: QEMU is gone
                return self.proc.wait(timeout=5)
            if status is not None:
                break
        return status

    def open_monitor(self):
        if self.mon is None:
            self.mon = Monitor(self.monitor_path)
        return self.mon

    def monitor(self, command):
        """One monitor command, answered before the deadline (at least 1 s allowed)."""
        return self.open_monitor().command(command, max(1.0, self.deadline - time.monotonic()))

    def close(self):
        if self.mon is not None:
            self.mon.close()
            self.mon = None
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()


def report(name, failures, log_path):
    """Prints every failed check (what, expected, what came instead) and the verdict; exits
    with status 1 if anything failed."""
    if failures:
        for what, expected, reply in failures:
            print("---- %s: expected %s; got:\n%s" % (what, expected, reply))
        print("%s test FAILED (%d checks); serial log: %s" % (name, len(failures), log_path))
        sys.exit(1)
    print("%s test passed; serial log: %s" % (name, log_path))
