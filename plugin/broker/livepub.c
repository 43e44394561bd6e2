/* livepub.c -- the live view's MQTT side: rolling statistics published retained on their
 * topics, each kit's retained status on $SYS/broker/kitgate/kits/<serial>, both cleared when
 * evicted, and the HTTP kit directory kept in step (kitdir.c). Broker thread only (TICK, and the
 * kits table's eviction callback); live.c schedules it. */
#include <stdint.h>
#include <stdio.h>

#include "broker_api.h"

#include "kitgate/kitdir.h"
#include "kitgate/kits.h"
#include "kitgate/stats.h"
#include "kitgate_internal.h"

#define STATUS_TOPIC_PREFIX "$SYS/broker/kitgate/kits/"
#define KIT_VIEW_EVERY_MS 1000   /* a kit's HTTP view entry: rewritten at most once a second */

/* Contract in kitgate_internal.h. */
void kg_livepub__stats(const struct kg_stats_view *v, void *arg)
{
	struct kg_livepub *l = arg;
	char buf[512];
	size_t n = kg_stats__format_json(v, buf, sizeof(buf));

	if(n >= sizeof(buf)) return;
	mosquitto_broker_publish_copy(NULL, v->key, (int)n, buf, 0, true, NULL);
	if(l->dir) kg_kitdir__put_stream(l->dir, v->key, buf, n);
}

/* An evicted stream: clear its retained statistics (an empty retained message). */
void kg_livepub__clear_stats(const char *key, void *arg)
{
	struct kg_livepub *l = arg;

	mosquitto_broker_publish_copy(NULL, key, 0, NULL, 0, true, NULL);
	if(l->dir) kg_kitdir__remove_stream(l->dir, key);
}

/* An evicted kit: clear its retained status (an empty retained message) and its HTTP entry. */
void kg_livepub__kit_evicted(struct kg_kit *kit, void *arg)
{
	struct kg_livepub *l = arg;
	char topic[sizeof(STATUS_TOPIC_PREFIX) + KG_SERIAL_MAX];

	if(kit->published_at_ms){
		snprintf(topic, sizeof(topic), STATUS_TOPIC_PREFIX "%s", kit->serial);
		mosquitto_broker_publish_copy(NULL, topic, 0, NULL, 0, true, NULL);
		l->status_cleared++;
	}
	if(l->dir) kg_kitdir__remove_kit(l->dir, kit->serial);
}

/* One changed kit: its HTTP entry (at most once a second) and its retained status (urgent changes
 * once a second, counters every ten). Returns 0 when done, else the time (mono) when it is due
 * again (kg_kits__visit_due: it waits until then at no cost per tick). */
int64_t kg_livepub__visit_kit(struct kg_kit *kit, void *arg)
{
	struct kg_livepub *kp = arg;
	char topic[sizeof(STATUS_TOPIC_PREFIX) + KG_SERIAL_MAX];
	char buf[2048];
	size_t n = 0;
	int64_t due = 0;

	if(kp->dir && kit->view_dirty){
		if(kp->now - kit->viewed_at_ms >= KIT_VIEW_EVERY_MS){
			const char *cids[KG_KITS_SESSIONS + 1];
			size_t ncids = 0;
			int i;

			n = kg_kits__format_json(kit, buf, sizeof(buf));
			cids[ncids++] = kit->client_id;
			for(i = 0; i < kit->nsessions; i++) cids[ncids++] = kit->sessions[i];
			if(n < sizeof(buf)) kg_kitdir__put_kit(kp->dir, kit->serial, buf, n, cids, ncids);
			kit->view_dirty = false;
			kit->viewed_at_ms = kp->now;
		}else{
			due = kit->viewed_at_ms + KIT_VIEW_EVERY_MS;
		}
	}
	if(kit->dirty){
		if(kg_kits__status_due(kit, kp->now)){
			if(n == 0) n = kg_kits__format_json(kit, buf, sizeof(buf));
			if(n < sizeof(buf)){
				snprintf(topic, sizeof(topic), STATUS_TOPIC_PREFIX "%s", kit->serial);
				mosquitto_broker_publish_copy(NULL, topic, (int)n, buf, 0, true, NULL);
			}
			kit->dirty = kit->urgent = false;
			kit->published_at_ms = kp->now;
		}else{
			int64_t at = kit->published_at_ms + (kit->urgent ? KG_KITS_STATUS_URGENT_MS : KG_KITS_STATUS_ROUTINE_MS);

			if(due == 0 || at < due) due = at;
		}
	}
	return due;
}
