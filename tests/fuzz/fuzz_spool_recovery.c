/* fuzz_spool_recovery.c -- libFuzzer target: spool recovery over arbitrary segment bytes.
 *
 * The input becomes a spool directory: byte 0 picks 1-3 segments, byte 1 flags (bit 0: write a
 * checkpoint file from bytes 2-3; bit 1: let segments overlap, as preallocated files do; bit 2:
 * a garbage checkpoint), bytes 4-7 where the data is cut into segments, the rest the segment
 * bytes. Then: a read-only open and a full read (never changes the files), a read-write open
 * (recovery: torn tails cut, corrupt regions counted), a full read, a few appends that must read
 * back exactly, a commit, close, and a second open that must find no damage where the first one
 * repaired it. Never crash, never read out of bounds (ASan), invariants checked with abort().
 *
 * Built by KITGATE_FUZZ (tests/fuzz/CMakeLists.txt); run with ci/fuzz [SECONDS] fuzz_spool_recovery. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kitgate/log.h"
#include "kitgate/spool.h"

static char g_dir[256];
static volatile unsigned g_sink;

static void quiet(int level, const char *line)
{
	(void)level;
	(void)line;
}

static void clear_dir(void)
{
	DIR *d = opendir(g_dir);
	struct dirent *de;
	char path[512];

	if(!d) return;
	while((de = readdir(d))){
		if(de->d_name[0] == '.') continue;
		snprintf(path, sizeof(path), "%s/%s", g_dir, de->d_name);
		unlink(path);
	}
	closedir(d);
}

static void write_file(const char *name, const uint8_t *p, size_t n)
{
	char path[512];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", g_dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if(fd < 0) abort();
	if(n && write(fd, p, n) != (ssize_t)n) abort();
	close(fd);
}

/* Read every record from the checkpoint to the end; returns how many. */
static uint64_t read_all(struct kg_spool *sp)
{
	uint64_t pos = kg_spool__checkpoint(sp), end = kg_spool__end(sp), n = 0;

	for(;;){
		uint8_t *b = NULL;
		uint32_t len = 0;
		uint64_t before = pos;
		int r = kg_spool__read(sp, &pos, end, &b, &len);
		if(r < 0) abort();
		if(r == 0) break;
		if(pos <= before || pos > end) abort();
		for(uint32_t i = 0; i < len; i++) g_sink += b[i]; /* touch every byte (ASan) */
		free(b);
		n++;
	}
	return n;
}

static void remove_dir(void)
{
	clear_dir();
	rmdir(g_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	snprintf(g_dir, sizeof(g_dir), "/dev/shm/kg-fuzz-spool-%ld", (long)getpid());
	if(mkdir(g_dir, 0700) < 0 && errno != EEXIST){
		snprintf(g_dir, sizeof(g_dir), "/tmp/kg-fuzz-spool-%ld", (long)getpid());
		mkdir(g_dir, 0700);
	}
	atexit(remove_dir);
	kg_log__configure(quiet, KG_LOG_ERROR + 1);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kg_spool *sp;
	struct kg_spool_stats st;
	uint8_t body[300];
	uint64_t base = 0, ends[3];
	size_t nseg, cut[4], rest;
	unsigned flags;
	const uint8_t *seg;
	char name[64];

	if(size < 8) return 0;
	clear_dir();
	nseg = 1 + data[0] % 3;
	flags = data[1];
	rest = size - 8;
	seg = data + 8;
	cut[0] = 0;
	cut[nseg] = rest;
	for(size_t i = 1; i < nseg; i++){
		size_t c = rest ? (size_t)data[3 + i] * rest / 256 : 0;
		cut[i] = c < cut[i - 1] ? cut[i - 1] : c;
	}
	for(size_t i = 0; i < nseg; i++){
		snprintf(name, sizeof(name), "%020llu.kgs", (unsigned long long)base);
		write_file(name, seg + cut[i], cut[i + 1] - cut[i]);
		base += cut[i + 1] - cut[i];
		/* overlapping: the next segment starts before this file ends */
		if((flags & 2) && i + 1 < nseg && base >= 16) base -= data[6] % 16;
	}
	if(flags & 1){
		char cp[64];
		unsigned long long v = (unsigned long long)(data[2] | data[3] << 8);
		/* an unverifiable checkpoint is treated as corrupt; (flags & 4): plain garbage */
		int n = (flags & 4) ? snprintf(cp, sizeof(cp), "KGCP1 %llu zz\n", v)
			: snprintf(cp, sizeof(cp), "KGCP1 %llu 00000000\n", v);
		write_file("checkpoint", (const uint8_t *)cp, (size_t)n);
	}

	/* read-only inspection first: must not change anything, must read to the end */
	if(kg_spool__open_readonly(&sp, g_dir, false) == 0){
		read_all(sp);
		if(kg_spool__append(sp, "x", 1, NULL) != -EROFS) abort();
		kg_spool__close(sp);
	}

	/* recovery */
	if(kg_spool__open(&sp, g_dir, 4096) != 0) return 0;
	read_all(sp);
	for(int i = 0; i < 3; i++){
		uint32_t len = (uint32_t)(data[i] % sizeof(body));
		memset(body, 0xa0 + i, len);
		kg_spool__maintain(sp);
		if(kg_spool__append(sp, body, len, &ends[i]) != 0) abort();
	}
	/* the three records read back exactly, right after what was there */
	{
		uint64_t pos = ends[0] - 12 - data[0] % sizeof(body);
		for(int i = 0; i < 3; i++){
			uint8_t *b = NULL;
			uint32_t len = 0;
			if(kg_spool__read(sp, &pos, kg_spool__end(sp), &b, &len) != 1) abort();
			if(pos != ends[i] || len != (uint32_t)(data[i] % sizeof(body))) abort();
			for(uint32_t k = 0; k < len; k++) if(b[k] != (uint8_t)(0xa0 + i)) abort();
			free(b);
		}
	}
	kg_spool__commit(sp, ends[1]);
	kg_spool__stats(sp, &st);
	if(st.checkpoint != ends[1] || st.end != ends[2]) abort();
	kg_spool__close(sp);

	/* reopened: the repaired spool has no torn tail left, and the last record is still there */
	if(kg_spool__open(&sp, g_dir, 4096) != 0) abort();
	kg_spool__stats(sp, &st);
	if(st.torn_tails != 0 || st.checkpoint != ends[1] || st.end != ends[2]) abort();
	if(read_all(sp) != 1) abort();
	kg_spool__close(sp);
	return 0;
}
