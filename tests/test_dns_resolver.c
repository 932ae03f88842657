/*
 * tests/test_dns_resolver.c - the resolver against a real DNS server
 * (unbound, started through tests/lib/dns-server.sh on a private port),
 * driven by a small poll() loop standing in for the engine's ring.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dns/dns.h"

#define DNS_SERVER_SH SP_TEST_DATA "/../lib/dns-server.sh"

#define MAXW 64

struct watched {
	int	fd, rd, wr;
};

/* what the fake event loop knows */
static struct watched w[MAXW];
static size_t nw;
static int saw_tcp, saw_udp;
static char dir[64];
static int port;

struct outcome {
	int	calls;
	dns_result_t res;
};

static void on_watch(void *arg, int fd, int rd, int wr);
static void on_done(void *arg, const dns_result_t *res);
static void server_start(void);
static void server_stop(void);
static dns_resolver_t *resolver(int inet);
static void run(dns_resolver_t *r, struct outcome *o, int n, int max_ms);
static long long now_ms(void);
static const char *addr_str(const dns_host_t *h, size_t i, char *buf, size_t len);

/* on_watch - the engine's side: remember which fds to poll */
static void
on_watch(void *arg, int fd, int rd, int wr)
{
	size_t i;
	int type = 0;
	socklen_t tl = sizeof(type);

	(void)arg;
	for (i = 0; i < nw; i++)
		if (w[i].fd == fd)
			break;
	if (!rd && !wr) {
		if (i < nw)
			w[i] = w[--nw];
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0) {
		if (type == SOCK_STREAM)
			saw_tcp = 1;
		else if (type == SOCK_DGRAM)
			saw_udp = 1;
	}
	if (i == nw) {
		cr_assert_lt(nw, MAXW);
		nw++;
	}
	w[i].fd = fd;
	w[i].rd = rd;
	w[i].wr = wr;
}

/* on_done - record the (only) result */
static void
on_done(void *arg, const dns_result_t *res)
{
	struct outcome *o = arg;

	o->calls++;
	o->res = *res;
}

/* now_ms - monotonic ms */
static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* server_start - unbound on a private port with the test zone */
static void
server_start(void)
{
	char rrfile[128], cmd[512];
	FILE *fp;
	int i, attempt;

	snprintf(dir, sizeof(dir), "/tmp/sp-dns-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(rrfile, sizeof(rrfile), "%s/records", dir);
	fp = fopen(rrfile, "w");
	cr_assert_not_null(fp);
	fputs("mx.test. 300 IN MX 10 mx1.mx.test.\n"
	    "mx.test. 300 IN MX 20 mx2.mx.test.\n"
	    "mx.test. 300 IN MX 5 MX0.mx.test.\n"
	    "mx0.mx.test. 300 IN A 127.0.0.10\n"
	    "mx1.mx.test. 300 IN A 127.0.0.11\n"
	    "mx2.mx.test. 300 IN A 127.0.0.12\n"
	    "eq.test. 300 IN MX 10 a.eq.test.\n"
	    "eq.test. 300 IN MX 10 b.eq.test.\n"
	    "a.eq.test. 300 IN A 127.0.1.1\n"
	    "b.eq.test. 300 IN A 127.0.1.2\n"
	    "implicit.test. 300 IN A 127.0.2.1\n"
	    "both.test. 300 IN A 127.0.2.2\n"
	    "both.test. 300 IN AAAA ::1\n"
	    "null.test. 300 IN MX 0 .\n"
	    "noaddr.test. 300 IN MX 10 gone.noaddr.test.\n"
	    "slowaddr.test. 300 IN MX 10 h.timeout.test.\n"
	    "partial.test. 300 IN MX 10 gone.partial.test.\n"
	    "partial.test. 300 IN MX 20 ok.partial.test.\n"
	    "ok.partial.test. 300 IN A 127.0.3.1\n"
	    "lit.test. 300 IN MX 10 127.0.4.1.\n"
	    "alias.test. 300 IN CNAME mx.test.\n", fp);
	/* 40 MX with long names: far more than 512 bytes, so TCP */
	for (i = 0; i < 40; i++) {
		fprintf(fp, "big.test. 300 IN MX %d host-with-a-rather-long-name-%02d.big.test.\n",
		    i, i);
		fprintf(fp, "host-with-a-rather-long-name-%02d.big.test. 300 IN A 127.0.5.%d\n",
		    i, i + 1);
	}
	fclose(fp);
	for (attempt = 0; attempt < 20; attempt++) {
		port = 20000 + (getpid() * 7 + attempt * 131) % 20000;
		snprintf(cmd, sizeof(cmd), "bash %s start %s %d %s >%s/start.log 2>&1",
		    DNS_SERVER_SH, dir, port, rrfile, dir);
		if (system(cmd) == 0)
			return;
	}
	cr_assert_fail("could not start unbound (see %s)", dir);
}

/* server_stop - stop unbound and remove its directory */
static void
server_stop(void)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "bash %s stop %s; rm -rf %s",
	    DNS_SERVER_SH, dir, dir);
	(void)system(cmd);
}

/* resolver - a resolver pointed at our server, short timeouts */
static dns_resolver_t *
resolver(int inet)
{
	sp_config_t *cfg = calloc(1, sizeof(*cfg));
	char err[256];
	dns_resolver_t *r;

	cr_assert_not_null(cfg);
	snprintf(cfg->dns_servers[0].host, sizeof(cfg->dns_servers[0].host), "127.0.0.1");
	cfg->dns_servers[0].port = (uint16_t)port;
	cfg->ndns_servers = 1;
	cfg->inet_protocols = inet;
	r = dns_resolver_new(cfg, on_watch, NULL, err, sizeof(err));
	free(cfg);
	cr_assert_not_null(r, "dns_resolver_new: %s", err);
	dns_resolver_set_timeout(r, 200, 2);
	return r;
}

/* run - poll until n outcomes have their callback, at most max_ms */
static void
run(dns_resolver_t *r, struct outcome *o, int n, int max_ms)
{
	long long deadline = now_ms() + max_ms;

	for (;;) {
		struct pollfd pfd[MAXW];
		size_t i, np = nw;
		int k, done = 1, t, rc;

		for (k = 0; k < n; k++)
			if (o[k].calls == 0)
				done = 0;
		if (done)
			return;
		cr_assert_lt(now_ms(), deadline, "resolver did not finish in %d ms", max_ms);
		for (i = 0; i < np; i++) {
			pfd[i].fd = w[i].fd;
			pfd[i].events = (short)((w[i].rd ? POLLIN : 0) | (w[i].wr ? POLLOUT : 0));
			pfd[i].revents = 0;
		}
		t = dns_next_timeout_ms(r);
		if (t < 0 || t > 100)
			t = 100;
		rc = poll(pfd, np, t);
		cr_assert(rc >= 0 || errno == EINTR);
		if (rc <= 0) {
			dns_process_timeout(r);
			continue;
		}
		for (i = 0; i < np; i++)
			if (pfd[i].revents)
				dns_process_fd(r, pfd[i].fd,
				    (pfd[i].revents & (POLLIN | POLLERR | POLLHUP)) != 0,
				    (pfd[i].revents & POLLOUT) != 0);
	}
}

/* addr_str - numeric form of a host's i-th address, with port */
static const char *
addr_str(const dns_host_t *h, size_t i, char *buf, size_t len)
{
	char ip[64];

	if (h->addr[i].ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)&h->addr[i];

		inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, ntohs(s->sin_port));
	} else {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&h->addr[i];

		inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, ntohs(s->sin6_port));
	}
	return buf;
}

TestSuite(dns_resolver, .init = server_start, .fini = server_stop, .timeout = 60);

Test(dns_resolver, mx_hosts_come_in_preference_order_with_addresses)
{
	dns_resolver_t *r = resolver(4);
	struct outcome o = { 0 };
	char a[80];

	dns_resolve_mx(r, "MX.Test.", 2525, on_done, &o);
	run(r, &o, 1, 5000);
	cr_assert_eq(o.calls, 1);
	cr_assert_eq(o.res.status, DNS_OK, "%s %s", o.res.dsn, o.res.why);
	cr_assert_eq(o.res.nhosts, 3);
	cr_assert_str_eq(o.res.hosts[0].name, "mx0.mx.test");
	cr_assert_eq(o.res.hosts[0].pref, 5);
	cr_assert_str_eq(o.res.hosts[1].name, "mx1.mx.test");
	cr_assert_str_eq(o.res.hosts[2].name, "mx2.mx.test");
	cr_assert_eq(o.res.hosts[0].naddr, 1);
	cr_assert_str_eq(addr_str(&o.res.hosts[0], 0, a, sizeof(a)), "127.0.0.10:2525");
	cr_assert_eq(o.res.hosts[0].addrlen[0], sizeof(struct sockaddr_in));
	cr_assert_eq(o.res.hosts[2].port, 2525);
	cr_assert_eq(o.res.from_cache, 0);
	dns_resolver_free(r);
}

Test(dns_resolver, equal_preferences_are_tried_in_both_orders)
{
	int first_a = 0, first_b = 0, i;
	dns_resolver_t *cached = resolver(4);

	for (i = 0; i < 50; i++) {
		dns_resolver_t *r = resolver(4);	/* fresh: nothing cached */
		struct outcome o = { 0 }, oc = { 0 };

		dns_resolve_mx(r, "eq.test", 25, on_done, &o);
		run(r, &o, 1, 5000);
		cr_assert_eq(o.res.status, DNS_OK, "%s", o.res.why);
		cr_assert_eq(o.res.nhosts, 2);
		if (strcmp(o.res.hosts[0].name, "a.eq.test") == 0)
			first_a++;
		else
			first_b++;
		dns_resolver_free(r);
		/* the cached answer is shuffled on every use too */
		dns_resolve_mx(cached, "eq.test", 25, on_done, &oc);
		run(cached, &oc, 1, 5000);
		if (strcmp(oc.res.hosts[0].name, "a.eq.test") == 0)
			first_a++;
		else
			first_b++;
	}
	cr_assert_gt(first_a, 10, "a first %d times, b first %d", first_a, first_b);
	cr_assert_gt(first_b, 10, "a first %d times, b first %d", first_a, first_b);
	dns_resolver_free(cached);
}

Test(dns_resolver, no_mx_means_the_domain_is_its_own_mx)
{
	dns_resolver_t *r = resolver(4);
	struct outcome o = { 0 };
	char a[80];

	dns_resolve_mx(r, "implicit.test", 25, on_done, &o);
	run(r, &o, 1, 5000);
	cr_assert_eq(o.res.status, DNS_OK, "%s", o.res.why);
	cr_assert_eq(o.res.nhosts, 1);
	cr_assert_str_eq(o.res.hosts[0].name, "implicit.test");
	cr_assert_eq(o.res.hosts[0].pref, 0);
	cr_assert_str_eq(addr_str(&o.res.hosts[0], 0, a, sizeof(a)), "127.0.2.1:25");
	dns_resolver_free(r);
}

Test(dns_resolver, both_families_are_returned_ipv4_first)
{
	dns_resolver_t *r = resolver(0);
	struct outcome o = { 0 }, o6 = { 0 };
	char a[80];

	dns_resolve_mx(r, "both.test", 25, on_done, &o);
	run(r, &o, 1, 5000);
	cr_assert_eq(o.res.status, DNS_OK, "%s", o.res.why);
	cr_assert_eq(o.res.hosts[0].naddr, 2);
	cr_assert_str_eq(addr_str(&o.res.hosts[0], 0, a, sizeof(a)), "127.0.2.2:25");
	cr_assert_str_eq(addr_str(&o.res.hosts[0], 1, a, sizeof(a)), "[::1]:25");
	cr_assert_eq(o.res.hosts[0].addrlen[1], sizeof(struct sockaddr_in6));
	dns_resolver_free(r);

	r = resolver(6);
	dns_resolve_host(r, "both.test", 25, on_done, &o6);
	run(r, &o6, 1, 5000);
	cr_assert_eq(o6.res.status, DNS_OK, "%s", o6.res.why);
	cr_assert_eq(o6.res.hosts[0].naddr, 1);
	cr_assert_str_eq(addr_str(&o6.res.hosts[0], 0, a, sizeof(a)), "[::1]:25");
	dns_resolver_free(r);
}

Test(dns_resolver, null_mx_bounces_with_5_1_10)
{
	dns_resolver_t *r = resolver(4);
	struct outcome o = { 0 };
	dns_stats_t st;

	dns_resolve_mx(r, "null.test", 25, on_done, &o);
	run(r, &o, 1, 5000);
	cr_assert_eq(o.res.status, DNS_PERMFAIL);
	cr_assert_str_eq(o.res.dsn, "5.1.10");
	cr_assert(strstr(o.res.why, "null MX") != NULL, "%s", o.res.why);
	cr_assert_eq(o.res.nhosts, 0);
	dns_resolver_stats(r, &st);
	cr_assert_eq(st.queries, 1, "no address lookup after a null MX");
	cr_assert_eq(st.failures, 1);
	dns_resolver_free(r);
}

Test(dns_resolver, nxdomain_bounces_with_5_1_2)
{
	dns_resolver_t *r = resolver(4);
	struct outcome o = { 0 }, again = { 0 };

	dns_resolve_mx(r, "nowhere.test", 25, on_done, &o);
	run(r, &o, 1, 5000);
	cr_assert_eq(o.res.status, DNS_PERMFAIL);
	cr_assert_str_eq(o.res.dsn, "5.1.2");
	cr_assert(strstr(o.res.why, "nowhere.test") != NULL, "%s", o.res.why);
	/* negative answers are cached: answered before dns_resolve_mx returns */
	dns_resolve_mx(r, "nowhere.test", 25, on_done, &again);
	cr_assert_eq(again.calls, 1);
	cr_assert_str_eq(again.res.dsn, "5.1.2");
	dns_resolver_free(r);
}

Test(dns_resolver, invalid_domain_bounces_without_a_query)
{
	dns_resolver_t *r = resolver(4);
	struct outcome o = { 0 };
	dns_stats_t st;

	dns_resolve_mx(r, "bad domain..test", 25, on_done, &o);
	cr_assert_eq(o.calls, 1);
	cr_assert_eq(o.res.status, DNS_PERMFAIL);
	cr_assert_str_eq(o.res.dsn, "5.1.2");
	dns_resolver_stats(r, &st);
	cr_assert_eq(st.queries, 0);
	dns_resolver_free(r);
}

Test(dns_resolver, unanswered_query_defers_with_4_4_3_in_time)
{
	dns_resolver_t *r = resolver(4);
	struct outcome o = { 0 };
	long long t0 = now_ms();

	dns_resolve_mx(r, "timeout.test", 25, on_done, &o);
	cr_assert_geq(dns_next_timeout_ms(r), 0);
	run(r, &o, 1, 5000);
	cr_assert_eq(o.res.status, DNS_TEMPFAIL);
	cr_assert_str_eq(o.res.dsn, "4.4.3");
	cr_assert(strstr(o.res.why, "timeout") != NULL, "%s", o.res.why);
	/* 200 ms, then 400 ms: well under two seconds */
	cr_assert_lt(now_ms() - t0, 2000);
	cr_assert_eq(dns_next_timeout_ms(r), -1);
	dns_resolver_free(r);
}

Test(dns_resolver, refused_query_defers_with_4_4_3)
{
	dns_resolver_t *r = resolver(4);
	struct outcome o = { 0 };

	dns_resolve_mx(r, "refused.test", 25, on_done, &o);
	run(r, &o, 1, 5000);
	cr_assert_eq(o.res.status, DNS_TEMPFAIL);
	cr_assert_str_eq(o.res.dsn, "4.4.3");
	cr_assert(strcasestr(o.res.why, "refused") != NULL, "%s", o.res.why);
	dns_resolver_free(r);
}

Test(dns_resolver, mx_without_any_address_bounces_with_5_4_4)
{
	dns_resolver_t *r = resolver(4);
	struct outcome o = { 0 };

	dns_resolve_mx(r, "noaddr.test", 25, on_done, &o);
	run(r, &o, 1, 5000);
	cr_assert_eq(o.res.status, DNS_PERMFAIL);
	cr_assert_str_eq(o.res.dsn, "5.4.4");
	cr_assert(strstr(o.res.why, "gone.noaddr.test") != NULL, "%s", o.res.why);
	dns_resolver_free(r);
}

Test(dns_resolver, mx_whose_address_lookup_times_out_defers)
{
	dns_resolver_t *r = resolver(4);
	struct outcome o = { 0 };

	dns_resolve_mx(r, "slowaddr.test", 25, on_done, &o);
	run(r, &o, 1, 5000);
	cr_assert_eq(o.res.status, DNS_TEMPFAIL);
	cr_assert_str_eq(o.res.dsn, "4.4.3");
	cr_assert(strstr(o.res.why, "timeout") != NULL, "%s", o.res.why);
	dns_resolver_free(r);
}

Test(dns_resolver, hosts_without_address_are_dropped)
{
	dns_resolver_t *r = resolver(4);
	struct outcome o = { 0 };

	dns_resolve_mx(r, "partial.test", 25, on_done, &o);
	run(r, &o, 1, 5000);
	cr_assert_eq(o.res.status, DNS_OK, "%s", o.res.why);
	cr_assert_eq(o.res.nhosts, 1);
	cr_assert_str_eq(o.res.hosts[0].name, "ok.partial.test");
	cr_assert_eq(o.res.hosts[0].pref, 20);
	dns_resolver_free(r);
}

Test(dns_resolver, mx_naming_an_ip_address_uses_it_directly)
{
	dns_resolver_t *r = resolver(4);
	struct outcome o = { 0 };
	dns_stats_t st;
	char a[80];

	dns_resolve_mx(r, "lit.test", 25, on_done, &o);
	run(r, &o, 1, 5000);
	cr_assert_eq(o.res.status, DNS_OK, "%s", o.res.why);
	cr_assert_str_eq(addr_str(&o.res.hosts[0], 0, a, sizeof(a)), "127.0.4.1:25");
	dns_resolver_stats(r, &st);
	cr_assert_eq(st.queries, 1, "only the MX query");
	dns_resolver_free(r);
}

Test(dns_resolver, cname_to_a_domain_with_mx_is_followed)
{
	dns_resolver_t *r = resolver(4);
	struct outcome o = { 0 };

	dns_resolve_mx(r, "alias.test", 25, on_done, &o);
	run(r, &o, 1, 5000);
	cr_assert_eq(o.res.status, DNS_OK, "%s", o.res.why);
	cr_assert_eq(o.res.nhosts, 3);
	cr_assert_str_eq(o.res.hosts[0].name, "mx0.mx.test");
	dns_resolver_free(r);
}

Test(dns_resolver, large_answer_is_fetched_over_tcp)
{
	dns_resolver_t *r = resolver(4);
	struct outcome o = { 0 };
	size_t i;

	saw_tcp = 0;
	dns_resolve_mx(r, "big.test", 25, on_done, &o);
	run(r, &o, 1, 5000);
	cr_assert_eq(o.res.status, DNS_OK, "%s", o.res.why);
	cr_assert_eq(o.res.nhosts, DNS_MAX_HOSTS);
	for (i = 0; i < DNS_MAX_HOSTS; i++)
		cr_assert_eq(o.res.hosts[i].pref, i, "host %zu has pref %u", i,
		    o.res.hosts[i].pref);
	cr_assert(saw_tcp, "the truncated UDP answer was retried over TCP");
	dns_resolver_free(r);
}

Test(dns_resolver, second_lookup_is_a_synchronous_cache_hit)
{
	dns_resolver_t *r = resolver(4);
	struct outcome o = { 0 }, again = { 0 };
	dns_stats_t st;

	dns_resolve_mx(r, "mx.test", 25, on_done, &o);
	run(r, &o, 1, 5000);
	dns_resolve_mx(r, "mx.test", 26, on_done, &again);
	cr_assert_eq(again.calls, 1, "done called from inside dns_resolve_mx");
	cr_assert_eq(again.res.status, DNS_OK);
	cr_assert_eq(again.res.from_cache, 1);
	cr_assert_eq(again.res.nhosts, 3);
	cr_assert_eq(again.res.hosts[0].port, 26);
	dns_resolver_stats(r, &st);
	cr_assert_eq(st.lookups, 2);
	cr_assert_eq(st.cache_hits, 1);
	cr_assert_eq(st.queries, 4, "MX + three A, once");
	cr_assert_eq(st.questions, 8, "MX + three A, twice");
	cr_assert_eq(st.question_hits, 4, "the second time all from the cache");
	cr_assert_eq(st.waits, 1, "only the first lookup waited");
	cr_assert_geq(st.wait_ms_total, st.wait_ms_max);
	cr_assert_eq(dns_pending(r), 0);
	dns_resolver_free(r);
}

Test(dns_resolver, concurrent_lookups_of_one_name_share_one_query)
{
	dns_resolver_t *r = resolver(4);
	struct outcome o[3] = { { 0 }, { 0 }, { 0 } };
	dns_stats_t st;
	int i;

	for (i = 0; i < 3; i++)
		dns_resolve_mx(r, "mx.test", 25, on_done, &o[i]);
	cr_assert_eq(dns_pending(r), 3);
	run(r, o, 3, 5000);
	for (i = 0; i < 3; i++) {
		cr_assert_eq(o[i].calls, 1);
		cr_assert_eq(o[i].res.status, DNS_OK);
		cr_assert_eq(o[i].res.nhosts, 3);
	}
	dns_resolver_stats(r, &st);
	cr_assert_eq(st.queries, 4, "MX + three A, shared by three requests");
	cr_assert_eq(st.questions, 12);
	cr_assert_eq(st.joined, 8, "two requests joined each of the four questions");
	cr_assert_eq(st.question_hits, 0);
	dns_resolver_free(r);
}

Test(dns_resolver, ip_literal_host_needs_no_query)
{
	dns_resolver_t *r = resolver(0);
	struct outcome o = { 0 }, o6 = { 0 }, d = { 0 };
	dns_stats_t st;
	char a[80];

	dns_resolve_host(r, "[127.0.0.9]", 2526, on_done, &o);
	cr_assert_eq(o.calls, 1);
	cr_assert_eq(o.res.status, DNS_OK);
	cr_assert_str_eq(addr_str(&o.res.hosts[0], 0, a, sizeof(a)), "127.0.0.9:2526");
	dns_resolve_host(r, "[IPv6:::1]", 25, on_done, &o6);
	cr_assert_eq(o6.calls, 1);
	cr_assert_str_eq(addr_str(&o6.res.hosts[0], 0, a, sizeof(a)), "[::1]:25");
	dns_resolve_mx(r, "[127.0.0.8]", 25, on_done, &d);
	cr_assert_eq(d.calls, 1);
	cr_assert_eq(d.res.nhosts, 1);
	dns_resolver_stats(r, &st);
	cr_assert_eq(st.queries, 0);
	dns_resolver_free(r);
}

Test(dns_resolver, host_lookup_gives_addresses_or_5_4_4)
{
	dns_resolver_t *r = resolver(4);
	struct outcome o[2] = { { 0 }, { 0 } };
	char a[80];

	dns_resolve_host(r, "mx1.mx.test", 587, on_done, &o[0]);
	dns_resolve_host(r, "nothing.test", 587, on_done, &o[1]);
	run(r, o, 2, 5000);
	cr_assert_eq(o[0].res.status, DNS_OK);
	cr_assert_str_eq(o[0].res.hosts[0].name, "mx1.mx.test");
	cr_assert_str_eq(addr_str(&o[0].res.hosts[0], 0, a, sizeof(a)), "127.0.0.11:587");
	cr_assert_eq(o[1].res.status, DNS_PERMFAIL);
	cr_assert_str_eq(o[1].res.dsn, "5.4.4");
	dns_resolver_free(r);
}

Test(dns_resolver, free_answers_pending_requests_and_unwatches_sockets)
{
	dns_resolver_t *r = resolver(4);
	struct outcome o = { 0 };

	nw = 0;
	dns_resolve_mx(r, "timeout.test", 25, on_done, &o);
	cr_assert_gt(nw, 0, "a socket to watch");
	cr_assert_eq(o.calls, 0);
	dns_resolver_free(r);
	cr_assert_eq(o.calls, 1);
	cr_assert_eq(o.res.status, DNS_TEMPFAIL);
	cr_assert_str_eq(o.res.why, "resolver shut down");
	cr_assert_eq(nw, 0, "every watched fd got its stop call");
}
