#!/usr/bin/env bash
# Start moto in server mode (through moto_server.py, which makes the
# conditional writes of the ledgers faithful), and the CloudWatch CBOR shim in front of it, on
# free loopback ports; print the environment the AWS tests read:
#
#   eval "$(tests/support/moto-up.sh)"   # then: cargo test
#
# Installs moto into a virtualenv (TEAL_VENV, default ./.venv) when missing,
# with python-hcl2 (tests/iac_examples.rs parses the Terraform example) and
# cfn-lint (.ci/run lints the CloudFormation templates).
# Process ids go to $TEAL_MOTO_PIDS (default $TMPDIR/teal-moto.pids) so that
# the caller can stop them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${TEAL_VENV:-$here/../../.venv}
pids=${TEAL_MOTO_PIDS:-${TMPDIR:-/tmp}/teal-moto.pids}
logs=${TMPDIR:-/tmp}

if [ ! -x "$venv/bin/moto_server" ] || [ ! -x "$venv/bin/cfn-lint" ] \
  || ! "$venv/bin/python" -c 'import cbor2, hcl2' 2>/dev/null; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==5.2.5" "cbor2>=5.6,<6" \
    "python-hcl2==8.1.4" "cfn-lint==1.58.0" >&2
fi

# Both ports found while both probes are bound, so they differ: a port
# released can be handed out again at once.
read -r moto_port shim_port < <("$venv/bin/python" -c '
import socket
held = [socket.socket() for _ in range(2)]
for s in held:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in held))')

# ECS services in moto never start tasks: report two running per service.
MOTO_ECS_SERVICE_RUNNING=2 "$venv/bin/python" "$here/moto_server.py" -H 127.0.0.1 -p "$moto_port" >"$logs/moto.log" 2>&1 &
echo $! >"$pids"
"$venv/bin/python" "$here/cbor_shim.py" "$shim_port" "http://127.0.0.1:$moto_port" >"$logs/cbor_shim.log" 2>&1 &
echo $! >>"$pids"

for port in "$moto_port" "$shim_port"; do
  for _ in $(seq 1 100); do
    if "$venv/bin/python" -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null; then
      break
    fi
    sleep 0.1
  done
done
"$venv/bin/python" -c "import socket; socket.create_connection(('127.0.0.1', $moto_port), 1)" >&2 || {
  echo "moto did not start; see $logs/moto.log" >&2
  exit 1
}

echo "export TEAL_MOTO_ENDPOINT=http://127.0.0.1:$moto_port"
echo "export TEAL_MOTO_CLOUDWATCH_ENDPOINT=http://127.0.0.1:$shim_port"
# boto3 comes with moto: tests that create CloudFormation stacks use it.
echo "export TEAL_MOTO_PYTHON=$(cd "$venv" && pwd)/bin/python"
