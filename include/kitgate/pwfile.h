/* pwfile.h -- a mosquitto_passwd file, for the HTTP endpoint's Basic authentication: lines
 * "user:$7$<iterations>$<b64 salt>$<b64 hash>" (PBKDF2-HMAC-SHA512, mosquitto 2.0's default) or
 * "user:$6$<b64 salt>$<b64 hash>" (mosquitto's salted SHA-512: sha512(password || salt)); a $6$
 * entry that is not in that form is tried as a crypt(3) SHA-512-crypt string. Pure; the loaded
 * table is immutable, so it may be read from any number of threads. */
#ifndef KITGATE_PWFILE_H
#define KITGATE_PWFILE_H

#include <stdbool.h>
#include <stddef.h>

struct kg_pwfile;

/* Read path. Returns NULL with a reason in err (unreadable file, no valid entry is NOT an error:
 * an empty table lets nobody in). Malformed lines are skipped and counted in *skipped. */
struct kg_pwfile *kg_pwfile__load(const char *path, size_t *skipped, char *err, size_t errlen);
void kg_pwfile__free(struct kg_pwfile *pw);

/* 1 when user is in the file and password matches its hash, 0 otherwise (unknown user, wrong
 * password, unusable hash). Constant-time comparison of the digests. */
int kg_pwfile__check(const struct kg_pwfile *pw, const char *user, const char *password);

#endif
