/*
 * tests/fuzz/fuzz_dns_answer.c - libFuzzer target for dns/packet.c.
 *
 * The input is a raw DNS reply as a hostile or broken resolver could send
 * it.  It goes through every entry point of the packet walker in
 * dns_internal.h: dns_answer_min_ttl(), dns_negative_ttl(),
 * dns_answer_cname() and dns_name_decode() at every offset (so compression
 * pointers and labels are tried from every position, not only where a
 * well-formed reply would have a name).  Their results are checked against
 * the promises of the header: TTLs are -1 or within 0..0x7fffffff, a CNAME
 * target is a normalized name, a decoded name is NUL-terminated inside the
 * buffer and the offset only moves forwards inside the reply.  The input
 * is also tried as a name for dns_name_normalize() and dns_ip_literal().
 *
 * Build: cmake -DSEALPOST_FUZZ=ON with clang (see tests/CMakeLists.txt).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"
#include "dns/dns_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void	check_names(const unsigned char *, size_t);
static void	check_text(const uint8_t *, size_t);

/* check_names - decode a name at every offset; bounds of out and *off */
static void
check_names(const unsigned char *buf, size_t len)
{
	char	out[256], small[8];
	size_t	start, off;

	for (start = 0; start < len && start < 512; start++) {
		off = start;
		if (dns_name_decode(buf, len, &off, out, sizeof(out)) == 0) {
			if (off <= start || off > len ||
			    memchr(out, '\0', sizeof(out)) == NULL)
				abort();
		} else if (off != start)
			abort();	/* a failed decode must not move *off */
		off = start;
		if (dns_name_decode(buf, len, &off, small, sizeof(small)) == 0 &&
		    strlen(small) >= sizeof(small))
			abort();
		off = start;
		(void)dns_name_decode(buf, len, &off, NULL, 0);
	}
}

/* check_text - the input as a host name or address literal */
static void
check_text(const uint8_t *data, size_t size)
{
	char	in[300], out[256];
	dns_ip_t ip;
	size_t	n = size < sizeof(in) - 1 ? size : sizeof(in) - 1;

	memcpy(in, data, n);
	in[n] = '\0';
	if (dns_name_normalize(in, out, sizeof(out)) == 0 &&
	    (strlen(out) > 253 || memchr(out, '\0', sizeof(out)) == NULL))
		abort();
	if (dns_ip_literal(in, &ip) == 1 &&
	    ip.family != AF_INET && ip.family != AF_INET6)
		abort();
}

/* LLVMFuzzerTestOneInput - one DNS reply */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const unsigned char *buf;
	unsigned char	*copy;
	char		 cname[256];
	long		 ttl;
	int		 alen;

	if (size > 65535)
		return 0;	/* a DNS message is at most 64 KB */
	/* an exact-size heap copy: ASan sees any read past the reply */
	if ((copy = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	buf = copy;
	alen = (int)size;

	ttl = dns_answer_min_ttl(buf, alen);
	if (ttl < -1 || ttl > 0x7fffffffL)
		abort();
	ttl = dns_negative_ttl(buf, alen);
	if (ttl < -1 || ttl > 0x7fffffffL)
		abort();
	if (dns_answer_cname(buf, alen, cname, sizeof(cname)) == 0) {
		char again[256];

		/* the target is normalized: normalizing again is a no-op */
		if (dns_name_normalize(cname, again, sizeof(again)) == -1 ||
		    strcmp(cname, again) != 0)
			abort();
	}
	(void)dns_answer_cname(buf, alen, cname, 1);
	check_names(buf, size);
	check_text(data, size);
	free(copy);
	return 0;
}
