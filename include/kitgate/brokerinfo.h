/* brokerinfo.h -- what the running mosquitto offers, found once at plugin init: its version and
 * which 2.1-only plugin functions it exports. The plugin is built against one set of headers but
 * loaded into whatever broker the operator runs (the Debian package, built against 2.0.11, runs in
 * 2.0.21 and 2.1), so features are decided here, at run time. */
#ifndef KITGATE_BROKERINFO_H
#define KITGATE_BROKERINFO_H

#include <stdbool.h>
#include <stddef.h>

struct kg_brokerinfo {
	char version[16];      /* "2.0.11", "2.1.2", ... or "unknown" */
	bool api21;            /* 2.1's plugin functions are there (tick scheduling, new events) */
	bool delayed_auth;     /* mosquitto_complete_basic_auth (MOSQ_ERR_AUTH_DELAYED) exists */
	/* mosquitto_complete_basic_auth itself (the one lookup; plugin/broker/auth.c calls it on the
	 * main thread), or NULL on 2.0 */
	void (*complete_basic_auth)(const char *client_id, int result);
};

/* The mosquitto version named in an executable image: the one distinct NUL-terminated string of
 * the form "2.<minor>.<revision>" (mosquitto keeps its VERSION literal for "mosquitto version %s").
 * Writes it to out (NUL-terminated) and returns 0; returns -1 (out = "unknown") when there is none
 * or more than one. Pure; any thread. */
int kg_brokerinfo__scan_version(const unsigned char *image, size_t len, char *out, size_t outsz);

/* Fill bi for the process this runs in: reads /proc/self/exe (the broker binary, once, at init)
 * and looks the 2.1 functions up with dlsym(RTLD_DEFAULT). Main thread, at init. */
void kg_brokerinfo__detect(struct kg_brokerinfo *bi);

#endif
