#!/usr/bin/env bash
# image_check.sh IMAGE -- `ci/image --check`: the container image run by podman against PostgreSQL on
# the host (the integration tests' fixture, through lib.sh), with the tools of build-pkg.
#
#  1. the image: user mosquitto, health check, volumes, ports; runtime files only (no compiler, no
#     apt, no package lists, no docs beyond copyright files); the broker's libraries all found
#     (ldd) and `mosquitto -h` says 2.1.x;
#  2. the default configuration: starts with sink none and logs how to enable PostgreSQL, is
#     healthy, runs as mosquitto (seen from the host too), stops cleanly;
#  3. bad input, each must end the container at once with its cause: no configuration (one line),
#     an unwritable data volume (one line), a broken configuration (mosquitto names the line);
#     an unresolvable database URL (auth postgres) keeps the broker running on the spool and logs
#     the cause;
#  4. mosquitto-postgres.conf (what compose.yaml mounts) on the host network: the broker is
#     mosquitto 2.1.x and kitgate uses its delayed basic auth (the plugin's start line); kits from the
#     simulator (kitgate-kitsim, run from the image itself) log in with their database secrets
#     (auth postgres) and their rows land; a wrong secret is refused; the dashboard and the API
#     answer (and want credentials); the health check passes;
#  5. `podman stop` during a load drains and exits 0 within its timeout: every id acked before it
#     is in the table;
#  6. `podman kill` (SIGKILL) with PostgreSQL down and a spool backlog, then a new container on the
#     same volume replays it: every PUBACKed id (kitgate-loadgen --acked-log) is in the table
#     exactly once.
# Every container and volume made here is removed at exit (the image stays).
src="$(cd "$(dirname "$0")/../.." && pwd)"
export KG_BUILD_DIR="$src/build-pkg" KG_SCRATCH="$src/build-pkg/image-check"
. "$src/tests/integration/lib.sh"

IMG=${1:?usage: image_check.sh IMAGE}
export CONTAINERS_CONF="$KG_SOURCE_DIR/ci/podman/containers.conf"
RUN="kgimg$$"
VOL="$RUN-data"
LOADGEN="$KG_TOOLS/kitgate-loadgen"
PASSWD_TOOL="$KG_TOOLS/kitgate-passwd"
for t in "$LOADGEN" "$PASSWD_TOOL"; do [ -x "$t" ] || kg_die "not built: $t (ci/package builds it)"; done
podman image exists "$IMG" || kg_die "no image $IMG (run ci/image)"

podman_cleanup() {
	local c
	for c in $(podman ps -a --filter "name=^$RUN-" --format '{{.Names}}' 2>/dev/null); do
		pm rm -f -v -t 0 "$c" >/dev/null 2>&1
	done
	podman volume rm -f "$VOL" >/dev/null 2>&1
	rm -rf "${KG_SCRATCH:?}/$RUN"
}
kg_on_exit podman_cleanup
# Containers and volumes of an earlier run that was killed before its cleanup (its pid is gone).
for c in $(podman ps -a --format '{{.Names}}' 2>/dev/null | grep -E '^kgimg[0-9]+-'); do
	p=${c#kgimg}; p=${p%%-*}
	kill -0 "$p" 2>/dev/null || podman rm -f -v -t 0 "$c" >/dev/null 2>&1
done
for v in $(podman volume ls --format '{{.Name}}' 2>/dev/null | grep -E '^kgimg[0-9]+-data$'); do
	p=${v#kgimg}; p=${p%%-*}
	kill -0 "$p" 2>/dev/null || podman volume rm -f "$v" >/dev/null 2>&1
done

work="$KG_SCRATCH/$RUN"
mkdir -p "$work"
state() { podman inspect --format "{{$2}}" "$RUN-$1" 2>/dev/null; }
running() { [ "$(state "$1" .State.Running)" = true ]; }
logs_have() { podman logs "$RUN-$1" 2>&1 | grep -qE "$2"; }
healthy() { podman healthcheck run "$RUN-$1" >/dev/null 2>&1; }
# podman without systemd logs an error for every health-check timer it cannot make (the check
# itself works: `podman healthcheck run`); keep that noise out of the output checked here.
pm() { podman "$@" 2> >(grep -v 'unable to get systemd connection' >&2); }
# Runs the image with --rm and a 60 s limit; prints the output (stdout+stderr), returns its status.
run_once() {
	local rc
	timeout 60 podman run --rm --name "$RUN-once" "$@" 2>"$work/once.err"
	rc=$?
	grep -v 'unable to get systemd connection' "$work/once.err" >&2
	return $rc
}

# ---- 1. the image ---------------------------------------------------------------------------
kg_eq "image user" mosquitto "$(podman image inspect --format '{{.Config.User}}' "$IMG")"
kg_eq "image health check" "[CMD /usr/local/bin/kitgate-healthcheck]" \
	"$(podman image inspect --format '{{.Config.Healthcheck.Test}}' "$IMG")"
kg_eq "image volumes" "map[/mosquitto/data:{} /mosquitto/log:{}]" "$(podman image inspect --format '{{.Config.Volumes}}' "$IMG")"
kg_eq "image ports" "map[1883/tcp:{} 8080/tcp:{}]" "$(podman image inspect --format '{{.Config.ExposedPorts}}' "$IMG")"
size=$(podman image inspect --format '{{.Size}}' "$IMG")
echo "image size: $((size / 1000000)) MB ($size bytes)"
if [ "$size" -le 120000000 ]; then kg_pass "image size <= 120 MB"; else kg_fail "image size $size bytes > 120 MB"; fi
# shellcheck disable=SC2016
contents=$(run_once --network none "$IMG" sh -c '
	for t in cc gcc c++ make apt apt-get python3 curl; do command -v "$t" >/dev/null && echo "tool:$t"; done
	ls -A /var/lib/apt/lists 2>/dev/null | sed "s/^/aptlist:/"
	find /usr/share/doc -type f ! -name copyright | head -n 3 | sed "s/^/doc:/"
	find /usr/share/man /usr/share/info /usr/share/locale -type f 2>/dev/null | head -n 3 | sed "s/^/doc:/"
	ls -ld /mosquitto/config /mosquitto/data /mosquitto/data/kitgate /mosquitto/log | awk "{print \"dir:\" \$NF \":\" \$3}"
	mosquitto -h | head -n 1 | sed "s/^/broker:/"
	ldd /usr/sbin/mosquitto /usr/lib/*/mosquitto_kitgate.so | grep "not found" | sed "s/^/lib:/"' 2>&1)
echo "$contents" | grep -E '^broker:'
grep -qE '^broker:mosquitto version 2\.1\.[0-9]+' <<<"$contents" && kg_pass "image: mosquitto -h says 2.1.x" ||
	kg_fail "image: the broker is not mosquitto 2.1.x: $(grep '^broker:' <<<"$contents")"
kg_eq "no compiler, apt, package lists, docs or man pages in the image" "" "$(grep -E '^(tool|aptlist|doc):' <<<"$contents")"
kg_eq "every library of the broker and the plugin is in the image (ldd)" "" "$(grep -E '^lib:' <<<"$contents")"
kg_eq "eclipse-mosquitto layout, owned by mosquitto" \
	"dir:/mosquitto/config:mosquitto dir:/mosquitto/data/kitgate:mosquitto dir:/mosquitto/data:mosquitto dir:/mosquitto/log:mosquitto" \
	"$(grep '^dir:' <<<"$contents" | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')"

# ---- 2. the default configuration -----------------------------------------------------------
# Its own network namespace: the default ports 1883/8080 may be taken on the host.
pm run -d --name "$RUN-default" --network none "$IMG" >/dev/null || kg_die "podman run (default config) failed"
if kg_wait_until 20 logs_have default 'kitgate-entrypoint: sink none .*KITGATE_SINK=postgres.*DATABASE_URL='; then
	kg_pass "default config: sink none, and the log says how to enable PostgreSQL"
else
	kg_fail "default config: no sink none / PostgreSQL hint in the log: $(podman logs "$RUN-default" 2>&1 | tail -n 5)"
fi
if kg_wait_until 20 healthy default; then kg_pass "default config: health check passes"; else kg_fail "default config: unhealthy"; fi
kg_eq "default config: process user inside" "mosquitto mosquitto" "$(podman exec "$RUN-default" sh -c 'echo $(id -un) $(stat -c %U /proc/1)')"
hostpid=$(state default .State.Pid)
kg_eq "default config: the broker's uid seen from the host is mosquitto's" \
	"$(podman exec "$RUN-default" id -u mosquitto)" "$(stat -c %u "/proc/$hostpid" 2>/dev/null)"
[ "$(stat -c %u "/proc/$hostpid" 2>/dev/null)" != 0 ] && kg_pass "default config: not root on the host" || kg_fail "default config: runs as root"
pm stop -t 20 "$RUN-default" >/dev/null
kg_eq "default config: podman stop exit status" 0 "$(state default .State.ExitCode)"
pm rm -v "$RUN-default" >/dev/null

# ---- 3. bad input ---------------------------------------------------------------------------
mkdir -p "$work/empty" "$work/ro-data" "$work/broken"
chmod 755 "$work/empty" "$work/ro-data" "$work/broken"
out=$(run_once --network none -v "$work/empty:/mosquitto/config:ro" "$IMG" 2>&1); rc=$?
echo "missing config -> status $rc: $out"
kg_eq "missing config: exit status 78 (not a restart loop, not a timeout)" 78 "$rc"
kg_eq "missing config: one line naming the file" "1/1" \
	"$(grep -c 'ERROR: /mosquitto/config/mosquitto.conf does not exist' <<<"$out")/$(grep -c '' <<<"$out")"
out=$(run_once --network none -v "$work/ro-data:/mosquitto/data" "$IMG" 2>&1); rc=$?
echo "unwritable data volume -> status $rc: $out"
kg_eq "unwritable data volume: exit status 73" 73 "$rc"
kg_eq "unwritable data volume: one line naming the volume" "1/1" \
	"$(grep -c 'ERROR: /mosquitto/data is not writable by mosquitto' <<<"$out")/$(grep -c '' <<<"$out")"
printf 'listener 1883\nno_such_option 1\n' >"$work/broken/mosquitto.conf"
chmod 644 "$work/broken/mosquitto.conf"
out=$(run_once --network none -v "$work/broken:/mosquitto/config:ro" "$IMG" 2>&1); rc=$?
echo "broken config -> status $rc: $out"
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && kg_pass "broken config: the broker exits ($rc)" || kg_fail "broken config: status $rc"
grep -q 'no_such_option' <<<"$out" && kg_pass "broken config: the output names the bad line" || kg_fail "broken config: cause not shown"
# mosquitto-postgres.conf as it is (auth postgres loads the kits at start, so the database is
# asked at once), in the container's own network namespace.
mkdir -p "$work/pgconf"
cp "$KG_SOURCE_DIR/packaging/container/mosquitto-postgres.conf" "$work/pgconf/mosquitto.conf"
: >"$work/pgconf/passwd"
chmod 755 "$work/pgconf"; chmod 644 "$work/pgconf/mosquitto.conf" "$work/pgconf/passwd"
pm run -d --name "$RUN-nodb" --network none -v "$work/pgconf:/mosquitto/config:ro" -e KITGATE_SINK=postgres \
	-e DATABASE_URL=postgresql://kitgate@no-such-host.invalid/astroplant "$IMG" >/dev/null
if kg_wait_until 20 logs_have nodb 'could not translate host name "no-such-host\.invalid"'; then
	kg_pass "unresolvable database URL: the log names the host"
else
	kg_fail "unresolvable database URL: not in the log: $(podman logs "$RUN-nodb" 2>&1 | tail -n 5)"
fi
sleep 2
running nodb && kg_pass "unresolvable database URL: the broker keeps running (spooling)" ||
	kg_fail "unresolvable database URL: the container ended: $(podman logs "$RUN-nodb" 2>&1 | tail -n 5)"
podman logs "$RUN-nodb" 2>&1 | grep -m 1 'no-such-host'
pm rm -f -v -t 0 "$RUN-nodb" >/dev/null

# ---- 4. PostgreSQL, kits with database secrets, dashboard -------------------------------------
DB=image
URL=$(kg_db_create $DB 10) || kg_die "cannot create database $DB"
H=$("$PASSWD_TOOL" pw) || kg_die "kitgate-passwd failed"
kg_psql $DB "UPDATE kits SET password_hash = '$H'" >/dev/null || kg_die "cannot set the kits' password hashes"
MQTT=$(kg_free_port) && HTTP=$(kg_free_port) || kg_die "no free ports"
conf="$work/config"
mkdir -p "$conf"
sed -e "s/^listener 1883\$/listener $MQTT 127.0.0.1/" \
	-e "s/^plugin_opt_http_listen .*/plugin_opt_http_listen 127.0.0.1:$HTTP/" \
	"$KG_SOURCE_DIR/packaging/container/mosquitto-postgres.conf" >"$conf/mosquitto.conf"
grep -q "^listener $MQTT 127.0.0.1\$" "$conf/mosquitto.conf" && grep -q "^plugin_opt_http_listen 127.0.0.1:$HTTP\$" "$conf/mosquitto.conf" ||
	kg_die "mosquitto-postgres.conf: listener/http_listen lines not found"
mosquitto_passwd -c -b "$conf/passwd" server pw >/dev/null 2>&1 || kg_die "mosquitto_passwd failed"
chmod 644 "$conf/mosquitto.conf" "$conf/passwd"
podman volume create "$VOL" >/dev/null || kg_die "podman volume create failed"
# The same mounts and environment names as compose.yaml.
start_main() { # NAME
	pm run -d --name "$RUN-$1" --network host \
		-v "$conf/mosquitto.conf:/mosquitto/config/mosquitto.conf:ro" -v "$conf/passwd:/mosquitto/config/passwd:ro" \
		-v "$VOL:/mosquitto/data" -e KITGATE_SINK=postgres -e DATABASE_URL="$URL" "$IMG" >/dev/null ||
		kg_die "podman run $1 failed"
	kg_wait_until 30 kg__port_open "$MQTT" || kg_die "container $1 does not listen on $MQTT: $(podman logs "$RUN-$1" 2>&1 | tail -n 10)"
	# auth postgres refuses kits until the first kits snapshot has loaded.
	kg_wait_until 30 logs_have "$1" 'auth: kits snapshot loaded' ||
		kg_die "container $1: no kits snapshot: $(podman logs "$RUN-$1" 2>&1 | tail -n 10)"
}
start_main main
# The broker is mosquitto 2.1.x, and kitgate uses its delayed basic auth (auth postgres): the
# plugin's start line says both.
if logs_have main 'broker: mosquitto 2\.1\.[0-9]+ .*delayed basic auth used'; then
	kg_pass "postgres config: the broker is mosquitto 2.1 with delayed basic auth"
else
	kg_fail "postgres config: not mosquitto 2.1 with delayed auth: $(podman logs "$RUN-main" 2>&1 | grep -m 1 'broker: mosquitto' || echo 'no broker line')"
fi
podman logs "$RUN-main" 2>&1 | grep -m 1 -o 'broker: mosquitto.*delayed basic auth [a-z]*'
kg_wait_until 20 healthy main && kg_pass "postgres config: health check passes" || kg_fail "postgres config: unhealthy"
kg_eq "postgres config: user" mosquitto "$(podman exec "$RUN-main" id -un)"

code=$(curl -s -o "$work/index.html" -w '%{http_code}' -u server:pw "http://127.0.0.1:$HTTP/")
kg_eq "dashboard: GET / with credentials" 200 "$code"
grep -qi '<html' "$work/index.html" && kg_pass "dashboard: HTML served" || kg_fail "dashboard: no HTML"
kg_eq "dashboard: GET /api/v1/status without credentials" 401 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP/api/v1/status")"
status=$(curl -s -u server:pw "http://127.0.0.1:$HTTP/api/v1/status")
jq -e 'type == "object"' <<<"$status" >/dev/null && kg_pass "API: /api/v1/status is JSON" || kg_fail "API: status not JSON: ${status:0:200}"

# Kits from the simulator inside the image: 3 kits, raw every 0.2 s, aggregates (QoS 2) every 1 s.
sim() { podman run --rm --no-healthcheck --name "$RUN-kitsim$1" --network host "$IMG" kitgate-kitsim -p "$MQTT" "${@:2}"; }
sim 0 --kits 3 --raw-interval 0.2 --agg-interval 1 --duration 5 >"$work/kitsim.out" 2>&1
kg_eq "kitsim with database secrets: exit status" 0 "$?"
tail -n 1 "$work/kitsim.out"
nraw=$(grep -c '^sent [^ ]* raw ' "$work/kitsim.out")
nagg=$(grep -c '^sent [^ ]* aggregate ' "$work/kitsim.out")
[ "$nraw" -gt 0 ] && [ "$nagg" -gt 0 ] && kg_pass "kitsim sent $nraw raw and $nagg aggregate measurements" || kg_fail "kitsim sent nothing"
rows_are() { [ "$(kg_psql $DB "select count(*) from $1")" = "$2" ]; }
kg_wait_until 30 rows_are raw_measurements "$nraw"
kg_eq "raw rows from the kits" "$nraw" "$(kg_psql $DB 'select count(*) from raw_measurements')"
kg_wait_until 30 rows_are aggregate_measurements "$nagg"
kg_eq "aggregate rows from the kits" "$nagg" "$(kg_psql $DB 'select count(*) from aggregate_measurements')"
sim 1 --kits 1 --password wrong-secret --duration 1 >"$work/kitsim-wrong.out" 2>&1
kg_eq "kitsim with a wrong secret: refused (exit status 1)" 1 "$?"

# ---- 5. podman stop during load --------------------------------------------------------------
kg_psql $DB "CREATE TABLE acked (id uuid)" >/dev/null
acked_missing() { # FILE: acked ids not in raw_measurements
	kg__psql -d $DB -c "TRUNCATE acked" \
		-c "\\copy acked FROM '$1'" >/dev/null || { echo "error"; return; }
	kg_psql $DB "select count(*) from acked a where not exists (select 1 from raw_measurements r where r.id = a.id)"
}
# Stopped 2 s into a 6 s run at 5,000 msg/s: the broker drains what it acked, then exits.
"$LOADGEN" -p "$MQTT" --kits 10 --messages 30000 --rate 5000 --qos 1 --acked-log "$work/acked1" --quiet \
	>"$work/loadgen1.out" 2>&1 &
lg=$!
sleep 2
t0=$(date +%s%N)
pm stop -t 30 "$RUN-main" >/dev/null
ms=$((($(date +%s%N) - t0) / 1000000))
wait $lg
tail -n 1 "$work/loadgen1.out"
acked1=$(grep -c '' "$work/acked1")
echo "podman stop during the load took $ms ms; $acked1 measurements acked before it"
[ "$acked1" -ge 5000 ] && [ "$acked1" -lt 30000 ] && kg_pass "the stop came during the load ($acked1 of 30000 acked)" ||
	kg_fail "the stop did not come during the load ($acked1 of 30000 acked)"
[ "$ms" -lt 30000 ] && kg_pass "podman stop: exited within its 30 s timeout ($ms ms)" || kg_fail "podman stop: $ms ms (killed at the timeout)"
kg_eq "podman stop: exit status" 0 "$(state main .State.ExitCode)"
logs_have main 'stopping: draining' && kg_pass "podman stop: the plugin drained" || kg_fail "podman stop: no drain line in the log"
kg_eq "podman stop: every acked measurement is in the table" 0 "$(acked_missing "$work/acked1")"
pm rm -v "$RUN-main" >/dev/null

# ---- 6. podman kill with a spool backlog, replay by a new container -----------------------------
start_main main2
"$LOADGEN" -p "$MQTT" --kits 10 --messages 40000 --rate 4000 --qos 1 --acked-log "$work/acked2" --quiet \
	>"$work/loadgen2.out" 2>&1 &
lg=$!
sleep 2
kg_pg_stop
echo "PostgreSQL stopped at $(date +%T)"
sleep 3
pm kill -s KILL "$RUN-main2" >/dev/null
echo "container killed (SIGKILL) at $(date +%T)"
wait $lg
tail -n 1 "$work/loadgen2.out"
kg_pg_start
acked2=$(grep -c '' "$work/acked2")
kg_eq "podman kill: exit status 137" 137 "$(state main2 .State.ExitCode)"
missing=$(acked_missing "$work/acked2")
echo "acked before the kill: $acked2; acked but not in the table before the replay: $missing"
[ "$missing" -gt 1000 ] 2>/dev/null && kg_pass "a spool backlog to replay ($missing acked ids not yet written)" ||
	kg_fail "no spool backlog at the kill ($missing): the replay would prove nothing"
pm rm -v "$RUN-main2" >/dev/null
start_main main3
none_missing() { [ "$(acked_missing "$work/acked2")" = 0 ]; }
kg_wait_until 120 none_missing
kg_eq "replay: every PUBACKed measurement is in the table" 0 "$(acked_missing "$work/acked2")"
kg_eq "replay: each exactly once" 0 "$(kg_psql $DB 'select count(*) - count(distinct id) from raw_measurements')"
kg_eq "after both containers: every id acked before the podman stop is in the table" 0 "$(acked_missing "$work/acked1")"
kg_eq "ids acked before the podman stop found exactly once" "$acked1" \
	"$(kg_psql $DB 'select count(*) from raw_measurements r where exists (select 1 from acked a where a.id = r.id)')"
acked_missing "$work/acked2" >/dev/null
kg_eq "replay: PUBACKed ids found exactly once" "$acked2" \
	"$(kg_psql $DB 'select count(*) from raw_measurements r where exists (select 1 from acked a where a.id = r.id)')"
podman logs "$RUN-main3" 2>&1 | grep -iE 'spool|replay' | head -n 3
pm stop -t 30 "$RUN-main3" >/dev/null
kg_eq "second podman stop: exit status" 0 "$(state main3 .State.ExitCode)"

kg_finish
