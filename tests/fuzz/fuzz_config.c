/*
 * tests/fuzz/fuzz_config.c - libFuzzer target for common/config.c.
 *
 * The input becomes an environment: each line is one entry, given the
 * SEALPOST_ prefix when it lacks it (so the fuzzer spends its time in the
 * value parsers, not on names that are ignored), ending in a NULL like
 * envp.  sp_config_load() must either succeed with every field within the
 * ranges config.h promises, or fail with a one-line reason; on success the
 * configuration is printed (to /dev/null) and every route looked up, which
 * walks sp_config_print's renderers and sp_route_find.  The duration
 * parser is also fed each line on its own.
 *
 * Build: cmake -DSEALPOST_FUZZ=ON with clang (see tests/CMakeLists.txt).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"

#define FUZZ_MAX_ENV	64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void	check_config(const sp_config_t *);

/* check_config - a loaded configuration keeps config.h's bounds */
static void
check_config(const sp_config_t *cfg)
{
	static FILE	*devnull;
	size_t		 i;

	if (cfg->workers < 1 || cfg->workers > 256 ||
	    cfg->nroutes > SP_MAX_ROUTES || cfg->ndns_servers > SP_MAX_DNS_SERVERS ||
	    (cfg->inet_protocols != 0 && cfg->inet_protocols != 4 &&
	    cfg->inet_protocols != 6) ||
	    (cfg->tls_min_version != 12 && cfg->tls_min_version != 13) ||
	    cfg->retry_min > cfg->retry_max)
		abort();
	if (memchr(cfg->spool, '\0', sizeof(cfg->spool)) == NULL ||
	    memchr(cfg->helo_name, '\0', sizeof(cfg->helo_name)) == NULL ||
	    memchr(cfg->tls_ciphers, '\0', sizeof(cfg->tls_ciphers)) == NULL ||
	    memchr(cfg->metrics_listen, '\0', sizeof(cfg->metrics_listen)) == NULL)
		abort();
	for (i = 0; i < cfg->nroutes; i++) {
		const sp_route_t *r = &cfg->routes[i];

		if (memchr(r->domain, '\0', sizeof(r->domain)) == NULL ||
		    memchr(r->host, '\0', sizeof(r->host)) == NULL)
			abort();
		if (strcmp(r->domain, "*") != 0 && sp_route_find(cfg, r->domain) == NULL)
			abort();
	}
	for (i = 0; i < cfg->ndns_servers; i++)
		if (memchr(cfg->dns_servers[i].host, '\0',
		    sizeof(cfg->dns_servers[i].host)) == NULL)
			abort();
	(void)sp_route_find(cfg, "example.com");
	if (devnull == NULL && (devnull = fopen("/dev/null", "w")) == NULL)
		abort();
	sp_config_print(cfg, devnull);
	(void)sp_tls_level_name(cfg->tls_level);
}

/* LLVMFuzzerTestOneInput - one environment */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static sp_config_t	 cfg;	/* ~40 KB: not on the stack */
	char			*envp[FUZZ_MAX_ENV + 1];
	char			 err[512];
	const char		*val;
	size_t			 i, start = 0, n = 0, len;
	unsigned		 secs;
	int			 rc;

	for (i = 0; i <= size && n < FUZZ_MAX_ENV; i++) {
		if (i < size && data[i] != '\n')
			continue;
		len = i - start;
		if (len < 9 || memcmp(data + start, "SEALPOST_", 9) != 0) {
			if ((envp[n] = malloc(9 + len + 1)) == NULL)
				goto out;
			memcpy(envp[n], "SEALPOST_", 9);
			memcpy(envp[n] + 9, data + start, len);
			envp[n][9 + len] = '\0';
		} else {
			if ((envp[n] = malloc(len + 1)) == NULL)
				goto out;
			memcpy(envp[n], data + start, len);
			envp[n][len] = '\0';
		}
		/* the value alone, as a duration */
		val = strchr(envp[n], '=');
		(void)sp_parse_duration(val != NULL ? val + 1 : envp[n], &secs);
		n++;
		start = i + 1;
	}
	envp[n] = NULL;
	err[0] = '\0';
	rc = sp_config_load(&cfg, envp, err, sizeof(err));
	if (rc == 0)
		check_config(&cfg);
	else if (rc != -1 || err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL ||
	    strchr(err, '\n') != NULL)
		abort();
out:
	for (i = 0; i < n; i++)
		free(envp[i]);
	return 0;
}
