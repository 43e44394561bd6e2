/* pwfile.c -- reads a mosquitto_passwd file and checks Basic credentials against it ($7$
 * PBKDF2-HMAC-SHA512 and $6$ salted SHA-512 with OpenSSL; crypt(3) for other $6$ strings).
 * Contract in pwfile.h. */
#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "kitgate/base64.h"
#include "kitgate/pwfile.h"

struct entry {
	char *user;
	char *hash;           /* the text after "user:" */
};

struct kg_pwfile {
	struct entry *e;
	size_t n;
};

struct kg_pwfile *kg_pwfile__load(const char *path, size_t *skipped, char *err, size_t errlen)
{
	struct kg_pwfile *pw;
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;

	if(skipped) *skipped = 0;
	if(!f){
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	pw = calloc(1, sizeof(*pw));
	if(!pw){
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	while((len = getline(&line, &cap, f)) >= 0){
		char *colon;
		struct entry *ne;

		while(len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
		if(len == 0 || line[0] == '#') continue;
		colon = strchr(line, ':');
		if(!colon || colon == line || colon[1] != '$'){
			if(skipped) (*skipped)++;
			continue;
		}
		ne = realloc(pw->e, (pw->n + 1) * sizeof(*ne));
		if(!ne) break;
		pw->e = ne;
		ne[pw->n].user = strndup(line, (size_t)(colon - line));
		ne[pw->n].hash = strdup(colon + 1);
		if(!ne[pw->n].user || !ne[pw->n].hash){
			free(ne[pw->n].user);
			free(ne[pw->n].hash);
			break;
		}
		pw->n++;
	}
	free(line);
	fclose(f);
	return pw;
}

void kg_pwfile__free(struct kg_pwfile *pw)
{
	size_t i;

	if(!pw) return;
	for(i = 0; i < pw->n; i++){
		free(pw->e[i].user);
		free(pw->e[i].hash);
	}
	free(pw->e);
	free(pw);
}

static int check_digest(const unsigned char *want, int wantlen, const unsigned char *got, int gotlen)
{
	return wantlen == gotlen && CRYPTO_memcmp(want, got, (size_t)gotlen) == 0;
}

/* $7$<iterations>$<salt>$<hash> */
static int check_pbkdf2(const char *h, const char *password)
{
	unsigned char salt[128], want[128], got[64];
	const char *s1, *s2;
	char *end;
	long iter;
	int slen, wlen;

	iter = strtol(h, &end, 10);
	if(end == h || *end != '$' || iter < 1 || iter > 10000000) return 0;
	s1 = end + 1;
	s2 = strchr(s1, '$');
	if(!s2) return 0;
	slen = (int)kg_base64__decode(s1, (size_t)(s2 - s1), salt, sizeof(salt), KG_BASE64_PADDED);
	wlen = (int)kg_base64__decode(s2 + 1, strlen(s2 + 1), want, sizeof(want), KG_BASE64_PADDED);
	if(slen <= 0 || wlen != 64) return 0;
	if(!PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, slen, (int)iter, EVP_sha512(), 64, got)) return 0;
	return check_digest(want, wlen, got, 64);
}

/* $6$<salt>$<hash>: sha512(password || salt), mosquitto's pw_sha512. -1 when not in that form. */
static int check_sha512(const char *h, const char *password)
{
	unsigned char salt[128], want[128], got[EVP_MAX_MD_SIZE];
	const char *sep = strchr(h, '$');
	unsigned int glen = 0;
	EVP_MD_CTX *ctx;
	int slen, wlen, ok;

	if(!sep) return -1;
	slen = (int)kg_base64__decode(h, (size_t)(sep - h), salt, sizeof(salt), KG_BASE64_PADDED);
	wlen = (int)kg_base64__decode(sep + 1, strlen(sep + 1), want, sizeof(want), KG_BASE64_PADDED);
	if(slen <= 0 || wlen != 64) return -1;
	ctx = EVP_MD_CTX_new();
	if(!ctx) return 0;
	ok = EVP_DigestInit_ex(ctx, EVP_sha512(), NULL) && EVP_DigestUpdate(ctx, password, strlen(password))
		&& EVP_DigestUpdate(ctx, salt, (size_t)slen) && EVP_DigestFinal_ex(ctx, got, &glen);
	EVP_MD_CTX_free(ctx);
	return ok && check_digest(want, wlen, got, (int)glen);
}

static int check_crypt(const char *full, const char *password)
{
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	const char *out;
	int ok;

	if(!cd) return 0;
	out = crypt_r(password, full, cd);
	ok = out && out[0] != '*' && strlen(out) == strlen(full) && CRYPTO_memcmp(out, full, strlen(full)) == 0;
	free(cd);
	return ok;
}

int kg_pwfile__check(const struct kg_pwfile *pw, const char *user, const char *password)
{
	size_t i;
	int r;

	if(!pw || !user || !password) return 0;
	for(i = 0; i < pw->n; i++){
		const char *h = pw->e[i].hash;

		if(strcmp(pw->e[i].user, user)) continue;
		if(!strncmp(h, "$7$", 3)) return check_pbkdf2(h + 3, password);
		if(!strncmp(h, "$6$", 3)){
			r = check_sha512(h + 3, password);
			return r >= 0 ? r : check_crypt(h, password);
		}
		return 0;
	}
	return 0;
}
