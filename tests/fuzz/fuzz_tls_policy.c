/*
 * tests/fuzz/fuzz_tls_policy.c - libFuzzer target for tls/policy.c.
 *
 * The input is a TLS policy file ($SEALPOST_TLS_POLICY), which an operator
 * may have generated from untrusted lists.  It is split into lines, each
 * parsed with tls_policy_parse_line() and checked against tls.h (counts
 * within TLS_MAX_MATCH / TLS_MAX_PINS, strings terminated inside their
 * arrays, a level that exists, a reason on error).  The whole input is
 * then loaded as a file with tls_policy_load() through a memfd (no disk,
 * nothing written into the tree) and every parsed domain is looked up in
 * the table, also as a subdomain.
 *
 * Build: cmake -DSEALPOST_FUZZ=ON with clang (see tests/CMakeLists.txt).
 */
#include <sys/mman.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tls/tls.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int	check_line(const char *, tls_policy_t *);
static void	check_load(const uint8_t *, size_t);

/* check_line - parse one line; 1 if it gave a policy */
static int
check_line(const char *line, tls_policy_t *p)
{
	char	err[256];
	size_t	i;
	int	r;

	err[0] = '\0';
	memset(p, 0xa5, sizeof(*p));	/* stale bytes must not leak through */
	r = tls_policy_parse_line(line, p, err, sizeof(err));
	if (r == -1) {
		if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL)
			abort();
		return 0;
	}
	if (r == 0)
		return 0;
	if (r != 1)
		abort();
	if (memchr(p->domain, '\0', sizeof(p->domain)) == NULL || p->domain[0] == '\0' ||
	    memchr(p->ca_file, '\0', sizeof(p->ca_file)) == NULL ||
	    p->nmatch > TLS_MAX_MATCH || p->npins > TLS_MAX_PINS)
		abort();
	if (p->level != SP_TLS_ENCRYPT && p->level != SP_TLS_VERIFY &&
	    p->level != SP_TLS_SECURE && p->level != SP_TLS_FINGERPRINT)
		abort();
	for (i = 0; i < p->nmatch; i++)
		if (memchr(p->match[i], '\0', sizeof(p->match[i])) == NULL)
			abort();
	return 1;
}

/* check_load - the whole input as a policy file, then lookups */
static void
check_load(const uint8_t *data, size_t size)
{
	static int		 fd = -1;
	static char		 path[64];
	tls_policy_table_t	*t = NULL;
	tls_policy_t		 dflt, p;
	const tls_policy_t	*hit;
	char			 err[512], name[300];
	const char		*s = (const char *)data, *nl;
	size_t			 left = size, n;

	if (fd == -1) {
		if ((fd = memfd_create("fuzz_tls_policy", 0)) == -1)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) == -1 ||
	    (size > 0 && pwrite(fd, data, size, 0) != (ssize_t)size))
		abort();
	err[0] = '\0';
	if (tls_policy_load(path, &t, err, sizeof(err)) == -1) {
		if (t != NULL || err[0] == '\0')
			abort();
		return;
	}
	if (t == NULL)
		abort();
	memset(&dflt, 0, sizeof(dflt));
	dflt.level = SP_TLS_VERIFY;
	/* every domain the file names must be found, also one level down */
	while (left > 0) {
		nl = memchr(s, '\n', left);
		n = nl ? (size_t)(nl - s) : left;
		if (n < sizeof(name)) {
			memcpy(name, s, n);
			name[n] = '\0';
			if (check_line(name, &p) == 1) {
				const char *d = p.domain[0] == '.' ? p.domain + 1 : p.domain;

				hit = tls_policy_lookup(t, d, &dflt);
				if (hit == NULL)
					abort();
				snprintf(name, sizeof(name), "mx.%s", d);
				if (tls_policy_lookup(t, name, &dflt) == NULL)
					abort();
			}
		}
		s += n + (nl ? 1 : 0);
		left -= n + (nl ? 1 : 0);
	}
	tls_policy_free(t);
}

/* LLVMFuzzerTestOneInput - one policy file */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tls_policy_t	 p;
	char		*line;
	size_t		 i, start = 0;

	for (i = 0; i <= size; i++) {
		if (i < size && data[i] != '\n')
			continue;
		/* an exact-size copy of the line: ASan sees reads past its NUL */
		if ((line = malloc(i - start + 1)) == NULL)
			return 0;
		memcpy(line, data + start, i - start);
		line[i - start] = '\0';
		(void)check_line(line, &p);
		free(line);
		start = i + 1;
	}
	check_load(data, size);
	return 0;
}
