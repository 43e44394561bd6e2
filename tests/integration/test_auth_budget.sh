#!/usr/bin/env bash
# test_auth_budget.sh -- the cold-login budget (auth_cold_budget_ms) under a wrong-secret attack on
# 40 known serials: the PBKDF2 work the attack buys stays within the budget; once every attacked
# serial has failed a check (the warm-up, about serials x cost / budget) a cold kit that never failed
# gets in within a few retries while the attack goes on (the clean/suspect split: without it the
# attack keeps the bucket empty for tens of seconds); a kit whose login is cached connects and
# publishes throughout; a cold kit gets in once the attack stops; a cold reconnect storm of 40
# legitimate kits gets through (slower, with refusals the kits retry).
#
# Why 40 serials: each attacked serial is checked at most once per failure window (1 s doubling to
# 30 s), so S serials can keep the bucket empty only while S / window exceeds budget / cost; with
# 10 serials that ends about when the warm-up does and nothing is left to test, with 900 the warm-up
# takes minutes. 40 keep it empty from the warm-up (~5-10 s here) to ~20 s and beyond.
#
# KG_AUTHBUDGET_OPT replaces the budget's config line (default "plugin_opt_auth_cold_budget_ms 50");
# set it empty to run the same checks against a plugin without the option (it must fail there), or
# to another value to measure it (the PBKDF2 bound follows the value).
# ctest: RUN_SERIAL its checks bound PBKDF2 time and login latencies under an attack
. "$(dirname "$0")/lib.sh"
kg_broker_log_no_debug   # the checks read only the plugin's own lines

BENCH="$KG_TOOLS/kitgate-authbench"
[ -x "$BENCH" ] || kg_die "not built: $BENCH"
: "${KG_AUTHBUDGET_OPT=plugin_opt_auth_cold_budget_ms 50}"
BUDGET_MS=${KG_AUTHBUDGET_OPT##* }     # the bound checked below (50 when the option is left out)
[[ "$BUDGET_MS" =~ ^[0-9]+$ ]] || BUDGET_MS=50
SECRET='q7!Rm@x#T$v%W&z2Kp9LbN4c'
NKITS=200
ATTACK_FIRST=101      # attacked serials: k-test-0101 .. k-test-0140
ATTACK_N=40
PROBE_TRIES=10        # the never-seen kit's tries during the attack, 0.5 s apart

DB=authbudget
URL=$(kg_db_create $DB $NKITS) || kg_die "cannot create database $DB"
# one AstroPlant-style hash (sha256/15000) for every kit: the login cache is keyed by serial anyway
H=$("$BENCH" hash sha256 15000 Z416JHE8vSmaiamV5TRz "$SECRET") || kg_die "cannot make a hash"
kg_psql $DB "UPDATE kits SET password_hash = '$H'" >/dev/null || kg_die "cannot set hashes"
# CPU cost of one check on this machine: the broker pays at least this much wall time per PBKDF2
cost_ms() { "$BENCH" cpu 0.3 | sed -n 's/^sha256.*([[:space:]]*\([0-9.]*\) ms CPU each).*/\1/p'; }
COST_MS=$(cost_ms)
[ -n "$COST_MS" ] || kg_die "cannot measure the PBKDF2 cost"
# warm-up: until every attacked serial has failed once (serials x cost / budget); the attack lasts
# it, the status lag and the probe's tries, with room for a slower broker
WARM_S=$(awk -v n=$ATTACK_N -v c="$COST_MS" -v b=$BUDGET_MS 'BEGIN { printf "%d", n * c / b + 1 }')
ATTACK_S=$((2 * WARM_S + PROBE_TRIES / 2 + 6))
[ "$ATTACK_S" -lt 20 ] && ATTACK_S=20
[ "$ATTACK_S" -gt 45 ] && ATTACK_S=45
echo "INFO: warm-up ~$WARM_S s ($ATTACK_N serials x $COST_MS ms / $BUDGET_MS ms/s), attack $ATTACK_S s"

kg_broker_start authbudget <<CONF
plugin_opt_sink none
plugin_opt_database_url $URL
plugin_opt_auth postgres
plugin_opt_other_topics allow
$KG_AUTHBUDGET_OPT
CONF
P=$KG_BROKER_PORT
kg_wait_until 30 kg_broker_log_has "auth: first kits snapshot: $NKITS kits" || kg_die "no first snapshot within 30 s"
T_START=$(date +%s)

now_ns() { date +%s%N; }
# pub USER SECRET: MQTT v5 QoS 1 publish on the kit's own topic, with debug output.
pub() { mosquitto_pub -d -p "$P" -V mqttv5 -q 1 -u "$1" -P "$2" -t "kit/$1/x" -m hi 2>&1; }
acked() { grep -qE 'received PUBACK \(Mid: 1, RC:(0|16)\)' <<<"$1"; }
pub_ok() { acked "$(pub "$1" "$SECRET")"; }
# "<pbkdf2_runs> <pbkdf2_ms>" from one status (republished every second): checks run, and the
# broker-thread time they took, which is what the budget is charged
runs_now() { sleep 1.2; kg_status_json | jq -r '"\(.auth.pbkdf2_runs) \(.auth.pbkdf2_ms)"'; }

# ---------------------------------------------------------------- a kit with a cached login
out=$(pub k-test-0001 "$SECRET")
acked "$out" && kg_pass "k-test-0001 logs in (cold), its login is now cached" || kg_fail "k-test-0001: $out"

# ---------------------------------------------------------------- the attack
read -r runs0 ms0 <<<"$(runs_now)"
t0=$(now_ns)
"$BENCH" attack -p "$P" -n $ATTACK_N -f $ATTACK_FIRST -t $ATTACK_S -j 16 \
	>"$KG_SCRATCH/authbudget.attack" 2>&1 &
APID=$!
# (b) meanwhile the cached kit reconnects and publishes every 0.5 s; (e) once the warm-up is over
# (the attack ran ATTACK_N checks: every attacked serial failed about once), the never-seen kit
# k-test-0002 tries every 0.5 s, at most PROBE_TRIES times
n_ok=0 n_try=0 worst=0 probe=warming probe_tries=0 probe_at=""
while kill -0 "$APID" 2>/dev/null; do
	sleep 0.5
	kill -0 "$APID" 2>/dev/null || break
	n_try=$((n_try + 1))
	s=$(now_ns)
	out=$(pub k-test-0001 "$SECRET")
	ms=$(( ($(now_ns) - s) / 1000000 ))
	if acked "$out"; then n_ok=$((n_ok + 1)); [ "$ms" -gt "$worst" ] && worst=$ms; else echo "  cached kit refused: $out"; fi
	if [ "$probe" = warming ]; then
		r=$(kg_status_get .auth.pbkdf2_runs)
		[ "${r:-0}" -ge $((runs0 + ATTACK_N)) ] 2>/dev/null &&
			{ probe=trying; probe_at=$(( (s - t0) / 1000000 )); }
	elif [ "$probe" = trying ]; then
		probe_tries=$((probe_tries + 1))
		if pub_ok k-test-0002; then probe=admitted
		elif [ "$probe_tries" -ge "$PROBE_TRIES" ]; then probe=refused
		fi
	fi
done
wait "$APID"
arc=$?
t1=$(now_ns)
cat "$KG_SCRATCH/authbudget.attack"
[ "$arc" = 0 ] && kg_pass "no wrong secret was admitted" || kg_fail "authbench attack exited $arc"
attempts=$(sed -n 's/.* \([0-9]*\) attempts (.*/\1/p' "$KG_SCRATCH/authbudget.attack")
[ "${attempts:-0}" -ge 300 ] && kg_pass "the attack made $attempts login attempts" ||
	kg_fail "the attack made only ${attempts:-0} attempts (no load)"
[ "$n_try" -ge 10 ] && [ "$n_ok" = "$n_try" ] &&
	kg_pass "(b) cached kit connected and published $n_ok/$n_try times during the attack (slowest $worst ms)" ||
	kg_fail "(b) cached kit: $n_ok of $n_try publishes acknowledged during the attack"
[ "$worst" -lt 3000 ] && kg_pass "(b) cached kit's connect+publish+PUBACK took at most $worst ms" ||
	kg_fail "(b) cached kit's connect+publish+PUBACK took $worst ms"
case $probe in
admitted) kg_pass "(e) warm-up over after ${probe_at} ms; a never-seen kit then got in during the attack on try $probe_tries" ;;
refused) kg_fail "(e) a never-seen kit was refused $PROBE_TRIES times during the attack, after the warm-up (${probe_at} ms): the attack starves clean cold kits" ;;
*) kg_fail "(e) inconclusive: the attack ended before the never-seen kit had tried $PROBE_TRIES times ($probe after $probe_tries tries; warm-up: ${probe_at:-not over}) -- a slower broker than ATTACK_S assumes" ;;
esac

# (a) the PBKDF2 work the attack bought: at most a full bucket plus the refill over the whole window
read -r runs1 ms1 <<<"$(runs_now)"
t2=$(now_ns)
runs=$((runs1 - runs0))
spent=$((ms1 - ms0))
win_ms=$(( (t2 - t0) / 1000000 + 1200 ))   # from before runs0 was published to runs1
atk_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
# the cheapest of two measurements (before, after), and 25% slack for the machine's noise: without
# the budget the attack buys ten times more
c2=$(cost_ms)
COST_MS=$(awk -v a="$COST_MS" -v b="${c2:-$COST_MS}" 'BEGIN { print (b < a ? b : a) }')
echo "INFO: sha256/15000 costs $COST_MS ms CPU per check here"
# What the budget promises: the broker-thread time charged to cold checks stays within a full
# bucket plus the refill over the window, plus one check's overdraw (its cost is known only after
# it ran). Counted in time, as the budget is, so a slow build (ASan) or a loaded machine cannot
# make the per-check cost estimate wrong; 25% slack for the status' one-second granularity.
bound_ms=$(awk -v b=$BUDGET_MS -v w="$win_ms" -v c="$COST_MS" 'BEGIN { printf "%d", 1.25 * (b + b * w / 1000) + 4 * c + 50 }')
echo "INFO: PBKDF2 during the attack: $runs checks, $spent ms of broker-thread time, in $atk_s s ($(awk -v r=$runs -v s="$atk_s" 'BEGIN { printf "%.1f", r / s }')/s)"
[ "$spent" -le "$bound_ms" ] 2>/dev/null &&
	kg_pass "(a) the attack bought $spent ms of PBKDF2 ($runs checks), within the budget's $bound_ms ms ($BUDGET_MS ms/s over $win_ms ms)" ||
	kg_fail "(a) the attack bought ${spent} ms of PBKDF2 ($runs checks), over the budget's $bound_ms ms ($BUDGET_MS ms/s over $win_ms ms)"
[ "$runs" -ge 5 ] && kg_pass "(a) cold checks still ran during the attack ($runs)" || kg_fail "(a) only $runs checks ran"
kg_wait_until 5 kg_broker_log_has 'refused kit k-test-[0-9]+ from .* unchecked: cold-login budget spent' &&
	kg_pass "budget refusals logged" || kg_fail "no 'cold-login budget spent' line"
sleep 1.2
refused=$(kg_status_get .auth.budget_refused)
[ "${refused:-0}" -gt 0 ] 2>/dev/null && kg_pass "status auth.budget_refused counts them ($refused)" ||
	kg_fail "status auth.budget_refused is '$refused' after the attack"

# (c) the attack stopped: a cold kit (never seen) gets in
s=$(now_ns)
kg_wait_until 10 pub_ok k-test-0003 && kg_pass "(c) cold kit admitted $(( ($(now_ns) - s) / 1000000 )) ms after the attack stopped" ||
	kg_fail "(c) cold kit still refused 10 s after the attack"

# ---------------------------------------------------------------- a cold reconnect storm
# 40 kits never seen connect at once and retry every 0.5 s (as kits do) until admitted.
storm_kit() { # SERIAL: prints the attempts it needed, or "fail"
	local n=0 deadline=$(( $(date +%s) + 60 ))
	while [ "$(date +%s)" -lt "$deadline" ]; do
		n=$((n + 1))
		pub_ok "$1" && { echo "$n"; return; }
		sleep 0.5
	done
	echo fail
}
s=$(now_ns)
spids=()
for i in $(seq 11 50); do
	storm_kit "$(printf 'k-test-%04d' "$i")" >"$KG_SCRATCH/authbudget.storm.$i" &
	spids+=($!)
done
wait "${spids[@]}"     # not a bare wait: the broker is a child of this shell too
storm_ms=$(( ($(now_ns) - s) / 1000000 ))
admitted=0 retried=0 tries=0
for i in $(seq 11 50); do
	r=$(cat "$KG_SCRATCH/authbudget.storm.$i")
	[ "$r" = fail ] && continue
	admitted=$((admitted + 1)); tries=$((tries + r)); [ "$r" -gt 1 ] && retried=$((retried + 1))
done
kg_eq "(d) cold storm: every kit admitted (in $storm_ms ms, $tries attempts)" 40 "$admitted"
[ "$retried" -gt 0 ] && kg_pass "(d) $retried kits were refused at first and got in on a retry" ||
	kg_fail "(d) no kit of the cold storm was refused: the budget did not pace it"

# the refusal log stays rate-limited (at most one line per second)
lines=$(grep -c 'cold-login budget spent' "$KG_BROKER_LOG")
secs=$(( $(date +%s) - T_START + 1 ))
[ "$lines" -le "$secs" ] && kg_pass "budget refusal log: $lines lines in $secs s" || kg_fail "budget refusal log: $lines lines in $secs s"

kg_finish
