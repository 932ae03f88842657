/*
 * dns/dns.h - asynchronous MX / A / AAAA resolution with c-ares, driven by
 * the caller's event loop (the worker's io_uring), with RFC 5321 §5 rules
 * and a TTL-honouring cache.
 *
 * One dns_resolver_t per worker thread (one c-ares channel each).  The
 * resolver never blocks and owns no event loop: it tells the caller which
 * sockets to watch through the watch callback, and the caller reports
 * readiness with dns_process_fd() and timer expiry with dns_process_timeout().
 * A watch call with read=0, write=0 means "stop watching fd": c-ares closes
 * it right after, so a pending poll on it must be cancelled.
 *
 * Results come back through the done callback, called from inside
 * dns_process_*() or (cache hit) from inside dns_resolve_*() itself.
 *
 * Details (dns/resolver.c):
 * - done runs exactly once per request.  It may run before dns_resolve_*()
 *   returns: full cache hit, IP literal, invalid name, out of memory.
 *   It may call dns_resolve_*() again; it must not free the resolver.
 * - dns_resolver_free() calls done ("resolver shut down", 4.4.3) for every
 *   pending request and watch(fd, 0, 0) for every open socket before it
 *   returns.
 * - After any dns_resolve_*() or dns_process_*(), re-read
 *   dns_next_timeout_ms() and re-arm the timer; -1 means no timer needed.
 */
#ifndef SP_DNS_DNS_H
#define SP_DNS_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include "common/config.h"

#define DNS_MAX_HOSTS	5	/* MX hosts tried, like Postfix's smtp_mx_address_limit order */
#define DNS_MAX_ADDRS	8	/* addresses per host */

enum dns_status {
	DNS_OK = 0,
	DNS_TEMPFAIL,		/* SERVFAIL, timeout, refused: defer 4.4.3 */
	DNS_PERMFAIL,		/* NXDOMAIN 5.1.2, null MX 5.1.10, no address: bounce */
};

typedef struct dns_host {
	char	name[256];	/* MX host name (verified against the certificate) */
	uint16_t pref;		/* MX preference; 0 for implicit MX and routes */
	uint16_t port;
	size_t	naddr;
	struct sockaddr_storage addr[DNS_MAX_ADDRS];	/* port filled in */
	socklen_t addrlen[DNS_MAX_ADDRS];
} dns_host_t;

typedef struct dns_result {
	enum dns_status status;
	char	dsn[12];	/* "4.4.3", "5.1.2", "5.1.10" when not OK */
	char	why[256];	/* human reason: "null MX (RFC 7505) for example.org" */
	size_t	nhosts;
	dns_host_t hosts[DNS_MAX_HOSTS];	/* in the order to try them */
	int	from_cache;
} dns_result_t;

typedef struct dns_resolver dns_resolver_t;

/* watch: start/stop watching fd for readability/writability */
typedef void (*dns_watch_fn)(void *arg, int fd, int read, int write);
/* done: result is borrowed for the duration of the call */
typedef void (*dns_done_fn)(void *arg, const dns_result_t *result);

/* dns_resolver_new - a resolver for one thread; NULL with err set */
dns_resolver_t *dns_resolver_new(const sp_config_t *cfg, dns_watch_fn watch, void *watch_arg,
				 char *err, size_t errlen);
/* dns_resolver_free - cancels pending queries (their done is called with
 * DNS_TEMPFAIL "resolver shut down") */
void dns_resolver_free(dns_resolver_t *r);

/* dns_resolve_mx - destinations for mail to `domain` on `port`: MX hosts in
 * order (preference, equal ones shuffled), each with addresses; implicit MX;
 * null MX; CNAME/IP literal tolerated. */
void dns_resolve_mx(dns_resolver_t *r, const char *domain, uint16_t port,
		    dns_done_fn done, void *arg);
/* dns_resolve_host - one host (a route's host name or IP literal): A/AAAA */
void dns_resolve_host(dns_resolver_t *r, const char *host, uint16_t port,
		      dns_done_fn done, void *arg);

/* dns_resolver_set_timeout - c-ares per-try timeout (ms; doubled each
 * round) and tries; default 2000 ms, 2 tries.  Only takes effect while no
 * query is in flight (added for tests and tuning) */
void dns_resolver_set_timeout(dns_resolver_t *r, int ms, int tries);

/* Event loop hooks */
void dns_process_fd(dns_resolver_t *r, int fd, int readable, int writable);
void dns_process_timeout(dns_resolver_t *r);
/* dns_next_timeout_ms - ms until c-ares wants dns_process_timeout, -1 none */
int dns_next_timeout_ms(dns_resolver_t *r);
/* dns_pending - queries in flight */
size_t dns_pending(const dns_resolver_t *r);

typedef struct dns_stats {
	uint64_t lookups, cache_hits, failures;
	uint64_t queries;	/* DNS questions sent on the wire (added) */
	/* (added) per (type, name) question, MX, A or AAAA, that a lookup
	 * needed: how many, how many the cache answered, how many joined an
	 * identical question already in flight; the rest are `queries` */
	uint64_t questions, question_hits, joined;
	/* (added) lookups that waited for the network: how many, total and
	 * longest time from dns_resolve_*() to done, in ms (event loop delays
	 * included) */
	uint64_t waits, wait_ms_total, wait_ms_max;
} dns_stats_t;
void dns_resolver_stats(const dns_resolver_t *r, dns_stats_t *out);

/* Pure helpers, exposed for tests and fuzzing */
/* dns_mx_ttl - minimum TTL of the answer RRs of a raw DNS reply; -1 if malformed */
long dns_answer_min_ttl(const unsigned char *abuf, int alen);

#endif
