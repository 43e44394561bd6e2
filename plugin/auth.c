/* auth.c -- `auth postgres` on the broker thread: kit logins against the kits snapshot (called by
 * acl.c's BASIC_AUTH), picking up new snapshots in TICK and disconnecting kits whose secret changed
 * or whose row was deleted. Broker thread only (mosquitto_kick_client_by_username, log). The
 * database is read by the snapshot loader thread (snapshot.c), never here. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mosquitto.h>

#include "kitgate/authbudget.h"
#include "kitgate/backoff.h"
#include "kitgate/logincache.h"
#include "kitgate/pbkdf2.h"
#include "kitgate/snapshot.h"
#include "kitgate_internal.h"

#define LOGIN_CACHE_ENTRIES 16384   /* 40 bytes each: 640 KiB at start ... */
#define LOGIN_CACHE_MAX 262144      /* ... grown to twice the kits in the snapshot, up to this: 10 MiB,
                                     * every kit of a 131,072-kit fleet cached */
#define KICKS_LOGGED 10             /* serials named per snapshot; the rest are counted */
#define BACKOFF_ENTRIES 16384       /* ~88 bytes each: ~1.4 MiB; also what marks a serial suspect
                                     * for the cold-login budget, so sized like the login cache */
#define BACKOFF_INITIAL_MS 1000     /* after a failed check, refuse the serial unchecked this long ... */
#define BACKOFF_MAX_MS 30000        /* ... doubling per further failed check, up to this */

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int kg_auth__init(struct kg_plugin *p)
{
	if(p->cfg.auth != KG_AUTH_POSTGRES) return 0;
	p->auth.logins = kg_logincache__new(LOGIN_CACHE_ENTRIES);
	p->auth.backoff = kg_backoff__new(BACKOFF_ENTRIES, BACKOFF_INITIAL_MS, BACKOFF_MAX_MS);
	p->auth.loader = p->auth.logins && p->auth.backoff
		? kg_snapshot__start(p->cfg.database_url, p->cfg.auth_refresh_s) : NULL;
	if(!p->auth.loader){
		kg_logincache__free(p->auth.logins);
		p->auth.logins = NULL;
		kg_backoff__free(p->auth.backoff);
		p->auth.backoff = NULL;
		return -1;
	}
	kg_authbudget__init(&p->auth.budget, p->cfg.auth_cold_budget_ms, (int64_t)mono_ns());
	kg_log(KG_LOG_INFO, "auth postgres: kits log in against kits.password_hash (snapshot reloaded every "
			"%d s and on NOTIFY kitgate_kits; PBKDF2 for logins not in the login cache limited to %d ms "
			"per second); kits are refused until the first snapshot loads",
			p->cfg.auth_refresh_s, p->cfg.auth_cold_budget_ms);
	return 0;
}

void kg_auth__cleanup(struct kg_plugin *p)
{
	kg_snapshot__stop(p->auth.loader);     /* joins the loader thread */
	p->auth.loader = NULL;
	kg_snapshot__unref(p->auth.snap);
	p->auth.snap = NULL;
	kg_logincache__free(p->auth.logins);
	p->auth.logins = NULL;
	kg_backoff__free(p->auth.backoff);
	p->auth.backoff = NULL;
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

void kg_auth__tick(struct kg_plugin *p)
{
	if(p->auth.loader) take_snapshot(p);
}

/* BASIC_AUTH for a kit: a CONNECT without a password (none, or empty: no kit secret is empty) is
 * refused at once and counted (auth.no_password), before the backoff and the budget: it checks
 * nothing, so it neither records a failure (which would lock the kit out and make it suspect at no
 * cost to the sender) nor draws on the budget nor counts as a PBKDF2 run. A login found in the login
 * cache passes at once (one HMAC), never touching the cold-login budget. Otherwise the secret is
 * checked with PBKDF2 (milliseconds on the broker thread), unless
 * - the serial is in a failure window (backoff.h): refused unchecked, so a flood of wrong secrets
 *   for a serial buys one PBKDF2 per window (1 s doubling to 30 s), not one per CONNECT. By design,
 *   during a window a kit's correct secret passes only if it is cached; an uncached correct secret
 *   (new kit, rotated secret) is refused until the window ends;
 * - or the cold-login budget (authbudget.h, auth_cold_budget_ms per second of measured PBKDF2 time,
 *   all serials together) is spent for the serial's class: refused unchecked, without opening a
 *   window, so the kit's next reconnect may pass. A serial with a failed check on record (suspect)
 *   is served only from the upper half of the bucket; the lower half is kept for serials without
 *   (clean: cold storms of legitimate kits), so wrong secrets spread over many known serials buy
 *   at most the budget, and once each attacked serial has failed a check they no longer compete
 *   with kits that never failed (an attacker's first wrong secret per serial still looks clean;
 *   a serial whose backoff set is full of live entries counts as suspect, backoff.h).
 * A successful check clears the serial's window and its record. Broker thread only. */
int kg_auth__basic_auth(struct kg_plugin *p, struct mosquitto_evt_basic_auth *ed)
{
	const struct kg_snapshot_kit *kit;
	struct kg_pbkdf2 h;
	const char *user = ed->username, *pw = ed->password, *why;
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
	if(!kit) return MOSQ_ERR_PLUGIN_DEFER;  /* not a kit: password_file, other plugins */
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
	t0 = mono_ns();
	now_ms = (int64_t)(t0 / 1000000u);
	wait_ms = kg_backoff__remaining(p->auth.backoff, kit->serial, now_ms);
	if(wait_ms > 0){
		p->auth.refused++;
		p->auth.backoff_refused++;
		if(kg_ratelimit__allow(&p->auth.backoff_log, &suppressed)){
			mosquitto_log_printf(MOSQ_LOG_NOTICE, "kitgate: auth: refused kit %s from %s unchecked: "
					"recent failed logins, retry in %lld ms (+%llu more suppressed)", kit->serial,
					mosquitto_client_address(ed->client), (long long)wait_ms,
					(unsigned long long)suppressed);
		}
		return MOSQ_ERR_AUTH;
	}
	cls = kg_backoff__has(p->auth.backoff, kit->serial, now_ms) ? KG_AUTHBUDGET_SUSPECT : KG_AUTHBUDGET_CLEAN;
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
		kg_backoff__clear(p->auth.backoff, kit->serial);
		p->auth.ok++;
		return MOSQ_ERR_SUCCESS;
	}
	kg_backoff__fail(p->auth.backoff, kit->serial, now_ms);
	p->auth.refused++;
	if(kg_ratelimit__allow(&p->auth.wrong_log, &suppressed)){
		/* never the secret itself */
		mosquitto_log_printf(MOSQ_LOG_NOTICE, "kitgate: auth: refused kit %s from %s: %s (+%llu more "
				"suppressed)", kit->serial, mosquitto_client_address(ed->client),
				rc < 0 ? "PBKDF2 failed" : "wrong secret", (unsigned long long)suppressed);
	}
	return MOSQ_ERR_AUTH;
}
