/*
 * dns/dns_internal.h - pieces of dns/ shared between its files and exposed
 * to the unit tests (tests/test_dns_packet.c); not for other modules.
 *
 *	packet.c	bounds-checked DNS message walker (TTLs, SOA minimum)
 *	mx.c		name checks, IP literals, MX ordering
 *	cache.c		per-resolver (type, name) cache with TTLs and LRU bound
 */
#ifndef SP_DNS_INTERNAL_H
#define SP_DNS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define DNS_T_A		1
#define DNS_T_MX	15
#define DNS_T_AAAA	28
#define DNS_T_SOA	6
#define DNS_T_CNAME	5

#define DNS_CNAME_MAX	8	/* CNAME hops we chase ourselves */

#define DNS_MX_KEEP	64	/* MX records kept per domain (lowest preferences) */

#define DNS_TTL_MAX	86400	/* positive answers: at most a day */
#define DNS_NEG_TTL_MAX	3600	/* NXDOMAIN/NODATA: SOA minimum, at most an hour */
#define DNS_NEG_TTL_DEFAULT 60	/* NXDOMAIN/NODATA without an SOA */
#define DNS_TEMP_TTL	5	/* SERVFAIL/timeout: short, stops stampedes */

/* Outcome of one (type, name) lookup, as cached */
enum dns_rcode {
	DNS_RC_OK = 0,		/* records present */
	DNS_RC_NODATA,		/* name exists, no record of this type */
	DNS_RC_NXDOMAIN,	/* name does not exist */
	DNS_RC_TEMP,		/* SERVFAIL, timeout, refused, network */
};

typedef struct dns_mx_rr {
	uint16_t pref;
	char	name[256];
} dns_mx_rr_t;

typedef struct dns_ip {
	int	family;			/* AF_INET or AF_INET6 */
	unsigned char addr[16];		/* 4 or 16 bytes used */
} dns_ip_t;

/* An answer to one (type, name) lookup; mx is owned by whoever holds it */
typedef struct dns_rrset {
	int	type;
	enum dns_rcode rc;
	char	err[64];		/* why, when rc != OK: "timeout", "SERVFAIL" */
	char	cname[256];		/* NODATA ending in a CNAME: its target, to chase */
	size_t	nmx;
	dns_mx_rr_t *mx;		/* type MX: nmx records, malloc'd */
	size_t	nip;
	dns_ip_t ip[8];			/* type A/AAAA (DNS_MAX_ADDRS) */
} dns_rrset_t;

/* packet.c */
/* dns_name_decode - read a (compressed) name at *off into out (dotted,
 * no trailing dot); *off moves past it; 0, or -1 if malformed */
int dns_name_decode(const unsigned char *buf, size_t len, size_t *off,
		    char *out, size_t outlen);
/* dns_negative_ttl - TTL for a negative answer: min(SOA TTL, SOA minimum)
 * from the authority section; -1 if there is no SOA or it is malformed */
long dns_negative_ttl(const unsigned char *abuf, int alen);

/* dns_answer_cname - target of the last CNAME in the answer section
 * (normalized); 0, or -1 if there is none or the reply is malformed */
int dns_answer_cname(const unsigned char *abuf, int alen, char *out, size_t outlen);

/* mx.c */
/* dns_name_normalize - lower-case, strip one trailing dot, check syntax
 * (labels 1..63 of [a-z0-9-_], total <= 253); 0, or -1 */
int dns_name_normalize(const char *in, char *out, size_t outlen);
/* dns_ip_literal - "1.2.3.4", "[1.2.3.4]", "::1", "[IPv6:::1]" into ip;
 * 1 if it is a literal, 0 if not */
int dns_ip_literal(const char *s, dns_ip_t *ip);
/* dns_mx_order - sort by preference, shuffle each run of equal preference
 * (Fisher-Yates with the caller's xorshift state, never 0) */
void dns_mx_order(dns_mx_rr_t *rr, size_t n, uint64_t *rng);
/* dns_rand - xorshift64 step */
uint64_t dns_rand(uint64_t *state);
/* dns_ip_to_sockaddr - fill a sockaddr_in/in6 with port; its length */
socklen_t dns_ip_to_sockaddr(const dns_ip_t *ip, uint16_t port,
			     struct sockaddr_storage *ss);

/* hosts.c - the hosts file, parsed once per resolver */
typedef struct dns_hosts dns_hosts_t;
dns_hosts_t *dns_hosts_load(const char *path);
size_t dns_hosts_lookup(const dns_hosts_t *t, const char *name, dns_ip_t *out, size_t max);
void dns_hosts_free(dns_hosts_t *t);

/* cache.c */
typedef struct dns_cache dns_cache_t;
/* clock: monotonic milliseconds; NULL means CLOCK_MONOTONIC */
typedef long long (*dns_clock_fn)(void);

dns_cache_t *dns_cache_new(size_t max_entries, dns_clock_fn clock);
void dns_cache_free(dns_cache_t *c);
/* dns_cache_get - the live entry for (type, name) or NULL; expired ones are
 * dropped.  Borrowed: valid until the next dns_cache_put/free. */
const dns_rrset_t *dns_cache_get(dns_cache_t *c, int type, const char *name);
/* dns_cache_put - store a deep copy for ttl seconds (replaces); 0 or -1 */
int dns_cache_put(dns_cache_t *c, const char *name, const dns_rrset_t *rs, long ttl);
size_t dns_cache_count(const dns_cache_t *c);
long long dns_cache_now(const dns_cache_t *c);

/* dns_rrset_clear - free an rrset's MX array */
void dns_rrset_clear(dns_rrset_t *rs);
/* dns_rrset_copy - deep copy; 0 or -1 (out of memory) */
int dns_rrset_copy(dns_rrset_t *dst, const dns_rrset_t *src);

#endif
