/*
 * dns/resolver.c - MX / A / AAAA resolution on one c-ares channel per
 * worker thread, driven by the caller's event loop.
 *
 *	dns_resolver_new() / dns_resolver_free() / dns_resolver_set_timeout()
 *	dns_resolve_mx()	RFC 5321 §5 destinations of a domain
 *	dns_resolve_host()	addresses of one host (routes, IP literals)
 *	dns_process_fd() / dns_process_timeout() / dns_next_timeout_ms()
 *	dns_pending() / dns_resolver_stats()
 *
 * Two layers.  A "lookup" is one (type, name) question: answered from the
 * per-resolver cache, or joined to an identical question already in flight
 * (its waiter list), or sent with ares_query().  A "job" is one
 * dns_resolve_*() request: an MX lookup, then A/AAAA lookups for up to
 * DNS_MAX_HOSTS hosts in parallel, then one call of its done callback.
 *
 * A job counts its outstanding lookups in `pending`; a lookup answered from
 * cache completes synchronously, so each stage holds one extra count while
 * it starts lookups and the job only moves on when the count drops to zero.
 * done is therefore called exactly once, either from inside dns_resolve_*()
 * (cache hit, IP literal, bad name, shutdown) or from inside
 * dns_process_*(), or from dns_resolver_free() with "resolver shut down".
 *
 * Caching (see dns_internal.h): positive answers for min(TTL) clamped to
 * 1 s .. 1 day; NXDOMAIN/NODATA for the SOA minimum (RFC 2308) clamped to
 * 1 s .. 1 h, 60 s without an SOA; SERVFAIL/timeouts for 5 s so that a dead
 * domain does not cost every message a full c-ares timeout.
 *
 * Errors reach the caller only as dns_result_t data (status, dsn, why).
 * c-ares status codes never leave this file.
 *
 * dns_resolver_free() logs one line with the counters (event=dns_stats), so
 * a run's DNS cost shows up in its log without the engine asking.
 */
#include <arpa/inet.h>
#include <ares.h>
#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "common/log.h"
#include "dns/dns.h"
#include "dns/dns_internal.h"

#define DNS_CACHE_ENTRIES	10000
#define DNS_TIMEOUT_MS		2000	/* per try, doubled by c-ares per round */
#define DNS_TRIES		2
#define DNS_MX_PARSE_MAX	1024	/* MX records looked at in one reply */
#define DNS_POS_TTL_DEFAULT	300	/* answer whose TTL we could not read */
#define DNS_RCVBUF		(2 * 1024 * 1024)	/* UDP receive buffer, see channel_open */

struct dns_job;

/* one job waiting for one lookup; slot -1 is the MX stage, else a host */
struct waiter {
	struct waiter *next;
	struct dns_job *job;
	int	slot;
};

/* a question on the wire */
struct inflight {
	struct inflight *next, *prev;
	dns_resolver_t *r;
	int	type;
	char	name[256];
	struct waiter *waiters;
};

struct job_host {
	char	name[256];
	uint16_t pref;
	int	temp;			/* a lookup for it tempfailed */
	char	err[80];		/* first reason it got no address */
	size_t	nv4, nv6;
	dns_ip_t v4[DNS_MAX_ADDRS], v6[DNS_MAX_ADDRS];
};

enum job_state { JOB_MX, JOB_ADDR, JOB_ADDR_WAIT, JOB_FAILED };

struct dns_job {
	struct dns_job *next, *prev;
	dns_resolver_t *r;
	dns_done_fn done;
	void	*arg;
	int	is_mx;
	enum job_state state;
	char	domain[256];
	uint16_t port;
	int	pending;
	int	waited;			/* some lookup went to the network */
	int	chased;			/* CNAME hops followed */
	long long t0;			/* monotonic ms at dns_resolve_*() */
	size_t	nhosts;
	struct job_host hosts[DNS_MAX_HOSTS];
	/* JOB_FAILED: the verdict */
	enum dns_status fstatus;
	char	fdsn[12];
	char	fwhy[256];
};

struct dns_resolver {
	ares_channel channel;
	int	have_channel;
	dns_watch_fn watch;
	void	*watch_arg;
	int	inet_protocols;
	sp_hostport_t servers[SP_MAX_DNS_SERVERS];
	size_t	nservers;
	int	timeout_ms, tries;
	dns_cache_t *cache;
	dns_hosts_t *hosts;		/* /etc/hosts, read once; NULL if none */
	struct inflight *inflight;
	struct dns_job *jobs;
	size_t	njobs;
	uint64_t rng;
	int	closing;
	dns_stats_t stats;
};

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void lib_init(void);
static void sock_cb(void *data, ares_socket_t fd, int readable, int writable);
static int channel_open(dns_resolver_t *r, ares_channel *out, char *err, size_t errlen);
static struct dns_job *job_new(dns_resolver_t *r, int is_mx, const char *domain,
			       uint16_t port, dns_done_fn done, void *arg);
static void job_fail(struct dns_job *job, enum dns_status st, const char *dsn,
		     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void job_release(struct dns_job *job);
static void job_step(struct dns_job *job);
static void job_finish(struct dns_job *job);
static void job_deliver(struct dns_job *job, int slot, const dns_rrset_t *rs);
static void job_mx_answer(struct dns_job *job, const dns_rrset_t *rs);
static void job_host_answer(struct dns_job *job, int slot, const dns_rrset_t *rs);
static int job_add_host(struct dns_job *job, const char *name, uint16_t pref);
static void lookup(struct dns_job *job, int type, const char *name, int slot);
static void on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen);
static long rrset_from_reply(dns_resolver_t *r, int type, int status,
			     const unsigned char *abuf, int alen, dns_rrset_t *rs);
static const char *type_name(int type);
static long long mono_ms(void);

/* mono_ms - CLOCK_MONOTONIC in ms, for the wait statistics */
static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* lib_init - c-ares global init, once per process (not thread safe itself) */
static void
lib_init(void)
{
	(void)ares_library_init(ARES_LIB_INIT_ALL);
}

/* sock_cb - c-ares socket state: forwarded as is; (0, 0) precedes close() */
static void
sock_cb(void *data, ares_socket_t fd, int readable, int writable)
{
	dns_resolver_t *r = data;

	if (r->watch != NULL)
		r->watch(r->watch_arg, fd, readable, writable);
}

/* type_name - for reasons */
static const char *
type_name(int type)
{
	switch (type) {
	case DNS_T_MX:
		return "MX";
	case DNS_T_A:
		return "A";
	case DNS_T_AAAA:
		return "AAAA";
	}
	return "?";
}

/* channel_open - a c-ares channel with our options and servers */
static int
channel_open(dns_resolver_t *r, ares_channel *out, char *err, size_t errlen)
{
	struct ares_options o;
	struct ares_addr_port_node nodes[SP_MAX_DNS_SERVERS];
	int rc;
	size_t i;

	memset(&o, 0, sizeof(o));
	o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
	o.timeout = r->timeout_ms;
	o.tries = r->tries;
	o.sock_state_cb = sock_cb;
	o.sock_state_cb_data = r;
	/* A worker starting a thousand sessions sends a thousand questions
	 * on one UDP socket at once; while it is busy with TLS handshakes
	 * the answers pile up, and the default 208 KB buffer dropped
	 * hundreds of them (each drop costs a full 2 s retry).  The kernel
	 * caps this at net.core.rmem_max. */
	o.socket_receive_buffer_size = DNS_RCVBUF;
	rc = ares_init_options(out, &o, ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS |
	    ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB | ARES_OPT_SOCK_RCVBUF);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares init: %s", ares_strerror(rc));
		return -1;
	}
	if (r->nservers == 0)
		return 0;	/* /etc/resolv.conf */
	memset(nodes, 0, sizeof(nodes));
	for (i = 0; i < r->nservers; i++) {
		struct ares_addr_port_node *n = &nodes[i];

		n->next = i + 1 < r->nservers ? &nodes[i + 1] : NULL;
		n->udp_port = n->tcp_port = r->servers[i].port ? r->servers[i].port : 53;
		if (inet_pton(AF_INET, r->servers[i].host, &n->addr.addr4) == 1)
			n->family = AF_INET;
		else if (inet_pton(AF_INET6, r->servers[i].host, &n->addr.addr6) == 1)
			n->family = AF_INET6;
		else {
			snprintf(err, errlen, "DNS server %.64s: not a numeric address",
			    r->servers[i].host);
			ares_destroy(*out);
			return -1;
		}
	}
	rc = ares_set_servers_ports(*out, nodes);
	if (rc != ARES_SUCCESS) {
		snprintf(err, errlen, "c-ares servers: %s", ares_strerror(rc));
		ares_destroy(*out);
		return -1;
	}
	return 0;
}

/* dns_resolver_new - a resolver for one thread; NULL with err set */
dns_resolver_t *
dns_resolver_new(const sp_config_t *cfg, dns_watch_fn watch, void *watch_arg,
		 char *err, size_t errlen)
{
	dns_resolver_t *r;

	pthread_once(&lib_once, lib_init);
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		snprintf(err, errlen, "dns: out of memory");
		return NULL;
	}
	r->watch = watch;
	r->watch_arg = watch_arg;
	r->timeout_ms = DNS_TIMEOUT_MS;
	r->tries = DNS_TRIES;
	if (cfg != NULL) {
		r->inet_protocols = cfg->inet_protocols;
		r->nservers = cfg->ndns_servers < SP_MAX_DNS_SERVERS ?
		    cfg->ndns_servers : SP_MAX_DNS_SERVERS;
		memcpy(r->servers, cfg->dns_servers, sizeof(r->servers));
	}
	if (getrandom(&r->rng, sizeof(r->rng), GRND_NONBLOCK) != (ssize_t)sizeof(r->rng))
		r->rng = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)r;
	r->cache = dns_cache_new(DNS_CACHE_ENTRIES, NULL);
	if (r->cache == NULL) {
		snprintf(err, errlen, "dns: out of memory");
		free(r);
		return NULL;
	}
	r->hosts = dns_hosts_load("/etc/hosts");
	if (channel_open(r, &r->channel, err, errlen) == -1) {
		dns_cache_free(r->cache);
		dns_hosts_free(r->hosts);
		free(r);
		return NULL;
	}
	r->have_channel = 1;
	return r;
}

/* dns_resolver_set_timeout - per-try timeout and tries; takes effect only
 * while nothing is in flight (the channel is rebuilt) */
void
dns_resolver_set_timeout(dns_resolver_t *r, int ms, int tries)
{
	ares_channel ch;
	char err[128];
	int old_ms = r->timeout_ms, old_tries = r->tries;

	if (ms < 1 || tries < 1 || r->inflight != NULL || r->closing)
		return;
	r->timeout_ms = ms;
	r->tries = tries;
	if (channel_open(r, &ch, err, sizeof(err)) == -1) {
		r->timeout_ms = old_ms;
		r->tries = old_tries;
		return;
	}
	ares_destroy(r->channel);
	r->channel = ch;
}

/* dns_resolver_free - answer every pending job with "resolver shut down",
 * then log the counters */
void
dns_resolver_free(dns_resolver_t *r)
{
	sp_logline_t l;

	if (r == NULL)
		return;
	r->closing = 1;
	/* ares_destroy calls every query callback with ARES_EDESTRUCTION
	 * (jobs finish there), then closes its sockets through sock_cb */
	if (r->have_channel)
		ares_destroy(r->channel);
	r->have_channel = 0;
	while (r->jobs != NULL) {
		/* not reachable unless a waiter got lost; never leave a
		 * caller without its callback */
		job_fail(r->jobs, DNS_TEMPFAIL, "4.4.3", "resolver shut down");
		r->jobs->pending = 0;
		job_finish(r->jobs);
	}
	if (sp_log_begin(&l, SP_LOG_INFO, "dns_stats")) {
		sp_log_int(&l, "lookups", (long long)r->stats.lookups);
		sp_log_int(&l, "cache_hits", (long long)r->stats.cache_hits);
		sp_log_int(&l, "queries", (long long)r->stats.queries);
		sp_log_int(&l, "failures", (long long)r->stats.failures);
		sp_log_int(&l, "questions", (long long)r->stats.questions);
		sp_log_int(&l, "question_hits", (long long)r->stats.question_hits);
		sp_log_int(&l, "joined", (long long)r->stats.joined);
		sp_log_int(&l, "waits", (long long)r->stats.waits);
		sp_log_int(&l, "wait_ms_total", (long long)r->stats.wait_ms_total);
		sp_log_int(&l, "wait_ms_max", (long long)r->stats.wait_ms_max);
		sp_log_int(&l, "cached", (long long)dns_cache_count(r->cache));
		sp_log_end(&l);
	}
	dns_cache_free(r->cache);
	dns_hosts_free(r->hosts);
	free(r);
}

/* job_new - a job linked into the resolver; NULL after calling done on OOM */
static struct dns_job *
job_new(dns_resolver_t *r, int is_mx, const char *domain, uint16_t port,
	dns_done_fn done, void *arg)
{
	struct dns_job *job;

	r->stats.lookups++;
	job = calloc(1, sizeof(*job));
	if (job == NULL) {
		dns_result_t res;

		memset(&res, 0, sizeof(res));
		res.status = DNS_TEMPFAIL;
		snprintf(res.dsn, sizeof(res.dsn), "4.3.0");
		snprintf(res.why, sizeof(res.why), "resolver out of memory");
		r->stats.failures++;
		done(arg, &res);
		return NULL;
	}
	job->r = r;
	job->is_mx = is_mx;
	job->done = done;
	job->arg = arg;
	job->port = port;
	job->pending = 1;	/* the stage's own hold */
	job->t0 = mono_ms();
	snprintf(job->domain, sizeof(job->domain), "%s", domain ? domain : "");
	job->next = r->jobs;
	if (r->jobs)
		r->jobs->prev = job;
	r->jobs = job;
	r->njobs++;
	return job;
}

/* job_fail - record the job's verdict; the first one wins */
static void
job_fail(struct dns_job *job, enum dns_status st, const char *dsn, const char *fmt, ...)
{
	va_list ap;

	if (job->state == JOB_FAILED)
		return;
	job->state = JOB_FAILED;
	job->fstatus = st;
	snprintf(job->fdsn, sizeof(job->fdsn), "%s", dsn);
	va_start(ap, fmt);
	vsnprintf(job->fwhy, sizeof(job->fwhy), fmt, ap);
	va_end(ap);
}

/* job_add_host - append a host to try; 0, or -1 when full */
static int
job_add_host(struct dns_job *job, const char *name, uint16_t pref)
{
	struct job_host *h;

	if (job->nhosts >= DNS_MAX_HOSTS)
		return -1;
	h = &job->hosts[job->nhosts++];
	memset(h, 0, sizeof(*h));
	snprintf(h->name, sizeof(h->name), "%s", name);
	h->pref = pref;
	return 0;
}

/* dns_resolve_mx - see dns.h; done may run before this returns */
void
dns_resolve_mx(dns_resolver_t *r, const char *domain, uint16_t port,
	       dns_done_fn done, void *arg)
{
	struct dns_job *job;
	char name[256];
	dns_ip_t ip;

	job = job_new(r, 1, domain, port, done, arg);
	if (job == NULL)
		return;
	if (dns_ip_literal(domain, &ip)) {
		/* user@[1.2.3.4]: no DNS at all */
		(void)job_add_host(job, domain, 0);
		job->state = JOB_ADDR;
	} else if (dns_name_normalize(domain, name, sizeof(name)) == -1) {
		job_fail(job, DNS_PERMFAIL, "5.1.2", "invalid domain name \"%.200s\"",
		    domain ? domain : "");
	} else {
		snprintf(job->domain, sizeof(job->domain), "%s", name);
		lookup(job, DNS_T_MX, name, -1);
	}
	job_release(job);
}

/* dns_resolve_host - see dns.h; done may run before this returns */
void
dns_resolve_host(dns_resolver_t *r, const char *host, uint16_t port,
		 dns_done_fn done, void *arg)
{
	struct dns_job *job;
	char name[256];
	dns_ip_t ip;

	job = job_new(r, 0, host, port, done, arg);
	if (job == NULL)
		return;
	if (dns_ip_literal(host, &ip)) {
		(void)job_add_host(job, host, 0);
	} else if (dns_name_normalize(host, name, sizeof(name)) == -1) {
		job_fail(job, DNS_PERMFAIL, "5.1.2", "invalid host name \"%.200s\"",
		    host ? host : "");
	} else {
		snprintf(job->domain, sizeof(job->domain), "%s", name);
		(void)job_add_host(job, name, 0);
	}
	if (job->state != JOB_FAILED)
		job->state = JOB_ADDR;
	job_release(job);
}

/* job_release - one lookup (or a stage's hold) done; advance at zero */
static void
job_release(struct dns_job *job)
{
	if (--job->pending == 0)
		job_step(job);
}

/* job_step - everything the current stage waited for has arrived */
static void
job_step(struct dns_job *job)
{
	dns_resolver_t *r = job->r;
	size_t i;

	if (job->state != JOB_ADDR) {
		job_finish(job);
		return;
	}
	job->state = JOB_ADDR_WAIT;
	job->pending = 1;
	for (i = 0; i < job->nhosts; i++) {
		struct job_host *h = &job->hosts[i];
		dns_ip_t ip;

		if (dns_ip_literal(h->name, &ip)) {
			if (ip.family == AF_INET && r->inet_protocols != 6)
				h->v4[h->nv4++] = ip;
			else if (ip.family == AF_INET6 && r->inet_protocols != 4)
				h->v6[h->nv6++] = ip;
			else
				snprintf(h->err, sizeof(h->err), "address family disabled");
			continue;
		}
		/* The hosts file first, as the system resolver would. */
		dns_ip_t fip[DNS_MAX_ADDRS];
		size_t nf = dns_hosts_lookup(r->hosts, h->name, fip, DNS_MAX_ADDRS);

		for (size_t k = 0; k < nf; k++) {
			if (fip[k].family == AF_INET && r->inet_protocols != 6 && h->nv4 < DNS_MAX_ADDRS)
				h->v4[h->nv4++] = fip[k];
			else if (fip[k].family == AF_INET6 && r->inet_protocols != 4 &&
			    h->nv6 < DNS_MAX_ADDRS)
				h->v6[h->nv6++] = fip[k];
		}
		if (nf > 0)
			continue;
		if (r->inet_protocols != 6)
			lookup(job, DNS_T_A, h->name, (int)i);
		if (r->inet_protocols != 4)
			lookup(job, DNS_T_AAAA, h->name, (int)i);
	}
	job_release(job);
}

/* lookup - answer (type, name) for job from cache, in-flight query or wire */
static void
lookup(struct dns_job *job, int type, const char *name, int slot)
{
	dns_resolver_t *r = job->r;
	const dns_rrset_t *cached;
	struct inflight *q;
	struct waiter *w;

	job->pending++;
	if (r->closing) {
		dns_rrset_t rs;

		memset(&rs, 0, sizeof(rs));
		rs.type = type;
		rs.rc = DNS_RC_TEMP;
		snprintf(rs.err, sizeof(rs.err), "resolver shut down");
		job_deliver(job, slot, &rs);
		return;
	}
	r->stats.questions++;
	cached = dns_cache_get(r->cache, type, name);
	if (cached != NULL) {
		dns_rrset_t rs;

		/* a copy: delivering may start queries whose synchronous
		 * failures write to the cache and evict the original */
		if (dns_rrset_copy(&rs, cached) == 0) {
			r->stats.question_hits++;
			job_deliver(job, slot, &rs);
			dns_rrset_clear(&rs);
			return;
		}
	}
	job->waited = 1;
	w = calloc(1, sizeof(*w));
	if (w == NULL)
		goto oom;
	w->job = job;
	w->slot = slot;
	for (q = r->inflight; q != NULL; q = q->next) {
		/* O(in flight): a few hundred at most per worker */
		if (q->type == type && strcmp(q->name, name) == 0) {
			r->stats.joined++;
			w->next = q->waiters;
			q->waiters = w;
			return;
		}
	}
	q = calloc(1, sizeof(*q));
	if (q == NULL) {
		free(w);
		goto oom;
	}
	q->r = r;
	q->type = type;
	snprintf(q->name, sizeof(q->name), "%s", name);
	q->waiters = w;
	q->next = r->inflight;
	if (r->inflight)
		r->inflight->prev = q;
	r->inflight = q;
	r->stats.queries++;
	/* may call on_answer before returning (no servers, out of memory) */
	ares_query(r->channel, q->name, 1 /* C_IN */, type, on_answer, q);
	return;
oom:
	{
		dns_rrset_t rs;

		memset(&rs, 0, sizeof(rs));
		rs.type = type;
		rs.rc = DNS_RC_TEMP;
		snprintf(rs.err, sizeof(rs.err), "out of memory");
		job_deliver(job, slot, &rs);
	}
}

/* rrset_from_reply - turn a c-ares outcome into an rrset; its cache TTL,
 * or -1 when it must not be cached */
static long
rrset_from_reply(dns_resolver_t *r, int type, int status, const unsigned char *abuf,
		 int alen, dns_rrset_t *rs)
{
	long ttl;

	memset(rs, 0, sizeof(*rs));
	rs->type = type;
	if (status == ARES_SUCCESS) {
		if (type == DNS_T_MX) {
			struct ares_mx_reply *mx = NULL, *m;
			size_t n = 0, k = 0;

			status = ares_parse_mx_reply(abuf, alen, &mx);
			if (status == ARES_SUCCESS) {
				for (m = mx; m != NULL && n < DNS_MX_PARSE_MAX; m = m->next)
					n++;
				rs->mx = calloc(n ? n : 1, sizeof(*rs->mx));
				if (rs->mx == NULL) {
					ares_free_data(mx);
					rs->rc = DNS_RC_TEMP;
					snprintf(rs->err, sizeof(rs->err), "out of memory");
					return -1;
				}
				for (m = mx; m != NULL && k < n; m = m->next) {
					dns_mx_rr_t *o = &rs->mx[k];
					dns_ip_t ip;

					o->pref = m->priority;
					if (m->host == NULL || m->host[0] == '\0' ||
					    strcmp(m->host, ".") == 0)
						o->name[0] = '\0';	/* null MX */
					else if (dns_ip_literal(m->host, &ip))
						snprintf(o->name, sizeof(o->name), "%s", m->host);
					else if (dns_name_normalize(m->host, o->name,
					    sizeof(o->name)) == -1)
						continue;	/* garbage exchange: skip */
					k++;
				}
				ares_free_data(mx);
				/* keep the lowest preferences */
				dns_mx_order(rs->mx, k, &r->rng);
				rs->nmx = k < DNS_MX_KEEP ? k : DNS_MX_KEEP;
				if (rs->nmx == 0) {
					dns_rrset_clear(rs);
					status = ARES_ENODATA;
				}
			}
		} else if (type == DNS_T_A) {
			struct ares_addrttl at[DNS_MAX_ADDRS];
			int n = DNS_MAX_ADDRS, i;

			status = ares_parse_a_reply(abuf, alen, NULL, at, &n);
			if (status == ARES_SUCCESS && n <= 0)
				status = ARES_ENODATA;
			for (i = 0; status == ARES_SUCCESS && i < n; i++) {
				rs->ip[i].family = AF_INET;
				memcpy(rs->ip[i].addr, &at[i].ipaddr, 4);
			}
			if (status == ARES_SUCCESS)
				rs->nip = (size_t)n;
		} else {
			struct ares_addr6ttl at[DNS_MAX_ADDRS];
			int n = DNS_MAX_ADDRS, i;

			status = ares_parse_aaaa_reply(abuf, alen, NULL, at, &n);
			if (status == ARES_SUCCESS && n <= 0)
				status = ARES_ENODATA;
			for (i = 0; status == ARES_SUCCESS && i < n; i++) {
				rs->ip[i].family = AF_INET6;
				memcpy(rs->ip[i].addr, &at[i].ip6addr, 16);
			}
			if (status == ARES_SUCCESS)
				rs->nip = (size_t)n;
		}
	}
	if (status == ARES_ENODATA && dns_answer_cname(abuf, alen, rs->cname,
	    sizeof(rs->cname)) == -1)
		rs->cname[0] = '\0';
	switch (status) {
	case ARES_SUCCESS:
		rs->rc = DNS_RC_OK;
		ttl = dns_answer_min_ttl(abuf, alen);
		if (ttl < 0)
			ttl = DNS_POS_TTL_DEFAULT;
		return ttl < 1 ? 1 : ttl > DNS_TTL_MAX ? DNS_TTL_MAX : ttl;
	case ARES_ENODATA:
	case ARES_ENOTFOUND:
		rs->rc = status == ARES_ENODATA ? DNS_RC_NODATA : DNS_RC_NXDOMAIN;
		snprintf(rs->err, sizeof(rs->err), "%s",
		    status == ARES_ENODATA ? "no record" : "NXDOMAIN");
		ttl = dns_negative_ttl(abuf, alen);
		if (ttl < 0)
			ttl = DNS_NEG_TTL_DEFAULT;
		return ttl < 1 ? 1 : ttl > DNS_NEG_TTL_MAX ? DNS_NEG_TTL_MAX : ttl;
	case ARES_EDESTRUCTION:
	case ARES_ECANCELLED:
		rs->rc = DNS_RC_TEMP;
		snprintf(rs->err, sizeof(rs->err), "resolver shut down");
		return -1;
	case ARES_ESERVFAIL:
		snprintf(rs->err, sizeof(rs->err), "SERVFAIL");
		break;
	case ARES_EREFUSED:
		snprintf(rs->err, sizeof(rs->err), "REFUSED");
		break;
	case ARES_ETIMEOUT:
		snprintf(rs->err, sizeof(rs->err), "timeout");
		break;
	case ARES_ECONNREFUSED:
		/* also what c-ares reports once every server said REFUSED */
		snprintf(rs->err, sizeof(rs->err), "DNS server refused or unreachable");
		break;
	case ARES_EBADRESP:
	case ARES_EFORMERR:
		snprintf(rs->err, sizeof(rs->err), "malformed reply");
		break;
	case ARES_ENOMEM:
		rs->rc = DNS_RC_TEMP;
		snprintf(rs->err, sizeof(rs->err), "out of memory");
		return -1;
	default:
		snprintf(rs->err, sizeof(rs->err), "%s", ares_strerror(status));
		break;
	}
	rs->rc = DNS_RC_TEMP;
	return DNS_TEMP_TTL;
}

/* on_answer - c-ares callback: cache the answer, wake every waiter */
static void
on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct inflight *q = arg;
	dns_resolver_t *r = q->r;
	dns_rrset_t rs;
	struct waiter *w;
	long ttl;

	(void)timeouts;
	ttl = rrset_from_reply(r, q->type, status, abuf, alen, &rs);
	/* unlink first: a waiter's done callback may ask again */
	if (q->prev)
		q->prev->next = q->next;
	else
		r->inflight = q->next;
	if (q->next)
		q->next->prev = q->prev;
	if (ttl >= 0 && !r->closing)
		(void)dns_cache_put(r->cache, q->name, &rs, ttl);
	while ((w = q->waiters) != NULL) {
		q->waiters = w->next;
		job_deliver(w->job, w->slot, &rs);
		free(w);
	}
	dns_rrset_clear(&rs);
	free(q);
}

/* job_deliver - one lookup's answer for job */
static void
job_deliver(struct dns_job *job, int slot, const dns_rrset_t *rs)
{
	/* an alias the server did not chase: ask for the target ourselves */
	if (rs->rc == DNS_RC_NODATA && rs->cname[0] != '\0' &&
	    job->chased < DNS_CNAME_MAX && job->state != JOB_FAILED) {
		job->chased++;
		lookup(job, rs->type, rs->cname, slot);
		job_release(job);
		return;
	}
	if (slot < 0)
		job_mx_answer(job, rs);
	else
		job_host_answer(job, slot, rs);
	job_release(job);
}

/* job_mx_answer - MX stage: pick the hosts, or decide the job */
static void
job_mx_answer(struct dns_job *job, const dns_rrset_t *rs)
{
	dns_mx_rr_t *mx;
	size_t i, n = 0, nnull = 0;

	switch (rs->rc) {
	case DNS_RC_NXDOMAIN:
		job_fail(job, DNS_PERMFAIL, "5.1.2", "domain not found: %s (NXDOMAIN)",
		    job->domain);
		return;
	case DNS_RC_TEMP:
		job_fail(job, DNS_TEMPFAIL, "4.4.3", "MX lookup for %s failed: %s",
		    job->domain, rs->err);
		return;
	case DNS_RC_NODATA:
		/* RFC 5321 §5.1: no MX, the domain is its own implicit MX */
		(void)job_add_host(job, job->domain, 0);
		job->state = JOB_ADDR;
		return;
	case DNS_RC_OK:
		break;
	}
	mx = calloc(rs->nmx ? rs->nmx : 1, sizeof(*mx));
	if (mx == NULL) {
		job_fail(job, DNS_TEMPFAIL, "4.3.0", "resolver out of memory");
		return;
	}
	for (i = 0; i < rs->nmx; i++) {
		if (rs->mx[i].name[0] == '\0')
			nnull++;	/* "." mixed with real MX: ignore it */
		else
			mx[n++] = rs->mx[i];
	}
	if (n == 0 && nnull > 0) {
		free(mx);
		job_fail(job, DNS_PERMFAIL, "5.1.10",
		    "null MX (RFC 7505): %s accepts no mail", job->domain);
		return;
	}
	dns_mx_order(mx, n, &job->r->rng);
	for (i = 0; i < n && job->nhosts < DNS_MAX_HOSTS; i++)
		(void)job_add_host(job, mx[i].name, mx[i].pref);
	free(mx);
	job->state = JOB_ADDR;
}

/* job_host_answer - A or AAAA for host slot */
static void
job_host_answer(struct dns_job *job, int slot, const dns_rrset_t *rs)
{
	struct job_host *h;
	size_t i;

	if (slot < 0 || (size_t)slot >= job->nhosts)
		return;
	h = &job->hosts[slot];
	if (rs->rc != DNS_RC_OK) {
		if (rs->rc == DNS_RC_TEMP)
			h->temp = 1;
		if (h->err[0] == '\0' || rs->rc == DNS_RC_TEMP)
			snprintf(h->err, sizeof(h->err), "%s %.60s", type_name(rs->type), rs->err);
		return;
	}
	for (i = 0; i < rs->nip && i < DNS_MAX_ADDRS; i++) {
		if (rs->ip[i].family == AF_INET && h->nv4 < DNS_MAX_ADDRS)
			h->v4[h->nv4++] = rs->ip[i];
		else if (rs->ip[i].family == AF_INET6 && h->nv6 < DNS_MAX_ADDRS)
			h->v6[h->nv6++] = rs->ip[i];
	}
}

/* job_finish - build the result, call done once, free the job */
static void
job_finish(struct dns_job *job)
{
	dns_resolver_t *r = job->r;
	dns_result_t *res;
	size_t i;
	int anytemp = 0;

	res = calloc(1, sizeof(*res));
	if (job->prev)
		job->prev->next = job->next;
	else
		r->jobs = job->next;
	if (job->next)
		job->next->prev = job->prev;
	r->njobs--;
	if (res == NULL) {
		dns_result_t small;

		/* no memory for a full result: still answer, hostless */
		memset(&small, 0, sizeof(small));
		small.status = DNS_TEMPFAIL;
		snprintf(small.dsn, sizeof(small.dsn), "4.3.0");
		snprintf(small.why, sizeof(small.why), "resolver out of memory");
		r->stats.failures++;
		job->done(job->arg, &small);
		free(job);
		return;
	}
	if (r->closing) {
		/* whatever stage it was in, the reason is the shutdown */
		job->state = JOB_MX;
		job_fail(job, DNS_TEMPFAIL, "4.4.3", "resolver shut down");
	}
	if (job->state == JOB_FAILED) {
		res->status = job->fstatus;
		memcpy(res->dsn, job->fdsn, sizeof(res->dsn));
		memcpy(res->why, job->fwhy, sizeof(res->why));
		goto out;
	}
	for (i = 0; i < job->nhosts; i++) {
		struct job_host *h = &job->hosts[i];
		dns_host_t *o;
		size_t a = 0, b = 0;

		if (h->nv4 + h->nv6 == 0) {
			anytemp |= h->temp;
			continue;
		}
		o = &res->hosts[res->nhosts++];
		snprintf(o->name, sizeof(o->name), "%s", h->name);
		o->pref = h->pref;
		o->port = job->port;
		/* families interleaved, IPv4 first (RFC 8305 §4 spirit,
		 * but v4 first: it is what works in more places today) */
		while (o->naddr < DNS_MAX_ADDRS && (a < h->nv4 || b < h->nv6)) {
			const dns_ip_t *ip;

			if (a < h->nv4 && (a <= b || b >= h->nv6))
				ip = &h->v4[a++];
			else
				ip = &h->v6[b++];
			o->addrlen[o->naddr] = dns_ip_to_sockaddr(ip, job->port,
			    &o->addr[o->naddr]);
			o->naddr++;
		}
	}
	if (res->nhosts == 0) {
		size_t len;

		res->status = anytemp ? DNS_TEMPFAIL : DNS_PERMFAIL;
		snprintf(res->dsn, sizeof(res->dsn), anytemp ? "4.4.3" : "5.4.4");
		len = (size_t)snprintf(res->why, sizeof(res->why), job->is_mx ?
		    "no address for any MX host of %s" : "no address for host %s",
		    job->domain);
		for (i = 0; i < job->nhosts && len < sizeof(res->why); i++)
			len += (size_t)snprintf(res->why + len, sizeof(res->why) - len,
			    "%s%s: %s", i ? "; " : " (", job->hosts[i].name,
			    job->hosts[i].err[0] ? job->hosts[i].err : "no address");
		if (job->nhosts > 0 && len < sizeof(res->why))
			snprintf(res->why + len, sizeof(res->why) - len, ")");
	}
out:
	if (job->waited) {
		long long ms = mono_ms() - job->t0;
		uint64_t ums = ms > 0 ? (uint64_t)ms : 0;

		r->stats.waits++;
		r->stats.wait_ms_total += ums;
		if (ums > r->stats.wait_ms_max)
			r->stats.wait_ms_max = ums;
	}
	res->from_cache = res->status == DNS_OK && !job->waited;
	if (res->status != DNS_OK)
		r->stats.failures++;
	else if (!job->waited)
		r->stats.cache_hits++;
	job->done(job->arg, res);
	free(res);
	free(job);
}

/* dns_process_fd - fd is ready; c-ares reads/writes it and may call done */
void
dns_process_fd(dns_resolver_t *r, int fd, int readable, int writable)
{
	if (!r->have_channel)
		return;
	ares_process_fd(r->channel, readable ? fd : ARES_SOCKET_BAD,
	    writable ? fd : ARES_SOCKET_BAD);
}

/* dns_process_timeout - the timer from dns_next_timeout_ms() expired */
void
dns_process_timeout(dns_resolver_t *r)
{
	if (!r->have_channel)
		return;
	ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

/* dns_next_timeout_ms - when c-ares next needs dns_process_timeout */
int
dns_next_timeout_ms(dns_resolver_t *r)
{
	struct timeval tv, *tvp;
	long long ms;

	if (!r->have_channel)
		return -1;
	tvp = ares_timeout(r->channel, NULL, &tv);
	if (tvp == NULL)
		return -1;
	ms = (long long)tvp->tv_sec * 1000 + (tvp->tv_usec + 999) / 1000;
	return ms > INT_MAX ? INT_MAX : ms < 0 ? 0 : (int)ms;
}

/* dns_pending - dns_resolve_*() requests whose done has not run yet */
size_t
dns_pending(const dns_resolver_t *r)
{
	return r->njobs;
}

/* dns_resolver_stats - counters since creation */
void
dns_resolver_stats(const dns_resolver_t *r, dns_stats_t *out)
{
	*out = r->stats;
}
