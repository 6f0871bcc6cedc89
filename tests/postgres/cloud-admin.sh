#!/usr/bin/env bash
# deploy/README.md's database steps, as written there, run by an admin that
# is no superuser (as on RDS, Aurora and Cloud SQL: CREATEROLE and CREATEDB
# only); then each service's role makes a table in its own database, as its
# migrations will. Local Debian PostgreSQL, as root (setup.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."

sql=$(awk '/^\*\*3\. The databases\*\*/ {found = 1}
           found && /^```sql/ {inside = 1; next}
           inside && /^```/ {exit}
           inside' deploy/README.md)
if [ -z "$sql" ]; then
  echo "no sql block under '**3. The databases**' in deploy/README.md" >&2
  exit 1
fi
services=(users catalog orders payments)
superuser() { su postgres -c "PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 -c \"$1\"" >/dev/null; }
clean() {
  for service in "${services[@]}"; do
    superuser "DROP DATABASE IF EXISTS $service"
    superuser "DROP ROLE IF EXISTS shop_$service"
  done
  superuser "DROP ROLE IF EXISTS cloud_admin"
}
clean
trap clean EXIT
admin_password="admin-$RANDOM$RANDOM"
superuser "CREATE ROLE cloud_admin LOGIN NOSUPERUSER CREATEROLE CREATEDB PASSWORD '$admin_password'"

echo "==> deploy/README.md's SQL as an admin with CREATEROLE and CREATEDB, no superuser"
printf '%s\n' "$sql" | sed "s/PASSWORD '\.\.\.'/PASSWORD 'role-password'/g" |
  PGPASSWORD="$admin_password" psql -X -h 127.0.0.1 -U cloud_admin -d postgres -v ON_ERROR_STOP=1 -q
for service in "${services[@]}"; do
  PGPASSWORD=role-password psql -X -h 127.0.0.1 -U "shop_$service" -d "$service" -v ON_ERROR_STOP=1 -q \
    -c "CREATE TABLE migrations_probe (id int); DROP TABLE migrations_probe"
  echo "    shop_$service owns $service and makes its tables"
done
