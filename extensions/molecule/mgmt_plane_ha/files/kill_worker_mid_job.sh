#!/bin/bash
# Fault injection: wait until a job's ansible-playbook runs on this host (as a job user smcp-job<N>), wait
# DELAY seconds (the job is under way), then kill -9 smcp-worker's main process. Prints one JSON line:
# {"killed": true, "at": <epoch>, "pid": N} on the host that did it, {"killed": false} elsewhere (after
# TIMEOUT seconds, or at once when STOP_FILE exists: the job ended somewhere else).
# Usage: kill_worker_mid_job.sh TIMEOUT DELAY STOP_FILE
set -u
timeout=${1:-120}
delay=${2:-1}
stop=${3:-/run/smcp-verify-kill.stop}
rm -f "$stop"
deadline=$((SECONDS + timeout))
while ((SECONDS < deadline)) && [[ ! -e $stop ]]; do
  for pid in $(pgrep -f 'ansible-playbook' || true); do
    user=$(ps -o user:32= -p "$pid" 2>/dev/null | tr -d ' ')
    if [[ $user == smcp-job* ]]; then
      sleep "$delay"
      main=$(systemctl show -p MainPID --value smcp-worker)
      kill -9 "$main"
      printf '{"killed": true, "at": %s, "pid": %s}\n' "$(date +%s.%N)" "$main"
      exit 0
    fi
  done
  sleep 0.1
done
echo '{"killed": false}'
