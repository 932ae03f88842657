/*
 * common/config.h - sealpost configuration: every SEALPOST_* variable, read
 * and validated once at start.
 *
 * sp_config_load() fills a sp_config_t from an environment (envp-style array,
 * NULL means the process environment).  On an invalid value it returns -1
 * and writes into err a message naming the variable, the value and what is
 * allowed ("SEALPOST_WORKERS=abc: not a number; allowed: 1..256").  The
 * struct is then read-only and shared by every thread.
 *
 * sp_config_print() writes the effective configuration, one variable a line
 * with its value and its source (default | environment), for `sealpost config`.
 */
#ifndef SP_COMMON_CONFIG_H
#define SP_COMMON_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SP_MAX_ROUTES 64
#define SP_MAX_DNS_SERVERS 8
#define SP_CONFIG_MAX_VARS 64		/* room in sp_config_t.sources */
#define SP_CONFIG_MAX_UNKNOWN 16	/* unknown SEALPOST_* names remembered */

/* One SEALPOST_ROUTES entry: "domain=host:port" or "*=host:port". */
typedef struct sp_route {
	char domain[256];	/* lower case; "*" matches every domain */
	char host[256];		/* host name (verified like an MX name) or IP literal;
				   an IPv6 literal is stored without brackets */
	uint16_t port;
} sp_route_t;

typedef struct sp_hostport {
	char host[64];		/* numeric IPv4 or IPv6 address (no brackets) */
	uint16_t port;
} sp_hostport_t;

enum sp_tls_level {
	SP_TLS_ENCRYPT,		/* TLS required, peer not verified */
	SP_TLS_VERIFY,		/* CA-signed, unexpired, names the MX host */
	SP_TLS_SECURE,		/* as verify, name matches recipient domain or match= */
	SP_TLS_FINGERPRINT,	/* SHA-256 pin of certificate or SPKI */
};

enum sp_log_format { SP_LOG_TEXT, SP_LOG_JSON };
enum sp_log_level { SP_LOG_DEBUG, SP_LOG_INFO, SP_LOG_WARN, SP_LOG_ERROR };

typedef struct sp_config {
	char spool[4096];		/* SEALPOST_SPOOL [./spool] */
	unsigned workers;		/* SEALPOST_WORKERS [nproc] 1..256 */
	unsigned max_connections;	/* SEALPOST_MAX_CONNECTIONS [1000] */
	unsigned dest_concurrency;	/* SEALPOST_DEST_CONCURRENCY [20] */
	unsigned msgs_per_connection;	/* SEALPOST_MSGS_PER_CONNECTION [100] */
	unsigned rcpts_per_transaction;	/* SEALPOST_RCPTS_PER_TRANSACTION [50] */
	sp_route_t routes[SP_MAX_ROUTES]; /* SEALPOST_ROUTES [none] */
	size_t nroutes;
	uint16_t smtp_port;		/* SEALPOST_SMTP_PORT [25] */
	sp_hostport_t dns_servers[SP_MAX_DNS_SERVERS]; /* SEALPOST_DNS_SERVERS [system] */
	size_t ndns_servers;
	int inet_protocols;		/* SEALPOST_INET_PROTOCOLS [all]: 4, 6 or 0 for all */
	char helo_name[256];		/* SEALPOST_HELO_NAME [gethostname()] */
	char bind_address[64];		/* SEALPOST_BIND_ADDRESS [""]: numeric address */
	char tls_ca_file[4096];		/* SEALPOST_TLS_CA_FILE [system store] */
	char tls_ca_dir[4096];		/* SEALPOST_TLS_CA_DIR [""] */
	char tls_cert[4096];		/* SEALPOST_TLS_CERT [""] */
	char tls_key[4096];		/* SEALPOST_TLS_KEY [""] */
	int tls_min_version;		/* SEALPOST_TLS_MIN_VERSION [12]: 12 or 13 */
	char tls_ciphers[1024];		/* SEALPOST_TLS_CIPHERS [""]: wolfSSL cipher list */
	enum sp_tls_level tls_level;	/* SEALPOST_TLS_LEVEL [verify] */
	char tls_policy[4096];		/* SEALPOST_TLS_POLICY [""]: policy file path */
	unsigned tls_session_cache;	/* SEALPOST_TLS_SESSION_CACHE [10000] entries */
	unsigned tls_session_lifetime;	/* SEALPOST_TLS_SESSION_LIFETIME [3600] s */
	unsigned retry_min;		/* SEALPOST_RETRY_MIN [300] s */
	unsigned retry_max;		/* SEALPOST_RETRY_MAX [4000] s */
	unsigned queue_lifetime;	/* SEALPOST_QUEUE_LIFETIME [5d] s */
	unsigned delay_warning;		/* SEALPOST_DELAY_WARNING [0 = off] s */
	unsigned connect_timeout;	/* SEALPOST_CONNECT_TIMEOUT [30] s */
	unsigned greeting_timeout;	/* SEALPOST_GREETING_TIMEOUT [300] s (also EHLO, STARTTLS, handshake) */
	unsigned mail_timeout;		/* SEALPOST_MAIL_TIMEOUT [300] s (MAIL, RCPT, RSET) */
	unsigned data_init_timeout;	/* SEALPOST_DATA_INIT_TIMEOUT [120] s */
	unsigned data_block_timeout;	/* SEALPOST_DATA_BLOCK_TIMEOUT [180] s */
	unsigned data_done_timeout;	/* SEALPOST_DATA_DONE_TIMEOUT [600] s */
	unsigned idle_timeout;		/* SEALPOST_IDLE_TIMEOUT [5] s: idle cached session */
	unsigned scan_interval;		/* SEALPOST_SCAN_INTERVAL [60] s: safety-net rescan of new/ */
	enum sp_log_format log_format;	/* SEALPOST_LOG_FORMAT [text] */
	enum sp_log_level log_level;	/* SEALPOST_LOG_LEVEL [info] */
	char metrics_listen[128];	/* SEALPOST_METRICS_LISTEN [""] */

	/* Kept by sp_config_load for sp_config_print only; not for other modules. */
	unsigned char sources[SP_CONFIG_MAX_VARS];	/* per variable: 0 default, 1 environment */
	char unknown[SP_CONFIG_MAX_UNKNOWN][160];	/* unknown "SEALPOST_X=value", sanitised */
	size_t nunknown;				/* unknown names seen (may exceed the array) */
} sp_config_t;

/* sp_config_load - fill cfg from envp (NULL: environ); 0, or -1 with err set */
int sp_config_load(sp_config_t *cfg, char *const *envp, char *err, size_t errlen);

/* sp_config_print - write every variable, value and source to fp */
void sp_config_print(const sp_config_t *cfg, FILE *fp);

/* sp_parse_duration - "30", "30s", "5m", "2h", "5d" into seconds; 0 or -1 */
int sp_parse_duration(const char *s, unsigned *out);

/* sp_route_find - the route for a (lower-case) domain, or NULL (borrowed) */
const sp_route_t *sp_route_find(const sp_config_t *cfg, const char *domain);

/* sp_tls_level_name - "encrypt", "verify", ... */
const char *sp_tls_level_name(enum sp_tls_level level);

#endif
