#!/usr/bin/env bash
# The database CA, as the production manifests mount it: a PostgreSQL of
# its own (Debian's, on a free port, as root runs it: su postgres) serving
# TLS with a certificate from a private CA, as RDS, Cloud SQL and most
# companies' databases do. `shop migrate` with `sslmode=verify-full`:
#   - trusting that CA through PGSSLROOTCERT (libpq's variable, which the
#     manifests set to the mounted CA): applies, exits 0;
#   - through `sslrootcert=` in the URL: the same;
#   - trusting only the public roots: refused at once, exit 1, the error
#     saying which CA to give (not a hang: the migration Job fails, and
#     deploy/README.md's wait says so).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
work=$(mktemp -d)
chmod 755 "$work"
# The server writes its socket here.
mkdir "$work/run" && chown postgres "$work/run"
cleanup() {
  [ -f "$work/data/postmaster.pid" ] && su postgres -c "$bin/pg_ctl -D $work/data -m immediate stop" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# The private CA and the server's certificate (localhost, 127.0.0.1).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj "/CN=connect-shop test database CA" -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
  -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$work/san.ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
  -days 2 -extfile "$work/san.ext" -out "$work/server.pem" 2>/dev/null
chown postgres "$work/server.key" "$work/server.pem"
chmod 600 "$work/server.key"

echo postgres >"$work/pw"
mkdir "$work/data"
chown postgres "$work/pw" "$work/data"
su postgres -c "$bin/initdb -D $work/data -A scram-sha-256 --pwfile=$work/pw >/dev/null"
cat >>"$work/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$work/run'
ssl = on
ssl_cert_file = '$work/server.pem'
ssl_key_file = '$work/server.key'
CONF
# TLS only, with a password.
printf 'local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n' >"$work/data/pg_hba.conf"
su postgres -c "$bin/pg_ctl -D $work/data -l $work/data/log -w start" >/dev/null
su postgres -c "psql -h $work/run -p $port -qc \"CREATE ROLE shop LOGIN PASSWORD 'shop-secret'\""
su postgres -c "psql -h $work/run -p $port -qc 'CREATE DATABASE users OWNER shop'"
echo "    PostgreSQL $($bin/postgres --version | awk '{print $3}') on 127.0.0.1:$port, TLS only, its certificate from a private CA"

shop="${CARGO_TARGET_DIR:-$root/target}/debug/shop"
[ -x "$shop" ] || (cd "$root" && cargo build -q --bin shop)
url="postgres://shop:shop-secret@localhost:$port/users?sslmode=verify-full"
data="$work/shop-data"

status=0
if PGSSLROOTCERT="$work/ca.pem" "$shop" migrate users --users-database-url "$url" --data-dir "$data" >"$work/out" 2>&1; then
  echo "    PGSSLROOTCERT=<the CA>: $(grep "^users " "$work/out")"
else
  echo "    PGSSLROOTCERT=<the CA> failed:" >&2; cat "$work/out" >&2; status=1
fi
if "$shop" migrate users --users-database-url "$url&sslrootcert=$work/ca.pem" --data-dir "$data" >"$work/out" 2>&1; then
  echo "    sslrootcert=<the CA> in the URL: $(grep "^users " "$work/out")"
else
  echo "    sslrootcert= failed:" >&2; cat "$work/out" >&2; status=1
fi
started=$(date +%s)
if "$shop" migrate users --users-database-url "$url" --data-dir "$data" >"$work/out" 2>&1; then
  echo "    the public roots alone were trusted with a private CA's certificate" >&2; status=1
elif ! grep -q "PGSSLROOTCERT" "$work/out"; then
  echo "    refused, but without saying which CA to give:" >&2; cat "$work/out" >&2; status=1
else
  echo "    without the CA: refused in $(( $(date +%s) - started )) s: $(grep -o 'not trusted.*' "$work/out" | head -1)"
fi
exit $status
