#!/usr/bin/env bash
# In-proxy benchmark for OpenSER 1.3: acc_db_request LOOPS times in a while loop of one
# request (benches/openser/acc_loop.cfg), the request timed by the client, through the stock
# flatstore module of the OpenSER tree, through ours (hosts/openser), and through a do-nothing
# db module (acc's own cost, subtracted). The cases are measured in turn, RUNS times, each
# reporting its fastest run; the ratio ours/stock of the net costs comes from that one run.
# Needs the OpenSER tree tests/openser.rs builds (target/openser-host/; built here the same way
# if missing: gcc, make, flex, bison, ../shared/hosts/openser-2008-01-*.tar.xz) and python3.
#
#   bash benches/openser_acc.sh              # 5 runs per case
#   RUNS=9 LOOPS=200000 BENCH_DIR=/dev/shm bash benches/openser_acc.sh
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
LOOPS=${LOOPS:-100000}
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}}
PORT=${PORT:-27160}
work=$(mktemp -d "$BENCH_DIR/flatstore-obench-XXXXXX")
trap 'rm -rf "$work"' EXIT

target=$(bash packaging/target-dir.sh)
tarball=$(ls ../shared/hosts/openser-2008-01-*.tar.xz | tail -n 1)
stem=$(basename "$tarball" .tar.xz)
base=$target/openser-host/$stem
tree=$base/openser-2008-01
if [ ! -e "$base/.built" ]; then
    rm -rf "$base" && mkdir -p "$base"
    tar -xJf "$tarball" -C "$base"
    make -C "$tree" -j2 openser CC="gcc -fcommon" >&2
    make -C "$tree" -j2 modules CC="gcc -fcommon" modules="modules/sl modules/tm modules/rr \
modules/maxfwd modules/textops modules/uri modules/acc modules/flatstore modules/mi_fifo" >&2
    touch "$base/.built"
fi
openser=$tree/openser
FLATSTORE_OPENSER=$openser cargo build --release -p flatstore-openser >&2
ours=$target/release/libflatstore_openser.so
stock=$tree/modules/flatstore/flatstore.so
version=$("$openser" -V | sed -n 's/^version: //p')
flags=$("$openser" -V | sed -n 's/^flags: //p')
null=$work/null_db.so
cc -O2 -shared -fPIC -Wall -Wextra -DOPENSER_VERSION="\"$version\"" \
    -DOPENSER_FLAGS="\"$flags\"" benches/openser/null_db.c -o "$null"

# One request to the proxy on $PORT; prints the microseconds until its reply.
ask() {
    python3 - "$PORT" <<'PY'
import socket, sys, time
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
start = time.monotonic()
s.sendto(msg.encode(), ("127.0.0.1", port))
s.recv(65535)
print(int((time.monotonic() - start) * 1e6))
PY
}

# once MODULE URL [FLUSH]: one proxy, one request; prints "ELAPSED_US MISSING_RECORDS".
once() {
    local module=$1 url=$2 flush=${3:-}
    rm -rf "$work/acc" && mkdir -p "$work/acc"
    local params=""
    [ -n "$flush" ] && params="modparam(\"flatstore\", \"flush\", $flush)"
    sed -e "s|@PORT@|$PORT|" -e "s|@MODULES@|$tree/modules/|" -e "s|@DB_MODULE@|$module|" \
        -e "s|@ACC_URL@|$url|" -e "s|@LOOPS@|$LOOPS|" -e "s|@FLATSTORE_PARAMS@|$params|" \
        benches/openser/acc_loop.cfg >"$work/openser.cfg"
    "$openser" -f "$work/openser.cfg" -E -P "$work/pid" >"$work/openser.log" 2>&1
    sleep 1
    local pid
    pid=$(cat "$work/pid")
    local us
    us=$(ask)
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    local missing=0
    if [ "$url" != "nulldb:x" ]; then
        missing=$(( LOOPS - $(cat "$work"/acc/acc_*.log | wc -l) ))
    fi
    echo "$us $missing"
}

cases=("null|$null|nulldb:x|" "stock|$stock|flatstore:$work/acc|1" "ours|$ours|flatstore:$work/acc|1"
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
echo "records missing after the stop are summed over the $RUNS runs"
printf '%-6s %-6s %12s %14s %14s\n' module flush "fastest us" "ns/record net" "lost at stop"
declare -A net
for key in "stock 1" "ours 1" "stock 0" "ours 0"; do
    net[$key]=$(( (best[$key] - null_us) * 1000 / LOOPS ))
    printf '%-6s %-6s %12s %14s %14s\n' $key "${best[$key]}" "${net[$key]}" "${lost[$key]}"
done
for flush in 1 0; do
    python3 -c "import sys; o, s = int(sys.argv[1]), int(sys.argv[2]); \
print('flush=%s: ours/stock net cost ratio %.2f' % (sys.argv[3], o / s if s else float('nan')))" \
        "${net["ours $flush"]}" "${net["stock $flush"]}" "$flush"
done
