/* spool_util.c -- leaf helpers of the spool's files: the monotonic millisecond clock, the per-cause
 * rate-limited log, mkdir -p and the directory's LOCK file. Calls nothing in the other spool files
 * but kg_spool_pread_full (spool_frame.c, itself a leaf), so the spool's files form no circle:
 * spool.c (open/close) -> segment/recover/checkpoint/append/read -> frame, util. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "spool_internal.h"

/* See spool_internal.h. */
void kg_spool_log(struct kg_spool *sp, enum kg_spool_cause cause, int level, const char *fmt, ...)
{
	char msg[600];
	uint64_t held = 0;
	va_list ap;

	assert(cause < KG_CAUSE_N);
	if(!kg_ratelimit__allow(&sp->rl[cause], &held)) return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if(held){
		kg_log(level, "spool %s: %s (%llu similar line(s) held back)", sp->dir, msg, (unsigned long long)held);
	}else{
		kg_log(level, "spool %s: %s", sp->dir, msg);
	}
}

/* mkdir -p. Returns 0 or -errno. */
int kg_spool_mkdir_p(const char *dir)
{
	char *path = strdup(dir);
	int rc = 0;

	if(!path) return -ENOMEM;
	for(char *p = path + 1; ; p++){
		if(*p != '/' && *p != '\0') continue;
		char c = *p;
		*p = '\0';
		if(mkdir(path, 0700) < 0 && errno != EEXIST){
			rc = -errno;
			break;
		}
		*p = c;
		if(c == '\0') break;
	}
	free(path);
	return rc;
}

/* The pid written in an open LOCK file, or 0. */
static long lock_holder(int fd)
{
	char buf[32];
	ssize_t n = kg_spool_pread_full(fd, buf, sizeof(buf) - 1, 0);

	if(n <= 0) return 0;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

static void log_locked(const char *dir, long pid)
{
	if(pid > 0){
		kg_log(KG_LOG_ERROR, "spool %s: the directory is locked by process %ld (another broker using this "
			"spool_dir?)", dir, pid);
	}else{
		kg_log(KG_LOG_ERROR, "spool %s: the directory is locked by another process (another broker using "
			"this spool_dir?)", dir);
	}
}

/* See spool_internal.h. Writing the pid may fail on a full disk: then the lock holds without it. */
int kg_spool_lock_dir(const char *dir, int dirfd)
{
	char pid[32];
	int fd, n;

	fd = openat(dirfd, SPOOL_LOCK_NAME, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if(fd < 0){
		int rc = -errno;
		kg_log(KG_LOG_ERROR, "spool %s: the directory is not writable (cannot create %s: %s)", dir,
			SPOOL_LOCK_NAME, strerror(-rc));
		return rc;
	}
	if(flock(fd, LOCK_EX | LOCK_NB) < 0){
		int rc = errno == EWOULDBLOCK ? -EWOULDBLOCK : -errno;
		if(rc == -EWOULDBLOCK){
			log_locked(dir, lock_holder(fd));
		}else{
			kg_log(KG_LOG_ERROR, "spool %s: cannot lock %s: %s", dir, SPOOL_LOCK_NAME, strerror(-rc));
		}
		close(fd);
		return rc;
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if(ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n){
		kg_log(KG_LOG_WARNING, "spool %s: cannot write the pid into %s: %s", dir, SPOOL_LOCK_NAME, strerror(errno));
	}
	return fd;
}

/* See spool_internal.h. */
int kg_spool_check_unlocked(const char *dir, int dirfd, bool force)
{
	int fd = openat(dirfd, SPOOL_LOCK_NAME, O_RDONLY | O_CLOEXEC);
	int rc = 0;

	if(fd < 0) return 0; /* never locked */
	if(flock(fd, LOCK_SH | LOCK_NB) < 0){
		if(errno == EWOULDBLOCK){
			if(!force){
				log_locked(dir, lock_holder(fd));
				rc = -EWOULDBLOCK;
			}
		}
	}else{
		flock(fd, LOCK_UN);
	}
	close(fd);
	return rc;
}
