#!/usr/bin/env bash
# The main job, end to end on a fresh machine (needs only the Rust toolchain and cc):
# build libflatstore.so, build a miniature forking SIP-proxy host in C against it, let its
# workers account calls into ./demo-logs, and show the files they made; then again into
# ./demo-sealed with the writers sealing their own files, read back by the flatstore command,
# and paired into call detail records by `flatstore cdr` (the accounting run).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet   # the library and the flatstore command
target=$(bash packaging/target-dir.sh)
mkdir -p "$target/examples"
proxy=$target/examples/proxy
flatstore=$target/release/flatstore
cc -std=c11 -O2 -Wall -Wextra -Iinclude examples/proxy.c -o "$proxy" \
   -L"$target/release" -lflatstore -Wl,-rpath,"$target/release"
rm -rf demo-logs && mkdir demo-logs
"$proxy" demo-logs 4 10000 1
echo
echo "files in demo-logs/ (<table>_<N>.log, N = worker rank + 4):"
wc -l demo-logs/*.log
echo
echo "first lines of demo-logs/acc_5.log:"
head -n 4 demo-logs/acc_5.log

echo
echo "the same host with the writers sealing their own files (rotate_records=4000, header=1):"
rm -rf demo-sealed && mkdir demo-sealed
"$proxy" "demo-sealed?rotate_records=4000&header=1" 4 10000 1
echo "acc.columns (the insert keys): $(cat demo-sealed/acc.columns)"
echo "sealed files of worker 5, 4000 records each, then its live file:"
wc -l demo-sealed/acc_5.log.sealed-* demo-sealed/acc_5.log | head -n -1
echo
echo "the sealed records as CSV, named from acc.columns (first 3):"
"$flatstore" export demo-sealed acc --format csv --sealed-only | head -n 4
echo
echo "the workers have exited: flatstore seal seals the live files no writer holds any more:"
"$flatstore" seal demo-sealed
echo "live files left with records: $(find demo-sealed -name '*.log' -size +0 | wc -l)"
echo
echo "the accounting run: flatstore cdr pairs each call's INVITE and BYE into one call detail"
echo "record (missed_calls gives the failed calls); CDRs by status:"
"$flatstore" cdr demo-sealed --output demo-sealed/cdr.csv
awk -F, 'NR > 1 { n[$9]++ } END { for (s in n) printf "  %-13s %d\n", s, n[s] }' \
    demo-sealed/cdr.csv | sort
echo "the first answered calls:"
grep -m 3 ',answered' demo-sealed/cdr.csv | sed 's/^/  /'
