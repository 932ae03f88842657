/*
 * tests/test_dns_packet.c - the pure parts of dns/: the reply walker that
 * reads TTLs (hostile input), MX ordering, name and literal checks, and the
 * answer cache with an injected clock.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns.h"
#include "dns/dns_internal.h"

struct pkt {
	unsigned char b[2048];
	size_t	n;
};

static void put8(struct pkt *p, unsigned v);
static void put16(struct pkt *p, unsigned v);
static void put32(struct pkt *p, unsigned long v);
static void putname(struct pkt *p, const char *dotted);
static void header(struct pkt *p, unsigned qd, unsigned an, unsigned ns);
static void mx_reply(struct pkt *p, unsigned long ttl1, unsigned long ttl2);
static long ttl_exact(const struct pkt *p, size_t len);

/* put8 / put16 / put32 - append big-endian integers */
static void
put8(struct pkt *p, unsigned v)
{
	p->b[p->n++] = (unsigned char)v;
}

static void
put16(struct pkt *p, unsigned v)
{
	put8(p, (v >> 8) & 0xff);
	put8(p, v & 0xff);
}

static void
put32(struct pkt *p, unsigned long v)
{
	put16(p, (unsigned)(v >> 16) & 0xffff);
	put16(p, (unsigned)v & 0xffff);
}

/* putname - uncompressed name from "a.b.c" */
static void
putname(struct pkt *p, const char *dotted)
{
	while (*dotted) {
		const char *dot = strchr(dotted, '.');
		size_t l = dot ? (size_t)(dot - dotted) : strlen(dotted);

		put8(p, (unsigned)l);
		memcpy(p->b + p->n, dotted, l);
		p->n += l;
		dotted += l + (dot ? 1 : 0);
	}
	put8(p, 0);
}

/* header - a response header with the given counts */
static void
header(struct pkt *p, unsigned qd, unsigned an, unsigned ns)
{
	p->n = 0;
	put16(p, 0x1234);
	put16(p, 0x8180);
	put16(p, qd);
	put16(p, an);
	put16(p, ns);
	put16(p, 0);
}

/* mx_reply - "mx.test MX?" answered by two MX RRs, names compressed */
static void
mx_reply(struct pkt *p, unsigned long ttl1, unsigned long ttl2)
{
	header(p, 1, 2, 0);
	putname(p, "mx.test");		/* at offset 12 */
	put16(p, DNS_T_MX);
	put16(p, 1);
	put16(p, 0xC00C);		/* owner: pointer to the question */
	put16(p, DNS_T_MX);
	put16(p, 1);
	put32(p, ttl1);
	put16(p, 2 + 6);		/* pref + "\3mx1" + pointer */
	put16(p, 10);
	put8(p, 3);
	memcpy(p->b + p->n, "mx1", 3);
	p->n += 3;
	put16(p, 0xC00C);
	put16(p, 0xC00C);
	put16(p, DNS_T_MX);
	put16(p, 1);
	put32(p, ttl2);
	put16(p, 2 + 6);
	put16(p, 20);
	put8(p, 3);
	memcpy(p->b + p->n, "mx2", 3);
	p->n += 3;
	put16(p, 0xC00C);
}

/* ttl_exact - run the walker on a heap copy of exactly len bytes, so that
 * AddressSanitizer catches a read one byte past the end */
static long
ttl_exact(const struct pkt *p, size_t len)
{
	unsigned char *buf = malloc(len ? len : 1);
	long ttl;

	cr_assert_not_null(buf);
	memcpy(buf, p->b, len);
	ttl = dns_answer_min_ttl(buf, (int)len);
	free(buf);
	return ttl;
}

Test(dns_packet, min_ttl_is_the_smallest_answer_ttl)
{
	struct pkt p;

	mx_reply(&p, 300, 120);
	cr_assert_eq(ttl_exact(&p, p.n), 120);
	mx_reply(&p, 7, 86400);
	cr_assert_eq(ttl_exact(&p, p.n), 7);
}

Test(dns_packet, uncompressed_names_are_read_too)
{
	struct pkt p;

	header(&p, 1, 1, 0);
	putname(&p, "plain.test");
	put16(&p, DNS_T_A);
	put16(&p, 1);
	putname(&p, "plain.test");
	put16(&p, DNS_T_A);
	put16(&p, 1);
	put32(&p, 42);
	put16(&p, 4);
	put32(&p, 0x7f000001);
	cr_assert_eq(ttl_exact(&p, p.n), 42);
}

Test(dns_packet, ttl_with_top_bit_set_counts_as_zero)
{
	struct pkt p;

	mx_reply(&p, 0x80000000UL, 300);
	cr_assert_eq(ttl_exact(&p, p.n), 0);
}

Test(dns_packet, truncation_at_any_byte_is_malformed)
{
	struct pkt p;
	size_t len;

	mx_reply(&p, 300, 120);
	for (len = 0; len < p.n; len++)
		cr_assert_eq(ttl_exact(&p, len), -1, "prefix of %zu bytes accepted", len);
	cr_assert_eq(dns_answer_min_ttl(NULL, 100), -1);
	cr_assert_eq(dns_answer_min_ttl(p.b, -5), -1);
}

Test(dns_packet, zero_answers_give_no_ttl)
{
	struct pkt p;

	header(&p, 1, 0, 0);
	putname(&p, "mx.test");
	put16(&p, DNS_T_MX);
	put16(&p, 1);
	cr_assert_eq(ttl_exact(&p, p.n), -1);
}

Test(dns_packet, answer_count_larger_than_the_reply_is_malformed)
{
	struct pkt p;

	mx_reply(&p, 300, 120);
	p.b[7] = 3;	/* ancount 3, two present */
	cr_assert_eq(ttl_exact(&p, p.n), -1);
	mx_reply(&p, 300, 120);
	p.b[5] = 2;	/* qdcount 2: the answer is read as a question */
	cr_assert_eq(ttl_exact(&p, p.n), -1);
}

Test(dns_packet, answer_count_smaller_reads_only_the_counted)
{
	struct pkt p;

	mx_reply(&p, 300, 120);
	p.b[7] = 1;
	cr_assert_eq(ttl_exact(&p, p.n), 300);
}

Test(dns_packet, compression_loop_is_malformed)
{
	struct pkt p;

	/* the answer's owner points at itself */
	header(&p, 0, 1, 0);
	put16(&p, 0xC00C);
	put16(&p, 1);
	put16(&p, 1);
	put32(&p, 5);
	put16(&p, 0);
	cr_assert_eq(ttl_exact(&p, p.n), -1);

	/* label, then a pointer back to that label: a two-step loop */
	header(&p, 0, 1, 0);
	put8(&p, 1);
	put8(&p, 'a');
	put16(&p, 0xC00C);
	put16(&p, 1);
	put16(&p, 1);
	put32(&p, 5);
	put16(&p, 0);
	cr_assert_eq(ttl_exact(&p, p.n), -1);
}

Test(dns_packet, forward_or_out_of_range_pointer_is_malformed)
{
	struct pkt p;

	mx_reply(&p, 300, 120);
	p.b[12 + 9 + 4] = 0xC0;	/* answer owner -> offset 0x40 (forward) */
	p.b[12 + 9 + 4 + 1] = 0x40;
	cr_assert_eq(ttl_exact(&p, p.n), -1);
	mx_reply(&p, 300, 120);
	p.b[12 + 9 + 4] = 0xFF;	/* far beyond the buffer */
	p.b[12 + 9 + 4 + 1] = 0xFF;
	cr_assert_eq(ttl_exact(&p, p.n), -1);
	mx_reply(&p, 300, 120);
	p.b[12 + 9 + 4 + 1] = 0x02;	/* into the header */
	cr_assert_eq(ttl_exact(&p, p.n), -1);
}

Test(dns_packet, name_longer_than_255_octets_is_malformed)
{
	struct pkt p;
	int i;

	header(&p, 1, 0, 0);
	for (i = 0; i < 5; i++) {	/* 5 * 64 = 320 octets */
		put8(&p, 63);
		memset(p.b + p.n, 'x', 63);
		p.n += 63;
	}
	put8(&p, 0);
	put16(&p, DNS_T_MX);
	put16(&p, 1);
	p.b[7] = 1;	/* pretend an answer follows; the question fails first */
	cr_assert_eq(ttl_exact(&p, p.n), -1);
}

Test(dns_packet, random_bytes_never_crash)
{
	struct pkt p;
	uint64_t rng = 12345;
	int i;

	for (i = 0; i < 20000; i++) {
		size_t j, len = 12 + dns_rand(&rng) % 200;

		for (j = 0; j < len; j++)
			p.b[j] = (unsigned char)dns_rand(&rng);
		p.b[4] = 0;
		p.b[5] = (unsigned char)(dns_rand(&rng) % 3);
		p.b[6] = 0;
		p.b[7] = (unsigned char)(dns_rand(&rng) % 4);
		/* sprinkle compression pointers */
		if (len > 20)
			p.b[12 + dns_rand(&rng) % (len - 13)] = 0xC0;
		(void)ttl_exact(&p, len);
		(void)dns_negative_ttl(p.b, (int)len);
	}
	cr_assert(1, "survived");
}

Test(dns_packet, negative_ttl_is_soa_minimum_capped_by_its_ttl)
{
	struct pkt p;

	header(&p, 1, 0, 1);
	putname(&p, "nx.test");
	put16(&p, DNS_T_A);
	put16(&p, 1);
	putname(&p, "test");
	put16(&p, DNS_T_SOA);
	put16(&p, 1);
	put32(&p, 600);			/* SOA RR TTL */
	put16(&p, 2 + 2 + 20);
	put16(&p, 0xC00F);		/* mname -> "test" inside the question */
	put16(&p, 0xC00F);		/* rname */
	put32(&p, 1);
	put32(&p, 3600);
	put32(&p, 600);
	put32(&p, 86400);
	put32(&p, 30);			/* minimum */
	cr_assert_eq(dns_negative_ttl(p.b, (int)p.n), 30);
	p.b[p.n - 1] = 0;
	p.b[p.n - 2] = 0x10;		/* minimum 4096 > TTL 600 */
	cr_assert_eq(dns_negative_ttl(p.b, (int)p.n), 600);
	cr_assert_eq(dns_negative_ttl(p.b, (int)p.n - 1), -1);
}

Test(dns_packet, name_decode_gives_dotted_name)
{
	struct pkt p;
	char out[256];
	size_t off = 12 + 9 + 4;

	mx_reply(&p, 1, 2);
	cr_assert_eq(dns_name_decode(p.b, p.n, &off, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "mx.test");
	cr_assert_eq(off, 12 + 9 + 4 + 2);
}

Test(dns_mx, order_is_by_preference)
{
	dns_mx_rr_t rr[4] = { { 30, "c" }, { 10, "a" }, { 20, "b" }, { 0, "z" } };
	uint64_t rng = 1;

	dns_mx_order(rr, 4, &rng);
	cr_assert_eq(rr[0].pref, 0);
	cr_assert_eq(rr[1].pref, 10);
	cr_assert_eq(rr[2].pref, 20);
	cr_assert_eq(rr[3].pref, 30);
}

Test(dns_mx, equal_preferences_come_in_both_orders)
{
	uint64_t rng = 77;
	int first_a = 0, first_b = 0, i;

	for (i = 0; i < 200; i++) {
		dns_mx_rr_t rr[3] = { { 10, "b" }, { 5, "low" }, { 10, "a" } };

		dns_mx_order(rr, 3, &rng);
		cr_assert_str_eq(rr[0].name, "low");
		cr_assert_eq(rr[1].pref, 10);
		cr_assert_eq(rr[2].pref, 10);
		if (strcmp(rr[1].name, "a") == 0)
			first_a++;
		else
			first_b++;
	}
	cr_assert_gt(first_a, 50);
	cr_assert_gt(first_b, 50);
}

Test(dns_mx, names_are_lower_cased_without_trailing_dot)
{
	char out[256];
	char longlabel[80];

	cr_assert_eq(dns_name_normalize("MX1.Example.ORG.", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "mx1.example.org");
	cr_assert_eq(dns_name_normalize("", out, sizeof(out)), -1);
	cr_assert_eq(dns_name_normalize(".", out, sizeof(out)), -1);
	cr_assert_eq(dns_name_normalize("a..b", out, sizeof(out)), -1);
	cr_assert_eq(dns_name_normalize("a b.test", out, sizeof(out)), -1);
	cr_assert_eq(dns_name_normalize("a\\.b.test", out, sizeof(out)), -1);
	memset(longlabel, 'x', 64);
	longlabel[64] = '\0';
	cr_assert_eq(dns_name_normalize(longlabel, out, sizeof(out)), -1);
}

Test(dns_mx, ip_literals_are_recognised)
{
	dns_ip_t ip;

	cr_assert_eq(dns_ip_literal("192.0.2.1", &ip), 1);
	cr_assert_eq(ip.family, AF_INET);
	cr_assert_eq(dns_ip_literal("[192.0.2.1]", &ip), 1);
	cr_assert_eq(ip.addr[3], 1);
	cr_assert_eq(dns_ip_literal("[IPv6:2001:db8::1]", &ip), 1);
	cr_assert_eq(ip.family, AF_INET6);
	cr_assert_eq(dns_ip_literal("::1", &ip), 1);
	cr_assert_eq(dns_ip_literal("example.org", &ip), 0);
	cr_assert_eq(dns_ip_literal("[192.0.2.1", &ip), 0);
	cr_assert_eq(dns_ip_literal("[]", &ip), 0);
	cr_assert_eq(dns_ip_literal("1.2.3.4.example", &ip), 0);
}

static long long fake_now;

/* fake_clock - the cache's clock in tests */
static long long fake_clock(void);
static long long
fake_clock(void)
{
	return fake_now;
}

static void a_rrset(dns_rrset_t *rs, unsigned char last);
/* a_rrset - an A answer 192.0.2.last */
static void
a_rrset(dns_rrset_t *rs, unsigned char last)
{
	memset(rs, 0, sizeof(*rs));
	rs->type = DNS_T_A;
	rs->rc = DNS_RC_OK;
	rs->nip = 1;
	rs->ip[0].family = AF_INET;
	rs->ip[0].addr[0] = 192;
	rs->ip[0].addr[2] = 2;
	rs->ip[0].addr[3] = last;
}

Test(dns_cache, entries_expire_after_their_ttl)
{
	dns_cache_t *c = dns_cache_new(10, fake_clock);
	dns_rrset_t rs;
	const dns_rrset_t *got;

	fake_now = 1000000;
	a_rrset(&rs, 7);
	cr_assert_eq(dns_cache_put(c, "h.test", &rs, 30), 0);
	fake_now += 29999;
	got = dns_cache_get(c, DNS_T_A, "h.test");
	cr_assert_not_null(got);
	cr_assert_eq(got->ip[0].addr[3], 7);
	cr_assert_null(dns_cache_get(c, DNS_T_AAAA, "h.test"), "type is part of the key");
	fake_now += 1;
	cr_assert_null(dns_cache_get(c, DNS_T_A, "h.test"));
	cr_assert_eq(dns_cache_count(c), 0);
	dns_cache_free(c);
}

Test(dns_cache, ttl_below_one_second_is_kept_one_second)
{
	dns_cache_t *c = dns_cache_new(10, fake_clock);
	dns_rrset_t rs;

	fake_now = 5000;
	a_rrset(&rs, 1);
	cr_assert_eq(dns_cache_put(c, "zero.test", &rs, 0), 0);
	fake_now += 999;
	cr_assert_not_null(dns_cache_get(c, DNS_T_A, "zero.test"));
	fake_now += 1;
	cr_assert_null(dns_cache_get(c, DNS_T_A, "zero.test"));
	dns_cache_free(c);
}

Test(dns_cache, size_is_bounded_and_least_recently_used_goes)
{
	dns_cache_t *c = dns_cache_new(3, fake_clock);
	dns_rrset_t rs;

	fake_now = 0;
	a_rrset(&rs, 1);
	dns_cache_put(c, "a.test", &rs, 100);
	dns_cache_put(c, "b.test", &rs, 100);
	dns_cache_put(c, "c.test", &rs, 100);
	cr_assert_not_null(dns_cache_get(c, DNS_T_A, "a.test"));	/* a is fresh now */
	dns_cache_put(c, "d.test", &rs, 100);
	cr_assert_eq(dns_cache_count(c), 3);
	cr_assert_null(dns_cache_get(c, DNS_T_A, "b.test"), "LRU entry evicted");
	cr_assert_not_null(dns_cache_get(c, DNS_T_A, "a.test"));
	cr_assert_not_null(dns_cache_get(c, DNS_T_A, "c.test"));
	cr_assert_not_null(dns_cache_get(c, DNS_T_A, "d.test"));
	dns_cache_free(c);
}

Test(dns_cache, negative_answers_and_mx_lists_are_cached)
{
	dns_cache_t *c = dns_cache_new(10, fake_clock);
	dns_rrset_t rs;
	dns_mx_rr_t mx[2] = { { 10, "mx1.test" }, { 20, "mx2.test" } };
	const dns_rrset_t *got;

	fake_now = 0;
	memset(&rs, 0, sizeof(rs));
	rs.type = DNS_T_MX;
	rs.rc = DNS_RC_NXDOMAIN;
	dns_cache_put(c, "nx.test", &rs, 60);
	got = dns_cache_get(c, DNS_T_MX, "nx.test");
	cr_assert_not_null(got);
	cr_assert_eq(got->rc, DNS_RC_NXDOMAIN);

	rs.rc = DNS_RC_OK;
	rs.mx = mx;
	rs.nmx = 2;
	dns_cache_put(c, "mx.test", &rs, 60);
	mx[0].pref = 99;	/* the cache holds its own copy */
	got = dns_cache_get(c, DNS_T_MX, "mx.test");
	cr_assert_not_null(got);
	cr_assert_eq(got->nmx, 2);
	cr_assert_eq(got->mx[0].pref, 10);
	cr_assert_str_eq(got->mx[1].name, "mx2.test");
	/* replacing keeps one entry */
	dns_cache_put(c, "mx.test", &rs, 60);
	cr_assert_eq(dns_cache_count(c), 2);
	dns_cache_free(c);
}

Test(dns_packet, unchased_cname_target_is_found_and_bounded)
{
	struct pkt p;
	char out[256];
	size_t len, full;

	header(&p, 1, 1, 0);
	putname(&p, "alias.test");	/* "test" label at offset 18 */
	put16(&p, DNS_T_MX);
	put16(&p, 1);
	put16(&p, 0xC00C);
	put16(&p, DNS_T_CNAME);
	put16(&p, 1);
	put32(&p, 300);
	put16(&p, 5);
	put8(&p, 2);
	put8(&p, 'M');
	put8(&p, 'X');
	put16(&p, 0xC012);
	full = p.n;
	cr_assert_eq(dns_answer_cname(p.b, (int)full, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "mx.test");
	for (len = 0; len < full; len++) {
		unsigned char *buf = malloc(len ? len : 1);

		memcpy(buf, p.b, len);
		cr_assert_eq(dns_answer_cname(buf, (int)len, out, sizeof(out)), -1);
		free(buf);
	}
	p.b[7] = 0;
	cr_assert_eq(dns_answer_cname(p.b, (int)full, out, sizeof(out)), -1, "no answer, no alias");
}
