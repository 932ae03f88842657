/*
 * dns/packet.c - a bounds-checked walker over raw DNS replies.
 *
 * c-ares 1.18 parses MX answers without their TTL, so we read TTLs from the
 * reply ourselves.  The reply comes from the network: every read is checked
 * against the buffer length, compression pointers must point strictly
 * backwards of the segment being read (so a loop is impossible), names are
 * limited to 255 octets on the wire, and counts that promise more records
 * than the buffer holds make the whole reply malformed.
 *
 *	dns_answer_min_ttl()	minimum TTL over the answer section
 *	dns_negative_ttl()	min(SOA TTL, SOA minimum) of a negative reply
 *	dns_answer_cname()	where a CNAME-only answer points
 *	dns_name_decode()	one possibly compressed name
 *
 * Errors: -1 for "malformed" (or nothing to report); never reads out of
 * bounds, never allocates.
 */
#include <string.h>

#include "dns/dns.h"
#include "dns/dns_internal.h"

#define DNS_HDR_LEN	12
#define DNS_NAME_WIRE_MAX 255
#define DNS_PTR_HOPS_MAX 64

struct rr_head {
	unsigned type;
	unsigned long ttl;
	size_t	rdoff;
	size_t	rdlen;
};

static unsigned get16(const unsigned char *p);
static unsigned long get32(const unsigned char *p);
static int skip_question(const unsigned char *buf, size_t len, size_t *off);
static int read_rr(const unsigned char *buf, size_t len, size_t *off, struct rr_head *rr);
static unsigned long ttl_clamp(unsigned long ttl);

/* get16 - big-endian 16 bits */
static unsigned
get16(const unsigned char *p)
{
	return ((unsigned)p[0] << 8) | p[1];
}

/* get32 - big-endian 32 bits */
static unsigned long
get32(const unsigned char *p)
{
	return ((unsigned long)p[0] << 24) | ((unsigned long)p[1] << 16) |
	    ((unsigned long)p[2] << 8) | p[3];
}

/* ttl_clamp - RFC 2181 §8: a TTL with the top bit set means zero */
static unsigned long
ttl_clamp(unsigned long ttl)
{
	return ttl > 0x7fffffffUL ? 0 : ttl;
}

/* dns_name_decode - read a (compressed) name at *off; see dns_internal.h */
int
dns_name_decode(const unsigned char *buf, size_t len, size_t *off,
		char *out, size_t outlen)
{
	/* pos walks, lim is the furthest byte read: both start at *off */
	// cppcheck-suppress duplicateAssignExpression
	size_t pos = *off, lim = *off, wire = 0, olen = 0, next = 0;
	int jumped = 0, hops = 0;

	if (out != NULL && outlen == 0)
		return -1;
	for (;;) {
		unsigned c;

		if (pos >= len)
			return -1;
		c = buf[pos];
		if (c == 0) {
			if (!jumped)
				next = pos + 1;
			break;
		}
		if ((c & 0xC0) == 0xC0) {
			size_t ptr;

			if (pos + 1 >= len)
				return -1;
			ptr = ((size_t)(c & 0x3F) << 8) | buf[pos + 1];
			/* strictly backwards of the segment we are in: each
			 * hop lowers lim, so loops cannot happen */
			if (ptr >= lim || ptr < DNS_HDR_LEN || ++hops > DNS_PTR_HOPS_MAX)
				return -1;
			if (!jumped)
				next = pos + 2;
			jumped = 1;
			pos = lim = ptr;
			continue;
		}
		if ((c & 0xC0) != 0)
			return -1;	/* 01/10 label types: obsolete, refuse */
		if (pos + 1 + c > len)
			return -1;
		wire += c + 1;
		if (wire + 1 > DNS_NAME_WIRE_MAX)
			return -1;
		if (out != NULL) {
			if (olen + (olen ? 1 : 0) + c + 1 > outlen)
				return -1;
			if (olen)
				out[olen++] = '.';
			memcpy(out + olen, buf + pos + 1, c);
			olen += c;
		}
		pos += 1 + c;
	}
	if (out != NULL)
		out[olen] = '\0';
	*off = next;
	return 0;
}

/* skip_question - step over one question entry */
static int
skip_question(const unsigned char *buf, size_t len, size_t *off)
{
	if (dns_name_decode(buf, len, off, NULL, 0) == -1)
		return -1;
	if (len - *off < 4)
		return -1;
	*off += 4;
	return 0;
}

/* read_rr - parse one resource record header and step over its data */
static int
read_rr(const unsigned char *buf, size_t len, size_t *off, struct rr_head *rr)
{
	if (dns_name_decode(buf, len, off, NULL, 0) == -1)
		return -1;
	if (len - *off < 10)
		return -1;
	rr->type = get16(buf + *off);
	rr->ttl = ttl_clamp(get32(buf + *off + 4));
	rr->rdlen = get16(buf + *off + 8);
	rr->rdoff = *off + 10;
	if (rr->rdlen > len - rr->rdoff)
		return -1;
	*off = rr->rdoff + rr->rdlen;
	return 0;
}

/* dns_answer_min_ttl - minimum TTL of the answer RRs; -1 if malformed or
 * if there is no answer record at all */
long
dns_answer_min_ttl(const unsigned char *abuf, int alen)
{
	size_t len, off = DNS_HDR_LEN;
	unsigned qd, an, i;
	unsigned long min = 0;

	if (abuf == NULL || alen < DNS_HDR_LEN)
		return -1;
	len = (size_t)alen;
	qd = get16(abuf + 4);
	an = get16(abuf + 6);
	if (an == 0)
		return -1;
	for (i = 0; i < qd; i++)
		if (skip_question(abuf, len, &off) == -1)
			return -1;
	for (i = 0; i < an; i++) {
		struct rr_head rr;

		if (read_rr(abuf, len, &off, &rr) == -1)
			return -1;
		if (i == 0 || rr.ttl < min)
			min = rr.ttl;
	}
	return (long)min;
}

/* dns_negative_ttl - negative-caching TTL (RFC 2308 §5) from the SOA */
long
dns_negative_ttl(const unsigned char *abuf, int alen)
{
	size_t len, off = DNS_HDR_LEN;
	unsigned qd, an, ns, i;

	if (abuf == NULL || alen < DNS_HDR_LEN)
		return -1;
	len = (size_t)alen;
	qd = get16(abuf + 4);
	an = get16(abuf + 6);
	ns = get16(abuf + 8);
	for (i = 0; i < qd; i++)
		if (skip_question(abuf, len, &off) == -1)
			return -1;
	for (i = 0; i < an + ns; i++) {
		struct rr_head rr;
		size_t p;
		unsigned long minimum;

		if (read_rr(abuf, len, &off, &rr) == -1)
			return -1;
		if (i < an || rr.type != DNS_T_SOA)
			continue;
		/* MNAME, RNAME, then five 32-bit fields, all inside RDATA */
		p = rr.rdoff;
		if (dns_name_decode(abuf, len, &p, NULL, 0) == -1 ||
		    dns_name_decode(abuf, len, &p, NULL, 0) == -1)
			return -1;
		if (p > rr.rdoff + rr.rdlen || rr.rdoff + rr.rdlen - p < 20)
			return -1;
		minimum = ttl_clamp(get32(abuf + p + 16));
		return (long)(minimum < rr.ttl ? minimum : rr.ttl);
	}
	return -1;
}

/* dns_answer_cname - target of the last answer CNAME, for a server that
 * gave us the alias without chasing it (RFC 5321 §5.1: treat the target as
 * the domain) */
int
dns_answer_cname(const unsigned char *abuf, int alen, char *out, size_t outlen)
{
	size_t len, off = DNS_HDR_LEN;
	unsigned qd, an, i;
	char raw[256];
	int found = 0;

	if (abuf == NULL || alen < DNS_HDR_LEN)
		return -1;
	len = (size_t)alen;
	qd = get16(abuf + 4);
	an = get16(abuf + 6);
	for (i = 0; i < qd; i++)
		if (skip_question(abuf, len, &off) == -1)
			return -1;
	for (i = 0; i < an; i++) {
		struct rr_head rr;
		size_t p;

		if (read_rr(abuf, len, &off, &rr) == -1)
			return -1;
		if (rr.type != DNS_T_CNAME)
			continue;
		p = rr.rdoff;
		if (dns_name_decode(abuf, len, &p, raw, sizeof(raw)) == -1 ||
		    p > rr.rdoff + rr.rdlen)
			return -1;
		found = 1;
	}
	if (!found || dns_name_normalize(raw, out, outlen) == -1)
		return -1;
	return 0;
}
