/* brokerinfo.c -- the running broker's version (from its executable image) and its 2.1-only
 * plugin functions (dlsym), found once at plugin init; see include/kitgate/brokerinfo.h. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kitgate/brokerinfo.h"

#define KG_IMAGE_MAX ((size_t)64 << 20) /* no broker binary is near this; bounds the read */

/* "2.<1-3 digits>.<1-3 digits>" and nothing else. */
static bool is_version(const unsigned char *s, size_t n)
{
	size_t i = 2, d;

	if(n < 5 || n > 9 || s[0] != '2' || s[1] != '.') return false;
	for(d = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++) d++;
	if(d < 1 || d > 3 || i >= n || s[i] != '.') return false;
	for(i++, d = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++) d++;
	return d >= 1 && d <= 3 && i == n;
}

int kg_brokerinfo__scan_version(const unsigned char *image, size_t len, char *out, size_t outsz)
{
	const unsigned char *found = NULL;
	size_t found_n = 0, start = 0, i;

	for(i = 0; i <= len; i++){
		if(i < len && image[i] != '\0') continue;
		/* a string is image[start, i), NUL-terminated (the last one only if i < len) */
		if(i < len && is_version(image + start, i - start)){
			if(found && (found_n != i - start || memcmp(found, image + start, found_n) != 0)){
				found = NULL;
				found_n = (size_t)-1; /* two different versions: do not guess */
				break;
			}
			found = image + start;
			found_n = i - start;
		}
		start = i + 1;
	}
	if(!found || found_n + 1 > outsz){
		snprintf(out, outsz, "unknown");
		return -1;
	}
	memcpy(out, found, found_n);
	out[found_n] = '\0';
	return 0;
}

static void detect_version(struct kg_brokerinfo *bi)
{
	FILE *f = fopen("/proc/self/exe", "rb");
	unsigned char *buf = NULL;
	size_t cap = 0, len = 0, n;

	snprintf(bi->version, sizeof(bi->version), "unknown");
	if(!f) return;
	for(;;){
		if(len == cap){
			unsigned char *nb;
			if(cap >= KG_IMAGE_MAX) break;
			cap = cap ? cap * 2 : (size_t)1 << 20;
			nb = realloc(buf, cap);
			if(!nb) break;
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, f);
		if(n == 0) break;
		len += n;
	}
	fclose(f);
	if(buf) kg_brokerinfo__scan_version(buf, len, bi->version, sizeof(bi->version));
	free(buf);
}

void kg_brokerinfo__detect(struct kg_brokerinfo *bi)
{
	memset(bi, 0, sizeof(*bi));
	detect_version(bi);
	*(void **)&bi->complete_basic_auth = dlsym(RTLD_DEFAULT, "mosquitto_complete_basic_auth");
	bi->delayed_auth = bi->complete_basic_auth != NULL;
	/* 2.1 added these with its new events; any one of them marks the 2.1 plugin API */
	bi->api21 = bi->delayed_auth || dlsym(RTLD_DEFAULT, "mosquitto_client_will_set") != NULL;
}
