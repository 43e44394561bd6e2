#!/usr/bin/env bash
# test_spool_tool.sh -- kitgate-spool stat|dump|verify on spools with torn and corrupt records and
# per-stream subdirectories; it never changes a spool; it refuses a spool a running broker locked.
source "$(dirname "$0")/lib.sh"

TOOL="$KG_TOOLS/kitgate-spool"
FILL="$KG_BUILD_DIR/tests/spool_fill"
LOADGEN="$KG_TOOLS/kitgate-loadgen"
for p in "$TOOL" "$FILL" "$LOADGEN"; do [ -x "$p" ] || kg_die "not built: $p"; done
S="$KG_SCRATCH/spool_tool"
rm -rf "$S"
mkdir -p "$S"
j() { jq -r "$1" <"$S/out"; }
tree_sum() { (cd "$1" && find . -type f -exec stat -c '%n %s %Y' {} + | sort && cat ./* 2>/dev/null | md5sum); }

# ---- usage ------------------------------------------------------------------------------------
"$TOOL" --help >"$S/out"; kg_eq "--help exits 0" 0 $?
grep -q "stat|dump|verify" "$S/out" && kg_pass "--help shows the commands" || kg_fail "--help text"
"$TOOL" frobnicate "$S" 2>/dev/null; kg_eq "an unknown command exits 2" 2 $?
"$TOOL" stat "$S/missing" 2>/dev/null; kg_eq "a missing directory exits 2" 2 $?

# ---- a clean spool over several segments -------------------------------------------------------
"$FILL" "$S/clean" 100 20 4096 || kg_die "spool_fill failed"
"$TOOL" stat --json "$S/clean" >"$S/out"; kg_eq "stat exits 0" 0 $?
kg_eq "pending_records" 120 "$(j .pending_records)"
kg_eq "pending_bytes = 100 raw frames + 20 bridge frames" $((100 * 65 + 10 * 32 + 10 * 34)) "$(j .pending_bytes)"
kg_eq "checkpoint" 0 "$(j .checkpoint)"
kg_eq "corrupt_records" 0 "$(j .corrupt_records)"
kg_eq "torn_tails" 0 "$(j .torn_tails)"
[ "$(j .segments)" -ge 2 ] && kg_pass "segments: $(j .segments)" || kg_fail "segments: $(j .segments)"
"$TOOL" dump "$S/clean" >"$S/dump"
kg_eq "dump prints one JSON line per pending record" 120 "$(jq -c . <"$S/dump" | wc -l)"
kg_eq "first record: raw, value 0" "raw 0 k-fill-0001 1700000000000" \
	"$(head -n 1 "$S/dump" | jq -r '"\(.kind) \(.value) \(.kitSerial) \(.datetime)"')"
kg_eq "last record: bridge topic and payload" 'bridge fill/19 {"i":19}' \
	"$(tail -n 1 "$S/dump" | jq -r '"\(.kind) \(.topic) \(.payload)"')"
"$TOOL" verify "$S/clean" >/dev/null; kg_eq "verify of a clean spool exits 0" 0 $?
"$TOOL" stat "$S/clean" | grep -q "pending_records:  120" && kg_pass "text stat" || kg_fail "text stat"

# ---- torn tail and a corrupt record: counted, not repaired -------------------------------------
"$FILL" "$S/bad" 100 0 || kg_die "spool_fill failed"
seg=$(ls "$S"/bad/*.kgs | head -n 1)
kg_eq "one segment of 100 frames of 65 bytes" 6500 "$(stat -c %s "$seg")"
truncate -s $((6500 - 7)) "$seg"                                                   # torn record 100
printf '\xff' | dd of="$seg" bs=1 seek=$((65 * 50 + 30)) conv=notrunc status=none # corrupt record 51
rm -f "$S/bad/LOCK"
before=$(tree_sum "$S/bad")
"$TOOL" stat --json "$S/bad" >"$S/out" 2>"$S/err"; kg_eq "stat of a damaged spool exits 0" 0 $?
kg_eq "pending_records (100 - torn - corrupt)" 98 "$(j .pending_records)"
kg_eq "torn_tails" 1 "$(j .torn_tails)"
kg_eq "corrupt_records" 1 "$(j .corrupt_records)"
"$TOOL" verify "$S/bad" >"$S/out" 2>/dev/null; kg_eq "verify of a damaged spool exits 1" 1 $?
grep -q CORRUPT "$S/out" && kg_pass "verify says CORRUPT" || kg_fail "verify output: $(cat "$S/out")"
"$TOOL" verify --json "$S/bad" >"$S/out" 2>/dev/null; kg_eq "verify --json exits 1" 1 $?
kg_eq "verify --json ok=false" false "$(j .ok)"
kg_eq "dump skips the damaged records" 98 "$("$TOOL" dump "$S/bad" 2>/dev/null | wc -l)"
kg_eq "the tool changed nothing in the spool (no truncation, checkpoint or lock)" "$before" "$(tree_sum "$S/bad")"
[ ! -e "$S/bad/LOCK" ] && kg_pass "no LOCK file created" || kg_fail "a LOCK file was created"

# ---- damaged segment files (issue 19 item 12) ---------------------------------------------------
# a clean spool of several segments, checkpoint 0, copied for each damage
"$FILL" "$S/segs" 100 0 1024 || kg_die "spool_fill failed"
rm -f "$S/segs/LOCK"
first=$(ls "$S"/segs/*.kgs | head -n 1); firstname=$(basename "$first")
second=$(basename "$(ls "$S"/segs/*.kgs | sed -n 2p)"); base2=$((10#${second%.kgs}))
damaged() { rm -rf "$S/dmg"; cp -a "$S/segs" "$S/dmg"; }
# the first segment missing: a gap after the checkpoint
damaged; rm -f "$S/dmg/$firstname"
"$TOOL" verify --json "$S/dmg" >"$S/out" 2>/dev/null; kg_eq "missing first segment: verify exits 1" 1 $?
kg_eq "missing first segment: missing_bytes" "$base2" "$(j .missing_bytes)"
kg_eq "missing first segment: about as many records as it held (65-byte frames)" $(( (base2 + 64) / 65 )) "$(j .missing_records_est)"
# the first segment empty
damaged; truncate -s 0 "$S/dmg/$firstname"
"$TOOL" verify "$S/dmg" >"$S/out" 2>/dev/null; kg_eq "empty first segment: verify exits 1" 1 $?
grep -q "missing_bytes:    $base2 " "$S/out" && kg_pass "empty first segment: $base2 bytes missing reported" ||
	kg_fail "empty first segment: $(cat "$S/out")"
# the first segment truncated to 130 bytes (2 records left)
damaged; truncate -s 130 "$S/dmg/$firstname"
"$TOOL" verify --json "$S/dmg" >"$S/out" 2>/dev/null; kg_eq "truncated segment: verify exits 1" 1 $?
kg_eq "truncated segment: missing_bytes" $((base2 - 130)) "$(j .missing_bytes)"
kg_eq "truncated segment: the records lost, not a few corrupt bytes" $(( (base2 - 130 + 64) / 65 )) "$(j .missing_records_est)"
# a base past 2^63, a FIFO and a directory named like segments: skipped, counted, no hang
damaged; printf 'junkjunkjunk' >"$S/dmg/18446744073709551615.kgs"
mkfifo "$S/dmg/00000000000099999999.kgs"; mkdir "$S/dmg/00000000000099999998.kgs"
timeout 20 "$TOOL" stat --json "$S/dmg" >"$S/out" 2>/dev/null; rc=$?
kg_eq "FIFO/directory/overflowing names: stat exits 0 (no hang)" 0 $rc
kg_eq "refused_segments" 3 "$(j .refused_segments)"
kg_eq "pending_records all there" 100 "$(j .pending_records)"
timeout 20 "$TOOL" verify "$S/dmg" >/dev/null 2>&1; kg_eq "verify exits 1 on names that are not segments" 1 $?
rm -rf "$S/dmg"

# ---- one spool per stream ----------------------------------------------------------------------
"$FILL" "$S/streams/measurements" 10 0 || kg_die "spool_fill failed"
"$FILL" "$S/streams/bridge" 0 5 || kg_die "spool_fill failed"
"$TOOL" stat --json "$S/streams" >"$S/out"
kg_eq "streams: total pending_records" 15 "$(j .pending_records)"
kg_eq "streams: measurements" 10 "$(j .streams.measurements.pending_records)"
kg_eq "streams: bridge" 5 "$(j .streams.bridge.pending_records)"
kg_eq "streams: dump names the stream" "measurements:10 bridge:5" \
	"$("$TOOL" dump "$S/streams" | jq -r .stream | uniq -c | awk '{print $2 ":" $1}' | paste -sd ' ')"

# ---- a spool a running broker holds -------------------------------------------------------------
deadport=$(kg_free_port)
kg_broker_start spooltool <<CONF
plugin_opt_database_url postgresql://postgres@127.0.0.1:$deadport/nowhere?connect_timeout=1
plugin_opt_other_topics allow
plugin_opt_shutdown_timeout_ms 500
CONF
"$LOADGEN" -p "$KG_BROKER_PORT" --kits 1 --messages 50 --qos 1 --window 10 --quiet >"$S/loadgen" 2>&1
"$TOOL" stat "$KG_BROKER_DIR/spool" >/dev/null 2>"$S/err"; kg_eq "a locked spool is refused (exit 3)" 3 $?
grep -q "process $KG_BROKER_PID" "$S/err" && kg_pass "the refusal names the broker's pid" \
	|| kg_fail "refusal: $(cat "$S/err")"
grep -q -- "--force" "$S/err" && kg_pass "the refusal mentions --force" || kg_fail "no --force hint"
"$TOOL" stat --json --force "$KG_BROKER_DIR/spool" >"$S/out" 2>/dev/null; kg_eq "--force inspects it" 0 $?
kg_eq "--force: the 50 acked measurements wait in the spool" 50 "$(j .pending_records)"
kill -0 "$KG_BROKER_PID" && kg_pass "the broker still runs" || kg_fail "the broker died"
kg_broker_stop
"$TOOL" verify "$KG_BROKER_DIR/spool" >/dev/null 2>&1; kg_eq "after the broker stopped: verify without --force" 0 $?

kg_finish
