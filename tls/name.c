/*
 * tls/name.c - certificate name matching (RFC 6125 section 6.4).
 *
 * tls_name_match(pattern, host) compares one dNSName from a certificate
 * with the host we meant to reach.  Pure and allocation-free, so that the
 * rules can be unit-tested by table.  The caller decides which names to
 * feed (SAN dNSNames, or the CN only when the certificate has no DNS SAN).
 *
 * Rules: ASCII case-insensitive; one trailing dot on either side ignored;
 * a wildcard is only "*" as the whole left-most label, followed by at least
 * two labels (no "*.com"); it stands for exactly one non-empty label, so
 * never for a dot; partial wildcards ("f*o.example", "*x.example") and
 * wildcards in other labels never match; IP literals never match a
 * wildcard.  Empty or over-long names never match.
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "tls/tls_internal.h"

#define NAME_MAX_LEN 253

static size_t name_len(const char *s);
static int label_ok(const char *s, size_t n);

/* name_len - length without one trailing dot; 0 when unusable */
static size_t
name_len(const char *s)
{
	size_t n = strnlen(s, NAME_MAX_LEN + 2);

	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > NAME_MAX_LEN)
		return 0;
	return n;
}

/* label_ok - every label non-empty (no "a..b", no leading dot), no '*' */
static int
label_ok(const char *s, size_t n)
{
	size_t i, run = 0;

	for (i = 0; i < n; i++) {
		if (s[i] == '*')
			return 0;
		if (s[i] == '.') {
			if (run == 0)
				return 0;
			run = 0;
		} else
			run++;
	}
	return run > 0;
}

/* tls_is_ip_literal - 1 when s is a numeric IPv4 or IPv6 address */
int
tls_is_ip_literal(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* tls_name_match - 1 when certificate name pattern covers host, else 0 */
int
tls_name_match(const char *pattern, const char *host)
{
	size_t pl, hl, rest;
	const char *hdot;

	if (pattern == NULL || host == NULL)
		return 0;
	pl = name_len(pattern);
	hl = name_len(host);
	if (pl == 0 || hl == 0 || !label_ok(host, hl))
		return 0;
	if (pattern[0] != '*')
		return pl == hl && label_ok(pattern, pl) &&
		    strncasecmp(pattern, host, pl) == 0;

	/* "*." then at least two labels */
	if (pl < 3 || pattern[1] != '.' || !label_ok(pattern + 2, pl - 2))
		return 0;
	if (memchr(pattern + 2, '.', pl - 2) == NULL)
		return 0;
	if (tls_is_ip_literal(host))
		return 0;
	hdot = memchr(host, '.', hl);
	if (hdot == NULL || hdot == host)
		return 0;
	rest = hl - (size_t)(hdot + 1 - host);
	return rest == pl - 2 && strncasecmp(hdot + 1, pattern + 2, rest) == 0;
}
