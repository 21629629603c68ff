#!/bin/sh
# The compose stack's Locust master: one run folder per start (runs/<YYYYmmdd-HHMMSS>-<scenario>/,
# bind-mounted from the host), Locust's CSVs written into it, and — when headless — the report
# built at the end, so `python -m reports compare` can read it like a bare-metal run folder.
# Arguments after the script go to Locust unchanged.
set -u
scenario=${COMFY_SCENARIO:-container}
run_dir=${COMFY_RUN_DIR:-${COMFY_RUNS_DIR:-/app/runs}/$(date +%Y%m%d-%H%M%S)-$scenario}
mkdir -p "$run_dir" || exit 3
echo "[comfyload] master: run folder $run_dir" >&2
locust -f locustfile.py --master --run-dir "$run_dir" --scenario-name "$scenario" \
  --csv "$run_dir/locust" --csv-full-history "$@"
status=$?
case "${LOCUST_HEADLESS:-false}" in
  true|1|yes|on) python -m reports build "$run_dir" || echo "[comfyload] report build failed for $run_dir" >&2 ;;
esac
exit $status
