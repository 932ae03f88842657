/*
 * bench/crypto.c - `sealpost-bench crypto`: bulk AEAD throughput of the
 * linked wolfSSL.
 *
 *	bench_crypto_main(argc, argv)
 *
 * Encrypts 16 KB records (the TLS maximum, what a fax attachment is sent
 * in) with AES-128-GCM and ChaCha20-Poly1305 through wolfCrypt, each for
 * --seconds (default 1, at most 60), and prints MB/s (10^6 bytes) together
 * with which wolfSSL is linked: its version, the file the code was loaded
 * from (the executable itself for the static optimised build, the .so for
 * Debian's), whether AES-NI was compiled in (WOLFSSL_AESNI) and whether the
 * CPU has it.  Debian's library has no AES-NI: about 166 MB/s of AES-GCM
 * against several GB/s for the build made by bench/build-wolfssl.sh.
 *
 * Errors: usage errors give EX_USAGE (--help prints usage, EX_OK), a failing cipher call EX_SOFTWARE,
 * each with a message on stderr.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/version.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>

#include "bench/crypto.h"

#define CRYPTO_RECORD		16384	/* bytes of plaintext per record */
#define CRYPTO_AAD		13	/* TLS 1.2 additional data */
#define CRYPTO_MAX_SECONDS	60.0
#define CRYPTO_CLOCK_EVERY	16	/* records between clock reads */

typedef enum crypto_alg {
	CRYPTO_AES128_GCM,
	CRYPTO_CHACHA20_POLY1305
} crypto_alg_t;

typedef struct crypto_result {
	uint64_t	records;
	double		seconds;
	int		err;		/* wolfCrypt error code, 0 on success */
} crypto_result_t;

static double crypto_mono_s(void);
static int crypto_parse_seconds(const char *s, double *out);
static void crypto_print_library(void);
static crypto_result_t crypto_run(crypto_alg_t alg, double seconds,
    unsigned char *in, unsigned char *out);
static const char *crypto_alg_name(crypto_alg_t alg);

/* crypto_mono_s - CLOCK_MONOTONIC in seconds */
static double
crypto_mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* crypto_parse_seconds - a duration in (0, CRYPTO_MAX_SECONDS]; -1 if not */
static int
crypto_parse_seconds(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0')
		return -1;
	/* Written so that NaN fails too. */
	if (!(v > 0.0 && v <= CRYPTO_MAX_SECONDS))
		return -1;
	*out = v;
	return 0;
}

/* crypto_alg_name - printable name of an algorithm */
static const char *
crypto_alg_name(crypto_alg_t alg)
{
	return alg == CRYPTO_AES128_GCM ? "AES-128-GCM" : "ChaCha20-Poly1305";
}

/* crypto_print_library - which wolfSSL is linked and how it was built */
static void
crypto_print_library(void)
{
	Dl_info info;
	const char *from = "unknown";
	const char *aesni_built;
	int cpu_aes;

	/* The object wc_AesGcmEncrypt lives in tells static from shared. */
	memset(&info, 0, sizeof(info));
	if (dladdr((void *)(uintptr_t)&wc_AesGcmEncrypt, &info) != 0 &&
	    info.dli_fname != NULL)
		from = info.dli_fname;
#ifdef WOLFSSL_AESNI
	aesni_built = "yes";
#else
	aesni_built = "no";
#endif
	__builtin_cpu_init();
	cpu_aes = __builtin_cpu_supports("aes");

	printf("wolfSSL %s (headers %s), code in %s\n",
	    wolfSSL_lib_version(), LIBWOLFSSL_VERSION_STRING, from);
	printf("AES-NI compiled in: %s; CPU has AES-NI: %s\n",
	    aesni_built, cpu_aes ? "yes" : "no");
}

/* crypto_run - encrypt records with one algorithm for about `seconds' */
static crypto_result_t
crypto_run(crypto_alg_t alg, double seconds, unsigned char *in,
    unsigned char *out)
{
	static const unsigned char key[CHACHA20_POLY1305_AEAD_KEYSIZE] = {
		0x60, 0x3d, 0xeb, 0x10, 0x15, 0xca, 0x71, 0xbe,
		0x2b, 0x73, 0xae, 0xf0, 0x85, 0x7d, 0x77, 0x81,
		0x1f, 0x35, 0x2c, 0x07, 0x3b, 0x61, 0x08, 0xd7,
		0x2d, 0x98, 0x10, 0xa3, 0x09, 0x14, 0xdf, 0xf4
	};
	unsigned char iv[12], aad[CRYPTO_AAD], tag[16];
	crypto_result_t r = { 0, 0.0, 0 };
	Aes aes;
	double start, now;
	int aes_ready = 0;

	memset(iv, 0, sizeof(iv));
	memset(aad, 0x17, sizeof(aad));
	if (alg == CRYPTO_AES128_GCM) {
		if ((r.err = wc_AesInit(&aes, NULL, INVALID_DEVID)) != 0)
			return r;
		aes_ready = 1;
		if ((r.err = wc_AesGcmSetKey(&aes, key, 16)) != 0)
			goto done;
	}

	start = crypto_mono_s();
	for (;;) {
		/* A fresh nonce per record, as TLS does. */
		iv[4] = (unsigned char)(r.records >> 24);
		iv[5] = (unsigned char)(r.records >> 16);
		iv[6] = (unsigned char)(r.records >> 8);
		iv[7] = (unsigned char)r.records;
		if (alg == CRYPTO_AES128_GCM)
			r.err = wc_AesGcmEncrypt(&aes, out, in, CRYPTO_RECORD,
			    iv, sizeof(iv), tag, sizeof(tag), aad, sizeof(aad));
		else
			r.err = wc_ChaCha20Poly1305_Encrypt(key, iv, aad,
			    sizeof(aad), in, CRYPTO_RECORD, out, tag);
		if (r.err != 0)
			break;
		r.records++;
		if (r.records % CRYPTO_CLOCK_EVERY == 0) {
			now = crypto_mono_s();
			if (now - start >= seconds) {
				r.seconds = now - start;
				break;
			}
		}
	}
done:
	if (aes_ready)
		wc_AesFree(&aes);
	return r;
}

/* bench_crypto_main - `sealpost-bench crypto [--seconds S]` */
int
bench_crypto_main(int argc, char **argv)
{
	static const crypto_alg_t algs[] = {
		CRYPTO_AES128_GCM, CRYPTO_CHACHA20_POLY1305
	};
	unsigned char *in, *out;
	crypto_result_t r;
	double seconds = 1.0, mbs;
	size_t i;
	int a;

	for (a = 1; a < argc; a++) {
		if (strcmp(argv[a], "-h") == 0 ||
		    strcmp(argv[a], "--help") == 0) {
			printf("usage: sealpost-bench crypto [--seconds S]\n"
			    "  AES-128-GCM and ChaCha20-Poly1305 encryption of "
			    "%d-byte records,\n  S seconds each (default 1, "
			    "at most %.0f), with the wolfSSL linked\n",
			    CRYPTO_RECORD, CRYPTO_MAX_SECONDS);
			return EX_OK;
		}
		if (strcmp(argv[a], "--seconds") == 0 && a + 1 < argc) {
			if (crypto_parse_seconds(argv[++a], &seconds) != 0) {
				fprintf(stderr, "sealpost-bench crypto: --seconds "
				    "wants a number in (0, %.0f], not \"%s\"\n",
				    CRYPTO_MAX_SECONDS, argv[a]);
				return EX_USAGE;
			}
		} else {
			fprintf(stderr, "usage: sealpost-bench crypto "
			    "[--seconds S]\n");
			return EX_USAGE;
		}
	}

	/* Output room for the record; the tag goes in its own buffer. */
	in = malloc(CRYPTO_RECORD);
	out = malloc(CRYPTO_RECORD);
	if (in == NULL || out == NULL) {
		free(in);
		free(out);
		fprintf(stderr, "sealpost-bench crypto: out of memory\n");
		return EX_OSERR;
	}
	for (i = 0; i < CRYPTO_RECORD; i++)
		in[i] = (unsigned char)(i * 131u + 7u);

	crypto_print_library();
	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		r = crypto_run(algs[i], seconds, in, out);
		if (r.err != 0) {
			fprintf(stderr, "sealpost-bench crypto: %s failed: "
			    "wolfCrypt error %d\n", crypto_alg_name(algs[i]),
			    r.err);
			free(in);
			free(out);
			return EX_SOFTWARE;
		}
		mbs = (double)r.records * CRYPTO_RECORD / r.seconds / 1e6;
		printf("%-18s %5d-byte records: %9.1f MB/s (%llu records in "
		    "%.2f s)\n", crypto_alg_name(algs[i]), CRYPTO_RECORD, mbs,
		    (unsigned long long)r.records, r.seconds);
	}
	free(in);
	free(out);
	return EX_OK;
}
