/* auth.c -- `auth postgres` on the broker thread: kit logins against the kits snapshot (called by
 * acl.c's BASIC_AUTH), picking up new snapshots in TICK and disconnecting kits whose secret changed
 * or whose row was deleted. Broker thread only (mosquitto_kick_client_by_username, log). The
 * database is read by the snapshot loader thread (snapshot.c), never here. On mosquitto 2.1 a login
 * that needs PBKDF2 is delayed (MOSQ_ERR_AUTH_DELAYED): the hash runs on the authpool's threads and
 * the login is completed in TICK (mosquitto_complete_basic_auth, looked up at run time). */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker_api.h"

#include "kitgate/authbudget.h"
#include "kitgate/authpool.h"
#include "kitgate/backoff.h"
#include "kitgate/logincache.h"
#include "kitgate/pbkdf2.h"
#include "kitgate/siphash.h"
#include "kitgate/snapshot.h"
#include "kitgate/events.h"
#include "kitgate_internal.h"

#define LOGIN_CACHE_ENTRIES 16384   /* 40 bytes each: 640 KiB at start ... */
#define LOGIN_CACHE_MAX 262144      /* ... grown to twice the kits in the snapshot, up to this: 10 MiB,
                                     * every kit of a 131,072-kit fleet cached */
#define KICKS_LOGGED 10             /* serials named per snapshot; the rest are counted */
#define BACKOFF_ENTRIES 16384       /* ~130 bytes each: ~2 MiB per table (windows per serial and
                                     * source; the suspects per serial for the cold-login budget),
                                     * sized like the login cache */
#define BACKOFF_INITIAL_MS 1000     /* after a failed check, refuse the serial unchecked this long ... */
#define BACKOFF_MAX_MS 30000        /* ... doubling per further failed check, up to this */
#define DUMMY_SALT "kitgateUnknownSerial"  /* 20 characters, as AstroPlant's salts */
#define POOL_PENDING 4096           /* delayed logins in flight (authpool.h); ~0.6 KiB each */
#define POOL_TICK_MS 5              /* TICK cadence asked of 2.1 while delayed logins are pending */

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Delayed logins: mosquitto 2.1's mosquitto_complete_basic_auth, looked up in the running broker
 * by kg_brokerinfo__detect (a plugin built against 2.0 headers must use it when loaded into 2.1).
 * 0, -1 out of memory, -2 bad option (logged). */
static int delayed_init(struct kg_plugin *p)
{
	long ncpu;

	if(!p->broker.complete_basic_auth){
		if(p->cfg.auth_threads){
			mosquitto_log_printf(MOSQ_LOG_ERR, "kitgate: option auth_threads %d needs mosquitto 2.1 or "
					"later (delayed basic auth, mosquitto_complete_basic_auth), and this broker is "
					"mosquitto 2.0 (%s): remove plugin_opt_auth_threads (on 2.0 logins are checked on the "
					"broker thread under auth_cold_budget_ms) or upgrade mosquitto to 2.1; not starting",
					p->cfg.auth_threads, LIBMOSQUITTO_VERSION_NUMBER >= 2001000 ? "built against 2.1 "
					"headers, but the running broker lacks the function" : "no mosquitto_complete_basic_auth");
			return -2;
		}
		return 0;
	}
	if(p->cfg.auth != KG_AUTH_POSTGRES){
		if(p->cfg.auth_threads){
			kg_log(KG_LOG_WARNING, "option auth_threads %d has no effect without auth postgres (kitgate "
					"checks no kit secrets): remove it or set plugin_opt_auth postgres", p->cfg.auth_threads);
		}
		return 0;
	}
	ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	p->auth.threads = p->cfg.auth_threads ? p->cfg.auth_threads : (int)(ncpu < 1 ? 1 : ncpu > 256 ? 256 : ncpu);
	p->auth.pool = kg_authpool__new(p->auth.threads, POOL_PENDING);
	if(!p->auth.pool) return -1;
	p->auth.complete = p->broker.complete_basic_auth;
	return 0;
}

int kg_auth__init(struct kg_plugin *p)
{
	int rc = delayed_init(p);

	if(rc != 0) return rc;
	if(p->cfg.auth != KG_AUTH_POSTGRES) return 0;
	p->auth.logins = kg_logincache__new(LOGIN_CACHE_ENTRIES);
	p->auth.backoff = kg_backoff__new(BACKOFF_ENTRIES, BACKOFF_INITIAL_MS, BACKOFF_MAX_MS);
	p->auth.suspects = kg_backoff__new(BACKOFF_ENTRIES, BACKOFF_INITIAL_MS, BACKOFF_MAX_MS);
	p->auth.loader = p->auth.logins && p->auth.backoff && p->auth.suspects
		? kg_snapshot__start(p->cfg.database_url, p->cfg.auth_refresh_s) : NULL;
	if(!p->auth.loader){
		kg_auth__cleanup(p);
		return -1;
	}
	/* AstroPlant's parameters (sha256, 15000 iterations, a 20-character salt, a 32-byte key); the key
	 * is random, so no secret matches it */
	p->auth.dummy.alg = KG_PBKDF2_SHA256;
	p->auth.dummy.iterations = 15000;
	p->auth.dummy.salt_len = strlen(DUMMY_SALT);
	memcpy(p->auth.dummy.salt, DUMMY_SALT, sizeof(DUMMY_SALT));
	p->auth.dummy.key_len = 32;
	kg_siphash__random_key(p->auth.dummy.key);
	kg_siphash__random_key(p->auth.dummy.key + KG_SIPHASH_KEY_LEN);
	kg_authbudget__init(&p->auth.budget, p->cfg.auth_cold_budget_ms, (int64_t)mono_ns());
	if(p->auth.pool){
		kg_log(KG_LOG_INFO, "auth postgres: kits log in against kits.password_hash (snapshot reloaded "
				"every %d s and on NOTIFY kitgate_kits); mosquitto 2.1 delayed basic auth: PBKDF2 for "
				"logins not in the login cache runs on %d auth thread(s) (auth_threads%s), at most %d "
				"pending, one per kit and source address; kits are refused until the first snapshot loads",
				p->cfg.auth_refresh_s, p->auth.threads, p->cfg.auth_threads ? "" : " default: the CPUs",
				POOL_PENDING);
	}else{
		kg_log(KG_LOG_INFO, "auth postgres: kits log in against kits.password_hash (snapshot reloaded every "
				"%d s and on NOTIFY kitgate_kits; mosquitto 2.0: PBKDF2 for logins not in the login cache "
				"runs on the broker thread, limited to %d ms per second); kits are refused until the first "
				"snapshot loads", p->cfg.auth_refresh_s, p->cfg.auth_cold_budget_ms);
	}
	return 0;
}

void kg_auth__cleanup(struct kg_plugin *p)
{
	kg_authpool__free(p->auth.pool);       /* joins the auth threads; pending logins are dropped */
	p->auth.pool = NULL;
	kg_snapshot__stop(p->auth.loader);     /* joins the loader thread */
	p->auth.loader = NULL;
	kg_snapshot__unref(p->auth.snap);
	p->auth.snap = NULL;
	kg_logincache__free(p->auth.logins);
	p->auth.logins = NULL;
	kg_backoff__free(p->auth.backoff);
	p->auth.backoff = NULL;
	kg_backoff__free(p->auth.suspects);
	p->auth.suspects = NULL;
}

/* Swap in a newer snapshot if one was published; disconnect the kits it no longer admits. Atomic
 * with the swap: a kit admitted under the old snapshot and changed in the new one is kicked here. */
static void take_snapshot(struct kg_plugin *p)
{
	struct kg_snapshot *s;
	char **kicks;
	size_t nkicks, i;

	s = kg_snapshot__take(p->auth.loader, &p->auth.gen, &kicks, &nkicks);
	if(s){
		if(!p->auth.snap){
			mosquitto_log_printf(MOSQ_LOG_INFO, "kitgate: auth: first kits snapshot: %zu kits; kits may "
					"log in", kg_snapshot__nkits(s));
		}
		kg_snapshot__unref(p->auth.snap);
		p->auth.snap = s;
		/* a table as large as the fleet would keep evicting some kits' logins (4-way sets) */
		if(kg_logincache__reserve(p->auth.logins, kg_snapshot__nkits(s), LOGIN_CACHE_MAX) != 0){
			mosquitto_log_printf(MOSQ_LOG_WARNING, "kitgate: auth: login cache not grown for %zu kits "
					"(out of memory)", kg_snapshot__nkits(s));
		}
	}
	for(i = 0; i < nkicks; i++){
		mosquitto_kick_client_by_username(kicks[i], false);
		if(i < KICKS_LOGGED){
			mosquitto_log_printf(MOSQ_LOG_NOTICE, "kitgate: auth: disconnecting kit %s: its secret "
					"changed or it was deleted", kicks[i]);
		}
		free(kicks[i]);
	}
	if(nkicks > KICKS_LOGGED){
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "kitgate: auth: ... and %zu more kits disconnected",
				nkicks - KICKS_LOGGED);
	}
	p->auth.kicked += nkicks;
	free(kicks);
}

/* A delayed login's check came back: learn from it (login cache, backoff, counters) and, unless
 * it was superseded, complete the login. A client gone meanwhile is no harm: 2.1's
 * mosquitto_complete_basic_auth looks the client id up among the delayed logins and does nothing
 * when it is not there (src/plugin_public.c; a closed client leaves that table in
 * context__remove_from_by_id); a newer login with the same id superseded this job (authpool.h). */
static void complete_one(struct kg_plugin *p, struct kg_authresult *r)
{
	const struct kg_snapshot_kit *kit;
	uint64_t suppressed;
	int result = MOSQ_ERR_AUTH;

	p->auth.pbkdf2_ns += (uint64_t)(r->cost_ns > 0 ? r->cost_ns : 0);
	p->auth.pbkdf2_runs++;
	/* The secret the check ran against must still be the kit's (the snapshot may have changed). */
	kit = p->auth.snap ? kg_snapshot__kit(p->auth.snap, r->serial, strlen(r->serial)) : NULL;
	if(!kit || strcmp(kit->password_hash, r->hash) != 0){
		p->auth.changed++;
		p->auth.refused++;
	}else if(r->verdict == 1){
		kg_logincache__add(p->auth.logins, kit->serial, r->password, r->pwlen, kit->password_hash);
		kg_backoff__clear(p->auth.backoff, r->key);       /* this source's window */
		kg_backoff__clear(p->auth.suspects, kit->serial);  /* and the serial's record */
		p->auth.ok++;
		result = MOSQ_ERR_SUCCESS;
	}else{
		int64_t now_ms = (int64_t)(mono_ns() / 1000000u);

		kg_backoff__fail(p->auth.backoff, r->key, now_ms);
		kg_backoff__fail(p->auth.suspects, kit->serial, now_ms);
		p->auth.refused++;
		if(kg_ratelimit__allow(&p->auth.wrong_log, &suppressed)){
			/* the same line as the broker-thread path; the source is the backoff key's part
			 * after the serial (the address, an IPv6 address by its /64) */
			const char *src = strchr(r->key, '\n');

			mosquitto_log_printf(MOSQ_LOG_NOTICE, "kitgate: auth: refused kit %s from %s (client %s): %s "
					"(+%llu more suppressed)", kit->serial, src ? src + 1 : "?", r->client_id,
					r->verdict < 0 ? "PBKDF2 failed" : "wrong secret", (unsigned long long)suppressed);
		}
	}
	if(r->stale){
		p->auth.stale++;
		return;
	}
	/* 2.1 raises CONNECT (success) or a DISCONNECT about a client that never logged in (refusal)
	 * inside the call: the events module tells them apart by this client id (events.h) */
	kg_events__complete_begin(p->events, r->client_id, result == MOSQ_ERR_SUCCESS);
	p->auth.complete(r->client_id, result);
	kg_events__complete_end(p->events);
}

void kg_auth__tick(struct kg_plugin *p)
{
	struct kg_authresult r;

	if(p->auth.loader) take_snapshot(p);
	if(!p->auth.pool) return;
	while(kg_authpool__take(p->auth.pool, &r)){
		complete_one(p, &r);
		kg_authpool__release(p->auth.pool, &r);
	}
}

long kg_auth__tick_wish_ms(struct kg_plugin *p)
{
	return p->auth.pool && kg_authpool__pending(p->auth.pool) > 0 ? POOL_TICK_MS : 0;
}

/* The delayed path of a cold login (2.1): queue the check. The per-serial backoff still refuses
 * unchecked in a window (checked by the caller); the cold-login budget (broker-thread time) is not
 * used: the pool's slots bound pending hashes instead (authpool.h). */
static int delay_login(struct kg_plugin *p, struct mosquitto_evt_basic_auth *ed,
		const struct kg_snapshot_kit *kit, const char *bkey, const struct kg_pbkdf2 *h, size_t pwlen,
		enum kg_authbudget_class cls)
{
	const char *id = mosquitto_client_id(ed->client);
	uint64_t suppressed;

	switch(kg_authpool__submit(p->auth.pool, id, kit->serial, bkey, kit->password_hash, h, ed->password, pwlen,
			cls == KG_AUTHBUDGET_SUSPECT ? KG_AUTHPOOL_SUSPECT : KG_AUTHPOOL_CLEAN)){
		case KG_AUTHPOOL_QUEUED:
			p->auth.delayed++;
			return KG_MOSQ_ERR_AUTH_DELAYED;
		case KG_AUTHPOOL_BUSY:
			p->auth.refused++;
			p->auth.busy_refused++;
			return MOSQ_ERR_AUTH;
		case KG_AUTHPOOL_FULL:
			p->auth.refused++;
			p->auth.slots_refused++;
			if(kg_ratelimit__allow(&p->auth.slots_log, &suppressed)){
				mosquitto_log_printf(MOSQ_LOG_NOTICE, "kitgate: auth: refused kit %s from %s unchecked: "
						"%s pending login checks%s (+%llu more suppressed)", kit->serial,
						mosquitto_client_address(ed->client), cls == KG_AUTHBUDGET_SUSPECT ? "half the"
						: "all", cls == KG_AUTHBUDGET_SUSPECT ? " (the share of serials with failed logins)"
						: "", (unsigned long long)suppressed);
			}
			return MOSQ_ERR_AUTH;
		default:
			p->auth.refused++;
			return MOSQ_ERR_AUTH;
	}
}

/* A username that is not a kit of the snapshot, with a password: do what a kit's wrong secret costs,
 * so the answer's timing does not tell real serials from unknown ones (issue 19: 3.2 ms vs 0.18 ms).
 * The same failure window per (name, source address): inside it, no work; else the same budget,
 * always as a suspect (so made-up names can never drain the half kept for kits that never failed);
 * then one PBKDF2 against a dummy hash with AstroPlant's parameters, counted like a kit's check.
 * Always deferred (password_file and other plugins decide), never refused. Leaks that remain: a kit
 * whose secret needs other parameters costs differently (as it did), and under a drained budget a
 * never-failed real serial may still be checked from the lower half where a made-up name is not. */
static int unknown_user(struct kg_plugin *p, struct mosquitto_evt_basic_auth *ed, const char *pw)
{
	char bkey[KG_BACKOFF_KEY_MAX + 1];
	uint64_t t0, cost;
	int64_t now_ms;

	if(!pw || !pw[0]) return MOSQ_ERR_PLUGIN_DEFER;   /* a kit is refused at once too */
	if(kg_backoff__source_key(bkey, ed->username, mosquitto_client_address(ed->client)) < 0){
		return MOSQ_ERR_PLUGIN_DEFER;                  /* longer than any serial: cannot be a kit */
	}
	t0 = mono_ns();
	now_ms = (int64_t)(t0 / 1000000u);
	if(kg_backoff__remaining(p->auth.backoff, bkey, now_ms) > 0) return MOSQ_ERR_PLUGIN_DEFER;
	if(!kg_authbudget__allow(&p->auth.budget, KG_AUTHBUDGET_SUSPECT, (int64_t)t0)) return MOSQ_ERR_PLUGIN_DEFER;
	(void)kg_pbkdf2__verify(&p->auth.dummy, pw, strlen(pw));
	cost = mono_ns() - t0;
	kg_authbudget__charge(&p->auth.budget, (int64_t)cost);
	p->auth.pbkdf2_ns += cost;
	p->auth.pbkdf2_runs++;
	kg_backoff__fail(p->auth.backoff, bkey, now_ms);
	return MOSQ_ERR_PLUGIN_DEFER;
}

/* BASIC_AUTH for a kit: a CONNECT without a password (none, or empty: no kit secret is empty) is
 * refused at once and counted (auth.no_password), before the backoff and the budget: it checks
 * nothing, so it neither records a failure (which would lock the kit out and make it suspect at no
 * cost to the sender) nor draws on the budget nor counts as a PBKDF2 run. A login found in the login
 * cache passes at once (one HMAC), never touching the cold-login budget. Otherwise the secret is
 * checked with PBKDF2 (milliseconds on the broker thread), unless
 * - the serial is in a failure window from this source address (backoff.h; an IPv6 address counts
 *   by its /64): refused unchecked, so a flood of wrong secrets from one source buys one PBKDF2 per
 *   window (1 s doubling to 30 s), not one per CONNECT. The window holds only that source: the kit
 *   from its own address is checked (issue 19: keyed by the serial alone, an attacker knowing a
 *   serial kept a cold kit out for good). The trade-off: a kit behind the attacker's address (NAT)
 *   shares its windows, and an attacker with many addresses buys a check per address per window,
 *   which the budget below still bounds (and the kit, now suspect, competes with it in the upper
 *   half);
 * - or the cold-login budget (authbudget.h, auth_cold_budget_ms per second of measured PBKDF2 time,
 *   all serials together) is spent for the serial's class: refused unchecked, without opening a
 *   window, so the kit's next reconnect may pass. A serial with a failed check on record (suspect)
 *   is served only from the upper half of the bucket; the lower half is kept for serials without
 *   (clean: cold storms of legitimate kits), so wrong secrets spread over many known serials buy
 *   at most the budget, and once each attacked serial has failed a check they no longer compete
 *   with kits that never failed (an attacker's first wrong secret per serial still looks clean;
 *   a serial whose backoff set is full of live entries counts as suspect, backoff.h).
 * A successful check clears the source's window and the serial's record.
 * On mosquitto 2.1 (p->auth.pool) everything up to the backoff window is the same and answered at
 * once (no password, cache hit, bad stored hash, a window); a login that needs PBKDF2 is instead
 * queued to the auth threads and delayed (MOSQ_ERR_AUTH_DELAYED, delay_login), bounded by the
 * pool's slots (all for clean serials, half for suspects) and one pending check per serial, not by
 * the cold-login budget. Broker thread only. */
int kg_auth__basic_auth(struct kg_plugin *p, struct mosquitto_evt_basic_auth *ed)
{
	const struct kg_snapshot_kit *kit;
	struct kg_pbkdf2 h;
	const char *user = ed->username, *pw = ed->password, *why;
	char bkey[KG_BACKOFF_KEY_MAX + 1] = "";
	size_t pwlen;
	uint64_t suppressed, t0, cost;
	int64_t wait_ms, now_ms;
	enum kg_authbudget_class cls;
	int rc;

	if(!p->auth.loader || !user) return MOSQ_ERR_PLUGIN_DEFER;
	/* Service users always stay with password_file: a kits row named like one gains nothing. */
	if(kg_config__is_service(&p->cfg, user)) return MOSQ_ERR_PLUGIN_DEFER;
	if(!p->auth.snap) take_snapshot(p);     /* it may have loaded since the last TICK */
	if(!p->auth.snap){
		/* Fail closed: without a snapshot we cannot tell a kit from another user. */
		p->auth.refused++;
		if(kg_ratelimit__allow(&p->auth.wait_log, &suppressed)){
			mosquitto_log_printf(MOSQ_LOG_NOTICE, "kitgate: auth: refused %s from %s: no kits snapshot "
					"loaded yet (database unreachable?) (+%llu more suppressed)", user,
					mosquitto_client_address(ed->client), (unsigned long long)suppressed);
		}
		return MOSQ_ERR_AUTH;
	}
	kit = kg_snapshot__kit(p->auth.snap, user, strlen(user));
	if(!kit) return unknown_user(p, ed, pw); /* not a kit: password_file, other plugins */
	if(!pw || !pw[0]){
		/* Nothing to check: refuse before the backoff and the budget. Recording it as a failed
		 * check would let anyone lock a kit out (and mark it suspect) for free. */
		p->auth.refused++;
		p->auth.no_password++;
		if(kg_ratelimit__allow(&p->auth.nopw_log, &suppressed)){
			mosquitto_log_printf(MOSQ_LOG_NOTICE, "kitgate: auth: refused kit %s from %s: no password "
					"(+%llu more suppressed)", kit->serial, mosquitto_client_address(ed->client),
					(unsigned long long)suppressed);
		}
		return MOSQ_ERR_AUTH;
	}

	pwlen = strlen(pw);
	if(kg_logincache__hit(p->auth.logins, kit->serial, pw, pwlen, kit->password_hash)){
		p->auth.cached++;
		return MOSQ_ERR_SUCCESS;
	}
	if(kg_pbkdf2__parse(kit->password_hash, &h, &why) != 0){
		p->auth.refused++;
		if(kg_ratelimit__allow(&p->auth.hash_log, &suppressed)){
			mosquitto_log_printf(MOSQ_LOG_WARNING, "kitgate: auth: refused kit %s: its kits.password_hash "
					"is not PBKDF2$sha256|sha512$<iterations>$<salt>$<base64 key>: %s (+%llu more "
					"suppressed)", kit->serial, why, (unsigned long long)suppressed);
		}
		return MOSQ_ERR_AUTH;
	}
	if(h.iterations > (uint32_t)p->cfg.auth_max_iterations){
		/* Checking it would stall every client for as long (10 M iterations: 7 s): refuse unchecked. */
		p->auth.refused++;
		if(kg_ratelimit__allow(&p->auth.hash_log, &suppressed)){
			mosquitto_log_printf(MOSQ_LOG_WARNING, "kitgate: auth: refused kit %s: its kits.password_hash "
					"needs %lu PBKDF2 iterations, more than auth_max_iterations %d; rehash its secret or "
					"raise the option (+%llu more suppressed)", kit->serial, (unsigned long)h.iterations,
					p->cfg.auth_max_iterations, (unsigned long long)suppressed);
		}
		return MOSQ_ERR_AUTH;
	}
	t0 = mono_ns();
	now_ms = (int64_t)(t0 / 1000000u);
	(void)kg_backoff__source_key(bkey, kit->serial, mosquitto_client_address(ed->client));
	wait_ms = kg_backoff__remaining(p->auth.backoff, bkey, now_ms);
	if(wait_ms > 0){
		p->auth.refused++;
		p->auth.backoff_refused++;
		if(kg_ratelimit__allow(&p->auth.backoff_log, &suppressed)){
			mosquitto_log_printf(MOSQ_LOG_NOTICE, "kitgate: auth: refused kit %s from %s unchecked: "
					"recent failed logins from there, retry in %lld ms (+%llu more suppressed)", kit->serial,
					mosquitto_client_address(ed->client), (long long)wait_ms,
					(unsigned long long)suppressed);
		}
		return MOSQ_ERR_AUTH;
	}
	cls = kg_backoff__has(p->auth.suspects, kit->serial, now_ms) ? KG_AUTHBUDGET_SUSPECT : KG_AUTHBUDGET_CLEAN;
	if(p->auth.pool && mosquitto_client_id(ed->client)) return delay_login(p, ed, kit, bkey, &h, pwlen, cls);
	if(!kg_authbudget__allow(&p->auth.budget, cls, (int64_t)t0)){
		p->auth.refused++;
		p->auth.budget_refused++;
		if(kg_ratelimit__allow(&p->auth.budget_log, &suppressed)){
			mosquitto_log_printf(MOSQ_LOG_NOTICE, "kitgate: auth: refused kit %s from %s unchecked: "
					"cold-login budget spent (auth_cold_budget_ms %d%s), retry in %lld ms (+%llu more "
					"suppressed)", kit->serial, mosquitto_client_address(ed->client),
					p->cfg.auth_cold_budget_ms, cls == KG_AUTHBUDGET_SUSPECT ? ", serial with failed logins" : "",
					(long long)(kg_authbudget__wait_ns(&p->auth.budget, cls, (int64_t)t0) / 1000000 + 1),
					(unsigned long long)suppressed);
		}
		return MOSQ_ERR_AUTH;
	}
	rc = kg_pbkdf2__verify(&h, pw, pwlen);
	cost = mono_ns() - t0;
	kg_authbudget__charge(&p->auth.budget, (int64_t)cost);
	p->auth.pbkdf2_ns += cost;
	p->auth.pbkdf2_runs++;
	if(rc == 1){
		kg_logincache__add(p->auth.logins, kit->serial, pw, pwlen, kit->password_hash);
		kg_backoff__clear(p->auth.backoff, bkey);
		kg_backoff__clear(p->auth.suspects, kit->serial);
		p->auth.ok++;
		return MOSQ_ERR_SUCCESS;
	}
	kg_backoff__fail(p->auth.backoff, bkey, now_ms);
	kg_backoff__fail(p->auth.suspects, kit->serial, now_ms);
	p->auth.refused++;
	if(kg_ratelimit__allow(&p->auth.wrong_log, &suppressed)){
		/* never the secret itself */
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "kitgate: auth: refused kit %s from %s: %s (+%llu more "
				"suppressed)", kit->serial, mosquitto_client_address(ed->client),
				rc < 0 ? "PBKDF2 failed" : "wrong secret", (unsigned long long)suppressed);
	}
	return MOSQ_ERR_AUTH;
}
