/* statusdoc.c -- the $SYS status JSON, the HTTP API snapshot and the /metrics text, each written
 * from the status model's tables (statusmodel.c); see statusdoc.h. Pure, any thread. */
#include "kitgate/statusdoc.h"
#include "kitgate/textbuf.h"

/* Contract in statusdoc.h. */
char *kg_statusdoc__sys(const struct kg_broker_status *s)
{
	cJSON *root = cJSON_CreateObject();
	char *text = NULL;

	if(root && kg_statusmodel__broker_json(root, s, KG_STATUS_SYS) == 0) text = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return text;
}

static void add_rejection(const struct kg_rejection *r, void *arg)
{
	cJSON *o = cJSON_CreateObject();

	if(!o) return;
	cJSON_AddNumberToObject(o, "at", (double)r->at_ms);
	cJSON_AddStringToObject(o, "reason", kg_reason__name(r->reason));
	cJSON_AddStringToObject(o, "serial", r->serial);
	cJSON_AddStringToObject(o, "topic", r->topic);
	cJSON_AddStringToObject(o, "detail", r->detail);
	cJSON_AddItemToArray(arg, o);
}

/* Contract in statusdoc.h. Bounded whatever the number of kits: counters and the ring of recent
 * rejections (the kits and streams are in the kit directory, kitdir.c). */
cJSON *kg_statusdoc__api(const struct kg_broker_status *s, const struct kg_kits *kits, int64_t now_ms)
{
	cJSON *root = cJSON_CreateObject(), *st, *rej;

	if(!root) return NULL;
	if(!cJSON_AddNumberToObject(root, "now", (double)now_ms) || !(st = cJSON_AddObjectToObject(root, "status"))
			|| kg_statusmodel__broker_json(st, s, KG_STATUS_API) || !(rej = cJSON_AddArrayToObject(root, "rejections"))){
		cJSON_Delete(root);
		return NULL;
	}
	if(kits) kg_kits__rejections(kits, add_rejection, rej);
	return root;
}

/* Contract in statusdoc.h. */
char *kg_statusdoc__metrics(const struct kg_broker_status *s)
{
	struct kg_text t = {0};

	kg_statusmodel__broker_metrics(s, kg_text__puts, &t);
	return kg_text__done(&t);
}
