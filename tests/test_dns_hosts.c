/*
 * test_dns_hosts.c - the hosts file table: route hosts such as localhost
 * resolve as the system resolver would, bad lines are skipped.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "dns/dns_internal.h"

static dns_hosts_t *
load_text(const char *text)
{
	char path[] = "/tmp/sealpost-hosts-XXXXXX";
	int fd = mkstemp(path);
	dns_hosts_t *t;

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	t = dns_hosts_load(path);
	unlink(path);
	return t;
}

Test(dns_hosts, names_and_aliases_resolve_case_insensitively)
{
	dns_hosts_t *t = load_text("# comment\n127.0.0.1\tlocalhost Relay.Internal.\n"
	    "::1 localhost ip6-localhost\n");
	dns_ip_t ip[4];

	cr_assert_not_null(t);
	cr_assert_eq(dns_hosts_lookup(t, "localhost", ip, 4), 2);
	cr_assert_eq(ip[0].family, AF_INET);
	cr_assert_eq(ip[1].family, AF_INET6);
	cr_assert_eq(dns_hosts_lookup(t, "relay.internal", ip, 4), 1);
	cr_assert_eq(dns_hosts_lookup(t, "other", ip, 4), 0);
	dns_hosts_free(t);
}

Test(dns_hosts, malformed_lines_are_skipped)
{
	dns_hosts_t *t = load_text("not-an-ip name1\n300.1.1.1 name2\n\n   \n10.0.0.1 bad..name good\n");
	dns_ip_t ip[4];

	cr_assert_not_null(t);
	cr_assert_eq(dns_hosts_lookup(t, "name1", ip, 4), 0);
	cr_assert_eq(dns_hosts_lookup(t, "name2", ip, 4), 0);
	cr_assert_eq(dns_hosts_lookup(t, "good", ip, 4), 1);
	dns_hosts_free(t);
}

Test(dns_hosts, missing_file_means_dns_only)
{
	cr_assert_null(dns_hosts_load("/nonexistent/hosts"));
	dns_ip_t ip[1];
	cr_assert_eq(dns_hosts_lookup(NULL, "localhost", ip, 1), 0);
}
