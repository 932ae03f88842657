/*
 * dns/hosts.c - the hosts file (/etc/hosts), read once per resolver.
 *
 *	dns_hosts_load(path)            table, or NULL when unreadable/empty (no error:
 *	                                a missing hosts file just means DNS only)
 *	dns_hosts_lookup(t, name, out, max)  addresses of name, in file order
 *	dns_hosts_free(t)
 *
 * Operators name route hosts that live in /etc/hosts (`localhost`, an
 * internal relay), as the system resolver would find them.  c-ares'
 * ares_query does not read the file, and reading it on every lookup would
 * be file I/O on a worker thread; so it is parsed once, at resolver
 * creation.  Lines: ADDRESS NAME [ALIAS...], '#' comments; bad lines are
 * skipped.  Bounded: at most DNS_HOSTS_MAX entries.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns/dns_internal.h"

#define DNS_HOSTS_MAX 4096

struct dns_hosts {
	size_t	n;
	struct hosts_ent {
		char	name[256];
		dns_ip_t ip;
	} ent[];
};

/* dns_hosts_load - parse a hosts file; NULL if there is nothing usable */
dns_hosts_t *
dns_hosts_load(const char *path)
{
	FILE *fp = fopen(path, "re");
	dns_hosts_t *t;
	char line[1024];

	if (fp == NULL)
		return NULL;
	t = calloc(1, sizeof(*t) + DNS_HOSTS_MAX * sizeof(t->ent[0]));
	if (t == NULL) {
		fclose(fp);
		return NULL;
	}
	while (fgets(line, sizeof(line), fp) && t->n < DNS_HOSTS_MAX) {
		char *save = NULL, *tok, *hash = strchr(line, '#');
		dns_ip_t ip;

		if (hash)
			*hash = '\0';
		if ((tok = strtok_r(line, " \t\r\n", &save)) == NULL || !dns_ip_literal(tok, &ip))
			continue;
		while ((tok = strtok_r(NULL, " \t\r\n", &save)) != NULL && t->n < DNS_HOSTS_MAX) {
			struct hosts_ent *e = &t->ent[t->n];

			if (dns_name_normalize(tok, e->name, sizeof(e->name)) < 0)
				continue;
			e->ip = ip;
			t->n++;
		}
	}
	fclose(fp);
	if (t->n == 0) {
		free(t);
		return NULL;
	}
	return t;
}

/* dns_hosts_lookup - up to max addresses for a (normalised) name; count */
size_t
dns_hosts_lookup(const dns_hosts_t *t, const char *name, dns_ip_t *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; t && i < t->n && n < max; i++)
		if (strcasecmp(t->ent[i].name, name) == 0)
			out[n++] = t->ent[i].ip;
	return n;
}

/* dns_hosts_free - NULL is fine */
void
dns_hosts_free(dns_hosts_t *t)
{
	free(t);
}
