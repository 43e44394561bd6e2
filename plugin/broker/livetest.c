/* livetest.c -- the test measurements the HTTP API queued (POST /api/v1/kits/<serial>/test-measurement, see
 * docs/live-view.md): the broker's remaining checks (the kits snapshot), the hand-off, the publish
 * and the answer to the HTTP thread. Broker thread only (MOSQ_EVT_TICK, from kg_live__tick). */
#include <stdint.h>
#include <string.h>

#include "broker_api.h"

#include "kitgate/handoff.h"
#include "kitgate/record.h"
#include "kitgate/view.h"
#include "kitgate_internal.h"

/* Contract in kitgate_internal.h. */
void kg_livetest__run(struct kg_plugin *p, struct kg_view *view, uint64_t *accepted)
{
	const struct kg_stream *ms = &p->streams[KG_STREAM_MEASUREMENTS];
	struct kg_test_req *req = kg_view__take_requests(view), *next;
	uint8_t buf[KG_RECORD_MAX_FIXED];
	size_t n;

	for(; req; req = next){
		enum kg_reason r = KG_OK;

		next = req->next;
		/* the rest of the broker's checks: the kits snapshot (auth postgres) */
		if(p->auth.snap){
			const char *detail = NULL;
			r = kg_message__check(p, req->rec.serial, strlen(req->rec.serial), &req->rec, &detail);
		}
		if(r != KG_OK){
			req->reason = r;
			kg_view__complete(view, req, 422, "kits snapshot");
			continue;
		}
		n = kg_record__encode(&req->rec, buf, sizeof(buf));
		if(n == 0 || n > sizeof(buf) || (ms->h && kg_handoff__push(ms->h, buf, (uint32_t)n) != 0)){
			p->counters.rejected[KG_OVERLOAD]++;
			kg_live__measurement(p, NULL, req->rec.serial, strlen(req->rec.serial), req->topic,
					KG_OVERLOAD, "test measurement: queue full and spool unavailable", &req->rec);
			req->reason = KG_OVERLOAD;
			kg_view__complete(view, req, 503, "queue full and spool unavailable");
			continue;
		}
		p->counters.accepted++;
		(*accepted)++;
		kg_live__measurement(p, NULL, req->rec.serial, strlen(req->rec.serial), req->topic, KG_OK, NULL, &req->rec);
		mosquitto_broker_publish_copy(NULL, req->topic, (int)req->len, req->payload, 1, false, NULL);
		kg_view__complete(view, req, 202, ms->h ? "accepted: handed to the sink and published"
				: "accepted: published (sink none)");
	}
}
