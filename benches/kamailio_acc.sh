#!/usr/bin/env bash
# In-proxy benchmark: Kamailio's acc_db_request 100,000 times in a while loop, timed by
# Kamailio itself ($TV), through the stock db_flatstore.so, through ours, and through a
# do-nothing db module (acc's own cost, subtracted). Needs kamailio and python3.
#
#   bash benches/kamailio_acc.sh            # 5 runs per case, the fastest is reported
#   RUNS=9 BENCH_DIR=/dev/shm bash benches/kamailio_acc.sh
#
# Kamailio runs with the TLSF allocator (MEMORY=tlsf, the -x/-X options): with Debian's
# default q_malloc, finding free blocks grows with the loop and takes most of the worker's
# time (perf), which buries the module's share in noise. MEMORY=qm measures the default.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
LOOPS=${LOOPS:-100000}
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}}
PORT=${PORT:-27060}
MEMORY=${MEMORY:-tlsf}
work=$(mktemp -d "$BENCH_DIR/flatstore-kbench-XXXXXX")
trap 'rm -rf "$work"' EXIT

target=$(bash packaging/target-dir.sh)
cargo build --release -p flatstore-kamailio >&2
ours=$target/release/libflatstore_kamailio.so
stock=/usr/lib/x86_64-linux-gnu/kamailio/modules/db_flatstore.so
version=$(kamailio -V | sed -n 's/^version: \(.*)\).*/\1/p')
flags=$(kamailio -V | sed -n 's/^flags: //p')
null=$work/db_null.so
cc -O2 -shared -fPIC -Wall -Wextra -DKAMAILIO_VERSION="\"$version\"" \
    -DKAMAILIO_FLAGS="\"$flags\"" benches/kamailio/null_db.c -o "$null"

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
       "User-Agent: flatstore|bench\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n") % (port, port + 1)
s.sendto(msg.encode(), ("127.0.0.1", port))
reply = s.recv(65535).decode()
print(reply.split("\r\n")[0].split(" ", 2)[2])
PY
}

# once MODULE URL [FLUSH]: one proxy, one request; prints "ELAPSED_US MISSING_RECORDS".
once() {
    local module=$1 url=$2 flush=${3:-}
    rm -rf "$work/acc" && mkdir -p "$work/acc" "$work/run"
    local defines=(-A "DB_MODULE=\"$module\"" -A "LISTEN=udp:127.0.0.1:$PORT"
        -A "ACC_URL=\"$url\"" -A "LOOPS=$LOOPS")
    [ -n "$flush" ] && defines+=(-A "FLUSH=$flush")
    kamailio -f benches/kamailio/acc_loop.cfg -DD -E -x "$MEMORY" -X "$MEMORY" -Y "$work/run" "${defines[@]}" \
        >"$work/kamailio.log" 2>&1 &
    local pid=$!
    sleep 1
    local us
    us=$(ask)
    kill "$pid" && wait "$pid" || true
    local missing=0
    if [ "$url" != "null:x" ]; then
        missing=$(( LOOPS - $(cat "$work"/acc/acc_*.log | wc -l) ))
    fi
    echo "$us $missing"
}

# The cases, measured in turn RUNS times (so that a slow spell of this shared machine hits
# them alike); each case reports its fastest run (noise only ever adds time).
cases=("null|$null|null:x|" "stock|$stock|flatstore:$work/acc|1" "ours|$ours|flatstore:$work/acc|1"
    "stock|$stock|flatstore:$work/acc|0" "ours|$ours|flatstore:$work/acc|0")
declare -A best lost
for _ in $(seq "$RUNS"); do
    for c in "${cases[@]}"; do
        IFS='|' read -r name module url flush <<<"$c"
        key="$name $flush"
        read -r us missing <<<"$(once "$module" "$url" "$flush")"
        if [ -z "${best[$key]:-}" ] || [ "$us" -lt "${best[$key]}" ]; then best[$key]=$us; fi
        lost[$key]=$(( ${lost[$key]:-0} + missing ))
    done
done

null_us=${best["null "]}
echo "acc alone (do-nothing db module): $null_us us for $LOOPS records (fastest of $RUNS)"
echo "files in $BENCH_DIR; records missing after the stop are summed over the $RUNS runs"
printf '%-6s %-6s %12s %14s %14s\n' module flush "fastest us" "ns/record net" "lost at stop"
for key in "stock 1" "ours 1" "stock 0" "ours 0"; do
    net=$(( (best[$key] - null_us) * 1000 / LOOPS ))
    printf '%-6s %-6s %12s %14s %14s\n' $key "${best[$key]}" "$net" "${lost[$key]}"
done
