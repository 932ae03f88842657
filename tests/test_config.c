/*
 * tests/test_config.c - SEALPOST_* parsing: defaults, every variable good
 * and bad, durations, routes, DNS servers, paths, cross-variable rules and
 * the `sealpost config` listing.  Each test builds its own envp array; the
 * real environment is never read or changed.
 */
#include <criterion/criterion.h>

#include <sys/stat.h>
#include <sys/wait.h>

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"

#define MAXENV 128

static sp_config_t cfg;
static char err[1024];
static char *envbuf[MAXENV + 1];
static char tmpdir[64];
static char ca_file[128], cert_file[128], key_file[128], policy_file[128];

static int load_env(const char *const *env, size_t n);
static int load(const char *first, ...);
static char *print_config(void);
static void make_file(char *path, size_t len, const char *name);
static void make_files(void);
static void remove_files(void);

/* load_env - sp_config_load on a copy of env (n entries) */
static int
load_env(const char *const *env, size_t n)
{
	size_t i;

	cr_assert(n <= MAXENV);
	for (i = 0; i < n; i++)
		envbuf[i] = (char *)env[i];
	envbuf[n] = NULL;
	err[0] = '\0';
	return sp_config_load(&cfg, envbuf, err, sizeof(err));
}

/* load - sp_config_load on the NULL-terminated list of "NAME=value" */
static int
load(const char *first, ...)
{
	const char *env[MAXENV];
	const char *s;
	size_t n = 0;
	va_list ap;

	va_start(ap, first);
	for (s = first; s != NULL; s = va_arg(ap, const char *)) {
		cr_assert(n < MAXENV);
		env[n++] = s;
	}
	va_end(ap);
	return load_env(env, n);
}

/* print_config - sp_config_print into a string (caller frees) */
static char *
print_config(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	cr_assert_not_null(fp);
	sp_config_print(&cfg, fp);
	fclose(fp);
	return buf;
}

/* make_file - create tmpdir/name, readable */
static void
make_file(char *path, size_t len, const char *name)
{
	int fd;

	snprintf(path, len, "%s/%s", tmpdir, name);
	fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, "x\n", 2), 2);
	close(fd);
}

static void
make_files(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/sp-config-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
	make_file(ca_file, sizeof(ca_file), "ca.pem");
	make_file(cert_file, sizeof(cert_file), "cert.pem");
	make_file(key_file, sizeof(key_file), "key.pem");
	make_file(policy_file, sizeof(policy_file), "policy");
}

static void
remove_files(void)
{
	unlink(ca_file);
	unlink(cert_file);
	unlink(key_file);
	unlink(policy_file);
	rmdir(tmpdir);
}

TestSuite(config, .init = make_files, .fini = remove_files);

Test(config, empty_environment_gives_documented_defaults)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	cr_assert_eq(load(NULL), 0, "%s", err);
	cr_expect_str_eq(cfg.spool, "./spool");
	cr_expect_eq(cfg.workers, (unsigned)(ncpu < 1 ? 1 : ncpu > 256 ? 256 : ncpu));
	cr_expect_eq(cfg.max_connections, 1000);
	cr_expect_eq(cfg.dest_concurrency, 20);
	cr_expect_eq(cfg.msgs_per_connection, 100);
	cr_expect_eq(cfg.rcpts_per_transaction, 50);
	cr_expect_eq(cfg.nroutes, 0);
	cr_expect_eq(cfg.smtp_port, 25);
	cr_expect_eq(cfg.ndns_servers, 0);
	cr_expect_eq(cfg.inet_protocols, 0);
	cr_expect_str_eq(cfg.bind_address, "");
	cr_expect_str_eq(cfg.tls_ca_file, "");
	cr_expect_str_eq(cfg.tls_ca_dir, "");
	cr_expect_str_eq(cfg.tls_cert, "");
	cr_expect_str_eq(cfg.tls_key, "");
	cr_expect_eq(cfg.tls_min_version, 12);
	cr_expect_str_eq(cfg.tls_ciphers, "");
	cr_expect_eq(cfg.tls_level, SP_TLS_VERIFY);
	cr_expect_str_eq(cfg.tls_policy, "");
	cr_expect_eq(cfg.tls_session_cache, 10000);
	cr_expect_eq(cfg.tls_session_lifetime, 3600);
	cr_expect_eq(cfg.retry_min, 300);
	cr_expect_eq(cfg.retry_max, 4000);
	cr_expect_eq(cfg.queue_lifetime, 5 * 86400);
	cr_expect_eq(cfg.delay_warning, 0);
	cr_expect_eq(cfg.connect_timeout, 30);
	cr_expect_eq(cfg.greeting_timeout, 300);
	cr_expect_eq(cfg.mail_timeout, 300);
	cr_expect_eq(cfg.data_init_timeout, 120);
	cr_expect_eq(cfg.data_block_timeout, 180);
	cr_expect_eq(cfg.data_done_timeout, 600);
	cr_expect_eq(cfg.idle_timeout, 5);
	cr_expect_eq(cfg.scan_interval, 60);
	cr_expect_eq(cfg.log_format, SP_LOG_TEXT);
	cr_expect_eq(cfg.log_level, SP_LOG_INFO);
	cr_expect_str_eq(cfg.metrics_listen, "");
}

Test(config, helo_name_defaults_to_host_name)
{
	char host[256] = "";

	cr_assert_eq(load(NULL), 0, "%s", err);
	cr_assert_eq(gethostname(host, sizeof(host) - 1), 0);
	/* a host name that is not a valid HELO name falls back to localhost */
	if (strcmp(cfg.helo_name, "localhost") != 0)
		cr_expect_str_eq(cfg.helo_name, host);
	cr_expect_neq(cfg.helo_name[0], '\0');
}

Test(config, every_variable_accepts_a_good_value)
{
	char ca[200], cadir[200], cert[200], key[200], pol[200];

	snprintf(ca, sizeof(ca), "SEALPOST_TLS_CA_FILE=%s", ca_file);
	snprintf(cadir, sizeof(cadir), "SEALPOST_TLS_CA_DIR=%s", tmpdir);
	snprintf(cert, sizeof(cert), "SEALPOST_TLS_CERT=%s", cert_file);
	snprintf(key, sizeof(key), "SEALPOST_TLS_KEY=%s", key_file);
	snprintf(pol, sizeof(pol), "SEALPOST_TLS_POLICY=%s", policy_file);
	cr_assert_eq(load("PATH=/bin",
	    "SEALPOST_SPOOL=/var/spool/sealpost",
	    "SEALPOST_WORKERS=7",
	    "SEALPOST_MAX_CONNECTIONS=100000",
	    "SEALPOST_DEST_CONCURRENCY=1",
	    "SEALPOST_MSGS_PER_CONNECTION=5",
	    "SEALPOST_RCPTS_PER_TRANSACTION=1000",
	    "SEALPOST_ROUTES=fax.example=relay.example.net:2525",
	    "SEALPOST_SMTP_PORT=2525",
	    "SEALPOST_DNS_SERVERS=127.0.0.1:5353",
	    "SEALPOST_INET_PROTOCOLS=ipv6",
	    "SEALPOST_HELO_NAME=out1.fax.example",
	    "SEALPOST_BIND_ADDRESS=192.0.2.7",
	    ca, cadir, cert, key,
	    "SEALPOST_TLS_MIN_VERSION=1.3",
	    "SEALPOST_TLS_CIPHERS=TLS13-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256",
	    "SEALPOST_TLS_LEVEL=secure",
	    pol,
	    "SEALPOST_TLS_SESSION_CACHE=0",
	    "SEALPOST_TLS_SESSION_LIFETIME=2h",
	    "SEALPOST_RETRY_MIN=1m",
	    "SEALPOST_RETRY_MAX=1h",
	    "SEALPOST_QUEUE_LIFETIME=3d",
	    "SEALPOST_DELAY_WARNING=4h",
	    "SEALPOST_CONNECT_TIMEOUT=10s",
	    "SEALPOST_GREETING_TIMEOUT=1m",
	    "SEALPOST_MAIL_TIMEOUT=2m",
	    "SEALPOST_DATA_INIT_TIMEOUT=3m",
	    "SEALPOST_DATA_BLOCK_TIMEOUT=4m",
	    "SEALPOST_DATA_DONE_TIMEOUT=1h",
	    "SEALPOST_IDLE_TIMEOUT=0",
	    "SEALPOST_SCAN_INTERVAL=1d",
	    "SEALPOST_LOG_FORMAT=json",
	    "SEALPOST_LOG_LEVEL=debug",
	    "SEALPOST_METRICS_LISTEN=127.0.0.1:9100",
	    NULL), 0, "%s", err);
	cr_expect_str_eq(cfg.spool, "/var/spool/sealpost");
	cr_expect_eq(cfg.workers, 7);
	cr_expect_eq(cfg.max_connections, 100000);
	cr_expect_eq(cfg.dest_concurrency, 1);
	cr_expect_eq(cfg.msgs_per_connection, 5);
	cr_expect_eq(cfg.rcpts_per_transaction, 1000);
	cr_expect_eq(cfg.nroutes, 1);
	cr_expect_str_eq(cfg.routes[0].domain, "fax.example");
	cr_expect_str_eq(cfg.routes[0].host, "relay.example.net");
	cr_expect_eq(cfg.routes[0].port, 2525);
	cr_expect_eq(cfg.smtp_port, 2525);
	cr_expect_eq(cfg.ndns_servers, 1);
	cr_expect_str_eq(cfg.dns_servers[0].host, "127.0.0.1");
	cr_expect_eq(cfg.dns_servers[0].port, 5353);
	cr_expect_eq(cfg.inet_protocols, 6);
	cr_expect_str_eq(cfg.helo_name, "out1.fax.example");
	cr_expect_str_eq(cfg.bind_address, "192.0.2.7");
	cr_expect_str_eq(cfg.tls_ca_file, ca_file);
	cr_expect_str_eq(cfg.tls_ca_dir, tmpdir);
	cr_expect_str_eq(cfg.tls_cert, cert_file);
	cr_expect_str_eq(cfg.tls_key, key_file);
	cr_expect_eq(cfg.tls_min_version, 13);
	cr_expect_str_eq(cfg.tls_ciphers,
	    "TLS13-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256");
	cr_expect_eq(cfg.tls_level, SP_TLS_SECURE);
	cr_expect_str_eq(cfg.tls_policy, policy_file);
	cr_expect_eq(cfg.tls_session_cache, 0);
	cr_expect_eq(cfg.tls_session_lifetime, 7200);
	cr_expect_eq(cfg.retry_min, 60);
	cr_expect_eq(cfg.retry_max, 3600);
	cr_expect_eq(cfg.queue_lifetime, 3 * 86400);
	cr_expect_eq(cfg.delay_warning, 4 * 3600);
	cr_expect_eq(cfg.connect_timeout, 10);
	cr_expect_eq(cfg.greeting_timeout, 60);
	cr_expect_eq(cfg.mail_timeout, 120);
	cr_expect_eq(cfg.data_init_timeout, 180);
	cr_expect_eq(cfg.data_block_timeout, 240);
	cr_expect_eq(cfg.data_done_timeout, 3600);
	cr_expect_eq(cfg.idle_timeout, 0);
	cr_expect_eq(cfg.scan_interval, 86400);
	cr_expect_eq(cfg.log_format, SP_LOG_JSON);
	cr_expect_eq(cfg.log_level, SP_LOG_DEBUG);
	cr_expect_str_eq(cfg.metrics_listen, "127.0.0.1:9100");
}

/* One bad value per variable (several for some); shown: the value as the
 * message must quote it, when it differs from the raw one. */
static const struct bad {
	const char *name, *value, *shown;
} bad_values[] = {
	{ "SEALPOST_SPOOL", "", NULL },
	{ "SEALPOST_SPOOL", "spool\ndir", "spool?dir" },
	{ "SEALPOST_WORKERS", "0", NULL },
	{ "SEALPOST_WORKERS", "257", NULL },
	{ "SEALPOST_WORKERS", "abc", NULL },
	{ "SEALPOST_WORKERS", "-1", NULL },
	{ "SEALPOST_WORKERS", " 4", NULL },
	{ "SEALPOST_WORKERS", "", NULL },
	{ "SEALPOST_WORKERS", "99999999999999999999999", NULL },
	{ "SEALPOST_MAX_CONNECTIONS", "0", NULL },
	{ "SEALPOST_MAX_CONNECTIONS", "100001", NULL },
	{ "SEALPOST_DEST_CONCURRENCY", "0", NULL },
	{ "SEALPOST_DEST_CONCURRENCY", "10001", NULL },
	{ "SEALPOST_MSGS_PER_CONNECTION", "0", NULL },
	{ "SEALPOST_MSGS_PER_CONNECTION", "100001", NULL },
	{ "SEALPOST_RCPTS_PER_TRANSACTION", "0", NULL },
	{ "SEALPOST_RCPTS_PER_TRANSACTION", "1001", NULL },
	{ "SEALPOST_ROUTES", "example.com", NULL },
	{ "SEALPOST_SMTP_PORT", "0", NULL },
	{ "SEALPOST_SMTP_PORT", "65536", NULL },
	{ "SEALPOST_SMTP_PORT", "25x", NULL },
	{ "SEALPOST_SMTP_PORT", "", NULL },
	{ "SEALPOST_DNS_SERVERS", "localhost", NULL },
	{ "SEALPOST_INET_PROTOCOLS", "ipv5", NULL },
	{ "SEALPOST_INET_PROTOCOLS", "", NULL },
	{ "SEALPOST_HELO_NAME", "bad name", NULL },
	{ "SEALPOST_HELO_NAME", "-foo.example", NULL },
	{ "SEALPOST_HELO_NAME", "[1.2.3]", NULL },
	{ "SEALPOST_HELO_NAME", "", NULL },
	{ "SEALPOST_BIND_ADDRESS", "localhost", NULL },
	{ "SEALPOST_BIND_ADDRESS", "192.0.2.1:25", NULL },
	{ "SEALPOST_TLS_CA_FILE", "/nonexistent/ca.pem", NULL },
	{ "SEALPOST_TLS_CA_FILE", "/", NULL },
	{ "SEALPOST_TLS_CA_DIR", "/nonexistent/certs", NULL },
	{ "SEALPOST_TLS_CERT", "/nonexistent/cert.pem", NULL },
	{ "SEALPOST_TLS_KEY", "/nonexistent/key.pem", NULL },
	{ "SEALPOST_TLS_MIN_VERSION", "1.1", NULL },
	{ "SEALPOST_TLS_MIN_VERSION", "1.0", NULL },
	{ "SEALPOST_TLS_MIN_VERSION", "tls1.3", NULL },
	{ "SEALPOST_TLS_CIPHERS", "AES128 SHA", NULL },
	{ "SEALPOST_TLS_CIPHERS", "AES;rm", NULL },
	{ "SEALPOST_TLS_LEVEL", "none", NULL },
	{ "SEALPOST_TLS_LEVEL", "may", NULL },
	{ "SEALPOST_TLS_POLICY", "/nonexistent/policy", NULL },
	{ "SEALPOST_TLS_SESSION_CACHE", "10000001", NULL },
	{ "SEALPOST_TLS_SESSION_CACHE", "-1", NULL },
	{ "SEALPOST_TLS_SESSION_LIFETIME", "0", NULL },
	{ "SEALPOST_TLS_SESSION_LIFETIME", "8d", NULL },
	{ "SEALPOST_RETRY_MIN", "0", NULL },
	{ "SEALPOST_RETRY_MIN", "8d", NULL },
	{ "SEALPOST_RETRY_MAX", "0", NULL },
	{ "SEALPOST_RETRY_MAX", "soon", NULL },
	{ "SEALPOST_QUEUE_LIFETIME", "101d", NULL },
	{ "SEALPOST_QUEUE_LIFETIME", "5y", NULL },
	{ "SEALPOST_DELAY_WARNING", "101d", NULL },
	{ "SEALPOST_DELAY_WARNING", "-4h", NULL },
	{ "SEALPOST_CONNECT_TIMEOUT", "0", NULL },
	{ "SEALPOST_CONNECT_TIMEOUT", "2h", NULL },
	{ "SEALPOST_GREETING_TIMEOUT", "0", NULL },
	{ "SEALPOST_GREETING_TIMEOUT", "61m", NULL },
	{ "SEALPOST_MAIL_TIMEOUT", "0", NULL },
	{ "SEALPOST_DATA_INIT_TIMEOUT", "0", NULL },
	{ "SEALPOST_DATA_BLOCK_TIMEOUT", "3601", NULL },
	{ "SEALPOST_DATA_DONE_TIMEOUT", "0", NULL },
	{ "SEALPOST_IDLE_TIMEOUT", "2h", NULL },
	{ "SEALPOST_SCAN_INTERVAL", "0", NULL },
	{ "SEALPOST_SCAN_INTERVAL", "2d", NULL },
	{ "SEALPOST_LOG_FORMAT", "xml", NULL },
	{ "SEALPOST_LOG_LEVEL", "trace", NULL },
	{ "SEALPOST_METRICS_LISTEN", "9100", NULL },
	{ "SEALPOST_METRICS_LISTEN", "localhost:9100", NULL },
	{ "SEALPOST_METRICS_LISTEN", "[::1]", NULL },
	{ "SEALPOST_METRICS_LISTEN", "127.0.0.1:0", NULL },
};

Test(config, every_variable_rejects_a_bad_value_naming_variable_and_value)
{
	char entry[256], prefix[256];
	size_t i;

	for (i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
		const struct bad *b = &bad_values[i];
		const char *env[1] = { entry };

		snprintf(entry, sizeof(entry), "%s=%s", b->name, b->value);
		snprintf(prefix, sizeof(prefix), "%s=%s: ", b->name,
		    b->shown != NULL ? b->shown : b->value);
		cr_expect_eq(load_env(env, 1), -1, "accepted %s", entry);
		cr_expect_eq(strncmp(err, prefix, strlen(prefix)), 0,
		    "for %s: message \"%s\" does not start with \"%s\"", entry, err,
		    prefix);
		cr_expect_not_null(strstr(err, "; allowed: "),
		    "for %s: no allowed part in \"%s\"", entry, err);
		cr_expect_neq(err[strlen(err) - 1], ' ', "for %s: \"%s\"", entry, err);
	}
}

Test(config, every_listed_variable_has_a_bad_value_test)
{
	char *out, *line, *save = NULL;
	size_t i;
	int found;

	cr_assert_eq(load(NULL), 0, "%s", err);
	out = print_config();
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		size_t n = strcspn(line, "=");

		found = 0;
		for (i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++)
			if (strlen(bad_values[i].name) == n &&
			    strncmp(bad_values[i].name, line, n) == 0)
				found = 1;
		cr_expect(found, "no bad-value test for %.*s", (int)n, line);
	}
	free(out);
}

Test(config, error_message_range_is_stated)
{
	const char *env[] = { "SEALPOST_WORKERS=abc" };

	cr_assert_eq(load_env(env, 1), -1);
	cr_expect_str_eq(err, "SEALPOST_WORKERS=abc: not a number; allowed: 1..256");
	cr_assert_eq(load("SEALPOST_CONNECT_TIMEOUT=2h", NULL), -1);
	cr_expect_str_eq(err, "SEALPOST_CONNECT_TIMEOUT=2h: out of range; allowed: "
	    "1s..1h (seconds, or a number with suffix s, m, h or d)");
}

Test(config, absurdly_long_value_is_truncated_in_message)
{
	static char entry[100000];
	const char *env[1] = { entry };

	memset(entry, 'x', sizeof(entry) - 1);
	memcpy(entry, "SEALPOST_WORKERS=", 17);
	entry[sizeof(entry) - 1] = '\0';
	cr_assert_eq(load_env(env, 1), -1);
	cr_expect_lt(strlen(err), 200);
	cr_expect_not_null(strstr(err, "...: not a number"), "%s", err);
}

Test(config, error_buffer_is_bounded)
{
	char small[16];

	envbuf[0] = (char *)"SEALPOST_WORKERS=abc";
	envbuf[1] = NULL;
	memset(small, 'Z', sizeof(small));
	cr_assert_eq(sp_config_load(&cfg, envbuf, small, sizeof(small)), -1);
	cr_expect_eq(strlen(small), sizeof(small) - 1);
	cr_expect_eq(sp_config_load(&cfg, envbuf, NULL, 0), -1);
}

static const struct dur {
	const char *text;
	int ok;
	unsigned secs;
} durations[] = {
	{ "30", 1, 30 }, { "30s", 1, 30 }, { "5m", 1, 300 }, { "2h", 1, 7200 },
	{ "5d", 1, 432000 }, { "0", 1, 0 }, { "0s", 1, 0 }, { "007", 1, 7 },
	{ "4294967295", 1, UINT_MAX }, { "49710d", 1, 49710u * 86400u },
	{ "", 0, 0 }, { "s", 0, 0 }, { "-5", 0, 0 }, { "+5", 0, 0 },
	{ "5x", 0, 0 }, { "5 m", 0, 0 }, { " 5", 0, 0 }, { "5 ", 0, 0 },
	{ "5ms", 0, 0 }, { "1.5h", 0, 0 }, { "5M", 0, 0 }, { "5S", 0, 0 },
	{ "4294967296", 0, 0 }, { "49711d", 0, 0 }, { "1193047h", 0, 0 }, { "71582789m", 0, 0 },
	{ "99999999999999999999999999", 0, 0 }, { "0x10", 0, 0 },
};

Test(config, duration_parsing_table)
{
	size_t i;
	unsigned v;

	for (i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
		v = 12345;
		if (durations[i].ok) {
			cr_expect_eq(sp_parse_duration(durations[i].text, &v), 0,
			    "rejected \"%s\"", durations[i].text);
			cr_expect_eq(v, durations[i].secs, "\"%s\" gave %u",
			    durations[i].text, v);
		} else {
			cr_expect_eq(sp_parse_duration(durations[i].text, &v), -1,
			    "accepted \"%s\"", durations[i].text);
			cr_expect_eq(v, 12345, "\"%s\" changed the output", durations[i].text);
		}
	}
	cr_expect_eq(sp_parse_duration(NULL, &v), -1);
}

Test(config, routes_parse_names_ipv4_ipv6_and_lower_case_domains)
{
	cr_assert_eq(load("SEALPOST_ROUTES=Fax.EXAMPLE=MX.Example.NET:2525, "
	    "b.example=192.0.2.9:25 ,*=[2001:db8::1]:587", NULL), 0, "%s", err);
	cr_assert_eq(cfg.nroutes, 3);
	cr_expect_str_eq(cfg.routes[0].domain, "fax.example");
	cr_expect_str_eq(cfg.routes[0].host, "mx.example.net");
	cr_expect_eq(cfg.routes[0].port, 2525);
	cr_expect_str_eq(cfg.routes[1].domain, "b.example");
	cr_expect_str_eq(cfg.routes[1].host, "192.0.2.9");
	cr_expect_eq(cfg.routes[1].port, 25);
	cr_expect_str_eq(cfg.routes[2].domain, "*");
	cr_expect_str_eq(cfg.routes[2].host, "2001:db8::1");
	cr_expect_eq(cfg.routes[2].port, 587);
}

Test(config, routes_reject_malformed_entries)
{
	static const char *bad[] = {
		"SEALPOST_ROUTES=example.com=relay",			/* no port */
		"SEALPOST_ROUTES==relay:25",				/* no domain */
		"SEALPOST_ROUTES=example.com=:25",			/* no host */
		"SEALPOST_ROUTES=example.com=relay:",			/* empty port */
		"SEALPOST_ROUTES=example.com=relay:0",
		"SEALPOST_ROUTES=example.com=relay:65536",
		"SEALPOST_ROUTES=example.com=relay:2x",
		"SEALPOST_ROUTES=a.example=r:25,,b.example=r:25",	/* empty entry */
		"SEALPOST_ROUTES=a.example=r:25,",			/* trailing comma */
		"SEALPOST_ROUTES=a..example=r:25",
		"SEALPOST_ROUTES=a example=r:25",
		"SEALPOST_ROUTES=a.example=r:25,A.example=s:25",	/* duplicate */
		"SEALPOST_ROUTES=a.example=::1:25",			/* IPv6 unbracketed */
		"SEALPOST_ROUTES=a.example=[::1:25",
		"SEALPOST_ROUTES=a.example=[::1]25",
		"SEALPOST_ROUTES=a.example=[nothex]:25",
		"SEALPOST_ROUTES=a.example=256.1.1.1:25",
		"SEALPOST_ROUTES=a.example=re lay:25",
		"SEALPOST_ROUTES=a.example=-relay:25",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(load(bad[i], NULL), -1, "accepted %s", bad[i]);
		cr_expect_eq(strncmp(err, "SEALPOST_ROUTES=", 16), 0, "%s", err);
	}
}

Test(config, routes_reject_more_than_the_maximum)
{
	static char entry[SP_MAX_ROUTES * 40 + 64];
	size_t i, n;

	n = (size_t)snprintf(entry, sizeof(entry), "SEALPOST_ROUTES=");
	for (i = 0; i <= SP_MAX_ROUTES; i++)
		n += (size_t)snprintf(entry + n, sizeof(entry) - n, "%sd%zu.example=r:25",
		    i > 0 ? "," : "", i);
	cr_assert_eq(load(entry, NULL), -1);
	cr_expect_not_null(strstr(err, "more than 64 routes"), "%s", err);
	/* exactly the maximum is fine */
	*strrchr(entry, ',') = '\0';
	cr_expect_eq(load(entry, NULL), 0, "%s", err);
	cr_expect_eq(cfg.nroutes, SP_MAX_ROUTES);
}

Test(config, route_find_prefers_exact_domain_over_wildcard)
{
	const sp_route_t *r;

	cr_assert_eq(load("SEALPOST_ROUTES=*=catchall.example:25,"
	    "fax.example=fax-relay.example:2525", NULL), 0, "%s", err);
	r = sp_route_find(&cfg, "fax.example");
	cr_assert_not_null(r);
	cr_expect_str_eq(r->host, "fax-relay.example");
	r = sp_route_find(&cfg, "other.example");
	cr_assert_not_null(r);
	cr_expect_str_eq(r->host, "catchall.example");
	/* a sub-domain is not the domain */
	r = sp_route_find(&cfg, "sub.fax.example");
	cr_expect_str_eq(r->host, "catchall.example");
}

Test(config, route_find_without_wildcard_returns_null)
{
	cr_assert_eq(load("SEALPOST_ROUTES=fax.example=relay.example:25", NULL), 0);
	cr_expect_not_null(sp_route_find(&cfg, "fax.example"));
	cr_expect_null(sp_route_find(&cfg, "other.example"));
	cr_expect_null(sp_route_find(&cfg, NULL));
}

Test(config, dns_servers_take_ipv4_and_bracketed_ipv6_with_port_53_default)
{
	cr_assert_eq(load("SEALPOST_DNS_SERVERS=127.0.0.1,[::1]:5353, 192.0.2.53:5300,[fe80::1]",
	    NULL), 0, "%s", err);
	cr_assert_eq(cfg.ndns_servers, 4);
	cr_expect_str_eq(cfg.dns_servers[0].host, "127.0.0.1");
	cr_expect_eq(cfg.dns_servers[0].port, 53);
	cr_expect_str_eq(cfg.dns_servers[1].host, "::1");
	cr_expect_eq(cfg.dns_servers[1].port, 5353);
	cr_expect_str_eq(cfg.dns_servers[2].host, "192.0.2.53");
	cr_expect_eq(cfg.dns_servers[2].port, 5300);
	cr_expect_str_eq(cfg.dns_servers[3].host, "fe80::1");
	cr_expect_eq(cfg.dns_servers[3].port, 53);
}

Test(config, dns_servers_reject_names_bad_ports_and_too_many)
{
	static const char *bad[] = {
		"SEALPOST_DNS_SERVERS=localhost",
		"SEALPOST_DNS_SERVERS=::1",
		"SEALPOST_DNS_SERVERS=1.2.3.4:0",
		"SEALPOST_DNS_SERVERS=1.2.3.4:x",
		"SEALPOST_DNS_SERVERS=1.2.3.4,,5.6.7.8",
		"SEALPOST_DNS_SERVERS=1.2.3",
		"SEALPOST_DNS_SERVERS=[::1]x",
		("SEALPOST_DNS_SERVERS=1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4,5.5.5.5,"
		    "6.6.6.6,7.7.7.7,8.8.8.8,9.9.9.9"),
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(load(bad[i], NULL), -1, "accepted %s", bad[i]);
		cr_expect_eq(strncmp(err, "SEALPOST_DNS_SERVERS=", 21), 0, "%s", err);
	}
}

Test(config, inet_protocols_map_to_0_4_6)
{
	cr_assert_eq(load("SEALPOST_INET_PROTOCOLS=ipv4", NULL), 0);
	cr_expect_eq(cfg.inet_protocols, 4);
	cr_assert_eq(load("SEALPOST_INET_PROTOCOLS=all", NULL), 0);
	cr_expect_eq(cfg.inet_protocols, 0);
}

Test(config, cert_without_key_is_rejected)
{
	char cert[200];

	snprintf(cert, sizeof(cert), "SEALPOST_TLS_CERT=%s", cert_file);
	cr_assert_eq(load(cert, NULL), -1);
	cr_expect_eq(strncmp(err, "SEALPOST_TLS_KEY=: ", 19), 0, "%s", err);
	cr_expect_not_null(strstr(err, "SEALPOST_TLS_CERT"), "%s", err);
}

Test(config, key_without_cert_is_rejected)
{
	char key[200];

	snprintf(key, sizeof(key), "SEALPOST_TLS_KEY=%s", key_file);
	cr_assert_eq(load(key, NULL), -1);
	cr_expect_eq(strncmp(err, "SEALPOST_TLS_CERT=: ", 20), 0, "%s", err);
}

Test(config, cert_and_key_together_are_accepted)
{
	char cert[200], key[200];

	snprintf(cert, sizeof(cert), "SEALPOST_TLS_CERT=%s", cert_file);
	snprintf(key, sizeof(key), "SEALPOST_TLS_KEY=%s", key_file);
	cr_assert_eq(load(cert, key, NULL), 0, "%s", err);
	cr_expect_str_eq(cfg.tls_cert, cert_file);
	cr_expect_str_eq(cfg.tls_key, key_file);
}

Test(config, missing_path_is_named_with_the_reason)
{
	cr_assert_eq(load("SEALPOST_TLS_CA_FILE=/nonexistent/ca.pem", NULL), -1);
	cr_expect_str_eq(err, "SEALPOST_TLS_CA_FILE=/nonexistent/ca.pem: "
	    "No such file or directory; allowed: empty, or a readable file");
}

Test(config, unreadable_path_is_rejected)
{
	char pol[200];
	pid_t pid;
	int status;

	cr_assert_eq(chmod(policy_file, 0), 0);
	snprintf(pol, sizeof(pol), "SEALPOST_TLS_POLICY=%s", policy_file);
	if (geteuid() != 0) {
		cr_assert_eq(load(pol, NULL), -1);
		cr_expect_not_null(strstr(err, "not readable"), "%s", err);
		return;
	}
	/* root reads every file: check as nobody in a child process */
	cr_assert_eq(chmod(tmpdir, 0755), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (setgid(65534) == -1 || setuid(65534) == -1)
			_exit(2);
		if (load(pol, NULL) != -1)
			_exit(3);
		_exit(strstr(err, ": not readable: Permission denied; ") != NULL ? 0 : 4);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "child status %d", status);
}

Test(config, ca_dir_must_be_a_directory)
{
	char dir[200];

	snprintf(dir, sizeof(dir), "SEALPOST_TLS_CA_DIR=%s", ca_file);
	cr_assert_eq(load(dir, NULL), -1);
	cr_expect_not_null(strstr(err, "not a directory"), "%s", err);
}

Test(config, fingerprint_is_not_a_global_level)
{
	cr_assert_eq(load("SEALPOST_TLS_LEVEL=fingerprint", NULL), -1);
	cr_expect_eq(strncmp(err, "SEALPOST_TLS_LEVEL=fingerprint: ", 32), 0, "%s", err);
	cr_expect_not_null(strstr(err, "pin"), "%s", err);
	cr_expect_not_null(strstr(err, "SEALPOST_TLS_POLICY"), "%s", err);
}

Test(config, retry_min_above_retry_max_is_rejected)
{
	cr_assert_eq(load("SEALPOST_RETRY_MIN=2h", "SEALPOST_RETRY_MAX=1h", NULL), -1);
	cr_expect_eq(strncmp(err, "SEALPOST_RETRY_MIN=7200: ", 25), 0, "%s", err);
	cr_expect_not_null(strstr(err, "SEALPOST_RETRY_MAX"), "%s", err);
	cr_expect_eq(load("SEALPOST_RETRY_MIN=1h", "SEALPOST_RETRY_MAX=1h", NULL), 0);
}

Test(config, bind_address_accepts_ipv4_and_ipv6)
{
	cr_assert_eq(load("SEALPOST_BIND_ADDRESS=2001:db8::5", NULL), 0, "%s", err);
	cr_expect_str_eq(cfg.bind_address, "2001:db8::5");
	cr_assert_eq(load("SEALPOST_BIND_ADDRESS=[2001:db8::6]", NULL), 0, "%s", err);
	cr_expect_str_eq(cfg.bind_address, "2001:db8::6");
}

Test(config, helo_name_accepts_address_literals)
{
	cr_expect_eq(load("SEALPOST_HELO_NAME=[192.0.2.1]", NULL), 0, "%s", err);
	cr_expect_eq(load("SEALPOST_HELO_NAME=[IPv6:2001:db8::1]", NULL), 0, "%s", err);
	cr_expect_eq(load("SEALPOST_HELO_NAME=[IPv6:nope]", NULL), -1);
}

Test(config, metrics_listen_accepts_ipv6)
{
	cr_assert_eq(load("SEALPOST_METRICS_LISTEN=[::1]:9100", NULL), 0, "%s", err);
	cr_expect_str_eq(cfg.metrics_listen, "[::1]:9100");
}

Test(config, unknown_variable_is_accepted_and_listed)
{
	char *out;

	cr_assert_eq(load("SEALPOST_WROKERS=8", "SEALPOST_WORKERS=3", "HOME=/root",
	    NULL), 0, "%s", err);
	cr_expect_eq(cfg.nunknown, 1);
	out = print_config();
	cr_expect_not_null(strstr(out, "\nSEALPOST_WROKERS=8 unknown (ignored)\n"), "%s", out);
	cr_expect_null(strstr(out, "HOME"), "%s", out);
	free(out);
}

Test(config, print_shows_value_and_source_in_stable_order)
{
	char *out;

	cr_assert_eq(load("SEALPOST_LOG_LEVEL=warn", "SEALPOST_QUEUE_LIFETIME=2d",
	    "SEALPOST_ROUTES=A.example=[::1]:25,*=relay:25", NULL), 0, "%s", err);
	out = print_config();
	cr_expect_eq(strncmp(out, "SEALPOST_SPOOL=./spool (default)\n", 33), 0, "%s", out);
	cr_expect_not_null(strstr(out, "\nSEALPOST_LOG_LEVEL=warn (environment)\n"), "%s", out);
	cr_expect_not_null(strstr(out, "\nSEALPOST_LOG_FORMAT=text (default)\n"), "%s", out);
	cr_expect_not_null(strstr(out, "\nSEALPOST_QUEUE_LIFETIME=172800 (environment)\n"),
	    "%s", out);
	cr_expect_not_null(strstr(out,
	    "\nSEALPOST_ROUTES=a.example=[::1]:25,*=relay:25 (environment)\n"), "%s", out);
	cr_expect_lt(strstr(out, "SEALPOST_WORKERS="), strstr(out, "SEALPOST_LOG_LEVEL="));
	free(out);
}

Test(config, printed_configuration_loads_back_identically)
{
	static sp_config_t first;
	const char *env[MAXENV];
	char *out, *line, *save = NULL;
	size_t n = 0;

	cr_assert_eq(load("SEALPOST_ROUTES=x.example=[::1]:25",
	    "SEALPOST_DNS_SERVERS=127.0.0.1", "SEALPOST_TLS_MIN_VERSION=1.3",
	    "SEALPOST_RETRY_MAX=2h", NULL), 0, "%s", err);
	first = cfg;
	out = print_config();
	/* "NAME=value (source)": cut the source off and feed it back */
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char *paren = strrchr(line, '(');

		cr_assert_not_null(paren);
		paren[-1] = '\0';
		env[n++] = line;
	}
	cr_assert_eq(load_env(env, n), 0, "%s", err);
	memset(cfg.sources, 0, sizeof(cfg.sources));
	memset(first.sources, 0, sizeof(first.sources));
	cr_expect_eq(memcmp(&cfg, &first, sizeof(cfg)), 0);
	free(out);
}

Test(config, tls_level_names)
{
	cr_expect_str_eq(sp_tls_level_name(SP_TLS_ENCRYPT), "encrypt");
	cr_expect_str_eq(sp_tls_level_name(SP_TLS_VERIFY), "verify");
	cr_expect_str_eq(sp_tls_level_name(SP_TLS_SECURE), "secure");
	cr_expect_str_eq(sp_tls_level_name(SP_TLS_FINGERPRINT), "fingerprint");
	cr_expect_str_eq(sp_tls_level_name((enum sp_tls_level)42), "unknown");
}

Test(config, first_occurrence_wins_like_getenv)
{
	cr_assert_eq(load("SEALPOST_WORKERS=3", "SEALPOST_WORKERS=5", NULL), 0);
	cr_expect_eq(cfg.workers, 3);
}
