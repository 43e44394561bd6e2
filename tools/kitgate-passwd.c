/* kitgate-passwd.c -- makes kits.password_hash values (PBKDF2$sha256|sha512$<iter>$<salt>$<key>) for auth postgres. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "kitgate/pbkdf2.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: kitgate-passwd [--sha512] [--iterations N] [--salt TEXT] [SECRET]\n"
		"Prints the kits.password_hash value for SECRET (read from the first line of standard input\n"
		"when absent) in the format AstroPlant and its auth plugins write and `auth postgres` checks:\n"
		"  PBKDF2$<sha256|sha512>$<iterations>$<salt>$<base64 key>\n"
		"Defaults are AstroPlant's: sha256, 15000 iterations, a random 20-character salt, a 32-byte\n"
		"key (64 bytes with --sha512, mosquitto-go-auth's default algorithm, whose default iteration\n"
		"count is 100000). Every iteration is paid again by the broker thread at each cold login.\n"
		"Example:\n"
		"  psql \"$DATABASE_URL\" -c \"UPDATE kits SET password_hash = '$(kitgate-passwd s3cret)'\n"
		"      WHERE serial = 'k-abcd-efgh-jkmn'\"\n");
}

/* A random salt of n characters from [A-Za-z0-9]. 0 or -1. */
static int random_salt(char *out, size_t n)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char rnd[64];
	size_t i;

	if(n > sizeof(rnd) || getrandom(rnd, n, 0) != (ssize_t)n) return -1;
	for(i = 0; i < n; i++) out[i] = alphabet[rnd[i] % (sizeof(alphabet) - 1)];
	out[n] = '\0';
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"sha512", no_argument, NULL, '5'},
		{"iterations", required_argument, NULL, 'i'},
		{"salt", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	enum kg_pbkdf2_alg alg = KG_PBKDF2_SHA256;
	unsigned long iterations = 15000;
	char salt[KG_PBKDF2_MAX_SALT + 1] = "";
	char line[4096], out[512];
	const char *secret;
	char *end;
	int c;

	while((c = getopt_long(argc, argv, "5i:s:h", longopts, NULL)) != -1){
		switch(c){
		case '5':
			alg = KG_PBKDF2_SHA512;
			break;
		case 'i':
			errno = 0;
			iterations = strtoul(optarg, &end, 10);
			if(errno || *end || end == optarg || iterations < 1 || iterations > KG_PBKDF2_MAX_ITER){
				fprintf(stderr, "kitgate-passwd: --iterations must be 1..%d\n", KG_PBKDF2_MAX_ITER);
				return 2;
			}
			break;
		case 's':
			if(!optarg[0] || strlen(optarg) > KG_PBKDF2_MAX_SALT || strchr(optarg, '$')){
				fprintf(stderr, "kitgate-passwd: --salt must be 1..%d characters without '$'\n", KG_PBKDF2_MAX_SALT);
				return 2;
			}
			strcpy(salt, optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if(argc - optind > 1){
		usage(stderr);
		return 2;
	}
	if(optind < argc){
		secret = argv[optind];
	}else{
		if(!fgets(line, sizeof(line), stdin)){
			fprintf(stderr, "kitgate-passwd: no secret given (argument or standard input)\n");
			return 2;
		}
		line[strcspn(line, "\r\n")] = '\0';
		secret = line;
	}
	if(!salt[0] && random_salt(salt, 20) != 0){
		fprintf(stderr, "kitgate-passwd: no random bytes for a salt\n");
		return 1;
	}
	if(kg_pbkdf2__format(alg, (uint32_t)iterations, salt, secret, alg == KG_PBKDF2_SHA512 ? 64 : 32,
				out, sizeof(out)) != 0){
		fprintf(stderr, "kitgate-passwd: cannot format the hash\n");
		return 1;
	}
	puts(out);
	return 0;
}
