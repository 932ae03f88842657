/*
 * tests/test_tls.c - TLS client and server connections pumped into each
 * other in memory, with the certificates of tests/lib/mkcerts.sh, and the
 * RFC 6125 name matcher by table.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/status.h"
#include "tls/tls.h"
#include "tls/tls_internal.h"

static char dir[256];
static char path_buf[8][512];
static int path_i;

static const char *cert(const char *name);
static void make_certs(void);
static void drop_certs(void);
static void client_cfg(sp_config_t *cfg);
static void move(tls_conn_t *from, tls_conn_t *to);
static int pump(tls_conn_t *cl, tls_conn_t *sv, int *sst);
static int connect_to(const char *server_cert, int server_version, const char *host,
		      const tls_policy_t *pol, char *why, size_t whylen, tls_info_t *info);

/* cert - DIR/NAME in one of a few rotating buffers */
static const char *
cert(const char *name)
{
	char *p = path_buf[path_i++ % 8];

	snprintf(p, 512, "%s/%s", dir, name);
	return p;
}

/* make_certs - a fresh temp dir with the test certificates */
static void
make_certs(void)
{
	char cmd[1024];

	snprintf(dir, sizeof(dir), "/tmp/sp-tls-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd), "bash '%s' '%s'", SP_TEST_DATA "/../lib/mkcerts.sh", dir);
	cr_assert_eq(system(cmd), 0, "mkcerts.sh failed");
}

/* drop_certs - remove the temp dir */
static void
drop_certs(void)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

TestSuite(tls, .init = make_certs, .fini = drop_certs, .timeout = 60);

/* client_cfg - a client configuration trusting the test CA */
static void
client_cfg(sp_config_t *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->tls_ca_file, sizeof(cfg->tls_ca_file), "%s", cert("ca.pem"));
	cfg->tls_min_version = 12;
	cfg->tls_level = SP_TLS_VERIFY;
	cfg->tls_session_cache = 100;
	cfg->tls_session_lifetime = 3600;
}

/* move - all pending ciphertext of one side into the other */
static void
move(tls_conn_t *from, tls_conn_t *to)
{
	const void *p;
	size_t n;

	while ((n = tls_conn_output(from, &p)) > 0) {
		tls_conn_input(to, p, n);
		tls_conn_output_done(from, n);
	}
}

/* pump - run both handshakes until neither makes progress; client status */
static int
pump(tls_conn_t *cl, tls_conn_t *sv, int *sst)
{
	int cs = SP_AGAIN, ss = SP_AGAIN, i;

	for (i = 0; i < 50; i++) {
		if (cs == SP_AGAIN)
			cs = tls_conn_handshake(cl);
		move(cl, sv);
		if (ss == SP_AGAIN)
			ss = tls_conn_handshake(sv);
		move(sv, cl);
		if (cs != SP_AGAIN && ss != SP_AGAIN)
			break;
		if (cs == SP_ERROR || ss == SP_ERROR) {
			/* let the other side see the alert once */
			if (cs == SP_AGAIN)
				cs = tls_conn_handshake(cl);
			if (ss == SP_AGAIN)
				ss = tls_conn_handshake(sv);
			move(cl, sv);
			move(sv, cl);
			break;
		}
	}
	if (sst)
		*sst = ss;
	return cs;
}

/* connect_to - one handshake of our client against a server using
 * DIR/server_cert (+ .key); client status, reason into why */
static int
connect_to(const char *server_cert, int server_version, const char *host,
	   const tls_policy_t *pol, char *why, size_t whylen, tls_info_t *info)
{
	char err[512], crt[512], key[512];
	sp_config_t cfg;
	tls_ctx_t *cctx, *sctx;
	tls_conn_t *cl, *sv;
	int st;

	client_cfg(&cfg);
	snprintf(crt, sizeof(crt), "%s/%s.pem", dir, server_cert);
	snprintf(key, sizeof(key), "%s/%s.key", dir, server_cert);
	cctx = tls_ctx_new_client(&cfg, err, sizeof(err));
	cr_assert_not_null(cctx, "%s", err);
	sctx = tls_ctx_new_server(crt, key, NULL, server_version, err, sizeof(err));
	cr_assert_not_null(sctx, "%s", err);
	cl = tls_conn_new_client(cctx, pol, host, 25, "example.test");
	sv = tls_conn_new_server(sctx);
	cr_assert_not_null(cl);
	cr_assert_not_null(sv);
	st = pump(cl, sv, NULL);
	snprintf(why, whylen, "%s", st == SP_ERROR ? tls_conn_error(cl) : "");
	if (info)
		tls_conn_info(cl, info);
	tls_conn_free(cl);
	tls_conn_free(sv);
	tls_ctx_free(cctx);
	tls_ctx_free(sctx);
	return st;
}

Test(tls, good_chain_is_accepted_over_tls13)
{
	char why[1024];
	tls_info_t info;

	cr_assert_eq(connect_to("server", 12, "mx.test", NULL, why, sizeof(why), &info),
	    SP_OK, "%s", why);
	cr_assert_str_eq(info.version, "TLSv1.3");
	cr_assert_str_eq(info.verified, "yes");
	cr_assert_eq(info.resumed, 0);
	cr_assert(strlen(info.cipher) > 4);
}

Test(tls, good_chain_is_accepted_over_tls12)
{
	char why[1024];
	tls_info_t info;

	cr_assert_eq(connect_to("server", 1212, "mx.test", NULL, why, sizeof(why), &info),
	    SP_OK, "%s", why);
	cr_assert_str_eq(info.version, "TLSv1.2");
	cr_assert_str_eq(info.verified, "yes");
}

Test(tls, mx_name_is_matched_case_insensitively_with_trailing_dot)
{
	char why[1024];

	cr_assert_eq(connect_to("server", 12, "MX.Test.", NULL, why, sizeof(why), NULL),
	    SP_OK, "%s", why);
}

Test(tls, wildcard_san_covers_one_label)
{
	char why[1024];

	cr_assert_eq(connect_to("server", 12, "a.wild.test", NULL, why, sizeof(why), NULL),
	    SP_OK, "%s", why);
	cr_assert_eq(connect_to("server", 12, "b.a.wild.test", NULL, why, sizeof(why), NULL),
	    SP_ERROR);
	cr_assert(strstr(why, "certificate name mismatch: b.a.wild.test not in [") != NULL,
	    "%s", why);
}

Test(tls, ip_literal_host_matches_ip_san)
{
	char why[1024];

	cr_assert_eq(connect_to("server", 12, "127.0.0.1", NULL, why, sizeof(why), NULL),
	    SP_OK, "%s", why);
	cr_assert_eq(connect_to("server", 12, "127.0.0.2", NULL, why, sizeof(why), NULL),
	    SP_ERROR);
}

Test(tls, wrong_name_is_refused_with_names)
{
	char why[1024];

	cr_assert_eq(connect_to("wrongname", 12, "mx.test", NULL, why, sizeof(why), NULL),
	    SP_ERROR);
	cr_assert_str_eq(why, "certificate name mismatch: mx.test not in [other.test]");
}

Test(tls, expired_certificate_is_refused)
{
	char why[1024];

	cr_assert_eq(connect_to("expired", 12, "mx.test", NULL, why, sizeof(why), NULL),
	    SP_ERROR);
	cr_assert(strncmp(why, "certificate has expired (notAfter ", 34) == 0, "%s", why);
	cr_assert(strstr(why, "2002") != NULL, "%s", why);
}

Test(tls, untrusted_ca_is_refused_naming_issuer)
{
	char why[1024];

	cr_assert_eq(connect_to("untrusted", 12, "mx.test", NULL, why, sizeof(why), NULL),
	    SP_ERROR);
	cr_assert(strncmp(why, "certificate verify failed: unknown CA (issuer ", 46) == 0,
	    "%s", why);
	cr_assert(strstr(why, "sealpost untrusted CA") != NULL, "%s", why);
}

Test(tls, self_signed_is_refused_at_verify_level)
{
	char why[1024];

	cr_assert_eq(connect_to("selfsigned", 12, "mx.test", NULL, why, sizeof(why), NULL),
	    SP_ERROR);
	cr_assert(strncmp(why, "certificate verify failed: unknown CA", 37) == 0, "%s", why);
}

Test(tls, tls12_server_is_refused_when_minimum_is_13)
{
	char err[512], why[1024];
	sp_config_t cfg;
	tls_ctx_t *cctx, *sctx;
	tls_conn_t *cl, *sv;

	client_cfg(&cfg);
	cfg.tls_min_version = 13;
	cctx = tls_ctx_new_client(&cfg, err, sizeof(err));
	cr_assert_not_null(cctx, "%s", err);
	sctx = tls_ctx_new_server(cert("server.pem"), cert("server.key"), NULL, 1212,
	    err, sizeof(err));
	cr_assert_not_null(sctx, "%s", err);
	cl = tls_conn_new_client(cctx, NULL, "mx.test", 25, "example.test");
	sv = tls_conn_new_server(sctx);
	cr_assert_eq(pump(cl, sv, NULL), SP_ERROR);
	snprintf(why, sizeof(why), "%s", tls_conn_error(cl));
	cr_assert_str_eq(why, "handshake failed: protocol version (peer offered TLS 1.2)");
	tls_conn_free(cl);
	tls_conn_free(sv);
	tls_ctx_free(cctx);
	tls_ctx_free(sctx);
}

Test(tls, peer_closing_during_handshake_is_reported)
{
	char err[512];
	sp_config_t cfg;
	tls_ctx_t *cctx;
	tls_conn_t *cl;
	const void *p;

	client_cfg(&cfg);
	cctx = tls_ctx_new_client(&cfg, err, sizeof(err));
	cr_assert_not_null(cctx, "%s", err);
	cl = tls_conn_new_client(cctx, NULL, "mx.test", 25, "example.test");
	cr_assert_eq(tls_conn_handshake(cl), SP_AGAIN);
	cr_assert_gt(tls_conn_output(cl, &p), 0, "a ClientHello is queued");
	tls_conn_input_eof(cl);
	cr_assert_eq(tls_conn_handshake(cl), SP_ERROR);
	cr_assert_str_eq(tls_conn_error(cl), "peer closed during handshake");
	tls_conn_free(cl);
	tls_ctx_free(cctx);
}

Test(tls, garbage_from_peer_fails_the_handshake)
{
	char err[512];
	sp_config_t cfg;
	tls_ctx_t *cctx;
	tls_conn_t *cl;
	static const char junk[] = "220 mx.test ESMTP hello\r\n";

	client_cfg(&cfg);
	cctx = tls_ctx_new_client(&cfg, err, sizeof(err));
	cl = tls_conn_new_client(cctx, NULL, "mx.test", 25, "example.test");
	cr_assert_eq(tls_conn_handshake(cl), SP_AGAIN);
	tls_conn_input(cl, junk, sizeof(junk) - 1);
	cr_assert_eq(tls_conn_handshake(cl), SP_ERROR);
	cr_assert(strncmp(tls_conn_error(cl), "handshake failed: ", 18) == 0, "%s",
	    tls_conn_error(cl));
	tls_conn_free(cl);
	tls_ctx_free(cctx);
}

/* client_cert_case - server demands a client cert; server status */
static int client_cert_case(int with_cert, int version);

static int
client_cert_case(int with_cert, int version)
{
	char err[512], buf[64];
	sp_config_t cfg;
	tls_ctx_t *cctx, *sctx;
	tls_conn_t *cl, *sv;
	tls_info_t info;
	size_t n;
	int ss, cs, i;

	client_cfg(&cfg);
	if (with_cert) {
		snprintf(cfg.tls_cert, sizeof(cfg.tls_cert), "%s", cert("client.pem"));
		snprintf(cfg.tls_key, sizeof(cfg.tls_key), "%s", cert("client.key"));
	}
	cctx = tls_ctx_new_client(&cfg, err, sizeof(err));
	cr_assert_not_null(cctx, "%s", err);
	sctx = tls_ctx_new_server(cert("server.pem"), cert("server.key"), cert("client-ca.pem"),
	    version, err, sizeof(err));
	cr_assert_not_null(sctx, "%s", err);
	cl = tls_conn_new_client(cctx, NULL, "mx.test", 25, "example.test");
	sv = tls_conn_new_server(sctx);
	cs = pump(cl, sv, &ss);
	if (ss == SP_OK) {
		tls_conn_info(sv, &info);
		cr_assert_str_eq(info.verified, "yes");
	} else
		cr_assert(strlen(tls_conn_error(sv)) > 0);
	/* TLS 1.3: the client finishes first and learns of the refusal on read */
	if (cs == SP_OK && ss != SP_OK) {
		for (i = 0; i < 3 && cs == SP_OK; i++) {
			move(sv, cl);
			cs = tls_conn_read(cl, buf, sizeof(buf), &n);
			if (cs == SP_AGAIN)
				cs = SP_OK;
		}
		cr_assert_neq(cs, SP_OK, "client must see the refusal");
	}
	tls_conn_free(cl);
	tls_conn_free(sv);
	tls_ctx_free(cctx);
	tls_ctx_free(sctx);
	return ss;
}

Test(tls, client_certificate_is_presented_when_asked)
{
	cr_assert_eq(client_cert_case(1, 12), SP_OK);
	cr_assert_eq(client_cert_case(1, 1212), SP_OK);
}

Test(tls, server_requiring_client_cert_refuses_client_without_one)
{
	cr_assert_eq(client_cert_case(0, 12), SP_ERROR);
	cr_assert_eq(client_cert_case(0, 1212), SP_ERROR);
}

Test(tls, data_flows_both_ways_and_close_notify_ends_the_stream)
{
	char err[512], buf[256];
	sp_config_t cfg;
	tls_ctx_t *cctx, *sctx;
	tls_conn_t *cl, *sv;
	size_t n, got;
	static char big[200000];

	client_cfg(&cfg);
	cctx = tls_ctx_new_client(&cfg, err, sizeof(err));
	sctx = tls_ctx_new_server(cert("server.pem"), cert("server.key"), NULL, 12,
	    err, sizeof(err));
	cl = tls_conn_new_client(cctx, NULL, "mx.test", 25, "example.test");
	sv = tls_conn_new_server(sctx);
	cr_assert_eq(pump(cl, sv, NULL), SP_OK, "%s", tls_conn_error(cl));
	cr_assert_eq(tls_conn_write(sv, "220 ready\r\n", 11, &n), SP_OK);
	cr_assert_eq(n, 11);
	move(sv, cl);
	cr_assert_eq(tls_conn_read(cl, buf, sizeof(buf), &got), SP_OK);
	cr_assert_eq(got, 11);
	cr_assert(memcmp(buf, "220 ready\r\n", 11) == 0);
	cr_assert_eq(tls_conn_read(cl, buf, sizeof(buf), &got), SP_AGAIN);

	/* a large write is taken in part while output is full */
	memset(big, 'x', sizeof(big));
	cr_assert_eq(tls_conn_write(cl, big, sizeof(big), &n), SP_OK);
	cr_assert(n > 0 && n < sizeof(big), "took %zu", n);

	tls_conn_shutdown(cl);
	move(cl, sv);
	got = 0;
	n = 0;
	while (tls_conn_read(sv, buf, sizeof(buf), &got) == SP_OK)
		n += got;
	cr_assert_gt(n, 0);
	cr_assert_eq(tls_conn_read(sv, buf, sizeof(buf), &got), SP_DONE);
	tls_conn_free(cl);
	tls_conn_free(sv);
	tls_ctx_free(cctx);
	tls_ctx_free(sctx);
}

Test(tls, bad_client_settings_name_the_setting)
{
	char err[512];
	sp_config_t cfg;

	client_cfg(&cfg);
	snprintf(cfg.tls_ca_file, sizeof(cfg.tls_ca_file), "/nonexistent/ca.pem");
	cr_assert_null(tls_ctx_new_client(&cfg, err, sizeof(err)));
	cr_assert(strstr(err, "SEALPOST_TLS_CA_FILE=/nonexistent/ca.pem") != NULL, "%s", err);
	client_cfg(&cfg);
	snprintf(cfg.tls_cert, sizeof(cfg.tls_cert), "%s", cert("client.pem"));
	snprintf(cfg.tls_key, sizeof(cfg.tls_key), "%s/nonexistent.key", dir);
	cr_assert_null(tls_ctx_new_client(&cfg, err, sizeof(err)));
	cr_assert(strstr(err, "SEALPOST_TLS_KEY") != NULL, "%s", err);
	client_cfg(&cfg);
	snprintf(cfg.tls_ciphers, sizeof(cfg.tls_ciphers), "NO-SUCH-CIPHER");
	cr_assert_null(tls_ctx_new_client(&cfg, err, sizeof(err)));
	cr_assert(strstr(err, "SEALPOST_TLS_CIPHERS") != NULL, "%s", err);
}

Test(tls, system_store_is_used_without_ca_settings)
{
	char err[512];
	sp_config_t cfg;
	tls_ctx_t *cctx;

	client_cfg(&cfg);
	cfg.tls_ca_file[0] = '\0';
	cctx = tls_ctx_new_client(&cfg, err, sizeof(err));
	cr_assert_not_null(cctx, "%s", err);
	tls_ctx_free(cctx);
}

/* The matcher by table: RFC 6125 6.4 */
struct name_case {
	const char *pattern, *host;
	int match;
};

static const struct name_case name_cases[] = {
	{ "mx.example.org", "mx.example.org", 1 },
	{ "MX.Example.ORG", "mx.example.org", 1 },
	{ "mx.example.org", "MX.EXAMPLE.ORG", 1 },
	{ "mx.example.org.", "mx.example.org", 1 },
	{ "mx.example.org", "mx.example.org.", 1 },
	{ "mx.example.org", "mx2.example.org", 0 },
	{ "mx.example.org", "example.org", 0 },
	{ "example.org", "mx.example.org", 0 },
	{ "*.example.org", "mx.example.org", 1 },
	{ "*.EXAMPLE.org", "Mx.example.ORG", 1 },
	{ "*.example.org", "a.b.example.org", 0 },
	{ "*.example.org", "example.org", 0 },
	{ "*.example.org", ".example.org", 0 },
	{ "*.example.org", "xexample.org", 0 },
	{ "*.org", "example.org", 0 },
	{ "*", "example", 0 },
	{ "f*o.example.org", "foo.example.org", 0 },
	{ "*x.example.org", "ax.example.org", 0 },
	{ "x*.example.org", "xa.example.org", 0 },
	{ "mx.*.example.org", "mx.a.example.org", 0 },
	{ "*.*.example.org", "a.b.example.org", 0 },
	{ "**.example.org", "a.example.org", 0 },
	{ "*.example.org", "*.example.org", 0 },
	{ "", "mx.example.org", 0 },
	{ "mx.example.org", "", 0 },
	{ "mx..example.org", "mx..example.org", 0 },
	{ "*.0.0.1", "127.0.0.1", 0 },
	{ "*.example.org", "m\xc3\xa9.example.org", 1 },
	{ "mx.example.orga", "mx.example.org", 0 },
	{ "mx.example.org", "mx.example.orga", 0 },
};

Test(tls, name_matcher_follows_rfc6125)
{
	size_t i;

	for (i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++)
		cr_expect_eq(tls_name_match(name_cases[i].pattern, name_cases[i].host),
		    name_cases[i].match, "pattern %s host %s: expected %d",
		    name_cases[i].pattern, name_cases[i].host, name_cases[i].match);
	cr_assert_eq(tls_name_match(NULL, "a"), 0);
	cr_assert_eq(tls_name_match("a", NULL), 0);
}

/* resume_case - two connections through one client ctx; info of the second */
static void resume_case(int server_version, tls_info_t *second, tls_stats_t *st);

static void
resume_case(int server_version, tls_info_t *second, tls_stats_t *st)
{
	char err[512], buf[64];
	sp_config_t cfg;
	tls_ctx_t *cctx, *sctx;
	tls_conn_t *cl, *sv;
	tls_info_t info;
	size_t got;
	int round;

	client_cfg(&cfg);
	cctx = tls_ctx_new_client(&cfg, err, sizeof(err));
	cr_assert_not_null(cctx, "%s", err);
	sctx = tls_ctx_new_server(cert("server.pem"), cert("server.key"), NULL,
	    server_version, err, sizeof(err));
	cr_assert_not_null(sctx, "%s", err);
	for (round = 0; round < 2; round++) {
		cl = tls_conn_new_client(cctx, NULL, "mx.test", 2525, "example.test");
		sv = tls_conn_new_server(sctx);
		cr_assert_eq(pump(cl, sv, NULL), SP_OK, "%s", tls_conn_error(cl));
		/* the server greets: a TLS 1.3 ticket rides in front of it */
		cr_assert_eq(tls_conn_write(sv, "220 hi\r\n", 8, &got), SP_OK);
		move(sv, cl);
		cr_assert_eq(tls_conn_read(cl, buf, sizeof(buf), &got), SP_OK);
		tls_conn_info(cl, &info);
		if (round == 0)
			cr_assert_eq(info.resumed, 0);
		else
			*second = info;
		tls_conn_free(cl);
		tls_conn_free(sv);
	}
	tls_ctx_stats(cctx, st);
	tls_ctx_free(cctx);
	tls_ctx_free(sctx);
}

Test(tls, second_connection_resumes_over_tls13)
{
	tls_info_t info;
	tls_stats_t st;

	resume_case(13, &info, &st);
	cr_assert_eq(info.resumed, 1);
	cr_assert_str_eq(info.version, "TLSv1.3");
	cr_assert_str_eq(info.verified, "yes");
	cr_assert_eq(st.full, 1);
	cr_assert_eq(st.resumed, 1);
	cr_assert_eq(st.failed, 0);
}

Test(tls, second_connection_resumes_over_tls12)
{
	tls_info_t info;
	tls_stats_t st;

	resume_case(1212, &info, &st);
	cr_assert_eq(info.resumed, 1);
	cr_assert_str_eq(info.version, "TLSv1.2");
	cr_assert_eq(st.full, 1);
	cr_assert_eq(st.resumed, 1);
}

Test(tls, session_is_not_reused_for_another_port_or_policy)
{
	char err[512], buf[64];
	sp_config_t cfg;
	tls_ctx_t *cctx, *sctx;
	tls_conn_t *cl, *sv;
	tls_policy_t enc;
	tls_info_t info;
	size_t got;
	int round;

	memset(&enc, 0, sizeof(enc));
	enc.level = SP_TLS_ENCRYPT;
	client_cfg(&cfg);
	cctx = tls_ctx_new_client(&cfg, err, sizeof(err));
	sctx = tls_ctx_new_server(cert("server.pem"), cert("server.key"), NULL, 12,
	    err, sizeof(err));
	for (round = 0; round < 3; round++) {
		/* round 0 verify :25 (cached), 1 verify :26, 2 encrypt :25 */
		cl = tls_conn_new_client(cctx, round == 2 ? &enc : NULL, "mx.test",
		    round == 1 ? 26 : 25, "example.test");
		sv = tls_conn_new_server(sctx);
		cr_assert_eq(pump(cl, sv, NULL), SP_OK, "%s", tls_conn_error(cl));
		cr_assert_eq(tls_conn_write(sv, "220 hi\r\n", 8, &got), SP_OK);
		move(sv, cl);
		cr_assert_eq(tls_conn_read(cl, buf, sizeof(buf), &got), SP_OK);
		tls_conn_info(cl, &info);
		cr_assert_eq(info.resumed, 0, "round %d resumed", round);
		tls_conn_free(cl);
		tls_conn_free(sv);
	}
	tls_ctx_free(cctx);
	tls_ctx_free(sctx);
}

Test(tls, disabled_session_cache_never_resumes)
{
	char err[512], buf[64];
	sp_config_t cfg;
	tls_ctx_t *cctx, *sctx;
	tls_conn_t *cl, *sv;
	tls_info_t info;
	size_t got;
	int round;

	client_cfg(&cfg);
	cfg.tls_session_cache = 0;
	cctx = tls_ctx_new_client(&cfg, err, sizeof(err));
	sctx = tls_ctx_new_server(cert("server.pem"), cert("server.key"), NULL, 1212,
	    err, sizeof(err));
	for (round = 0; round < 2; round++) {
		cl = tls_conn_new_client(cctx, NULL, "mx.test", 25, "example.test");
		sv = tls_conn_new_server(sctx);
		cr_assert_eq(pump(cl, sv, NULL), SP_OK, "%s", tls_conn_error(cl));
		cr_assert_eq(tls_conn_write(sv, "220 hi\r\n", 8, &got), SP_OK);
		move(sv, cl);
		cr_assert_eq(tls_conn_read(cl, buf, sizeof(buf), &got), SP_OK);
		tls_conn_info(cl, &info);
		cr_assert_eq(info.resumed, 0);
		tls_conn_free(cl);
		tls_conn_free(sv);
	}
	tls_ctx_free(cctx);
	tls_ctx_free(sctx);
}

Test(tls, expired_cached_session_is_not_offered)
{
	char err[512], buf[64];
	sp_config_t cfg;
	tls_ctx_t *cctx, *sctx;
	tls_conn_t *cl, *sv;
	tls_info_t info;
	tls_stats_t st;
	size_t got;
	int round;

	client_cfg(&cfg);
	cfg.tls_session_lifetime = 1;
	cctx = tls_ctx_new_client(&cfg, err, sizeof(err));
	sctx = tls_ctx_new_server(cert("server.pem"), cert("server.key"), NULL, 1212,
	    err, sizeof(err));
	for (round = 0; round < 2; round++) {
		if (round == 1)
			sleep(2);
		cl = tls_conn_new_client(cctx, NULL, "mx.test", 25, "example.test");
		sv = tls_conn_new_server(sctx);
		cr_assert_eq(pump(cl, sv, NULL), SP_OK, "%s", tls_conn_error(cl));
		cr_assert_eq(tls_conn_write(sv, "220 hi\r\n", 8, &got), SP_OK);
		move(sv, cl);
		cr_assert_eq(tls_conn_read(cl, buf, sizeof(buf), &got), SP_OK);
		tls_conn_info(cl, &info);
		cr_assert_eq(info.resumed, 0);
		tls_conn_free(cl);
		tls_conn_free(sv);
	}
	tls_ctx_stats(cctx, &st);
	cr_assert_eq(st.full, 2);
	cr_assert_eq(st.failed, 0);
	tls_ctx_free(cctx);
	tls_ctx_free(sctx);
}

Test(tls, tls11_server_is_refused_naming_its_version)
{
	char why[1024];

	cr_assert_eq(connect_to("server", 1111, "mx.test", NULL, why, sizeof(why), NULL),
	    SP_ERROR);
	cr_assert_str_eq(why, "handshake failed: protocol version (peer offered TLS 1.1)");
}

struct par {
	tls_ctx_t *cctx, *sctx;
	int ok;
};

/* par_run - ten connections through shared contexts */
static void *par_run(void *arg);

static void *
par_run(void *arg)
{
	struct par *pa = arg;
	tls_conn_t *cl, *sv;
	char buf[64];
	size_t got;
	int i;

	for (i = 0; i < 10; i++) {
		cl = tls_conn_new_client(pa->cctx, NULL, "mx.test", 25, "example.test");
		sv = tls_conn_new_server(pa->sctx);
		if (pump(cl, sv, NULL) == SP_OK &&
		    tls_conn_write(sv, "220 hi\r\n", 8, &got) == SP_OK) {
			move(sv, cl);
			if (tls_conn_read(cl, buf, sizeof(buf), &got) == SP_OK)
				__atomic_add_fetch(&pa->ok, 1, __ATOMIC_SEQ_CST);
		}
		tls_conn_free(cl);
		tls_conn_free(sv);
	}
	tls_thread_cleanup();
	return NULL;
}

Test(tls, contexts_and_session_cache_are_shared_by_threads)
{
	char err[512];
	sp_config_t cfg;
	struct par pa;
	pthread_t th[4];
	tls_stats_t st;
	int i;

	client_cfg(&cfg);
	cfg.tls_session_cache = 2;
	memset(&pa, 0, sizeof(pa));
	pa.cctx = tls_ctx_new_client(&cfg, err, sizeof(err));
	cr_assert_not_null(pa.cctx, "%s", err);
	pa.sctx = tls_ctx_new_server(cert("server.pem"), cert("server.key"), NULL, 12,
	    err, sizeof(err));
	cr_assert_not_null(pa.sctx, "%s", err);
	for (i = 0; i < 4; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, par_run, &pa), 0);
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	tls_ctx_stats(pa.cctx, &st);
	cr_assert_eq(pa.ok, 40);
	cr_assert_eq(st.full + st.resumed, 40);
	cr_assert_gt(st.resumed, 0);
	cr_assert_eq(st.failed, 0);
	tls_ctx_free(pa.cctx);
	tls_ctx_free(pa.sctx);
}

Test(tls, random_bytes_from_peer_never_crash)
{
	char err[512];
	sp_config_t cfg;
	tls_ctx_t *cctx, *sctx;
	tls_conn_t *c;
	unsigned char junk[4096];
	unsigned seed = 12345;
	size_t i, off;
	int round, st;

	client_cfg(&cfg);
	cctx = tls_ctx_new_client(&cfg, err, sizeof(err));
	sctx = tls_ctx_new_server(cert("server.pem"), cert("server.key"), NULL, 12,
	    err, sizeof(err));
	for (round = 0; round < 40; round++) {
		c = round % 2 ? tls_conn_new_client(cctx, NULL, "mx.test", 25, "x.test") :
		    tls_conn_new_server(sctx);
		for (i = 0; i < sizeof(junk); i++)
			junk[i] = (unsigned char)(rand_r(&seed) >> 7);
		if (round % 4 < 2) {
			/* a plausible record header in front of garbage */
			junk[0] = 22;
			junk[1] = 3;
			junk[2] = (unsigned char)(round % 5);
		}
		st = SP_AGAIN;
		for (off = 0; off < sizeof(junk) && st == SP_AGAIN; off += 97) {
			tls_conn_input(c, junk + off, sizeof(junk) - off < 97 ?
			    sizeof(junk) - off : 97);
			st = tls_conn_handshake(c);
		}
		if (st == SP_AGAIN) {
			tls_conn_input_eof(c);
			st = tls_conn_handshake(c);
		}
		cr_assert_eq(st, SP_ERROR, "round %d", round);
		cr_assert(strlen(tls_conn_error(c)) > 10);
		tls_conn_free(c);
	}
	tls_ctx_free(cctx);
	tls_ctx_free(sctx);
}

Test(tls, flood_of_unread_input_is_bounded)
{
	char err[512];
	sp_config_t cfg;
	tls_ctx_t *cctx;
	tls_conn_t *c;
	static unsigned char blob[64 * 1024];
	int i;

	client_cfg(&cfg);
	cctx = tls_ctx_new_client(&cfg, err, sizeof(err));
	c = tls_conn_new_client(cctx, NULL, "mx.test", 25, "x.test");
	for (i = 0; i < 40; i++)
		tls_conn_input(c, blob, sizeof(blob));
	cr_assert_eq(tls_conn_handshake(c), SP_ERROR);
	cr_assert(strstr(tls_conn_error(c), "unread bytes") != NULL, "%s", tls_conn_error(c));
	tls_conn_free(c);
	tls_ctx_free(cctx);
}

Test(tls, ca_dir_is_a_trust_store)
{
	char err[512], cmd[2048], cadir[300];
	sp_config_t cfg;
	tls_ctx_t *cctx, *sctx;
	tls_conn_t *cl, *sv;

	snprintf(cadir, sizeof(cadir), "%s/cadir", dir);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp '%s/ca.pem' '%s/'", cadir, dir, cadir);
	cr_assert_eq(system(cmd), 0);
	client_cfg(&cfg);
	cfg.tls_ca_file[0] = '\0';
	snprintf(cfg.tls_ca_dir, sizeof(cfg.tls_ca_dir), "%s", cadir);
	cctx = tls_ctx_new_client(&cfg, err, sizeof(err));
	cr_assert_not_null(cctx, "%s", err);
	sctx = tls_ctx_new_server(cert("server.pem"), cert("server.key"), NULL, 12,
	    err, sizeof(err));
	cl = tls_conn_new_client(cctx, NULL, "mx.test", 25, "example.test");
	sv = tls_conn_new_server(sctx);
	cr_assert_eq(pump(cl, sv, NULL), SP_OK, "%s", tls_conn_error(cl));
	tls_conn_free(cl);
	tls_conn_free(sv);
	tls_ctx_free(sctx);
	sctx = tls_ctx_new_server(cert("untrusted.pem"), cert("untrusted.key"), NULL, 12,
	    err, sizeof(err));
	cl = tls_conn_new_client(cctx, NULL, "mx.test", 25, "example.test");
	sv = tls_conn_new_server(sctx);
	cr_assert_eq(pump(cl, sv, NULL), SP_ERROR);
	tls_conn_free(cl);
	tls_conn_free(sv);
	tls_ctx_free(sctx);
	tls_ctx_free(cctx);
}

/* greet - the server writes a line, the client reads it (and any ticket) */
static void greet(tls_conn_t *cl, tls_conn_t *sv);

static void
greet(tls_conn_t *cl, tls_conn_t *sv)
{
	char buf[64];
	size_t got;

	cr_assert_eq(tls_conn_write(sv, "220 hi\r\n", 8, &got), SP_OK);
	move(sv, cl);
	cr_assert_eq(tls_conn_read(cl, buf, sizeof(buf), &got), SP_OK);
}

Test(tls, tls13_resumption_between_a_resumed_handshake_and_its_ticket)
{
	char err[512];
	sp_config_t cfg;
	tls_ctx_t *cctx, *sctx;
	tls_conn_t *cl[3], *sv[3];
	tls_info_t info;

	client_cfg(&cfg);
	cctx = tls_ctx_new_client(&cfg, err, sizeof(err));
	cr_assert_not_null(cctx, "%s", err);
	sctx = tls_ctx_new_server(cert("server.pem"), cert("server.key"), NULL, 13,
	    err, sizeof(err));
	cr_assert_not_null(sctx, "%s", err);
	/* A: full handshake, its ticket arrives with the greeting */
	cl[0] = tls_conn_new_client(cctx, NULL, "mx.test", 25, "example.test");
	sv[0] = tls_conn_new_server(sctx);
	cr_assert_eq(pump(cl[0], sv[0], NULL), SP_OK, "%s", tls_conn_error(cl[0]));
	greet(cl[0], sv[0]);
	/* B: resumes, but its own new ticket has not been read yet */
	cl[1] = tls_conn_new_client(cctx, NULL, "mx.test", 25, "example.test");
	sv[1] = tls_conn_new_server(sctx);
	cr_assert_eq(pump(cl[1], sv[1], NULL), SP_OK, "%s", tls_conn_error(cl[1]));
	/* C: starts now, from whatever the cache holds */
	cl[2] = tls_conn_new_client(cctx, NULL, "mx.test", 25, "example.test");
	sv[2] = tls_conn_new_server(sctx);
	cr_assert_eq(pump(cl[2], sv[2], NULL), SP_OK, "client: %s; server: %s",
	    tls_conn_error(cl[2]), tls_conn_error(sv[2]));
	greet(cl[1], sv[1]);
	greet(cl[2], sv[2]);
	tls_conn_info(cl[1], &info);
	cr_assert_eq(info.resumed, 1);
	for (int i = 0; i < 3; i++) {
		tls_conn_free(cl[i]);
		tls_conn_free(sv[i]);
	}
	tls_ctx_free(cctx);
	tls_ctx_free(sctx);
}

Test(tls, abandoned_client_handshake_counts_as_failed)
{
	char err[512];
	sp_config_t cfg;
	tls_ctx_t *cctx;
	tls_conn_t *cl;
	tls_stats_t st;

	client_cfg(&cfg);
	cctx = tls_ctx_new_client(&cfg, err, sizeof(err));
	cr_assert_not_null(cctx, "%s", err);
	/* never started: not a handshake */
	tls_conn_free(tls_conn_new_client(cctx, NULL, "mx.test", 25, "example.test"));
	/* started, then the caller gives up (peer closed before answering) */
	cl = tls_conn_new_client(cctx, NULL, "mx.test", 25, "example.test");
	cr_assert_eq(tls_conn_handshake(cl), SP_AGAIN);
	tls_conn_free(cl);
	tls_ctx_stats(cctx, &st);
	cr_assert_eq(st.failed, 1);
	cr_assert_eq(st.full + st.resumed, 0);
	tls_ctx_free(cctx);
}

#define WAVE 16

Test(tls, tls13_waves_of_interleaved_connections_all_resume_cleanly)
{
	char err[512], buf[64];
	sp_config_t cfg;
	tls_ctx_t *cctx, *sctx;
	tls_conn_t *cl[WAVE], *sv[WAVE];
	int cs[WAVE], ss[WAVE], greeted[WAVE], wave, i, round, resumed = 0;
	tls_stats_t st;
	tls_info_t info;
	size_t got;

	client_cfg(&cfg);
	cctx = tls_ctx_new_client(&cfg, err, sizeof(err));
	cr_assert_not_null(cctx, "%s", err);
	sctx = tls_ctx_new_server(cert("server.pem"), cert("server.key"), NULL, 13,
	    err, sizeof(err));
	cr_assert_not_null(sctx, "%s", err);
	for (wave = 0; wave < 4; wave++) {
		/* WAVE connections interleaved: four start per round, each
		 * advances one flight per round, and each reads its greeting
		 * (with its new ticket) one round after its handshake ended, so
		 * connections keep starting between another's handshake and its
		 * ticket, as in the engine under load */
		memset(cl, 0, sizeof(cl));
		memset(greeted, 0, sizeof(greeted));
		for (i = 0; i < WAVE; i++)
			cs[i] = ss[i] = SP_AGAIN;
		for (round = 0; round < 4 * WAVE; round++)
			for (i = 0; i < WAVE; i++) {
				if (cl[i] == NULL) {
					if (round < i / 4)
						continue;
					cl[i] = tls_conn_new_client(cctx, NULL, "mx.test", 25,
					    "example.test");
					sv[i] = tls_conn_new_server(sctx);
				} else if (cs[i] == SP_OK && ss[i] == SP_OK && !greeted[i]) {
					cr_assert_eq(tls_conn_write(sv[i], "220 hi\r\n", 8, &got),
					    SP_OK);
					move(sv[i], cl[i]);
					cr_assert_eq(tls_conn_read(cl[i], buf, sizeof(buf), &got),
					    SP_OK);
					greeted[i] = 1;
					continue;
				}
				if (cs[i] == SP_AGAIN)
					cs[i] = tls_conn_handshake(cl[i]);
				move(cl[i], sv[i]);
				if (ss[i] == SP_AGAIN)
					ss[i] = tls_conn_handshake(sv[i]);
				move(sv[i], cl[i]);
				cr_assert_neq(ss[i], SP_ERROR, "wave %d conn %d: server: %s", wave,
				    i, tls_conn_error(sv[i]));
				cr_assert_neq(cs[i], SP_ERROR, "wave %d conn %d: client: %s", wave,
				    i, tls_conn_error(cl[i]));
			}
		for (i = 0; i < WAVE; i++) {
			cr_assert(greeted[i], "wave %d conn %d never finished", wave, i);
			tls_conn_info(cl[i], &info);
			resumed += info.resumed;
			tls_conn_free(cl[i]);
			tls_conn_free(sv[i]);
		}
	}
	tls_ctx_stats(cctx, &st);
	cr_assert_eq(st.failed, 0);
	cr_assert_eq(st.full + st.resumed, 4 * WAVE);
	cr_assert_eq((int)st.resumed, resumed);
	/* only the connections that started before the first ticket was read */
	cr_assert_geq(st.resumed, 4 * WAVE - 8, "only %llu resumed",
	    (unsigned long long)st.resumed);
	tls_ctx_free(cctx);
	tls_ctx_free(sctx);
}
