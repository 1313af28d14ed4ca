# Shared shell functions of scripts/test and scripts/run-local. Source, don't run.
# Everything here works on a fresh Debian machine with only the Swift toolchain:
# missing tools are installed with apt-get (as root) and PostgreSQL runs as an
# unprivileged user because initdb refuses root.

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

APT_UPDATED=""
apt_install() {
  # apt_install PACKAGE... — installs Debian packages when running as root.
  if [ "$(id -u)" != 0 ]; then
    die "missing $*; install it with: sudo apt-get install -y $*"
  fi
  if [ -z "$APT_UPDATED" ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || die "apt-get update failed"
    APT_UPDATED=1
  fi
  log "apt-get install -y $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null || die "apt-get install $* failed"
}

# PG_BIN: the folder of Debian's PostgreSQL server binaries (initdb, pg_ctl, postgres).
find_pg_bin() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then PG_BIN="$dir"; return 0; fi
  done
  return 1
}

ensure_tools() {
  find_pg_bin || { apt_install postgresql postgresql-contrib; find_pg_bin || die "PostgreSQL server binaries not found after install"; }
  command -v openssl >/dev/null || apt_install openssl
  command -v curl >/dev/null || apt_install curl ca-certificates
  command -v python3 >/dev/null || apt_install python3
  python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
  [ -x "$PG_BIN/pg_dump" ] || die "pg_dump missing in $PG_BIN"
  export PG_BIN
}

free_port() {
  python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

# PG_USER: who runs the cluster. Root cannot run initdb, so as root use the `postgres`
# account (created by the Debian package) or create `coffer-pg`.
choose_pg_user() {
  if [ "$(id -u)" != 0 ]; then PG_USER="$(id -un)"; return; fi
  if id postgres >/dev/null 2>&1; then PG_USER=postgres
  else
    id coffer-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin coffer-pg
    PG_USER=coffer-pg
  fi
}

as_pg_user() {
  if [ "$(id -u)" = 0 ]; then
    su -s /bin/sh "$PG_USER" -c "$(printf '%q ' "$@")"
  else
    "$@"
  fi
}

# start_postgres DATA_DIR PORT PASSWORD_FILE [TLS_DIR] — creates the cluster if needed
# (superuser `coffer`, SCRAM password from PASSWORD_FILE, TCP on 127.0.0.1 only) and
# starts it; with TLS_DIR (server.crt, server.key) it also accepts TLS connections.
start_postgres() {
  local data="$1" port="$2" pwfile="$3" tls="${4:-}" sockets ssl_options=""
  choose_pg_user
  # Unix socket paths are limited to ~100 bytes, so the socket lives under /tmp.
  sockets="$(mktemp -d /tmp/coffer-pg-socket.XXXXXX)"
  chmod 755 "$sockets"
  if [ ! -f "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    chown "$PG_USER" "$data" "$pwfile" 2>/dev/null || true
    chmod 700 "$data"
    as_pg_user "$PG_BIN/initdb" -D "$data" -U coffer --pwfile="$pwfile" -A scram-sha-256 \
      --no-sync --encoding=UTF8 --locale=C.UTF-8 >"$data.initdb.log" 2>&1 \
      || { cat "$data.initdb.log" >&2; die "initdb failed"; }
  fi
  chown "$PG_USER" "$sockets" 2>/dev/null || true
  echo "$sockets" >"$data.socket-dir"
  if [ -n "$tls" ]; then
    chown -R "$PG_USER" "$tls" 2>/dev/null || true
    chmod 600 "$tls/server.key"
    ssl_options="-c ssl=on -c ssl_cert_file=$tls/server.crt -c ssl_key_file=$tls/server.key"
  fi
  # Tests trade durability for speed; COFFER_PG_DURABLE=1 keeps PostgreSQL's defaults.
  local durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  [ "${COFFER_PG_DURABLE:-}" = 1 ] && durability=""
  as_pg_user "$PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $sockets -c max_connections=400 $durability $ssl_options" \
    start >/dev/null || { tail -20 "$data/server.log" >&2; die "PostgreSQL did not start"; }
}

stop_postgres() {
  local data="$1"
  if [ -f "$data/postmaster.pid" ]; then
    as_pg_user "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 30 stop >/dev/null 2>&1 \
      || as_pg_user "$PG_BIN/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [ -f "$data.socket-dir" ]; then rm -rf "$(cat "$data.socket-dir")" "$data.socket-dir"; fi
}

# ensure_venv DIR REQUIREMENTS_FILE — a Python venv with the test tools, reused while
# the requirements file is unchanged.
ensure_venv() {
  local dir="$1" requirements="$2" stamp
  stamp="$(sha256sum "$requirements" | cut -c1-16)"
  if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ]; then return 0; fi
  log "creating Python venv $dir"
  rm -rf "$dir"
  python3 -m venv "$dir" || die "python3 -m venv failed"
  "$dir/bin/pip" install -q --disable-pip-version-check -r "$requirements" || die "pip install failed"
  echo "$stamp" >"$dir/.stamp"
}

# make_test_ca DIR — a throwaway CA and a server certificate for localhost / 127.0.0.1.
make_test_ca() {
  local dir="$1"
  mkdir -p "$dir"
  (
    cd "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=coffer-test-ca >/dev/null 2>&1
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost >/dev/null 2>&1
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile san.ext >/dev/null 2>&1
  ) || die "could not make a test certificate"
  chmod 755 "$dir"
  chmod 644 "$dir/ca.pem" "$dir/server.crt"
}
