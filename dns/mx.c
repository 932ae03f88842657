/*
 * dns/mx.c - pure helpers for routing: name syntax, IP literals, MX order.
 *
 *	dns_name_normalize()	lower case, no trailing dot, syntax checked
 *	dns_ip_literal()	"1.2.3.4", "[1.2.3.4]", "::1", "[IPv6:::1]"
 *	dns_mx_order()		RFC 5321 §5.1: by preference, ties at random
 *	dns_ip_to_sockaddr()	dns_ip_t + port into a sockaddr
 *
 * No allocation, no I/O; errors are -1 / 0 returns.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns/dns.h"
#include "dns/dns_internal.h"

static int mx_cmp(const void *a, const void *b);

/* dns_name_normalize - lower-case, strip trailing dot, check syntax */
int
dns_name_normalize(const char *in, char *out, size_t outlen)
{
	size_t n, i, label = 0;

	if (in == NULL || out == NULL || outlen == 0)
		return -1;
	n = strnlen(in, 256);
	if (n > 0 && in[n - 1] == '.')
		n--;
	if (n == 0 || n > 253 || n >= outlen)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '.') {
			if (label == 0)
				return -1;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_') {
			label++;
		} else if (c >= 'A' && c <= 'Z') {
			c = (unsigned char)(c - 'A' + 'a');
			label++;
		} else
			return -1;
		if (label > 63)
			return -1;
		out[i] = (char)c;
	}
	out[n] = '\0';
	return 0;
}

/* dns_ip_literal - recognise an address literal, bracketed or not */
int
dns_ip_literal(const char *s, dns_ip_t *ip)
{
	char buf[64];
	size_t n;

	if (s == NULL)
		return 0;
	n = strnlen(s, sizeof(buf));
	if (n == 0 || n >= sizeof(buf))
		return 0;
	if (s[0] == '[') {
		if (n < 3 || s[n - 1] != ']')
			return 0;
		memcpy(buf, s + 1, n - 2);
		buf[n - 2] = '\0';
	} else
		memcpy(buf, s, n + 1);
	memset(ip, 0, sizeof(*ip));
	if (inet_pton(AF_INET, buf, ip->addr) == 1) {
		ip->family = AF_INET;
		return 1;
	}
	/* RFC 5321 §4.1.3 tags IPv6 literals "IPv6:" */
	if (strncasecmp(buf, "ipv6:", 5) == 0 && inet_pton(AF_INET6, buf + 5, ip->addr) == 1) {
		ip->family = AF_INET6;
		return 1;
	}
	if (inet_pton(AF_INET6, buf, ip->addr) == 1) {
		ip->family = AF_INET6;
		return 1;
	}
	return 0;
}

/* dns_rand - xorshift64: cheap, good enough to shuffle MX ties */
uint64_t
dns_rand(uint64_t *state)
{
	uint64_t x = *state ? *state : 0x9E3779B97F4A7C15ULL;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

/* mx_cmp - order by preference, then name so the sort is deterministic
 * before the shuffle */
static int
mx_cmp(const void *a, const void *b)
{
	const dns_mx_rr_t *x = a, *y = b;

	if (x->pref != y->pref)
		return x->pref < y->pref ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* dns_mx_order - sort by preference, shuffle equal preferences */
void
dns_mx_order(dns_mx_rr_t *rr, size_t n, uint64_t *rng)
{
	size_t i, j;

	if (n < 2)
		return;
	qsort(rr, n, sizeof(*rr), mx_cmp);
	for (i = 0; i < n; i = j) {
		size_t k;

		for (j = i + 1; j < n && rr[j].pref == rr[i].pref; j++)
			;
		/* Fisher-Yates over rr[i..j) */
		for (k = j - 1; k > i; k--) {
			size_t m = i + (size_t)(dns_rand(rng) % (k - i + 1));
			dns_mx_rr_t tmp;

			if (m == k)
				continue;
			tmp = rr[k];
			rr[k] = rr[m];
			rr[m] = tmp;
		}
	}
}

/* dns_ip_to_sockaddr - sockaddr_in/in6 with the port in network order */
socklen_t
dns_ip_to_sockaddr(const dns_ip_t *ip, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (ip->family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		memcpy(&sin->sin_addr, ip->addr, 4);
		return sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		memcpy(&sin6->sin6_addr, ip->addr, 16);
		return sizeof(*sin6);
	}
}
