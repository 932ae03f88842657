/*
 * common/config.c - read and validate every SEALPOST_* variable once at start.
 *
 * Public: sp_config_load, sp_config_print, sp_parse_duration, sp_route_find,
 * sp_tls_level_name.
 *
 * Table-driven: vars[] lists each variable once with its kind, the field it
 * fills, its range and its default written as text.  Defaults go through the
 * same parser as environment values, so a default can never be something
 * the parser would reject, and sp_config_print shows what was parsed, not
 * what was typed.  The caller owns the sp_config_t (about 40 KB: do not put
 * it on a small thread stack); nothing here allocates or keeps state.
 *
 * Errors: sp_config_load returns -1 at the first bad variable with one line
 * in the caller's buffer, "SEALPOST_X=value: reason; allowed: what".  The
 * value is shown truncated and with control bytes replaced, since it is
 * hostile input printed to an operator's terminal.
 */
#include <sys/stat.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/config.h"

extern char **environ;

#define PREFIX		"SEALPOST_"
#define SHOW_MAX	64	/* value bytes quoted in an error message */
#define WHY_MAX		256

enum var_kind {
	K_PATH,		/* non-empty path that need not exist yet (spool) */
	K_UINT,		/* decimal number in [min, max] */
	K_DURATION,	/* sp_parse_duration() in [min, max] */
	K_PORT,		/* 1..65535 */
	K_ROUTES,	/* domain=host:port,... */
	K_DNS,		/* ip[:port],... */
	K_INET,		/* all | ipv4 | ipv6 */
	K_HOSTNAME,	/* HELO name */
	K_ADDR,		/* numeric address or empty */
	K_FILE,		/* readable regular file or empty */
	K_DIR,		/* readable directory or empty */
	K_TLSVER,	/* 1.2 | 1.3 */
	K_CIPHERS,	/* cipher list or empty */
	K_TLSLEVEL,	/* encrypt | verify | secure */
	K_LOGFMT,	/* text | json */
	K_LOGLEVEL,	/* debug | info | warn | error */
	K_LISTEN,	/* ip:port or empty */
};

struct var {
	const char *name;
	enum var_kind kind;
	size_t off;		/* field in sp_config_t */
	size_t size;		/* its size (bounds string copies) */
	unsigned min, max;	/* K_UINT, K_DURATION */
	const char *def;	/* default as text; NULL: computed at load */
};

#define F(field) offsetof(sp_config_t, field), sizeof(((sp_config_t *)0)->field)
#define MIN_S	60u
#define HOUR_S	3600u
#define DAY_S	86400u

/* The order here is the order of sp_config_print. */
static const struct var vars[] = {
	{ "SEALPOST_SPOOL", K_PATH, F(spool), 0, 0, "./spool" },
	{ "SEALPOST_WORKERS", K_UINT, F(workers), 1, 256, NULL },
	{ "SEALPOST_MAX_CONNECTIONS", K_UINT, F(max_connections), 1, 100000, "1000" },
	{ "SEALPOST_DEST_CONCURRENCY", K_UINT, F(dest_concurrency), 1, 10000, "20" },
	{ "SEALPOST_MSGS_PER_CONNECTION", K_UINT, F(msgs_per_connection), 1, 100000, "100" },
	{ "SEALPOST_RCPTS_PER_TRANSACTION", K_UINT, F(rcpts_per_transaction), 1, 1000, "50" },
	{ "SEALPOST_ROUTES", K_ROUTES, F(routes), 0, 0, "" },
	{ "SEALPOST_SMTP_PORT", K_PORT, F(smtp_port), 0, 0, "25" },
	{ "SEALPOST_DNS_SERVERS", K_DNS, F(dns_servers), 0, 0, "" },
	{ "SEALPOST_INET_PROTOCOLS", K_INET, F(inet_protocols), 0, 0, "all" },
	{ "SEALPOST_HELO_NAME", K_HOSTNAME, F(helo_name), 0, 0, NULL },
	{ "SEALPOST_BIND_ADDRESS", K_ADDR, F(bind_address), 0, 0, "" },
	{ "SEALPOST_TLS_CA_FILE", K_FILE, F(tls_ca_file), 0, 0, "" },
	{ "SEALPOST_TLS_CA_DIR", K_DIR, F(tls_ca_dir), 0, 0, "" },
	{ "SEALPOST_TLS_CERT", K_FILE, F(tls_cert), 0, 0, "" },
	{ "SEALPOST_TLS_KEY", K_FILE, F(tls_key), 0, 0, "" },
	{ "SEALPOST_TLS_MIN_VERSION", K_TLSVER, F(tls_min_version), 0, 0, "1.2" },
	{ "SEALPOST_TLS_CIPHERS", K_CIPHERS, F(tls_ciphers), 0, 0, "" },
	{ "SEALPOST_TLS_LEVEL", K_TLSLEVEL, F(tls_level), 0, 0, "verify" },
	{ "SEALPOST_TLS_POLICY", K_FILE, F(tls_policy), 0, 0, "" },
	{ "SEALPOST_TLS_SESSION_CACHE", K_UINT, F(tls_session_cache), 0, 10000000, "10000" },
	{ "SEALPOST_TLS_SESSION_LIFETIME", K_DURATION, F(tls_session_lifetime), 1, 7 * DAY_S, "3600" },
	{ "SEALPOST_RETRY_MIN", K_DURATION, F(retry_min), 1, 7 * DAY_S, "300" },
	{ "SEALPOST_RETRY_MAX", K_DURATION, F(retry_max), 1, 7 * DAY_S, "4000" },
	{ "SEALPOST_QUEUE_LIFETIME", K_DURATION, F(queue_lifetime), 0, 100 * DAY_S, "5d" },
	{ "SEALPOST_DELAY_WARNING", K_DURATION, F(delay_warning), 0, 100 * DAY_S, "0" },
	{ "SEALPOST_CONNECT_TIMEOUT", K_DURATION, F(connect_timeout), 1, HOUR_S, "30" },
	{ "SEALPOST_GREETING_TIMEOUT", K_DURATION, F(greeting_timeout), 1, HOUR_S, "300" },
	{ "SEALPOST_MAIL_TIMEOUT", K_DURATION, F(mail_timeout), 1, HOUR_S, "300" },
	{ "SEALPOST_DATA_INIT_TIMEOUT", K_DURATION, F(data_init_timeout), 1, HOUR_S, "120" },
	{ "SEALPOST_DATA_BLOCK_TIMEOUT", K_DURATION, F(data_block_timeout), 1, HOUR_S, "180" },
	{ "SEALPOST_DATA_DONE_TIMEOUT", K_DURATION, F(data_done_timeout), 1, HOUR_S, "600" },
	{ "SEALPOST_IDLE_TIMEOUT", K_DURATION, F(idle_timeout), 0, HOUR_S, "5" },
	{ "SEALPOST_SCAN_INTERVAL", K_DURATION, F(scan_interval), 1, DAY_S, "60" },
	{ "SEALPOST_LOG_FORMAT", K_LOGFMT, F(log_format), 0, 0, "text" },
	{ "SEALPOST_LOG_LEVEL", K_LOGLEVEL, F(log_level), 0, 0, "info" },
	{ "SEALPOST_METRICS_LISTEN", K_LISTEN, F(metrics_listen), 0, 0, "" },
};
#define NVARS (sizeof(vars) / sizeof(vars[0]))

_Static_assert(sizeof(vars) / sizeof(vars[0]) <= SP_CONFIG_MAX_VARS,
    "sp_config_t.sources too small");

enum { SRC_DEFAULT = 0, SRC_ENV = 1 };

static const char *env_lookup(char *const *envp, const char *name);
static const struct var *var_by_name(const char *name, size_t len);
static void remember_unknown(sp_config_t *cfg, const char *entry);
static void show_value(const char *val, char *out, size_t outlen);
static int parse_var(sp_config_t *cfg, const struct var *v, const char *val,
    char *why, size_t whylen);
static void var_allowed(const struct var *v, char *buf, size_t len);
static int parse_number(const char *s, size_t n, unsigned long long max,
    unsigned long long *out);
static int parse_port(const char *s, size_t n, uint16_t *out);
static int parse_string(char *dst, size_t dstsz, const char *val,
    char *why, size_t whylen);
static int parse_path(const struct var *v, char *dst, size_t dstsz,
    const char *val, char *why, size_t whylen);
static int parse_routes(sp_config_t *cfg, const char *val, char *why, size_t whylen);
static int parse_dns(sp_config_t *cfg, const char *val, char *why, size_t whylen);
static int parse_hostport(const char *s, size_t n, int allow_name, int need_port,
    uint16_t defport, char *host, size_t hostsz, uint16_t *port,
    char *why, size_t whylen);
static int valid_hostname(const char *s);
static int valid_domain(char *s);
static int valid_helo(const char *s);
static int next_item(const char **p, const char **item, size_t *len);
static void fmt_duration(unsigned secs, char *buf, size_t len);
static void render_var(const sp_config_t *cfg, const struct var *v, char *buf, size_t len);
static void fmt_hostport(const char *host, uint16_t port, char *buf, size_t len);
static int cross_check(const sp_config_t *cfg, char *err, size_t errlen);
static void set_err(char *err, size_t errlen, const char *name, const char *val,
    const char *why, const char *allowed);

/* sp_config_load - fill cfg from envp (NULL: environ); 0, or -1 with err set */
int
sp_config_load(sp_config_t *cfg, char *const *envp, char *err, size_t errlen)
{
	char why[WHY_MAX], allowed[WHY_MAX], defbuf[256];
	const char *val;
	size_t i;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	memset(cfg, 0, sizeof(*cfg));
	if (envp == NULL)
		envp = environ;

	for (i = 0; i < NVARS; i++) {
		const struct var *v = &vars[i];

		val = envp != NULL ? env_lookup(envp, v->name) : NULL;
		if (val != NULL) {
			cfg->sources[i] = SRC_ENV;
		} else if (v->def != NULL) {
			val = v->def;
		} else if (v->kind == K_UINT) {
			/* workers: one per online CPU, clamped into range */
			long n = sysconf(_SC_NPROCESSORS_ONLN);

			if (n < (long)v->min)
				n = (long)v->min;
			if (n > (long)v->max)
				n = (long)v->max;
			snprintf(defbuf, sizeof(defbuf), "%ld", n);
			val = defbuf;
		} else {
			/* helo name: the host name, if it is a usable one */
			memset(defbuf, 0, sizeof(defbuf));
			if (gethostname(defbuf, sizeof(defbuf) - 1) == -1 ||
			    !valid_helo(defbuf))
				snprintf(defbuf, sizeof(defbuf), "localhost");
			val = defbuf;
		}
		if (parse_var(cfg, v, val, why, sizeof(why)) == -1) {
			var_allowed(v, allowed, sizeof(allowed));
			set_err(err, errlen, v->name, val, why, allowed);
			return -1;
		}
	}

	/* Unknown SEALPOST_* names are kept to be shown, not fatal. */
	for (i = 0; envp != NULL && envp[i] != NULL; i++) {
		const char *eq;

		if (strncmp(envp[i], PREFIX, sizeof(PREFIX) - 1) != 0)
			continue;
		eq = strchr(envp[i], '=');
		if (eq == NULL)
			continue;
		if (var_by_name(envp[i], (size_t)(eq - envp[i])) == NULL)
			remember_unknown(cfg, envp[i]);
	}

	return cross_check(cfg, err, errlen);
}

/* sp_config_print - write every variable, value and source to fp */
void
sp_config_print(const sp_config_t *cfg, FILE *fp)
{
	char buf[SP_MAX_ROUTES * 530 + 16];
	size_t i;

	for (i = 0; i < NVARS; i++) {
		render_var(cfg, &vars[i], buf, sizeof(buf));
		fprintf(fp, "%s=%s (%s)\n", vars[i].name, buf,
		    cfg->sources[i] == SRC_ENV ? "environment" : "default");
	}
	for (i = 0; i < cfg->nunknown && i < SP_CONFIG_MAX_UNKNOWN; i++)
		fprintf(fp, "%s unknown (ignored)\n", cfg->unknown[i]);
	if (cfg->nunknown > SP_CONFIG_MAX_UNKNOWN)
		fprintf(fp, "# %zu more unknown SEALPOST_* variables (ignored)\n",
		    cfg->nunknown - SP_CONFIG_MAX_UNKNOWN);
}

/* sp_parse_duration - "30", "30s", "5m", "2h", "5d" into seconds; 0 or -1 */
int
sp_parse_duration(const char *s, unsigned *out)
{
	unsigned long long n, mult = 1;
	size_t len;

	if (s == NULL || out == NULL)
		return -1;
	len = strlen(s);
	if (len == 0)
		return -1;
	switch (s[len - 1]) {
	case 's': mult = 1; len--; break;
	case 'm': mult = MIN_S; len--; break;
	case 'h': mult = HOUR_S; len--; break;
	case 'd': mult = DAY_S; len--; break;
	default: break;
	}
	if (parse_number(s, len, UINT_MAX, &n) == -1)
		return -1;
	if (n > UINT_MAX / mult)
		return -1;
	*out = (unsigned)(n * mult);
	return 0;
}

/* sp_route_find - the route for a (lower-case) domain, or NULL (borrowed) */
const sp_route_t *
sp_route_find(const sp_config_t *cfg, const char *domain)
{
	const sp_route_t *wild = NULL;
	size_t i;

	if (cfg == NULL || domain == NULL)
		return NULL;
	/* At most SP_MAX_ROUTES entries: a linear scan costs less than a hash. */
	for (i = 0; i < cfg->nroutes && i < SP_MAX_ROUTES; i++) {
		if (strcmp(cfg->routes[i].domain, "*") == 0)
			wild = &cfg->routes[i];
		else if (strcasecmp(cfg->routes[i].domain, domain) == 0)
			return &cfg->routes[i];
	}
	return wild;
}

/* sp_tls_level_name - "encrypt", "verify", ... */
const char *
sp_tls_level_name(enum sp_tls_level level)
{
	switch (level) {
	case SP_TLS_ENCRYPT: return "encrypt";
	case SP_TLS_VERIFY: return "verify";
	case SP_TLS_SECURE: return "secure";
	case SP_TLS_FINGERPRINT: return "fingerprint";
	}
	return "unknown";
}

/* env_lookup - the value of name in envp, first occurrence like getenv(3) */
static const char *
env_lookup(char *const *envp, const char *name)
{
	size_t n = strlen(name), i;

	for (i = 0; envp[i] != NULL; i++)
		if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
			return envp[i] + n + 1;
	return NULL;
}

/* var_by_name - the table entry for a name of len bytes, or NULL */
static const struct var *
var_by_name(const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < NVARS; i++)
		if (strlen(vars[i].name) == len &&
		    memcmp(vars[i].name, name, len) == 0)
			return &vars[i];
	return NULL;
}

/* remember_unknown - keep "NAME=value" (sanitised) for sp_config_print */
static void
remember_unknown(sp_config_t *cfg, const char *entry)
{
	if (cfg->nunknown < SP_CONFIG_MAX_UNKNOWN)
		show_value(entry, cfg->unknown[cfg->nunknown],
		    sizeof(cfg->unknown[0]));
	cfg->nunknown++;
}

/*
 * show_value - a printable, bounded copy of hostile text: control and
 * non-ASCII bytes become '?', long values end in "...".
 */
static void
show_value(const char *val, char *out, size_t outlen)
{
	size_t i, max;

	if (outlen == 0)
		return;
	max = outlen - 1;
	for (i = 0; i < max && val[i] != '\0'; i++) {
		unsigned char c = (unsigned char)val[i];

		out[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	out[i] = '\0';
	if (val[i] != '\0' && max >= 3)
		memcpy(out + max - 3, "...", 4);
}

/* set_err - "SEALPOST_X=value: reason; allowed: what" into err */
static void
set_err(char *err, size_t errlen, const char *name, const char *val,
    const char *why, const char *allowed)
{
	char shown[SHOW_MAX + 4];

	if (err == NULL || errlen == 0)
		return;
	show_value(val, shown, sizeof(shown));
	snprintf(err, errlen, "%s=%s: %s; allowed: %s", name, shown, why, allowed);
}

/* parse_number - decimal digits only (no sign, no space) up to max */
static int
parse_number(const char *s, size_t n, unsigned long long max,
    unsigned long long *out)
{
	unsigned long long v = 0;
	size_t i;

	if (n == 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (max - (unsigned)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* parse_port - 1..65535 */
static int
parse_port(const char *s, size_t n, uint16_t *out)
{
	unsigned long long v;

	if (parse_number(s, n, 65535, &v) == -1 || v == 0)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

/* parse_string - copy a value without control bytes into a bounded field */
static int
parse_string(char *dst, size_t dstsz, const char *val, char *why, size_t whylen)
{
	size_t n = strlen(val), i;

	if (n >= dstsz) {
		snprintf(why, whylen, "too long (%zu bytes)", n);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if ((unsigned char)val[i] < 0x20 || val[i] == 0x7f) {
			snprintf(why, whylen, "control character at byte %zu", i);
			return -1;
		}
	}
	memcpy(dst, val, n + 1);
	return 0;
}

/* parse_path - a path that must exist and be readable (empty: unset) */
static int
parse_path(const struct var *v, char *dst, size_t dstsz, const char *val,
    char *why, size_t whylen)
{
	struct stat st;

	if (parse_string(dst, dstsz, val, why, whylen) == -1)
		return -1;
	if (*val == '\0')
		return 0;
	if (stat(val, &st) == -1) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -1;
	}
	if (v->kind == K_DIR && !S_ISDIR(st.st_mode)) {
		snprintf(why, whylen, "not a directory");
		return -1;
	}
	if (v->kind == K_FILE && S_ISDIR(st.st_mode)) {
		snprintf(why, whylen, "is a directory");
		return -1;
	}
	if (access(val, v->kind == K_DIR ? R_OK | X_OK : R_OK) == -1) {
		snprintf(why, whylen, "not readable: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* parse_var - parse val into the field of v; -1 with a reason in why */
static int
parse_var(sp_config_t *cfg, const struct var *v, const char *val,
    char *why, size_t whylen)
{
	char *field = (char *)cfg + v->off;
	unsigned long long n;
	unsigned d;
	struct in6_addr a6;
	struct in_addr a4;
	size_t i;

	switch (v->kind) {
	case K_PATH:
		if (*val == '\0') {
			snprintf(why, whylen, "empty");
			return -1;
		}
		return parse_string(field, v->size, val, why, whylen);
	case K_UINT:
		if (*val == '\0') {
			snprintf(why, whylen, "empty");
			return -1;
		}
		if (parse_number(val, strlen(val), ULLONG_MAX, &n) == -1) {
			snprintf(why, whylen, "not a number");
			return -1;
		}
		if (n < v->min || n > v->max) {
			snprintf(why, whylen, "out of range");
			return -1;
		}
		*(unsigned *)(void *)field = (unsigned)n;
		return 0;
	case K_DURATION:
		if (*val == '\0') {
			snprintf(why, whylen, "empty");
			return -1;
		}
		if (sp_parse_duration(val, &d) == -1) {
			snprintf(why, whylen, "not a duration");
			return -1;
		}
		if (d < v->min || d > v->max) {
			snprintf(why, whylen, "out of range");
			return -1;
		}
		*(unsigned *)(void *)field = d;
		return 0;
	case K_PORT:
		if (parse_port(val, strlen(val), (uint16_t *)(void *)field) == -1) {
			snprintf(why, whylen, "not a port number");
			return -1;
		}
		return 0;
	case K_ROUTES:
		return parse_routes(cfg, val, why, whylen);
	case K_DNS:
		return parse_dns(cfg, val, why, whylen);
	case K_INET:
		if (strcasecmp(val, "all") == 0)
			cfg->inet_protocols = 0;
		else if (strcasecmp(val, "ipv4") == 0)
			cfg->inet_protocols = 4;
		else if (strcasecmp(val, "ipv6") == 0)
			cfg->inet_protocols = 6;
		else {
			snprintf(why, whylen, "unknown protocol");
			return -1;
		}
		return 0;
	case K_HOSTNAME:
		if (!valid_helo(val)) {
			snprintf(why, whylen, "not a host name or address literal");
			return -1;
		}
		return parse_string(field, v->size, val, why, whylen);
	case K_ADDR:
		if (*val == '\0') {
			field[0] = '\0';
			return 0;
		}
		/* brackets are tolerated and dropped: "[::1]" means ::1 */
		i = strlen(val);
		if (val[0] == '[' && i > 2 && val[i - 1] == ']' && i - 2 < v->size) {
			memcpy(field, val + 1, i - 2);
			field[i - 2] = '\0';
		} else if (parse_string(field, v->size, val, why, whylen) == -1)
			return -1;
		if (inet_pton(AF_INET, field, &a4) != 1 &&
		    inet_pton(AF_INET6, field, &a6) != 1) {
			field[0] = '\0';
			snprintf(why, whylen, "not a numeric IP address");
			return -1;
		}
		return 0;
	case K_FILE:
	case K_DIR:
		return parse_path(v, field, v->size, val, why, whylen);
	case K_TLSVER:
		if (strcmp(val, "1.2") == 0)
			cfg->tls_min_version = 12;
		else if (strcmp(val, "1.3") == 0)
			cfg->tls_min_version = 13;
		else {
			snprintf(why, whylen, "unsupported TLS version");
			return -1;
		}
		return 0;
	case K_CIPHERS:
		for (i = 0; val[i] != '\0'; i++) {
			if (!isalnum((unsigned char)val[i]) &&
			    strchr(":+-_!@=.,", val[i]) == NULL) {
				snprintf(why, whylen, "bad character at byte %zu", i);
				return -1;
			}
		}
		return parse_string(field, v->size, val, why, whylen);
	case K_TLSLEVEL:
		if (strcasecmp(val, "encrypt") == 0)
			cfg->tls_level = SP_TLS_ENCRYPT;
		else if (strcasecmp(val, "verify") == 0)
			cfg->tls_level = SP_TLS_VERIFY;
		else if (strcasecmp(val, "secure") == 0)
			cfg->tls_level = SP_TLS_SECURE;
		else if (strcasecmp(val, "fingerprint") == 0) {
			snprintf(why, whylen, "fingerprint needs a per-domain pin, "
			    "set it in SEALPOST_TLS_POLICY");
			return -1;
		} else {
			snprintf(why, whylen, "unknown level");
			return -1;
		}
		return 0;
	case K_LOGFMT:
		if (strcasecmp(val, "text") == 0)
			cfg->log_format = SP_LOG_TEXT;
		else if (strcasecmp(val, "json") == 0)
			cfg->log_format = SP_LOG_JSON;
		else {
			snprintf(why, whylen, "unknown format");
			return -1;
		}
		return 0;
	case K_LOGLEVEL:
		if (strcasecmp(val, "debug") == 0)
			cfg->log_level = SP_LOG_DEBUG;
		else if (strcasecmp(val, "info") == 0)
			cfg->log_level = SP_LOG_INFO;
		else if (strcasecmp(val, "warn") == 0)
			cfg->log_level = SP_LOG_WARN;
		else if (strcasecmp(val, "error") == 0)
			cfg->log_level = SP_LOG_ERROR;
		else {
			snprintf(why, whylen, "unknown level");
			return -1;
		}
		return 0;
	case K_LISTEN: {
		char host[64];
		uint16_t port;

		if (*val == '\0') {
			field[0] = '\0';
			return 0;
		}
		if (parse_hostport(val, strlen(val), 0, 1, 0, host, sizeof(host),
		    &port, why, whylen) == -1)
			return -1;
		fmt_hostport(host, port, field, v->size);
		return 0;
	}
	}
	snprintf(why, whylen, "internal error: unknown kind");
	return -1;
}

/* var_allowed - the "allowed: ..." text for v */
static void
var_allowed(const struct var *v, char *buf, size_t len)
{
	char lo[32], hi[32];

	switch (v->kind) {
	case K_PATH:
		snprintf(buf, len, "a path of at most %zu bytes, no control characters",
		    v->size - 1);
		return;
	case K_UINT:
		snprintf(buf, len, "%u..%u", v->min, v->max);
		return;
	case K_DURATION:
		fmt_duration(v->min, lo, sizeof(lo));
		fmt_duration(v->max, hi, sizeof(hi));
		snprintf(buf, len, "%s..%s (seconds, or a number with suffix s, m, h or d)",
		    lo, hi);
		return;
	case K_PORT:
		snprintf(buf, len, "1..65535");
		return;
	case K_ROUTES:
		snprintf(buf, len, "empty, or up to %d comma-separated domain=host:port "
		    "or *=host:port (host: name, IPv4 or [IPv6])", SP_MAX_ROUTES);
		return;
	case K_DNS:
		snprintf(buf, len, "empty (system resolvers), or up to %d comma-separated "
		    "IPv4[:port] or [IPv6][:port]", SP_MAX_DNS_SERVERS);
		return;
	case K_INET:
		snprintf(buf, len, "all, ipv4, ipv6");
		return;
	case K_HOSTNAME:
		snprintf(buf, len, "a host name (letters, digits, '-', '.') "
		    "or an address literal [1.2.3.4] / [IPv6:...]");
		return;
	case K_ADDR:
		snprintf(buf, len, "empty, or a numeric IPv4 or IPv6 address");
		return;
	case K_FILE:
		snprintf(buf, len, "empty, or a readable file");
		return;
	case K_DIR:
		snprintf(buf, len, "empty, or a readable directory");
		return;
	case K_TLSVER:
		snprintf(buf, len, "1.2, 1.3");
		return;
	case K_CIPHERS:
		snprintf(buf, len, "empty, or a wolfSSL cipher list "
		    "(letters, digits and : + - _ ! @ = . ,)");
		return;
	case K_TLSLEVEL:
		snprintf(buf, len, "encrypt, verify, secure");
		return;
	case K_LOGFMT:
		snprintf(buf, len, "text, json");
		return;
	case K_LOGLEVEL:
		snprintf(buf, len, "debug, info, warn, error");
		return;
	case K_LISTEN:
		snprintf(buf, len, "empty (off), or IPv4:port or [IPv6]:port");
		return;
	}
	snprintf(buf, len, "?");
}

/* next_item - the next comma-separated item of *p, blanks trimmed; 0 at end */
static int
next_item(const char **p, const char **item, size_t *len)
{
	const char *s = *p, *e;

	if (s == NULL)
		return 0;
	e = strchr(s, ',');
	*len = e != NULL ? (size_t)(e - s) : strlen(s);
	*p = e != NULL ? e + 1 : NULL;
	while (*len > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		(*len)--;
	}
	while (*len > 0 && (s[*len - 1] == ' ' || s[*len - 1] == '\t'))
		(*len)--;
	*item = s;
	return 1;
}

/* parse_routes - "domain=host:port,*=host:port" into cfg->routes */
static int
parse_routes(sp_config_t *cfg, const char *val, char *why, size_t whylen)
{
	const char *p = val, *item, *eq;
	char sub[160];
	size_t len, dlen, i, k;
	sp_route_t *r;

	cfg->nroutes = 0;
	if (*val == '\0')
		return 0;
	for (k = 1; next_item(&p, &item, &len); k++) {
		if (cfg->nroutes == SP_MAX_ROUTES) {
			snprintf(why, whylen, "more than %d routes", SP_MAX_ROUTES);
			return -1;
		}
		if (len == 0) {
			snprintf(why, whylen, "route %zu: empty", k);
			return -1;
		}
		r = &cfg->routes[cfg->nroutes];
		eq = memchr(item, '=', len);
		if (eq == NULL) {
			snprintf(why, whylen, "route %zu: missing '='", k);
			return -1;
		}
		dlen = (size_t)(eq - item);
		if (dlen == 0 || dlen >= sizeof(r->domain)) {
			snprintf(why, whylen, "route %zu: %s domain", k,
			    dlen == 0 ? "empty" : "too long");
			return -1;
		}
		memcpy(r->domain, item, dlen);
		r->domain[dlen] = '\0';
		if (strcmp(r->domain, "*") != 0 && !valid_domain(r->domain)) {
			snprintf(why, whylen, "route %zu: bad domain", k);
			return -1;
		}
		for (i = 0; i < cfg->nroutes; i++) {
			if (strcmp(cfg->routes[i].domain, r->domain) == 0) {
				snprintf(why, whylen, "route %zu: domain listed twice", k);
				return -1;
			}
		}
		if (parse_hostport(eq + 1, len - dlen - 1, 1, 1, 0, r->host,
		    sizeof(r->host), &r->port, sub, sizeof(sub)) == -1) {
			snprintf(why, whylen, "route %zu: %s", k, sub);
			return -1;
		}
		cfg->nroutes++;
	}
	return 0;
}

/* parse_dns - "ip[:port],..." into cfg->dns_servers, port 53 by default */
static int
parse_dns(sp_config_t *cfg, const char *val, char *why, size_t whylen)
{
	const char *p = val, *item;
	char sub[160];
	size_t len, k;
	sp_hostport_t *h;

	cfg->ndns_servers = 0;
	if (*val == '\0')
		return 0;
	for (k = 1; next_item(&p, &item, &len); k++) {
		if (cfg->ndns_servers == SP_MAX_DNS_SERVERS) {
			snprintf(why, whylen, "more than %d servers", SP_MAX_DNS_SERVERS);
			return -1;
		}
		h = &cfg->dns_servers[cfg->ndns_servers];
		if (parse_hostport(item, len, 0, 0, 53, h->host, sizeof(h->host),
		    &h->port, sub, sizeof(sub)) == -1) {
			snprintf(why, whylen, "server %zu: %s", k, sub);
			return -1;
		}
		cfg->ndns_servers++;
	}
	return 0;
}

/*
 * parse_hostport - "host[:port]" of n bytes: IPv4, [IPv6], or (allow_name)
 * a host name.  The host is stored without brackets.
 */
static int
parse_hostport(const char *s, size_t n, int allow_name, int need_port,
    uint16_t defport, char *host, size_t hostsz, uint16_t *port,
    char *why, size_t whylen)
{
	char tmp[300];
	const char *h, *ps = NULL, *rb, *colon;
	size_t hl, pl = 0;
	struct in6_addr a6;
	struct in_addr a4;

	if (n == 0) {
		snprintf(why, whylen, "empty");
		return -1;
	}
	if (s[0] == '[') {
		rb = memchr(s, ']', n);
		if (rb == NULL) {
			snprintf(why, whylen, "missing ']'");
			return -1;
		}
		h = s + 1;
		hl = (size_t)(rb - h);
		if (rb + 1 < s + n) {
			if (rb[1] != ':') {
				snprintf(why, whylen, "junk after ']'");
				return -1;
			}
			ps = rb + 2;
			pl = n - (size_t)(ps - s);
		}
		if (hl == 0 || hl >= sizeof(tmp)) {
			snprintf(why, whylen, "bad IPv6 address");
			return -1;
		}
		memcpy(tmp, h, hl);
		tmp[hl] = '\0';
		if (inet_pton(AF_INET6, tmp, &a6) != 1) {
			snprintf(why, whylen, "bad IPv6 address");
			return -1;
		}
	} else {
		/* the last ':' separates the port (memrchr is not portable) */
		for (colon = NULL, hl = n; hl > 0; hl--) {
			if (s[hl - 1] == ':') {
				colon = s + hl - 1;
				break;
			}
		}
		h = s;
		hl = colon != NULL ? (size_t)(colon - s) : n;
		if (colon != NULL) {
			ps = colon + 1;
			pl = n - hl - 1;
			if (memchr(h, ':', hl) != NULL) {
				snprintf(why, whylen, "IPv6 address needs brackets: [addr]:port");
				return -1;
			}
		}
		if (hl == 0 || hl >= sizeof(tmp)) {
			snprintf(why, whylen, "%s host", hl == 0 ? "empty" : "too long");
			return -1;
		}
		memcpy(tmp, h, hl);
		tmp[hl] = '\0';
		if (inet_pton(AF_INET, tmp, &a4) != 1) {
			if (!allow_name) {
				snprintf(why, whylen, "not a numeric IP address");
				return -1;
			}
			if (strspn(tmp, "0123456789.") == hl) {
				snprintf(why, whylen, "bad IPv4 address");
				return -1;
			}
			if (!valid_hostname(tmp)) {
				snprintf(why, whylen, "bad host name");
				return -1;
			}
			for (hl = 0; tmp[hl] != '\0'; hl++)
				tmp[hl] = (char)tolower((unsigned char)tmp[hl]);
		}
	}
	if (strlen(tmp) >= hostsz) {
		snprintf(why, whylen, "host too long");
		return -1;
	}
	if (ps != NULL) {
		if (parse_port(ps, pl, port) == -1) {
			snprintf(why, whylen, "bad port, not 1..65535");
			return -1;
		}
	} else if (need_port) {
		snprintf(why, whylen, "missing :port");
		return -1;
	} else
		*port = defport;
	snprintf(host, hostsz, "%s", tmp);
	return 0;
}

/* valid_hostname - labels of letters, digits and '-', at most 253 bytes */
static int
valid_hostname(const char *s)
{
	size_t n = strlen(s), label = 0, i;

	if (n == 0 || n > 253)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			/* empty label, or a hyphen at its end */
			if (label == 0 || s[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!isalnum(c) && c != '-')
			return 0;
		if (c == '-' && label == 0)
			return 0;
		if (++label > 63)
			return 0;
	}
	/* a trailing dot is tolerated (absolute name); the last label not empty */
	return s[n - 1] != '-' && (label > 0 || n > 1);
}

/* valid_domain - lower-case s in place, drop a trailing dot, check syntax */
static int
valid_domain(char *s)
{
	char tmp[256];
	size_t n, i;

	for (i = 0; s[i] != '\0'; i++)
		s[i] = (char)tolower((unsigned char)s[i]);
	n = i;
	if (n > 1 && s[n - 1] == '.')
		s[n - 1] = '\0';
	/* underscores occur in real domains; names are matched, not resolved */
	if (n >= 256)
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		tmp[i] = s[i] == '_' ? 'a' : s[i];
	tmp[i] = '\0';
	return valid_hostname(tmp);
}

/* valid_helo - a host name, or an address literal "[1.2.3.4]", "[IPv6:::1]" */
static int
valid_helo(const char *s)
{
	char tmp[64];
	size_t n = strlen(s);
	struct in6_addr a6;
	struct in_addr a4;

	if (n > 2 && s[0] == '[' && s[n - 1] == ']') {
		if (n - 2 >= sizeof(tmp))
			return 0;
		memcpy(tmp, s + 1, n - 2);
		tmp[n - 2] = '\0';
		if (strncasecmp(tmp, "IPv6:", 5) == 0)
			return inet_pton(AF_INET6, tmp + 5, &a6) == 1;
		return inet_pton(AF_INET, tmp, &a4) == 1;
	}
	return valid_hostname(s);
}

/* fmt_duration - seconds in the largest exact unit: 432000 -> "5d" */
static void
fmt_duration(unsigned secs, char *buf, size_t len)
{
	if (secs == 0)
		snprintf(buf, len, "0");
	else if (secs % DAY_S == 0)
		snprintf(buf, len, "%ud", secs / DAY_S);
	else if (secs % HOUR_S == 0)
		snprintf(buf, len, "%uh", secs / HOUR_S);
	else if (secs % MIN_S == 0)
		snprintf(buf, len, "%um", secs / MIN_S);
	else
		snprintf(buf, len, "%us", secs);
}

/* fmt_hostport - "host:port", IPv6 in brackets */
static void
fmt_hostport(const char *host, uint16_t port, char *buf, size_t len)
{
	if (strchr(host, ':') != NULL)
		snprintf(buf, len, "[%s]:%u", host, (unsigned)port);
	else
		snprintf(buf, len, "%s:%u", host, (unsigned)port);
}

/* render_var - the effective value of v as text, as sp_config_load would take it */
static void
render_var(const sp_config_t *cfg, const struct var *v, char *buf, size_t len)
{
	const char *field = (const char *)cfg + v->off;
	char hp[300];
	size_t i, used;

	buf[0] = '\0';
	switch (v->kind) {
	case K_UINT:
		snprintf(buf, len, "%u", *(const unsigned *)(const void *)field);
		return;
	case K_DURATION:
		/* seconds, so that scripts can compare without parsing units */
		snprintf(buf, len, "%u", *(const unsigned *)(const void *)field);
		return;
	case K_PORT:
		snprintf(buf, len, "%u", (unsigned)*(const uint16_t *)(const void *)field);
		return;
	case K_ROUTES:
		for (i = 0, used = 0; i < cfg->nroutes && i < SP_MAX_ROUTES; i++) {
			fmt_hostport(cfg->routes[i].host, cfg->routes[i].port, hp,
			    sizeof(hp));
			if (used < len)
				used += (size_t)snprintf(buf + used, len - used, "%s%s=%s",
				    i > 0 ? "," : "", cfg->routes[i].domain, hp);
		}
		return;
	case K_DNS:
		for (i = 0, used = 0; i < cfg->ndns_servers && i < SP_MAX_DNS_SERVERS; i++) {
			fmt_hostport(cfg->dns_servers[i].host, cfg->dns_servers[i].port,
			    hp, sizeof(hp));
			if (used < len)
				used += (size_t)snprintf(buf + used, len - used, "%s%s",
				    i > 0 ? "," : "", hp);
		}
		return;
	case K_INET:
		snprintf(buf, len, "%s", cfg->inet_protocols == 4 ? "ipv4" :
		    cfg->inet_protocols == 6 ? "ipv6" : "all");
		return;
	case K_TLSVER:
		snprintf(buf, len, "%s", cfg->tls_min_version == 13 ? "1.3" : "1.2");
		return;
	case K_TLSLEVEL:
		snprintf(buf, len, "%s", sp_tls_level_name(cfg->tls_level));
		return;
	case K_LOGFMT:
		snprintf(buf, len, "%s", cfg->log_format == SP_LOG_JSON ? "json" : "text");
		return;
	case K_LOGLEVEL:
		snprintf(buf, len, "%s", cfg->log_level == SP_LOG_DEBUG ? "debug" :
		    cfg->log_level == SP_LOG_WARN ? "warn" :
		    cfg->log_level == SP_LOG_ERROR ? "error" : "info");
		return;
	case K_PATH:
	case K_HOSTNAME:
	case K_ADDR:
	case K_FILE:
	case K_DIR:
	case K_CIPHERS:
	case K_LISTEN:
		/* bounded by the field: never trust a NUL we did not write */
		snprintf(buf, len, "%.*s", (int)strnlen(field, v->size), field);
		return;
	}
}

/* cross_check - rules that tie two variables together */
static int
cross_check(const sp_config_t *cfg, char *err, size_t errlen)
{
	char a[32], b[32];

	if ((cfg->tls_cert[0] == '\0') != (cfg->tls_key[0] == '\0')) {
		int cert_set = cfg->tls_cert[0] != '\0';

		set_err(err, errlen, cert_set ? "SEALPOST_TLS_KEY" : "SEALPOST_TLS_CERT",
		    "", cert_set ? "missing while SEALPOST_TLS_CERT is set" :
		    "missing while SEALPOST_TLS_KEY is set",
		    "SEALPOST_TLS_CERT and SEALPOST_TLS_KEY both set, or both unset");
		return -1;
	}
	if (cfg->retry_min > cfg->retry_max) {
		char why[WHY_MAX];

		snprintf(a, sizeof(a), "%u", cfg->retry_min);
		snprintf(b, sizeof(b), "%u", cfg->retry_max);
		snprintf(why, sizeof(why), "greater than SEALPOST_RETRY_MAX (%s)", b);
		set_err(err, errlen, "SEALPOST_RETRY_MIN", a, why,
		    "at most SEALPOST_RETRY_MAX");
		return -1;
	}
	return 0;
}
