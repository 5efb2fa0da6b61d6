#!/usr/bin/env bash
# In-proxy benchmark: OpenSIPS 3.6's acc_db_request 100,000 times in a while loop, timed by
# OpenSIPS itself ($Ts/$Tsm), through the stock db_flatstore.so and through ours, each case
# measured in turn RUNS times in one run of this script (a slow spell of the shared machine hits
# both alike); each case reports its fastest run, and the ratio ours/stock. The time includes
# acc's own work (building the record), the same in both cases. Needs python3 and OpenSIPS
# built from ../shared/hosts (tests/opensips.rs builds it into <target>/hosts/opensips-3.6.8;
# OPENSIPS_TREE points elsewhere).
#
#   bash benches/opensips_acc.sh
#   RUNS=9 BENCH_DIR=/dev/shm bash benches/opensips_acc.sh
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
LOOPS=${LOOPS:-100000}
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}}
PORT=${PORT:-27160}
# OpenSIPS's allocator for every memory segment (-a); empty: its default.
MEMORY=${MEMORY:-}
target=$(bash packaging/target-dir.sh)
tree=${OPENSIPS_TREE:-$target/hosts/opensips-3.6.8}
[ -x "$tree/opensips" ] || {
    echo "no OpenSIPS at $tree: run cargo test --test opensips (it builds it), or set OPENSIPS_TREE" >&2
    exit 1
}
work=$(mktemp -d "$BENCH_DIR/flatstore-obench-XXXXXX")
trap 'rm -rf "$work"' EXIT

FLATSTORE_OPENSIPS=$tree/opensips cargo build --release -p flatstore-opensips >&2
ours=$target/release/libflatstore_opensips.so
stock=$tree/modules/db_flatstore/db_flatstore.so

# One request to the proxy on $PORT; prints the reason phrase (elapsed microseconds).
ask() {
    python3 - "$PORT" <<'PY'
import socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", port + 1))
s.settimeout(300)
msg = ("OPTIONS sip:bench@127.0.0.1:%d SIP/2.0\r\n"
       "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-bench\r\n"
       "From: <sip:bench@flatstore.test>;tag=bench\r\n"
       "To: <sip:bench@flatstore.test>\r\n"
       "Call-ID: bench@flatstore.test\r\nCSeq: 1 OPTIONS\r\n"
       "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n") % (port, port + 1)
s.sendto(msg.encode(), ("127.0.0.1", port))
reply = s.recv(65535).decode()
print(reply.split("\r\n")[0].split(" ", 2)[2])
PY
}

# once MODULE FLUSH: one proxy, one request; prints "ELAPSED_US MISSING_RECORDS".
once() {
    local module=$1 flush=$2
    rm -rf "$work/acc" && mkdir -p "$work/acc" "$work/run"
    sed -e "s#@PORT@#$PORT#; s#@MODULES@#$tree/modules/#; s#@MODULE@#$module#" \
        -e "s#@FLUSH@#$flush#; s#@ACC_URL@#flatstore:$work/acc#; s#@LOOPS@#$LOOPS#g" \
        benches/opensips/acc_loop.cfg >"$work/opensips.cfg"
    "$tree/opensips" -F -f "$work/opensips.cfg" -w "$work/run" -m 64 -M 64 ${MEMORY:+-a "$MEMORY"} \
        >"$work/opensips.log" 2>&1 &
    local pid=$!
    sleep 1
    local us
    us=$(ask)
    kill "$pid" && wait "$pid" || true
    local missing=$(( LOOPS - $(cat "$work"/acc/acc_*.log | wc -l) ))
    echo "$us $missing"
}

cases=("stock|$stock|1" "ours|$ours|1" "stock|$stock|0" "ours|$ours|0")
declare -A best lost
for _ in $(seq "$RUNS"); do
    for c in "${cases[@]}"; do
        IFS='|' read -r name module flush <<<"$c"
        key="$name $flush"
        read -r us missing <<<"$(once "$module" "$flush")"
        if [ -z "${best[$key]:-}" ] || [ "$us" -lt "${best[$key]}" ]; then best[$key]=$us; fi
        lost[$key]=$(( ${lost[$key]:-0} + missing ))
    done
done

echo "OpenSIPS 3.6.8 (allocator ${MEMORY:-default}), acc_db_request x $LOOPS per request," \
    "fastest of $RUNS runs; files in $BENCH_DIR"
printf '%-6s %-6s %12s %12s %14s\n' module flush "fastest us" "ns/record" "lost at stop"
for key in "stock 1" "ours 1" "stock 0" "ours 0"; do
    printf '%-6s %-6s %12s %12s %14s\n' $key "${best[$key]}" $(( best[$key] * 1000 / LOOPS )) "${lost[$key]}"
done
for flush in 1 0; do
    awk -v o="${best["ours $flush"]}" -v s="${best["stock $flush"]}" -v f="$flush" \
        'BEGIN { printf "flush=%s: ours/stock = %.2f\n", f, o / s }'
done
