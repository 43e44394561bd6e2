/* statusdoc.c -- the $SYS status JSON, the HTTP API snapshot and the /metrics text, each written
 * from the status model's tables (statusmodel.c); see statusdoc.h. Pure, any thread. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kitgate/statusdoc.h"

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

/* A growing text buffer; on out of memory the text is dropped. */
struct text {
	char *s;
	size_t len, cap;
	bool failed;
};

static void put_text(void *arg, const char *str)
{
	struct text *t = arg;
	size_t n = strlen(str);

	if(t->failed) return;
	if(t->len + n + 1 > t->cap){
		size_t ncap = t->cap ? t->cap * 2 : 8192;
		char *ns;

		while(ncap < t->len + n + 1) ncap *= 2;
		if(!(ns = realloc(t->s, ncap))){
			t->failed = true;
			return;
		}
		t->s = ns;
		t->cap = ncap;
	}
	memcpy(t->s + t->len, str, n + 1);
	t->len += n;
}

/* Contract in statusdoc.h. */
char *kg_statusdoc__metrics(const struct kg_broker_status *s)
{
	struct text t = {0};

	kg_statusmodel__broker_metrics(s, put_text, &t);
	if(t.failed || !t.s){
		free(t.s);
		return NULL;
	}
	return t.s;
}
