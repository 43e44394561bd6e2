/* kitgate-spool.c -- inspect a kitgate spool without starting a broker: stat, dump, verify.
 * Read-only: opens with kg_spool__open_readonly, so nothing is truncated, locked or written. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "kitgate/log.h"
#include "kitgate/record.h"
#include "kitgate/spool.h"
#include "kitgate/uuid.h"

#define EXIT_CORRUPT 1
#define EXIT_USAGE 2
#define EXIT_LOCKED 3

static const char *const STREAMS[] = { "measurements", "bridge" };

static void usage(FILE *f)
{
	fputs(
"usage: kitgate-spool stat|dump|verify DIR [--json] [--force]\n"
"\n"
"Shows what waits in a kitgate spool directory (spool_dir) without starting a broker.\n"
"When DIR holds the per-stream spools measurements/ and bridge/, each is shown.\n"
"\n"
"  stat     segments, checkpoint, end, pending records and bytes, corrupt records, torn tails\n"
"           (--json: one object with pending_records, pending_bytes, checkpoint, end, segments,\n"
"           corrupt_records, torn_tails, missing_bytes, missing_records_est, refused_segments;\n"
"           per-stream objects under \"streams\")\n"
"  dump     the pending records (from the checkpoint to the end) as JSON lines: position, kind,\n"
"           id, kitSerial, peripheral, quantityType, times and value(s), or topic and payload\n"
"           for bridge records (payload_hex when it is not printable text)\n"
"  verify   like stat, and exits 1 if any record is corrupt, torn or does not decode, if bytes\n"
"           of the log are missing (a missing, empty or truncated segment; counted in bytes and\n"
"           estimated in records), or if a *.kgs name is not a segment (a FIFO, a directory, a\n"
"           base past 2^63: skipped)\n"
"\n"
"  --json   stat/verify: print JSON instead of text\n"
"  --force  inspect a spool that a running broker has locked (still read-only; the broker may\n"
"           be appending meanwhile, so the numbers are a snapshot)\n"
"  -h, --help\n"
"\n"
"The spool is only read: a torn tail is counted, not cut; no checkpoint or lock is written.\n"
"Exit status: 0 fine, 1 corruption found (verify), 2 usage or the spool cannot be read,\n"
"3 a running broker holds the spool's lock (see --force).\n", f);
}

struct result {
	uint64_t pending_records, pending_bytes, undecodable;
	struct kg_spool_stats st;
};

static void hex(char *out, const uint8_t *p, size_t n)
{
	static const char d[] = "0123456789abcdef";
	for(size_t i = 0; i < n; i++){
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* Printable ASCII / UTF-8 text without NUL or control bytes other than tab and newlines. */
static bool is_text(const uint8_t *p, size_t n)
{
	for(size_t i = 0; i < n; i++){
		if(p[i] < 0x20 && p[i] != '\t' && p[i] != '\n' && p[i] != '\r') return false;
		if(p[i] >= 0x80) return false;
	}
	return true;
}

/* One pending record as a JSON line on stdout. */
static int dump_record(const char *stream, uint64_t pos, uint64_t end, const uint8_t *body, uint32_t len)
{
	struct kg_record rec;
	cJSON *o = cJSON_CreateObject();
	char uuid[37], *s;
	int rc = 0;

	if(!o) return -ENOMEM;
	if(stream) cJSON_AddStringToObject(o, "stream", stream);
	cJSON_AddNumberToObject(o, "pos", (double)pos);
	cJSON_AddNumberToObject(o, "end", (double)end);
	if(kg_record__decode(body, len, &rec) != 0){
		cJSON_AddStringToObject(o, "kind", "undecodable");
		cJSON_AddNumberToObject(o, "len", len);
		rc = 1;
	}else if(rec.kind == KG_KIND_BRIDGE){
		char *t = strndup(rec.topic, rec.topic_len);
		cJSON_AddStringToObject(o, "kind", "bridge");
		cJSON_AddStringToObject(o, "topic", t ? t : "");
		free(t);
		if(is_text(rec.payload, rec.payload_len)){
			char *pl = strndup((const char *)rec.payload, rec.payload_len);
			cJSON_AddStringToObject(o, "payload", pl ? pl : "");
			free(pl);
		}else{
			char *h = malloc(2 * (size_t)rec.payload_len + 1);
			if(h){
				hex(h, rec.payload, rec.payload_len);
				cJSON_AddStringToObject(o, "payload_hex", h);
				free(h);
			}
		}
	}else{
		kg_uuid__format(rec.id, uuid);
		cJSON_AddStringToObject(o, "kind", rec.kind == KG_KIND_RAW ? "raw" : "aggregate");
		cJSON_AddStringToObject(o, "id", uuid);
		cJSON_AddStringToObject(o, "kitSerial", rec.serial);
		cJSON_AddNumberToObject(o, "peripheral", rec.peripheral);
		cJSON_AddNumberToObject(o, "quantityType", rec.quantity_type);
		if(rec.kind == KG_KIND_RAW){
			cJSON_AddNumberToObject(o, "datetime", (double)rec.datetime_ms);
			cJSON_AddNumberToObject(o, "value", rec.value);
		}else{
			cJSON *v = cJSON_AddObjectToObject(o, "values");
			cJSON_AddNumberToObject(o, "datetimeStart", (double)rec.start_ms);
			cJSON_AddNumberToObject(o, "datetimeEnd", (double)rec.end_ms);
			for(unsigned i = 0; v && i < rec.nvalues; i++) cJSON_AddNumberToObject(v, rec.values[i].name, rec.values[i].value);
		}
	}
	s = cJSON_PrintUnformatted(o);
	if(s){
		puts(s);
		free(s);
	}
	cJSON_Delete(o);
	return rc;
}

/* Open dir read-only and walk its pending records (dumping them if asked). Returns 0, or an
 * exit status. */
static int inspect(const char *dir, const char *stream, bool force, bool dump, struct result *res)
{
	struct kg_spool *sp;
	uint64_t pos, end;
	int rc;

	memset(res, 0, sizeof(*res));
	rc = kg_spool__open_readonly(&sp, dir, force);
	if(rc == -EWOULDBLOCK){
		fprintf(stderr, "kitgate-spool: %s is in use by a running broker; --force inspects it read-only anyway\n", dir);
		return EXIT_LOCKED;
	}
	if(rc){
		fprintf(stderr, "kitgate-spool: cannot open %s: %s\n", dir, strerror(-rc));
		return EXIT_USAGE;
	}
	pos = kg_spool__checkpoint(sp);
	end = kg_spool__end(sp);
	res->pending_bytes = end - pos;
	for(;;){
		uint8_t *body = NULL;
		uint32_t len = 0;
		rc = kg_spool__read(sp, &pos, end, &body, &len);
		if(rc <= 0) break;
		res->pending_records++;
		if(dump){
			if(dump_record(stream, pos - len - 12, pos, body, len) > 0) res->undecodable++;
		}else{
			struct kg_record rec;
			if(kg_record__decode(body, len, &rec) != 0) res->undecodable++;
		}
		free(body);
	}
	kg_spool__stats(sp, &res->st);
	kg_spool__close(sp);
	if(rc < 0){
		fprintf(stderr, "kitgate-spool: reading %s: %s\n", dir, strerror(-rc));
		return EXIT_USAGE;
	}
	return 0;
}

static cJSON *result_json(const struct result *r)
{
	cJSON *o = cJSON_CreateObject();
	if(!o) return NULL;
	cJSON_AddNumberToObject(o, "pending_records", (double)r->pending_records);
	cJSON_AddNumberToObject(o, "pending_bytes", (double)r->pending_bytes);
	cJSON_AddNumberToObject(o, "checkpoint", (double)r->st.checkpoint);
	cJSON_AddNumberToObject(o, "end", (double)r->st.end);
	cJSON_AddNumberToObject(o, "segments", (double)r->st.segments);
	cJSON_AddNumberToObject(o, "corrupt_records", (double)r->st.corrupt_skipped);
	cJSON_AddNumberToObject(o, "torn_tails", (double)r->st.torn_tails);
	cJSON_AddNumberToObject(o, "undecodable_records", (double)r->undecodable);
	cJSON_AddNumberToObject(o, "missing_bytes", (double)r->st.missing_bytes);
	cJSON_AddNumberToObject(o, "missing_records_est", (double)r->st.missing_records_est);
	cJSON_AddNumberToObject(o, "refused_segments", (double)r->st.refused_segments);
	return o;
}

static void result_text(const char *name, const struct result *r)
{
	printf("%s\n", name);
	printf("  segments:         %llu\n", (unsigned long long)r->st.segments);
	printf("  checkpoint:       %llu\n", (unsigned long long)r->st.checkpoint);
	printf("  end:              %llu\n", (unsigned long long)r->st.end);
	printf("  pending_records:  %llu\n", (unsigned long long)r->pending_records);
	printf("  pending_bytes:    %llu\n", (unsigned long long)r->pending_bytes);
	printf("  corrupt_records:  %llu\n", (unsigned long long)r->st.corrupt_skipped);
	printf("  torn_tails:       %llu\n", (unsigned long long)r->st.torn_tails);
	printf("  undecodable:      %llu\n", (unsigned long long)r->undecodable);
	printf("  missing_bytes:    %llu (about %llu records)\n", (unsigned long long)r->st.missing_bytes,
			(unsigned long long)r->st.missing_records_est);
	printf("  refused_segments: %llu\n", (unsigned long long)r->st.refused_segments);
}

static bool is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false, force = false, dump, verify;
	const char *cmd, *dir;
	char paths[2][4096];
	const char *names[2];
	struct result res[2], total;
	size_t n = 0;
	int c, rc = 0;

	while((c = getopt_long(argc, argv, "h", opts, NULL)) != -1){
		switch(c){
		case 'j': json = true; break;
		case 'f': force = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if(argc - optind != 2){
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[optind];
	dir = argv[optind + 1];
	dump = !strcmp(cmd, "dump");
	verify = !strcmp(cmd, "verify");
	if(!dump && !verify && strcmp(cmd, "stat")){
		fprintf(stderr, "kitgate-spool: unknown command '%s'\n", cmd);
		usage(stderr);
		return EXIT_USAGE;
	}
	if(!is_dir(dir)){
		fprintf(stderr, "kitgate-spool: %s is not a directory\n", dir);
		return EXIT_USAGE;
	}
	kg_log__configure(NULL, KG_LOG_WARNING);

	/* one spool per stream (<dir>/measurements, <dir>/bridge), or dir itself */
	for(size_t i = 0; i < sizeof(STREAMS) / sizeof(STREAMS[0]); i++){
		snprintf(paths[n], sizeof(paths[n]), "%s/%s", dir, STREAMS[i]);
		if(is_dir(paths[n])) names[n++] = STREAMS[i];
	}
	if(n == 0){
		snprintf(paths[0], sizeof(paths[0]), "%s", dir);
		names[0] = NULL;
		n = 1;
	}

	memset(&total, 0, sizeof(total));
	for(size_t i = 0; i < n; i++){
		if((rc = inspect(paths[i], names[i], force, dump, &res[i]))) return rc;
		total.pending_records += res[i].pending_records;
		total.pending_bytes += res[i].pending_bytes;
		total.undecodable += res[i].undecodable;
		total.st.segments += res[i].st.segments;
		total.st.corrupt_skipped += res[i].st.corrupt_skipped;
		total.st.torn_tails += res[i].st.torn_tails;
		total.st.missing_bytes += res[i].st.missing_bytes;
		total.st.missing_records_est += res[i].st.missing_records_est;
		total.st.refused_segments += res[i].st.refused_segments;
	}
	if(n == 1){
		total.st.checkpoint = res[0].st.checkpoint;
		total.st.end = res[0].st.end;
	}

	if(!dump){
		if(json){
			cJSON *o = result_json(&total), *streams;
			char *s;
			if(!o) return EXIT_USAGE;
			cJSON_AddStringToObject(o, "dir", dir);
			if(names[0]){
				streams = cJSON_AddObjectToObject(o, "streams");
				for(size_t i = 0; streams && i < n; i++) cJSON_AddItemToObject(streams, names[i], result_json(&res[i]));
			}
			if(verify){
				cJSON_AddBoolToObject(o, "ok", total.st.corrupt_skipped + total.st.torn_tails + total.undecodable
						+ total.st.missing_bytes + total.st.refused_segments == 0);
			}
			s = cJSON_Print(o);
			if(s) puts(s);
			free(s);
			cJSON_Delete(o);
		}else{
			for(size_t i = 0; i < n; i++){
				char name[4200];
				snprintf(name, sizeof(name), "%s%s%s", dir, names[i] ? "/" : "", names[i] ? names[i] : "");
				result_text(name, &res[i]);
			}
		}
	}
	if(verify || dump){
		bool bad = total.st.corrupt_skipped + total.st.torn_tails + total.undecodable
			+ total.st.missing_bytes + total.st.refused_segments > 0;
		if(verify && !json){
			printf("%s: %s\n", dir, bad ? "CORRUPT (see the counts above)" : "ok");
		}
		if(verify && bad) return EXIT_CORRUPT;
	}
	return 0;
}
