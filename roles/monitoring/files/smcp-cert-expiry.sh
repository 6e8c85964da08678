#!/bin/sh
# Write the expiry time of every certificate under the given directories as Prometheus metrics for
# the node exporter's textfile collector. Usage: smcp-cert-expiry.sh OUTPUT.prom DIR...
# The output is replaced atomically; files that hold no certificate (keys) are ignored.
set -eu
out=$1
shift
tmp=$(mktemp "${out}.XXXXXX")
list=$(mktemp)
trap 'rm -f "$tmp" "$list"' EXIT
errors=0
{
  echo '# HELP smcp_certificate_expiry_timestamp_seconds notAfter of a certificate file (Unix time).'
  echo '# TYPE smcp_certificate_expiry_timestamp_seconds gauge'
  for dir in "$@"; do
    [ -d "$dir" ] || continue
    find "$dir" -type f \( -name '*.crt' -o -name '*.pem' \) | sort >"$list"
    while IFS= read -r file; do
      grep -q 'BEGIN CERTIFICATE' "$file" 2>/dev/null || continue
      if end=$(openssl x509 -noout -enddate -in "$file" 2>/dev/null) && ts=$(date -d "${end#notAfter=}" +%s); then
        printf 'smcp_certificate_expiry_timestamp_seconds{path="%s"} %s\n' "$file" "$ts"
      else
        errors=$((errors + 1))
      fi
    done <"$list"
  done
  echo '# HELP smcp_certificate_read_errors Certificate files that could not be read in the last check.'
  echo '# TYPE smcp_certificate_read_errors gauge'
  echo "smcp_certificate_read_errors $errors"
  echo '# HELP smcp_certificate_check_timestamp_seconds When the last check ran (Unix time).'
  echo '# TYPE smcp_certificate_check_timestamp_seconds gauge'
  echo "smcp_certificate_check_timestamp_seconds $(date +%s)"
} >"$tmp"
chmod 0644 "$tmp"
mv -f "$tmp" "$out"
