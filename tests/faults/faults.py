#!/usr/bin/env python3
"""Coffer's fault runs, driven by scripts/faults (which builds Coffer and starts a durable
PostgreSQL and a local KMS endpoint). Standard library only, plus boto3 for the kms run.

Each scenario runs `coffer serve` replicas on loopback under a write/read load and breaks
something while the load runs:

  kill       two replicas behind the client; one of them SIGKILLed every few seconds
             and started again; the client retries on the other replica
  pg-restart PostgreSQL stopped (fast, then immediate shutdown) and started again
  kms        kms mode; the KMS endpoint process killed and started again
  replicas   8 processes run `migrate` then `serve` together on an empty database
  read-only  the database switched to default_transaction_read_only, then back

The load: worker threads, each the only writer of its own config elements (half of them
write-only), PUT new random values and read them back; a few issue tokens. Afterwards
every element is read back: the value must be the last acknowledged write, or a later
write whose outcome the client could not know (connection lost or 5xx); every element
must decrypt (runtime config). Failures are allowed only where the scenario says so (503
during an outage); every other non-2xx, every hang past the client timeout and every
lost write is a finding and fails the run. The server logs and every error body are
searched for the values written, the tokens, API key secrets and the root key.
"""
import argparse
import atexit
import base64
import hashlib
import http.client
import json
import os
import random
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

VALUE_PREFIX = "FLTv"  # every value written starts with this, so a leak is one regex away
VALUE_PATTERN = re.compile(VALUE_PREFIX + r"[0-9a-f]{24}")
CLIENT_TIMEOUT = 20.0


def log(message):
    print(f"==> {message}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- processes

PROCESSES = []  # every process started, killed on exit whatever happens


@atexit.register
def kill_all():
    for process in PROCESSES:
        if process.poll() is None:
            process.kill()


class Replica:
    """One `coffer serve` process (or `migrate` then `serve`) on its own port."""

    def __init__(self, name, binary, env, work, migrate_first=False):
        self.name, self.binary, self.migrate_first = name, binary, migrate_first
        self.port = free_port()
        self.env = {**env, "COFFER_HTTP_PORT": str(self.port)}
        self.log_path = os.path.join(work, f"{name}.log")
        self.process = None
        self.starts = 0

    def start(self):
        command = [self.binary, "serve"]
        if self.migrate_first:
            command = ["sh", "-c", f"{shlex.quote(self.binary)} migrate >&2 && exec {shlex.quote(self.binary)} serve"]
        self.process = subprocess.Popen(command, env=self.env, stdout=open(self.log_path, "ab"),
                                        stderr=subprocess.STDOUT)
        PROCESSES.append(self.process)
        self.starts += 1

    def wait_ready(self, limit=60.0):
        started = time.monotonic()
        while time.monotonic() - started < limit:
            if self.process.poll() is not None:
                raise Finding(f"{self.name} exited with {self.process.returncode} before it was ready; see {self.log_path}")
            if probe(self.port, "/readyz") == 200:
                return time.monotonic() - started
            time.sleep(0.02)
        raise Finding(f"{self.name} was not ready within {limit} s")

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self):
        """SIGTERM; a problem's text when the process does not stop cleanly within 30 s."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                status = self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return f"{self.name} did not stop within 30 s of SIGTERM"
            if status != 0:
                return f"{self.name} exited {status} after SIGTERM"
        return None


def probe(port, path):
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", path)
        status = connection.getresponse().status
        connection.close()
        return status
    except OSError:
        return None


class Finding(Exception):
    """Something the run proves wrong."""


# ---------------------------------------------------------------- HTTP

class HTTP:
    """Keep-alive connections per thread and port."""

    def __init__(self):
        self.local = threading.local()

    def request(self, port, method, path, body=None, token=None, timeout=CLIENT_TIMEOUT):
        """(status, body bytes), or (None, exception text) when the connection failed."""
        connections = self.local.__dict__.setdefault("connections", {})
        connection = connections.get(port)
        if connection is None:
            connection = connections[port] = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException) as error:
            connection.close()
            connections.pop(port, None)
            return None, f"{type(error).__name__}: {error}"


# ---------------------------------------------------------------- the load

def new_value():
    return VALUE_PREFIX + secrets.token_hex(12)


class Load:
    """Worker threads writing and reading their own elements through a set of replicas."""

    def __init__(self, run, ports, threads=6, keys_per_thread=12, stack="faults", token_share=0.05):
        self.run, self.ports, self.stack = run, ports, stack
        self.threads, self.keys_per_thread, self.token_share = threads, keys_per_thread, token_share
        self.http = HTTP()
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.attempts = {}  # key -> [(value, "ack" | "unknown")]
        self.events = []  # (start, end, op, status or None, detail)
        self.workers = []

    def key_name(self, thread, index):
        return f"FLT_{thread}_{index}"

    def write_only(self, key):
        return int(key.rsplit("_", 1)[1]) % 2 == 0

    def record(self, start, op, status, detail=""):
        with self.lock:
            self.events.append((start, time.monotonic(), op, status, detail))

    def call(self, op, method, path, body=None, token=None, retry_on_connection_loss=True):
        """Sends to a replica, and (as a load balancer would) to the next one when the
        connection fails. Returns (status, body) of the last try."""
        ports = list(self.ports())
        random.shuffle(ports)
        status, data = None, b""
        for port in ports[: 2 if retry_on_connection_loss else 1]:
            start = time.monotonic()
            status, data = self.http.request(port, method, path, body, token)
            self.record(start, op, status, data if status is None or status >= 300 else b"")
            if status is not None:
                return status, data
        return status, data

    def worker(self, thread):
        rng = random.Random(thread)
        keys = [self.key_name(thread, i) for i in range(self.keys_per_thread)]
        acked = {}
        while not self.stop_event.is_set():
            roll = rng.random()
            if roll < self.token_share:
                key = self.run.keys["admin"]
                self.call("token", "POST", "/api/v1/auth/token", {"api_key_id": key["id"], "api_key_secret": key["secret"]})
            elif roll < 0.6 or not acked:
                key = rng.choice(keys)
                value = new_value()
                with self.lock:
                    self.attempts.setdefault(key, []).append([value, "unknown"])
                    attempt = self.attempts[key][-1]
                status, _ = self.call("write", "PUT", f"/api/v1/stacks/{self.stack}/config/{key}",
                                      {"type": "ENVIRONMENT_VARIABLE", "value": value, "write_only": self.write_only(key)},
                                      self.run.tokens["admin"])
                if status is not None and 200 <= status < 300:
                    with self.lock:
                        attempt[1] = "ack"
                    acked[key] = True
            else:
                key = rng.choice(list(acked))
                status, data = self.call("read", "GET", f"/api/v1/stacks/{self.stack}/config/{key}", token=self.run.tokens["admin"])
                if status == 200:
                    problem = self.check(key, json.loads(data))
                    if problem:
                        self.record(time.monotonic(), "read-check", 200, problem.encode())

    def possible_values(self, key):
        """Values the element may hold: the last acknowledged write and every later write
        whose outcome is unknown (and, before any acknowledgement, absence)."""
        with self.lock:
            attempts = list(self.attempts.get(key, []))
        last_ack = max((i for i, (_, outcome) in enumerate(attempts) if outcome == "ack"), default=-1)
        values = {value for value, _ in attempts[max(last_ack, 0):]} if attempts else set()
        return values, last_ack >= 0

    def check(self, key, element):
        values, must_exist = self.possible_values(key)
        if element.get("value") is not None:
            ok = element["value"] in values
        else:
            ok = element.get("checksum") in {hashlib.sha256(v.encode()).hexdigest() for v in values}
        return None if ok else f"{key}: read back a value that is neither the last acknowledged write nor a later one"

    def start(self):
        for thread in range(self.threads):
            worker = threading.Thread(target=self.worker, args=(thread,), daemon=True)
            worker.start()
            self.workers.append(worker)

    def stop(self):
        self.stop_event.set()
        for worker in self.workers:
            worker.join(timeout=CLIENT_TIMEOUT * 3)
            if worker.is_alive():
                raise Finding("a load thread did not finish: a request hangs")

    def verify(self):
        """Reads every element back through the first replica that answers."""
        port = self.ports()[0]
        http = HTTP()
        lost = checked = 0
        problems = []
        with self.lock:
            keys = sorted(self.attempts)
        for key in keys:
            values, must_exist = self.possible_values(key)
            status, data = http.request(port, "GET", f"/api/v1/stacks/{self.stack}/config/{key}", token=self.run.tokens["admin"])
            checked += 1
            if status == 404 and not must_exist:
                continue
            if status != 200:
                lost += 1
                problems.append(f"{key}: answered {status} on read back")
                continue
            problem = self.check(key, json.loads(data))
            if problem:
                lost += 1
                problems.append(problem)
        # Every element decrypts: the worker's runtime config carries every value.
        status, data = http.request(port, "GET", f"/api/v1/stacks/{self.stack}/runtime-config", token=self.run.tokens["worker"])
        if status != 200:
            problems.append(f"runtime config answered {status}")
        else:
            for item in json.loads(data)["items"]:
                values, _ = self.possible_values(item["id"])
                if item["value"] not in values:
                    lost += 1
                    problems.append(f"{item['id']}: runtime config value is not a written one")
        with self.lock:
            acknowledged = sum(1 for attempts in self.attempts.values() for _, outcome in attempts if outcome == "ack")
            unknown = sum(1 for attempts in self.attempts.values() for _, outcome in attempts if outcome == "unknown")
        return {"elements_checked": checked, "acknowledged_writes": acknowledged, "unknown_outcome_writes": unknown,
                "writes_lost": lost, "problems": problems[:20]}

    def error_bodies(self):
        with self.lock:
            return [detail for *_, detail in self.events if isinstance(detail, bytes) and detail]

    def summarise(self, allowed):
        """Counts requests and classifies every failure: allowed(op, status, start, end)
        says whether the scenario expects it."""
        with self.lock:
            events = list(self.events)
        summary = {"requests": len(events), "by_status": {}, "unexpected": [], "max_latency_s": 0.0,
                   "allowed_failures": 0, "5xx_outside_outages": 0}
        for start, end, op, status, detail in events:
            label = str(status) if status is not None else "connection"
            summary["by_status"][label] = summary["by_status"].get(label, 0) + 1
            summary["max_latency_s"] = max(summary["max_latency_s"], round(end - start, 3))
            if op == "read-check":
                summary["unexpected"].append(f"{op}: {detail.decode()}")
                continue
            if status is not None and status < 300:
                continue
            if allowed(op, status, start, end):
                summary["allowed_failures"] += 1
                continue
            if status is not None and status >= 500:
                summary["5xx_outside_outages"] += 1
            text = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
            summary["unexpected"].append(f"{op} -> {label} after {end - start:.2f}s: {text[:200]}")
        summary["unexpected_count"] = len(summary["unexpected"])
        summary["unexpected"] = summary["unexpected"][:20]
        return summary


# ---------------------------------------------------------------- one run's setup

class Run:
    """A database, keys and replicas for one scenario."""

    def __init__(self, args, name, kms_keys=None):
        self.args, self.name = args, name
        self.work = os.path.join(args.work, name)
        os.makedirs(self.work, exist_ok=True)
        self.database = "faults_" + name.replace("-", "_")
        self.psql(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")
        self.psql(f"CREATE DATABASE {self.database}")
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DATABASE_URL": f"postgres://coffer:{args.password}@127.0.0.1:{args.pg_port}/{self.database}?sslmode=disable",
            "COFFER_HTTP_HOST": "127.0.0.1",
            "LOG_FORMAT": "json",
            # The load asks for tokens with one key from one address, far over the
            # default throttle; these runs are about faults, not abuse bounds.
            "COFFER_TOKEN_RATE_PER_ADDRESS": "off",
            "COFFER_TOKEN_RATE_PER_KEY": "off",
        }
        if kms_keys:
            self.env.update({"ENCRYPTION_TYPE": "kms", "ENCRYPTION_KMS_ENCRYPTION_KEY_ID": kms_keys[0],
                             "ENCRYPTION_KMS_SIGNING_KEY_ID": kms_keys[1], "AWS_ACCESS_KEY_ID": "testing",
                             "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
                             "AWS_ENDPOINT_URL_KMS": kms_keys[2]})
        else:
            self.env.update({"ENCRYPTION_TYPE": "rsa", "ENCRYPTION_RSA_PRIVATE_KEY": args.root_key_b64})
        self.replicas = []
        self.keys, self.tokens = {}, {}

    def psql(self, sql, database="postgres"):
        url = f"postgres://coffer@127.0.0.1:{self.args.pg_port}/{database}?sslmode=disable"
        return subprocess.run([os.path.join(self.args.pg_bin, "psql"), "-qAtX", url, "-c", sql], check=True,
                              capture_output=True, text=True, env={**os.environ, "PGPASSWORD": self.args.password}).stdout

    def coffer(self, *arguments):
        result = subprocess.run([self.args.coffer, *arguments], env=self.env, capture_output=True, text=True)
        if result.returncode != 0:
            raise Finding(f"coffer {' '.join(arguments)} exited {result.returncode}: {result.stderr.strip()[:300]}")
        return result.stdout

    def prepare(self, replicas=1, migrate=True):
        if migrate:
            self.coffer("migrate")
            for role in ("admin", "worker"):
                self.keys[role] = json.loads(self.coffer("api-keys", "create", "--name", f"faults-{role}", "--space", "root",
                                                         "--role", role, "--format", "json"))
        self.replicas = [Replica(f"{self.name}-{i}", self.args.coffer, self.env, self.work, migrate_first=not migrate)
                         for i in range(replicas)]
        for replica in self.replicas:
            replica.start()
        for replica in self.replicas:
            replica.wait_ready()
        if migrate:
            self.refresh_tokens()
            status, data = HTTP().request(self.replicas[0].port, "POST", "/api/v1/stacks",
                                          {"id": "faults", "name": "Faults", "space": "root"}, self.tokens["admin"])
            if status != 201:
                raise Finding(f"creating the stack answered {status}: {data[:200]!r}")

    def refresh_tokens(self):
        for role, key in self.keys.items():
            status, data = HTTP().request(self.replicas[0].port, "POST", "/api/v1/auth/token",
                                          {"api_key_id": key["id"], "api_key_secret": key["secret"]})
            if status != 200:
                raise Finding(f"token for {role} answered {status}")
            self.tokens[role] = json.loads(data)["token"]

    def live_ports(self):
        return [r.port for r in self.replicas]

    def finish(self, result):
        """Stops the replicas (SIGTERM, as an orchestrator does) and adds what went wrong."""
        problems = [p for p in (replica.stop() for replica in self.replicas) if p]
        if problems:
            result["shutdown_problems"] = problems
            result["unexpected_count"] = result.get("unexpected_count", 0) + len(problems)
        return result

    def leak_check(self, load):
        """Values, tokens, API key secrets and the root key in server logs or error bodies."""
        texts = []
        for replica in self.replicas:
            with open(replica.log_path, encoding="utf-8", errors="replace") as f:
                texts.append(f.read())
        texts += [body.decode(errors="replace") for body in load.error_bodies()] if load else []
        needles = list(self.tokens.values()) + [k["secret"] for k in self.keys.values()] + [self.args.root_key_b64[:64]]
        found = sum(len(VALUE_PATTERN.findall(text)) for text in texts)
        found += sum(1 for text in texts for needle in needles if needle in text)
        return {"log_lines": sum(t.count("\n") for t in texts[: len(self.replicas)]), "secrets_found": found}


# ---------------------------------------------------------------- PostgreSQL control

class Postgres:
    def __init__(self, args):
        self.args = args
        # The server's own options, without -D (pg_ctl passes it again on every start).
        arguments = shlex.split(open(os.path.join(args.pg_data, "postmaster.opts")).read())[1:]
        kept = [a for i, a in enumerate(arguments) if a != "-D" and (i == 0 or arguments[i - 1] != "-D")]
        self.options = " ".join(shlex.quote(a) for a in kept)

    def pg_ctl(self, *arguments):
        command = [os.path.join(self.args.pg_bin, "pg_ctl"), "-D", self.args.pg_data, *arguments]
        if os.getuid() == 0:
            command = ["su", "-s", "/bin/sh", self.args.pg_user, "-c", " ".join(shlex.quote(c) for c in command)]
        subprocess.run(command, check=True, capture_output=True)

    def stop(self, mode):
        self.pg_ctl("-m", mode, "-w", "-t", "60", "stop")

    def start(self):
        self.pg_ctl("-l", os.path.join(self.args.pg_data, "server.log"), "-w", "-t", "60", "-o", self.options, "start")


# ---------------------------------------------------------------- scenarios

def connections_in_use(port):
    """coffer_db_connections_in_use from a replica's /metrics (None if it does not answer)."""
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/metrics")
        for line in connection.getresponse().read().decode().splitlines():
            if line.startswith("coffer_db_connections_in_use "):
                return int(float(line.split()[1]))
    except OSError:
        return None
    return None


def in_windows(windows, grace):
    def inside(start, end):
        return any(start <= e + grace and end >= s for s, e in windows)
    return inside


def scenario_kill(args):
    run = Run(args, "kill")
    run.prepare(replicas=2)
    load = Load(run, run.live_ports)
    load.start()
    kills = 0
    deadline = time.monotonic() + args.duration
    rng = random.Random(7)
    while time.monotonic() < deadline:
        time.sleep(rng.uniform(1.5, 3.5))
        victim = rng.choice(run.replicas)
        victim.kill()
        kills += 1
        victim.start()
        victim.wait_ready()
    load.stop()
    # Connections to a killed replica break; the client retried them on the other one,
    # so only the broken connections themselves are allowed, never a status.
    summary = load.summarise(lambda op, status, start, end: status is None)
    result = {"kills": kills, **summary, **load.verify(), **run.leak_check(load)}
    return run.finish(result)


def scenario_pg_restart(args):
    run = Run(args, "pg-restart")
    run.prepare(replicas=2)
    postgres = Postgres(args)
    load = Load(run, run.live_ports)
    load.start()
    windows = []
    restarts = []
    for mode in ("fast", "immediate", "fast", "immediate"):
        time.sleep(args.duration / 5)
        began = time.monotonic()
        postgres.stop(mode)
        time.sleep(3)
        postgres.start()
        windows.append((began, time.monotonic()))
        restarts.append(mode)
    time.sleep(args.duration / 5)
    load.stop()
    # During an outage (and the few seconds a pool needs to notice it is over) a request
    # may answer 503; never another status, never a broken connection or a hang.
    inside = in_windows(windows, grace=5.0)
    summary = load.summarise(lambda op, status, start, end: status == 503 and inside(start, end))
    recovered = all(probe(port, "/readyz") == 200 for port in run.live_ports())
    # Idle again, no connection may stay leased: a query stuck on a connection the server
    # closed would hold its pool slot for good.
    time.sleep(1)
    held = [connections_in_use(port) for port in run.live_ports()]
    summary["unexpected_count"] += sum(1 for h in held if h != 0)
    result = {"restarts": restarts, "recovered_without_restart": recovered, "connections_held_after": held, **summary,
              **load.verify(), **run.leak_check(load)}
    return run.finish(result)


def scenario_kms(args):
    import boto3  # in the test venv

    kms = boto3.client("kms", endpoint_url=args.kms_endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    encryption = kms.create_key(KeyUsage="ENCRYPT_DECRYPT", KeySpec="SYMMETRIC_DEFAULT")["KeyMetadata"]["KeyId"]
    signing = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="RSA_4096")["KeyMetadata"]["KeyId"]
    # moto keeps its keys in memory, so the process Coffer talks to and that is killed is
    # a forwarding endpoint in front of it (scripts/testing/kms_counting_proxy.py).
    proxy_port = free_port()
    proxy_script = os.path.join(args.root, "scripts/testing/kms_counting_proxy.py")

    def start_proxy():
        port_file = os.path.join(args.work, "kms-proxy.port")
        process = subprocess.Popen([sys.executable, proxy_script, args.kms_endpoint, port_file, str(proxy_port)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        PROCESSES.append(process)
        for _ in range(200):
            if probe(proxy_port, "/__counts") == 200:
                return process
            time.sleep(0.05)
        raise Finding("the KMS endpoint did not start")

    proxy = start_proxy()
    run = Run(args, "kms", kms_keys=(encryption, signing, f"http://127.0.0.1:{proxy_port}"))
    try:
        run.prepare(replicas=2)
        load = Load(run, run.live_ports, token_share=0.15)
        load.start()
        windows = []
        for _ in range(3):
            time.sleep(args.duration / 4)
            began = time.monotonic()
            proxy.send_signal(signal.SIGKILL)
            proxy.wait()
            time.sleep(8)
            proxy = start_proxy()
            windows.append((began, time.monotonic()))
        time.sleep(args.duration / 4)
        load.stop()
    finally:
        proxy.kill()
    # Reads and writes never need KMS after start; token issuance (a KMS Sign) may answer
    # 503 while KMS is away, and must work again after.
    inside = in_windows(windows, grace=2.0)
    summary = load.summarise(lambda op, status, start, end: op == "token" and status == 503 and inside(start, end))
    result = {"kms_restarts": len(windows), **summary, **load.verify(), **run.leak_check(load)}
    return run.finish(result)


def scenario_replicas(args):
    run = Run(args, "replicas")
    started = time.monotonic()
    run.prepare(replicas=8, migrate=False)
    ready_s = time.monotonic() - started
    keks = int(run.psql("SELECT count(*) FROM key_encryption_keys", database=run.database).strip())
    # All eight serve with the same keys: a token from one verifies on every other.
    for role in ("admin", "worker"):
        run.keys[role] = json.loads(run.coffer("api-keys", "create", "--name", f"faults-{role}", "--space", "root",
                                               "--role", role, "--format", "json"))
    problems = []
    http = HTTP()
    for issuer in run.replicas:
        status, data = http.request(issuer.port, "POST", "/api/v1/auth/token",
                                    {"api_key_id": run.keys["admin"]["id"], "api_key_secret": run.keys["admin"]["secret"]})
        if status != 200:
            problems.append(f"{issuer.name}: token answered {status}")
            continue
        token = json.loads(data)["token"]
        run.tokens[issuer.name] = token
        for verifier in run.replicas:
            status, _ = http.request(verifier.port, "GET", "/api/v1/stacks", token=token)
            if status != 200:
                problems.append(f"token of {issuer.name} answered {status} on {verifier.name}")
    result = {"replicas": len(run.replicas), "all_ready_s": round(ready_s, 2), "keks": keks,
              "problems": problems, "unexpected_count": len(problems) + (keks != 1), **run.leak_check(None)}
    return run.finish(result)


def scenario_read_only(args):
    run = Run(args, "read-only")
    run.prepare(replicas=2)
    load = Load(run, run.live_ports, token_share=0.0)
    load.start()
    windows = []
    for _ in range(2):
        time.sleep(args.duration / 3)
        began = time.monotonic()
        run.psql(f"ALTER DATABASE {run.database} SET default_transaction_read_only = on")
        run.psql("ALTER SYSTEM SET default_transaction_read_only = on")
        run.psql("SELECT pg_reload_conf()")
        time.sleep(4)
        run.psql("ALTER SYSTEM RESET default_transaction_read_only")
        run.psql("SELECT pg_reload_conf()")
        # ALTER DATABASE itself is a write, so it is undone with read-only off again.
        run.psql(f"ALTER DATABASE {run.database} RESET default_transaction_read_only")
        windows.append((began, time.monotonic()))
    time.sleep(args.duration / 3)
    load.stop()
    inside = in_windows(windows, grace=1.0)
    summary = load.summarise(lambda op, status, start, end: op == "write" and status == 503 and inside(start, end))
    read_only_answers = sum(1 for body in load.error_bodies() if b"database_read_only" in body)
    result = {"read_only_periods": len(windows), "read_only_503s": read_only_answers, **summary, **load.verify(),
              **run.leak_check(load)}
    return run.finish(result)


SCENARIOS = {"kill": scenario_kill, "pg-restart": scenario_pg_restart, "kms": scenario_kms,
             "replicas": scenario_replicas, "read-only": scenario_read_only}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--coffer", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--pg-bin", required=True)
    parser.add_argument("--pg-data", required=True)
    parser.add_argument("--pg-port", required=True, type=int)
    parser.add_argument("--pg-user", required=True)
    parser.add_argument("--pg-password-file", required=True)
    parser.add_argument("--kms-endpoint", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    parser.add_argument("--out")
    args = parser.parse_args()
    args.password = open(args.pg_password_file).read().strip()
    key_path = os.path.join(args.work, "root-key.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096", "-out", key_path],
                   check=True, capture_output=True)
    os.chmod(key_path, 0o600)
    args.root_key_b64 = base64.b64encode(open(key_path, "rb").read()).decode()

    results = {}
    failed = []
    for name in args.scenario or list(SCENARIOS):
        log(f"scenario {name} ({args.duration:.0f} s of load)")
        started = time.monotonic()
        try:
            result = SCENARIOS[name](args)
        except Finding as finding:
            result = {"finding": str(finding), "unexpected_count": 1}
        result["seconds"] = round(time.monotonic() - started, 1)
        results[name] = result
        bad = result.get("unexpected_count", 0) + result.get("writes_lost", 0) + result.get("secrets_found", 0)
        if bad or result.get("recovered_without_restart") is False:
            failed.append(name)
        print(json.dumps({name: result}, indent=2), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)
    if failed:
        log(f"FAILED: {', '.join(failed)}")
        sys.exit(1)
    log("all fault runs passed")


if __name__ == "__main__":
    main()
