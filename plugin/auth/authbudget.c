/* authbudget.c -- the cold-login budget's token bucket (see authbudget.h). One thread, no I/O. */
#include <assert.h>

#include "kitgate/authbudget.h"

#define NS_PER_MS 1000000
#define MAX_CHARGE_NS 1000000000    /* one check never costs more than 1 s of budget */

void kg_authbudget__init(struct kg_authbudget *b, int ms_per_s, int64_t now_ns)
{
	assert(b && ms_per_s >= 1 && ms_per_s <= 1000);
	b->ms_per_s = ms_per_s;
	b->capacity_ns = (int64_t)ms_per_s * NS_PER_MS;
	b->reserve_ns = b->capacity_ns / 2;
	b->balance_ns = b->capacity_ns;
	b->last_ns = now_ns;
}

/* Add what accrued since the last refill (elapsed * ms_per_s / 1000), up to the capacity. */
static void refill(struct kg_authbudget *b, int64_t now_ns)
{
	int64_t elapsed = now_ns - b->last_ns, add;

	assert(b->capacity_ns > 0);
	if(elapsed <= 0) return;    /* same instant, or a clock that went backwards: keep last_ns */
	/* past 2 s of refill the bucket is full whatever the debt was (debt <= 1 s of charge) */
	if(elapsed > 2000 * (int64_t)NS_PER_MS * 1000 / b->ms_per_s){
		b->balance_ns = b->capacity_ns;
	}else{
		add = elapsed * b->ms_per_s / 1000;
		if(add == 0) return;    /* under a nanosecond accrued: keep last_ns so nothing is lost */
		b->balance_ns += add;
		if(b->balance_ns > b->capacity_ns) b->balance_ns = b->capacity_ns;
	}
	b->last_ns = now_ns;
}

static int64_t floor_of(const struct kg_authbudget *b, enum kg_authbudget_class cls)
{
	return cls == KG_AUTHBUDGET_SUSPECT ? b->reserve_ns : 0;
}

bool kg_authbudget__allow(struct kg_authbudget *b, enum kg_authbudget_class cls, int64_t now_ns)
{
	refill(b, now_ns);
	return b->balance_ns > floor_of(b, cls);
}

void kg_authbudget__charge(struct kg_authbudget *b, int64_t cost_ns)
{
	if(cost_ns < 0) cost_ns = 0;
	if(cost_ns > MAX_CHARGE_NS) cost_ns = MAX_CHARGE_NS;
	b->balance_ns -= cost_ns;
	assert(b->balance_ns >= -MAX_CHARGE_NS);   /* allowed only above 0: at most one charge in debt */
}

int64_t kg_authbudget__wait_ns(struct kg_authbudget *b, enum kg_authbudget_class cls, int64_t now_ns)
{
	int64_t missing;

	refill(b, now_ns);
	missing = floor_of(b, cls) - b->balance_ns;
	if(missing < 0) return 0;
	/* time for the refill to bring the balance strictly above the floor */
	return (missing + 1) * 1000 / b->ms_per_s + 1;
}
