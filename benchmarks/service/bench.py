#!/usr/bin/env python3
"""Coffer's service benchmark, driven by scripts/bench (which builds Coffer and starts
PostgreSQL). Standard library only.

For each scenario it
  1. captures the SQL that the service issues for a request (PostgreSQL's
     log_statement=all, the statements of the request's own backend within the request's
     time window), for 16 different targets;
  2. loads the service with wrk (a Lua script cycling through the same 16 targets);
  3. replays the captured SQL with pgbench -M prepared, the same number of clients, one
     script per target;
and prints req/s, p50/p99, the pgbench TPS, their ratio, CPU per request and RSS.

Before the scenarios it loads GET /healthz with wrk the same way: the machine CPU per
request of the HTTP path alone (no SQL, no auth). Each scenario's "limit" is what the
machine's cores could serve if a request cost only that floor plus the machine CPU of one
pgbench transaction of its SQL: cores / (healthz CPU/req + CPU/pgbench tx); the table shows
it with the scenario's share of it.
"""
import argparse
import base64
import concurrent.futures
import http.client
import json
import os
import re
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TARGETS = 16


def log(message):
    print(f"==> {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes and /proc

def cpu_seconds(pid):
    """User plus system CPU seconds of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_busy_seconds():
    """CPU seconds spent not idle by all cores since boot."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / CLOCK_TICKS


def memory_mb(pid):
    """(current RSS, peak RSS) in MB."""
    result = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":")
                result[key] = int(value.split()[0]) / 1024
    return result["VmRSS"], result["VmHWM"]


class Service:
    def __init__(self, binary, env, log_path):
        self.binary, self.env, self.log_path = binary, env, log_path
        self.process = None

    def start(self):
        """Starts `coffer serve` and returns milliseconds until /readyz answered 200."""
        port = self.env["COFFER_HTTP_PORT"]
        started = time.monotonic()
        self.process = subprocess.Popen([self.binary, "serve"], env=self.env,
                                        stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT)
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"coffer serve exited with {self.process.returncode}; see {self.log_path}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                connection.request("GET", "/readyz")
                if connection.getresponse().status == 200:
                    return (time.monotonic() - started) * 1000
            except OSError:
                pass
            if time.monotonic() - started > 30:
                raise SystemExit("coffer serve was not ready within 30 s")
            time.sleep(0.002)

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)

    @property
    def pid(self):
        return self.process.pid


# ---------------------------------------------------------------- HTTP client

class Client:
    """One keep-alive connection per thread."""

    def __init__(self, port):
        self.port = port
        self.local = threading.local()

    def request(self, method, path, body=None, token=None, expect=(200, 201)):
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = self.local.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        response = connection.getresponse()
        data = response.read()
        if response.status not in expect:
            raise SystemExit(f"{method} {path} answered {response.status}: {data[:300]!r}")
        return json.loads(data) if data else None


# ---------------------------------------------------------------- SQL capture

ENTRY = re.compile(r"^(\d+\.\d+) \[(\d+)\] (LOG|DETAIL|ERROR|STATEMENT|HINT|CONTEXT|WARNING):  (.*)$")
PARAM = re.compile(r"\$(\d+) = (NULL|'(?:[^']|'')*')")


def parse_log(text):
    """Statements in a PostgreSQL stderr log excerpt: [(time, pid, sql, {n: literal})]."""
    entries = []
    for line in text.split("\n"):
        match = ENTRY.match(line)
        if match:
            entries.append([float(match[1]), int(match[2]), match[3], match[4]])
        elif line.startswith("\t") and entries:
            entries[-1][3] += "\n" + line[1:]
    statements = []
    for stamp, pid, kind, message in entries:
        if kind == "LOG":
            found = re.match(r"(?:execute [^:]*|statement): (.*)", message, re.S)
            if found:
                statements.append([stamp, pid, found[1], {}])
        elif kind == "DETAIL" and message.startswith("parameters: ") and statements:
            statements[-1][3] = {int(n): v for n, v in PARAM.findall(message)}
    return statements


def inline(sql, params, defines=None):
    """The statement with its logged parameter values in place of $n, on one line. A value
    that pgbench would take for a variable reference (`:name`, as in `stack:app`) is passed
    as a pgbench variable instead (added to `defines`), which pgbench binds as a parameter."""
    def value(match):
        literal = params[int(match[1])]
        if literal.startswith(":"):  # a pgbench variable put there by a rewrite
            return literal
        if defines is not None and re.search(r":[A-Za-z0-9_]", literal):
            name = f"v{len(defines)}"
            defines[name] = literal[1:-1].replace("''", "'")
            return f":{name}"
        return literal
    sql = re.sub(r"\$(\d+)\b", value, sql)
    return " ".join(sql.split())


class Capture:
    """Reads what the service's backends logged while one request ran."""

    def __init__(self, psql, log_path):
        self.psql, self.log_path = psql, log_path
        self.background = set()

    def configure(self, on):
        setting = "'all'" if on else "'none'"
        self.psql(f"ALTER SYSTEM SET log_statement = {setting}")
        self.psql("ALTER SYSTEM SET log_line_prefix = '%n [%p] '")
        self.psql("SELECT pg_reload_conf()")
        time.sleep(0.3)

    def learn_background(self, seconds=3.0):
        """What the service runs on its own (pollers, health checks) while idle."""
        offset = os.path.getsize(self.log_path)
        time.sleep(seconds)
        for _, _, sql, _ in parse_log(self.read_from(offset)):
            if not is_transaction_control(sql):
                self.background.add(" ".join(sql.split()))

    def read_from(self, offset):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            f.seek(offset)
            return f.read()

    def request(self, run):
        """Runs `run()` (one HTTP request) and returns the SQL its backend issued."""
        offset = os.path.getsize(self.log_path)
        started = time.time()
        run()
        finished = time.time()
        time.sleep(0.15)
        statements = [s for s in parse_log(self.read_from(offset)) if started - 0.002 <= s[0] <= finished + 0.002]
        # A request may lease more than one connection (one after the other); every backend
        # that ran something other than the service's background work during the request
        # ran it for the request, since requests are made one at a time.
        ours = {pid for _, pid, sql, _ in statements
                if not is_transaction_control(sql) and not self.is_background(sql)}
        if not ours:
            raise SystemExit("no SQL was captured for the request")
        return [(sql, params) for _, pid, sql, params in statements
                if pid in ours and (is_transaction_control(sql) or not self.is_background(sql))]

    # The audit chainer's statements (every few seconds, on its own connection): background
    # work even when a round falls inside a request, though it may not run while idle.
    CHAINER = ("pg_try_advisory_xact_lock(710233)", "audit_checkpoints", "pg_snapshot_xmin")

    def is_background(self, sql):
        flat = " ".join(sql.split())
        return flat in self.background or any(marker in flat for marker in self.CHAINER)


def is_transaction_control(sql):
    return sql.strip().upper() in ("BEGIN", "COMMIT", "ROLLBACK")


def pgbench_script(statements, rewrite=None):
    """A pgbench script running the statements in order (one transaction per run), and the
    variables it needs."""
    lines, defines = [], {}
    for sql, params in statements:
        line = rewrite(sql, params, defines) if rewrite else inline(sql, params, defines) + ";"
        lines.extend(line if isinstance(line, list) else [line])
    return "\n".join(lines) + "\n", defines


def versioned_write(sql, params, defines):
    """The write scenario's rewrite: every replayed write carries a new checksum (its
    parameter 10), so coffer_put_config_element stores a new version each time instead of
    answering `unchanged`, as the service's requests (each with a new value) do. Since sealed
    format 2 a write names the version it was sealed for (parameter 16, when there is one):
    the replay computes the next one, as the service's hint knows it, so that it writes
    instead of answering `version_changed`."""
    flat = " ".join(sql.split())
    if "coffer_put_config_element" in flat:
        rewritten = {**params, 10: ":checksum_n"}
        if 16 in params:
            rewritten[16] = (f"(SELECT coalesce(max(h.version), 0) + 1 FROM config_element_versions h "
                             f"WHERE h.owner_id = CAST({params[4]} AS uuid) AND h.config_id = {params[5]})")  # no `:`, which inline() reads as a variable
        return [r"\set checksum_n random(1, 2000000000)", inline(sql, rewritten, defines) + ";"]
    return inline(sql, params, defines) + ";"


# ---------------------------------------------------------------- load generators

WRK_SCRIPT = r"""
local targets = %(targets)s
local method = "%(method)s"
local token = "%(token)s"
local body_template = %(body)s
local counter = 0
local thread_number = 0
local created = 0

function setup(thread)
  created = created + 1
  thread:set("thread_number", created)
end

function init(args)
  thread_number = thread_number or 0
end

request = function()
  counter = counter + 1
  local path = targets[((counter + thread_number * 7) %% #targets) + 1]
  local headers = {["Content-Type"] = "application/json"}
  if token ~= "" then headers["Authorization"] = "Bearer " .. token end
  local body = nil
  if body_template ~= nil then
    body = string.format(body_template, string.format("%%02d%%010d", thread_number, counter))
  end
  return wrk.format(method, path, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.stderr:write(string.format(
    'WRK-JSON {"requests": %%d, "duration_us": %%d, "connect_errors": %%d, "read_errors": %%d, "write_errors": %%d, ' ..
    '"status_errors": %%d, "timeouts": %%d, "p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "max_us": %%d, "mean_us": %%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def lua_string(value):
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_wrk(port, work, name, targets, method, token, body_template, duration, connections):
    script = os.path.join(work, f"{name}.lua")
    with open(script, "w") as f:
        f.write(WRK_SCRIPT % {
            "targets": "{" + ", ".join(lua_string(t) for t in targets) + "}",
            "method": method,
            "token": token or "",
            "body": lua_string(body_template) if body_template else "nil",
        })
    result = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{duration}s", "--timeout", "10s", "-s", script,
         f"http://127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=duration + 60)
    for line in result.stderr.splitlines():
        if line.startswith("WRK-JSON "):
            return json.loads(line[len("WRK-JSON "):])
    raise SystemExit(f"wrk printed no summary:\n{result.stdout}\n{result.stderr}")


def run_pgbench(pg_bin, pg_port, password, database, scripts, defines, duration, clients):
    command = [os.path.join(pg_bin, "pgbench"), "-h", "127.0.0.1", "-p", str(pg_port), "-U", "coffer", "-n",
               "-M", "prepared", "-c", str(clients), "-j", "2", "-T", str(duration)]
    for name, value in defines.items():
        command += ["-D", f"{name}={value}"]
    for script in scripts:
        command += ["-f", script]
    command.append(database)
    result = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60,
                            env={**os.environ, "PGPASSWORD": password})
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", result.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", result.stdout)
    if result.returncode != 0 or not match or "ERROR" in result.stderr or (failed and int(failed[1]) > 0):
        raise SystemExit(f"pgbench failed:\n{result.stdout}\n{result.stderr[-2000:]}")
    latency = re.search(r"latency average = ([\d.]+) ms", result.stdout)
    return {"tps": float(match[1]), "latency_ms": float(latency[1]) if latency else None}


def openssl_rsa4096_signs():
    """RSA-4096 signs per second of `openssl speed` on every core."""
    cores = os.cpu_count() or 1
    result = subprocess.run(["openssl", "speed", "-seconds", "3", "-multi", str(cores), "rsa4096"],
                            capture_output=True, text=True, timeout=120)
    rows = [line.split() for line in result.stdout.splitlines() if re.match(r"^rsa\s+4096 bits", line)]
    if not rows:
        raise SystemExit(f"could not read openssl speed:\n{result.stdout}")
    # rsa 4096 bits <sign time>s <verify time>s <sign/s> <verify/s>
    return float(rows[-1][-2]), float(rows[-1][-1])


# ---------------------------------------------------------------- the run

def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--coffer", required=True)
    parser.add_argument("--pg-bin", required=True)
    parser.add_argument("--pg-data", required=True)
    parser.add_argument("--pg-port", required=True, type=int)
    parser.add_argument("--pg-password-file", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--out")
    args = parser.parse_args()

    password = open(args.pg_password_file).read().strip()
    # psql gets the password from its environment, not its command line (visible in ps).
    admin_url = f"postgres://coffer@127.0.0.1:{args.pg_port}/postgres?sslmode=disable"
    database = "coffer_bench"
    database_url = f"postgres://coffer:{password}@127.0.0.1:{args.pg_port}/{database}?sslmode=disable"
    psql_bin = os.path.join(args.pg_bin, "psql")

    def psql(sql, url=admin_url):
        return subprocess.run([psql_bin, "-qAtX", url, "-c", sql], check=True, capture_output=True, text=True,
                              env={**os.environ, "PGPASSWORD": password}).stdout

    psql(f"CREATE DATABASE {database}")
    key_path = os.path.join(args.work, "root-key.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096", "-out", key_path],
                   check=True, capture_output=True)
    os.chmod(key_path, 0o600)
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ENCRYPTION_TYPE": "rsa",
        "ENCRYPTION_RSA_PRIVATE_KEY": base64.b64encode(open(key_path, "rb").read()).decode(),
        "DATABASE_URL": database_url,
        "COFFER_HTTP_HOST": "127.0.0.1",
        "COFFER_HTTP_PORT": str(port),
        "LOG_FORMAT": "json",
        # The token scenario asks with one key from one address as fast as it can: it
        # measures signing, so the throttle (default 300/m per address, 60/m per key) is off.
        "COFFER_TOKEN_RATE_PER_ADDRESS": "off",
        "COFFER_TOKEN_RATE_PER_KEY": "off",
    }
    subprocess.run([args.coffer, "migrate"], env=env, check=True, capture_output=True)
    keys = {}
    for role in ("admin", "worker"):
        created = subprocess.run([args.coffer, "api-keys", "create", "--name", f"bench-{role}", "--space", "root",
                                  "--role", role, "--format", "json"], env=env, check=True, capture_output=True, text=True)
        keys[role] = json.loads(created.stdout)

    results = {"machine": machine(), "duration_s": args.duration, "connections": args.connections, "scenarios": []}

    # Start-up: process start to the first 200 from /readyz, five times.
    service = Service(args.coffer, env, os.path.join(args.work, "serve.log"))
    starts = []
    for _ in range(5):
        starts.append(service.start())
        service.stop()
    results["startup_ms"] = {"runs": [round(s, 1) for s in starts], "median": round(statistics.median(starts), 1)}
    log(f"start to /readyz: median {results['startup_ms']['median']} ms over {starts}")

    service.start()
    time.sleep(1)
    results["rss_idle_start_mb"] = round(memory_mb(service.pid)[0], 1)
    client = Client(port)
    tokens = {role: client.request("POST", "/api/v1/auth/token",
                                   {"api_key_id": key["id"], "api_key_secret": key["secret"]})["token"]
              for role, key in keys.items()}
    seed(client, tokens["admin"])
    time.sleep(1)
    results["rss_idle_seeded_mb"] = round(memory_mb(service.pid)[0], 1)

    capture = Capture(lambda sql: psql(sql, admin_url.replace("/postgres?", f"/{database}?")), os.path.join(args.pg_data, "server.log"))
    capture.configure(True)
    capture.learn_background()

    stacks = [f"stack-{i:03d}" for i in range(0, 100, 100 // TARGETS)][:TARGETS]
    secret_value = "x" * 32
    put_body = '{"type": "ENVIRONMENT_VARIABLE", "value": "%s' + "x" * 20 + '", "write_only": true}'
    # Coffer as a KMS: a named key, 64-byte plaintexts (random, so nothing compresses) with a context.
    client.request("POST", "/api/v1/kms/keys", {"name": "bench"}, tokens["admin"])
    kms_plaintext = base64.b64encode(os.urandom(64)).decode()
    kms_context = base64.b64encode(b"tenant=bench").decode()
    scenarios = [
        {
            "name": "get one config element", "key": "get_element", "method": "GET", "token": tokens["admin"],
            "targets": [f"/api/v1/stacks/{s}/config/VAR_00" for s in stacks], "body": None,
        },
        {
            "name": "runtime config (3 contexts)", "key": "runtime_config", "method": "GET", "token": tokens["worker"],
            "targets": [f"/api/v1/stacks/{s}/runtime-config" for s in stacks], "body": None,
        },
        {
            "name": "put write-only value", "key": "put_write_only", "method": "PUT", "token": tokens["admin"],
            "targets": [f"/api/v1/stacks/{s}/config/BENCH_SECRET" for s in stacks], "body": put_body,
            "rewrite": versioned_write,
        },
        {
            "name": "token issuance", "key": "token", "method": "POST", "token": None,
            "targets": ["/api/v1/auth/token"] * TARGETS,
            "body": json.dumps({"api_key_id": keys["admin"]["id"], "api_key_secret": keys["admin"]["secret"]}).replace("%", "%%"),
        },
        {
            "name": "kms encrypt (1 x 64 B)", "key": "kms_encrypt", "method": "POST", "token": tokens["admin"],
            "targets": ["/api/v1/kms/keys/bench/encrypt"] * TARGETS, "items": 1,
            "body": json.dumps({"plaintext": kms_plaintext, "context": kms_context}),
        },
        {
            "name": "kms encrypt batch (1000 x 64 B)", "key": "kms_encrypt_batch", "method": "POST", "token": tokens["admin"],
            "targets": ["/api/v1/kms/keys/bench/encrypt"] * TARGETS, "items": 1000,
            "body": json.dumps({"batch": [{"plaintext": kms_plaintext, "context": kms_context}] * 1000}),
        },
    ]
    sql_dir = os.path.join(args.work, "sql")
    os.makedirs(sql_dir)
    for scenario in scenarios:
        scripts, defines = [], {}
        for index, target in enumerate(scenario["targets"]):
            body = None
            if scenario["body"]:
                body = json.loads(scenario["body"] % f"capture{index:010d}" if "%s" in scenario["body"] else scenario["body"].replace("%%", "%"))
            statements = capture.request(lambda: client.request(scenario["method"], target, body, scenario["token"]))
            path = os.path.join(sql_dir, f"{scenario['key']}-{index:02d}.sql")
            text, variables = pgbench_script(statements, scenario.get("rewrite"))
            for name, value in variables.items():
                text = re.sub(rf":{name}\b", f":s{index}{name}", text)
                defines[f"s{index}{name}"] = value
            with open(path, "w") as f:
                f.write(text)
            scripts.append(path)
        scenario["scripts"] = scripts
        scenario["defines"] = defines
        scenario["statements"] = len(statements)
        log(f"{scenario['name']}: {len(statements)} statements per request (e.g. {scripts[0]})")
    capture.configure(False)
    if os.environ.get("BENCH_SHOW_SQL"):
        for scenario in scenarios:
            print(f"-- {scenario['name']}\n" + open(scenario["scripts"][0]).read())

    # The HTTP floor: GET /healthz (no SQL, no auth), measured like the scenarios.
    log("healthz: warm-up")
    run_wrk(port, args.work, "healthz-warmup", ["/healthz"] * TARGETS, "GET", None, None, 2, args.connections)
    cpu_before, busy_before = cpu_seconds(service.pid), machine_busy_seconds()
    log(f"healthz: wrk, {args.duration} s, {args.connections} connections")
    wrk = run_wrk(port, args.work, "healthz", ["/healthz"] * TARGETS, "GET", None, None, args.duration, args.connections)
    cpu_after, busy_after = cpu_seconds(service.pid), machine_busy_seconds()
    requests = wrk["requests"]
    results["healthz"] = {
        "req_s": round(requests / (wrk["duration_us"] / 1e6), 1),
        "p50_ms": round(wrk["p50_us"] / 1000, 2), "p99_ms": round(wrk["p99_us"] / 1000, 2),
        "machine_cpu_us_per_req": round((busy_after - busy_before) / requests * 1e6, 1),
        "coffer_cpu_us_per_req": round((cpu_after - cpu_before) / requests * 1e6, 1),
        "errors": sum(wrk[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")),
    }
    log(f"healthz: {results['healthz']['req_s']} req/s, machine CPU {results['healthz']['machine_cpu_us_per_req']} µs/req")
    cores = os.cpu_count() or 1

    for scenario in scenarios:
        log(f"{scenario['name']}: warm-up")
        run_wrk(port, args.work, scenario["key"] + "-warmup", scenario["targets"], scenario["method"],
                scenario["token"], scenario["body"], 2, args.connections)
        metrics_before = scrape(port)
        cpu_before, busy_before = cpu_seconds(service.pid), machine_busy_seconds()
        log(f"{scenario['name']}: wrk, {args.duration} s, {args.connections} connections")
        wrk = run_wrk(port, args.work, scenario["key"], scenario["targets"], scenario["method"],
                      scenario["token"], scenario["body"], args.duration, args.connections)
        cpu_after, busy_after = cpu_seconds(service.pid), machine_busy_seconds()
        metrics_after = scrape(port)
        rss, peak = memory_mb(service.pid)
        log(f"{scenario['name']}: pgbench, {args.duration} s, {args.connections} clients")
        busy_pg_before = machine_busy_seconds()
        pgbench = run_pgbench(args.pg_bin, args.pg_port, password, database, scenario["scripts"], scenario["defines"], args.duration,
                              args.connections)
        busy_pg_after = machine_busy_seconds()
        requests = wrk["requests"]
        seconds = wrk["duration_us"] / 1e6
        errors = sum(wrk[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
        verify_seconds = metrics_after.get("coffer_token_verification_seconds_total", 0) - metrics_before.get("coffer_token_verification_seconds_total", 0)
        entry = {
            "name": scenario["name"], "key": scenario["key"], "statements": scenario["statements"],
            "requests": requests, "errors": errors, "req_s": round(requests / seconds, 1),
            "p50_ms": round(wrk["p50_us"] / 1000, 2), "p99_ms": round(wrk["p99_us"] / 1000, 2),
            "pgbench_tps": round(pgbench["tps"], 1),
            "ratio": round(requests / seconds / pgbench["tps"], 3),
            "coffer_cpu_us_per_req": round((cpu_after - cpu_before) / requests * 1e6, 1),
            "machine_cpu_us_per_req": round((busy_after - busy_before) / requests * 1e6, 1),
            "machine_cpu_us_per_pgbench_tx": round((busy_pg_after - busy_pg_before) / (pgbench["tps"] * args.duration) * 1e6, 1),
            "token_verification_share": round(verify_seconds / max(cpu_after - cpu_before, 1e-9), 4) if scenario["token"] else None,
            "rss_mb": round(rss, 1), "peak_rss_mb": round(peak, 1),
            "items_per_request": scenario.get("items", 1),
            "items_s": round(requests / seconds * scenario.get("items", 1), 1),
        }
        # What the cores could serve at the HTTP floor plus the scenario's SQL as pgbench runs it.
        floor_us = results["healthz"]["machine_cpu_us_per_req"] + entry["machine_cpu_us_per_pgbench_tx"]
        entry["limit_req_s"] = round(cores / max(floor_us / 1e6, 1e-12), 1)
        entry["share_of_limit"] = round(entry["req_s"] / entry["limit_req_s"], 3) if entry["limit_req_s"] else None
        entry["p99_over_p50"] = round(entry["p99_ms"] / entry["p50_ms"], 2) if entry["p50_ms"] else None
        results["scenarios"].append(entry)
        log(f"{scenario['name']}: {entry['req_s']} req/s vs pgbench {entry['pgbench_tps']} TPS (ratio {entry['ratio']}), {errors} errors")

    signs, verifies = openssl_rsa4096_signs()
    results["openssl_rsa4096"] = {"sign_s": signs, "verify_s": verifies, "cores": os.cpu_count()}
    token = next(s for s in results["scenarios"] if s["key"] == "token")
    token["openssl_sign_s"] = signs
    token["ratio_to_openssl"] = round(token["req_s"] / signs, 3)
    results["peak_rss_mb"] = round(memory_mb(service.pid)[1], 1)
    service.stop()
    results["leaks"] = check_log(os.path.join(args.work, "serve.log"), tokens, keys, env["ENCRYPTION_RSA_PRIVATE_KEY"])

    print_table(results)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)
            f.write("\n")
        log(f"figures written to {args.out}")


def seed(client, token):
    """20 contexts and 100 stacks, 20 elements each (odd ones write-only); every stack
    attached to 3 contexts."""
    log("seeding 20 contexts and 100 stacks with 20 elements each")
    started = time.monotonic()
    owners = [("contexts", f"context-{i:02d}") for i in range(20)] + [("stacks", f"stack-{i:03d}") for i in range(100)]

    def create(owner):
        kind, owner_id = owner
        client.request("POST", f"/api/v1/{kind}", {"id": owner_id, "name": owner_id, "space": "root"}, token)
        for n in range(20):
            client.request("PUT", f"/api/v1/{kind}/{owner_id}/config/VAR_{n:02d}", {
                "type": "ENVIRONMENT_VARIABLE", "value": secrets.token_urlsafe(24), "write_only": n % 2 == 1,
            }, token)

    def attach(index):
        for priority, offset in enumerate((0, 7, 13)):
            client.request("PUT", f"/api/v1/stacks/stack-{index:03d}/contexts/context-{(index + offset) % 20:02d}",
                           {"priority": priority}, token, expect=(200, 201, 204))

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(create, owners))
        list(pool.map(attach, range(100)))
    log(f"seeded in {time.monotonic() - started:.1f} s")


def scrape(port):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/metrics")
    values = {}
    for line in connection.getresponse().read().decode().splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, value = line.split()
            values[name] = float(value)
    return values


def check_log(path, tokens, keys, root_key):
    text = open(path, encoding="utf-8", errors="replace").read()
    needles = list(tokens.values()) + [k["secret"] for k in keys.values()] + [root_key[:64]]
    found = sum(1 for needle in needles if needle in text)
    return {"lines": text.count("\n"), "secrets_found": found}


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def machine():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = 0
    with open("/proc/meminfo") as f:
        memory = int(f.readline().split()[1]) // 1024 // 1024
    pg = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip()
    return {"cpu": model, "cores": os.cpu_count(), "memory_gib": memory, "kernel": os.uname().release, "psql": pg}


def print_table(results):
    print()
    print(f"Coffer service benchmark — {results['machine']['cores']} cores ({results['machine']['cpu']}), "
          f"{results['connections']} connections/clients, {results['duration_s']} s per run")
    healthz = results["healthz"]
    print(f"GET /healthz: {healthz['req_s']:.0f} req/s, machine CPU {healthz['machine_cpu_us_per_req']:.0f} µs/req (the HTTP floor)")
    header = ("scenario", "SQL/req", "req/s", "p50 ms", "p99 ms", "pgbench TPS", "ratio", "limit req/s", "share of limit",
              "coffer CPU µs/req", "machine CPU µs/req", "machine µs/pgbench tx", "verify share", "RSS MB", "errors")
    rows = []
    for s in results["scenarios"]:
        rows.append((s["name"], str(s["statements"]), f"{s['req_s']:.0f}", f"{s['p50_ms']:.2f}", f"{s['p99_ms']:.2f}",
                     f"{s['pgbench_tps']:.0f}", f"{s['ratio']:.2f}", f"{s['limit_req_s']:.0f}",
                     "-" if s["share_of_limit"] is None else f"{s['share_of_limit']:.2f}", f"{s['coffer_cpu_us_per_req']:.0f}",
                     f"{s['machine_cpu_us_per_req']:.0f}", f"{s['machine_cpu_us_per_pgbench_tx']:.0f}",
                     "-" if s["token_verification_share"] is None else f"{s['token_verification_share'] * 100:.2f}%",
                     f"{s['rss_mb']:.0f}", str(s["errors"])))
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))
    print("limit = cores ÷ (machine CPU per /healthz request + machine CPU per pgbench transaction of the scenario's SQL)")
    token = next(s for s in results["scenarios"] if s["key"] == "token")
    rsa = results["openssl_rsa4096"]
    print()
    print(f"token issuance: {token['req_s']:.0f}/s vs openssl speed rsa4096 {rsa['sign_s']:.0f} signs/s on "
          f"{rsa['cores']} cores: ratio {token['ratio_to_openssl']:.2f}")
    single = next((s for s in results["scenarios"] if s["key"] == "kms_encrypt"), None)
    batch = next((s for s in results["scenarios"] if s["key"] == "kms_encrypt_batch"), None)
    if single and batch:
        print(f"kms encrypt, 64-byte items: one per request {single['items_s']:.0f} items/s (p99 {single['p99_ms']:.1f} ms); "
              f"batches of 1000 {batch['items_s']:.0f} items/s (p99 {batch['p99_ms']:.1f} ms per batch): "
              f"{batch['items_s'] / max(single['items_s'], 1e-9):.1f}x")
    print(f"start to /readyz: median {results['startup_ms']['median']} ms (runs: {results['startup_ms']['runs']})")
    print(f"RSS: idle after start {results['rss_idle_start_mb']} MB, idle after seeding {results['rss_idle_seeded_mb']} MB, "
          f"peak under load {results['peak_rss_mb']} MB")
    leaks = results["leaks"]
    print(f"server log: {leaks['lines']} lines, {leaks['secrets_found']} secrets found")


if __name__ == "__main__":
    main()
