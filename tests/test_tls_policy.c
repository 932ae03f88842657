/*
 * tests/test_tls_policy.c - the TLS policy file (parsing, every error,
 * lookup) and a handshake per policy level against in-memory servers.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/status.h"
#include "tls/tls.h"

static char dir[256];

static void make_certs(void);
static void drop_certs(void);
static void move(tls_conn_t *from, tls_conn_t *to);
static int handshake(const char *server_cert, const tls_policy_t *pol, const char *host,
		     const char *domain, char *why, size_t whylen, tls_info_t *info);
static void shell_line(const char *cmd, char *out, size_t outlen);
static int parse(const char *line, tls_policy_t *p, char *err);
static void write_file(const char *path, const char *text);

/* make_certs - a fresh temp dir with the test certificates */
static void
make_certs(void)
{
	char cmd[1024];

	snprintf(dir, sizeof(dir), "/tmp/sp-tlspol-XXXXXX");
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

TestSuite(policy, .init = make_certs, .fini = drop_certs, .timeout = 60);

/* parse - tls_policy_parse_line with a big error buffer */
static int
parse(const char *line, tls_policy_t *p, char *err)
{
	err[0] = '\0';
	return tls_policy_parse_line(line, p, err, 512);
}

/* write_file - create path with text */
static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	cr_assert_not_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/* shell_line - first line printed by a shell command */
static void
shell_line(const char *cmd, char *out, size_t outlen)
{
	FILE *fp = popen(cmd, "r");

	cr_assert_not_null(fp);
	out[0] = '\0';
	cr_assert_not_null(fgets(out, (int)outlen, fp), "no output from %s", cmd);
	out[strcspn(out, "\r\n")] = '\0';
	pclose(fp);
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

/* handshake - our client (trusting DIR/ca.pem) against DIR/server_cert */
static int
handshake(const char *server_cert, const tls_policy_t *pol, const char *host,
	  const char *domain, char *why, size_t whylen, tls_info_t *info)
{
	char err[512], crt[512], key[512];
	sp_config_t cfg;
	tls_ctx_t *cctx, *sctx;
	tls_conn_t *cl, *sv;
	int cs = SP_AGAIN, ss = SP_AGAIN, i;

	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.tls_ca_file, sizeof(cfg.tls_ca_file), "%s/ca.pem", dir);
	cfg.tls_min_version = 12;
	cfg.tls_session_cache = 10;
	cfg.tls_session_lifetime = 60;
	snprintf(crt, sizeof(crt), "%s/%s.pem", dir, server_cert);
	snprintf(key, sizeof(key), "%s/%s.key", dir, server_cert);
	cctx = tls_ctx_new_client(&cfg, err, sizeof(err));
	cr_assert_not_null(cctx, "%s", err);
	sctx = tls_ctx_new_server(crt, key, NULL, 12, err, sizeof(err));
	cr_assert_not_null(sctx, "%s", err);
	cl = tls_conn_new_client(cctx, pol, host, 25, domain);
	cr_assert_not_null(cl);
	sv = tls_conn_new_server(sctx);
	for (i = 0; i < 20 && (cs == SP_AGAIN || ss == SP_AGAIN); i++) {
		if (cs == SP_AGAIN)
			cs = tls_conn_handshake(cl);
		move(cl, sv);
		if (ss == SP_AGAIN)
			ss = tls_conn_handshake(sv);
		move(sv, cl);
		if (cs == SP_ERROR)
			break;
	}
	snprintf(why, whylen, "%s", cs == SP_ERROR ? tls_conn_error(cl) : "");
	if (info) {
		tls_conn_info(cl, info);
		/* info->verified points into the connection: keep a copy */
		info->verified = strcmp(info->verified, "yes") == 0 ? "yes" :
		    strcmp(info->verified, "pinned") == 0 ? "pinned" : "no";
	}
	tls_conn_free(cl);
	tls_conn_free(sv);
	tls_ctx_free(cctx);
	tls_ctx_free(sctx);
	return cs;
}

Test(policy, blank_and_comment_lines_are_skipped)
{
	tls_policy_t p;
	char err[512];

	cr_assert_eq(parse("", &p, err), 0);
	cr_assert_eq(parse("   \t ", &p, err), 0);
	cr_assert_eq(parse("# example.com verify", &p, err), 0);
	cr_assert_eq(parse("  # indented comment", &p, err), 0);
}

Test(policy, domain_and_level_are_parsed_lower_case)
{
	tls_policy_t p;
	char err[512];

	cr_assert_eq(parse("Example.COM. verify # trailing comment", &p, err), 1, "%s", err);
	cr_assert_str_eq(p.domain, "example.com");
	cr_assert_eq(p.level, SP_TLS_VERIFY);
	cr_assert_eq(parse(".example.net ENCRYPT", &p, err), 1, "%s", err);
	cr_assert_str_eq(p.domain, ".example.net");
	cr_assert_eq(p.level, SP_TLS_ENCRYPT);
}

Test(policy, secure_takes_a_match_list)
{
	tls_policy_t p;
	char err[512];

	cr_assert_eq(parse("example.com secure match=mx1.example.net:.Example.com", &p, err),
	    -1);
	cr_assert_eq(parse("example.com secure match=mx1.example.net:MX2.example.net", &p, err),
	    1, "%s", err);
	cr_assert_eq(p.level, SP_TLS_SECURE);
	cr_assert_eq(p.nmatch, 2);
	cr_assert_str_eq(p.match[0], "mx1.example.net");
	cr_assert_str_eq(p.match[1], "mx2.example.net");
}

Test(policy, fingerprint_hex_in_any_case_with_or_without_colons)
{
	tls_policy_t p;
	char err[512];
	static const char hex[] =
	    "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F";
	static const char colons[] =
	    "00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F:10:11:12:13:14:15:16:17:"
	    "18:19:1a:1b:1c:1d:1e:1f";
	char line[1024];
	int i;

	snprintf(line, sizeof(line), "example.com fingerprint fingerprint=sha256:%s,SHA256:%s",
	    hex, colons);
	cr_assert_eq(parse(line, &p, err), 1, "%s", err);
	cr_assert_eq(p.level, SP_TLS_FINGERPRINT);
	cr_assert_eq(p.npins, 2);
	for (i = 0; i < 32; i++) {
		cr_assert_eq(p.pins[0][i], i);
		cr_assert_eq(p.pins[1][i], i);
	}
}

Test(policy, ca_file_is_kept)
{
	tls_policy_t p;
	char err[512];

	cr_assert_eq(parse("example.com verify ca=/etc/extra-ca.pem", &p, err), 1, "%s", err);
	cr_assert_str_eq(p.ca_file, "/etc/extra-ca.pem");
}

/* every error, with a word of its reason */
static const struct {
	const char *line, *reason;
} bad_lines[] = {
	{ "example.com", "missing level" },
	{ "example.com none", "no plaintext level" },
	{ "example.com may", "unknown level" },
	{ "example.com plaintext", "unknown level" },
	{ "example.com dane", "not supported" },
	{ "example!.com verify", "bad domain" },
	{ "exa$mple.com verify", "bad domain" },
	{ "a..b verify", "bad domain" },
	{ "example.com verify match=a.example.com", "only applies to level secure" },
	{ "example.com secure match=", "at least one name" },
	{ "example.com secure match=a::b", "empty" },
	{ "example.com secure match=a:", "empty name" },
	{ "example.com secure match=a:b:c:d:e:f:g:h:i", "more than" },
	{ "example.com secure match=bad_name!", "bad host name" },
	{ "example.com fingerprint", "needs fingerprint=" },
	{ "example.com verify fingerprint=sha256:00", "only applies to level fingerprint" },
	{ "example.com fingerprint fingerprint=md5:00", "sha256:" },
	{ "example.com fingerprint fingerprint=sha256:0011", "64 hex digits, got 4" },
	{ "example.com fingerprint fingerprint=sha256:zz", "not a hex digit" },
	{ "example.com fingerprint fingerprint=", "at least one" },
	{ "example.com encrypt ca=/x.pem", "only applies to levels verify and secure" },
	{ "example.com verify ca=", "one file name" },
	{ "example.com verify ca=/a ca=/b", "one file name" },
	{ "example.com verify tls=yes", "unknown option" },
};

Test(policy, every_malformed_line_is_refused_with_a_reason)
{
	tls_policy_t p;
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(bad_lines) / sizeof(bad_lines[0]); i++) {
		cr_expect_eq(parse(bad_lines[i].line, &p, err), -1, "accepted: %s",
		    bad_lines[i].line);
		cr_expect(strstr(err, bad_lines[i].reason) != NULL,
		    "\"%s\": reason \"%s\" lacks \"%s\"", bad_lines[i].line, err,
		    bad_lines[i].reason);
	}
}

Test(policy, over_long_line_is_refused)
{
	tls_policy_t p;
	char err[512];
	char *line = malloc(20000);

	memset(line, 'a', 19999);
	line[19999] = '\0';
	cr_assert_eq(parse(line, &p, err), -1);
	cr_assert(strstr(err, "longer than") != NULL, "%s", err);
	free(line);
}

Test(policy, load_reports_file_and_line)
{
	char path[512], err[512];
	tls_policy_table_t *t = (void *)1;

	snprintf(path, sizeof(path), "%s/policy", dir);
	write_file(path, "# policy\nexample.com verify\n\nexample.net none\n");
	cr_assert_eq(tls_policy_load(path, &t, err, sizeof(err)), -1);
	cr_assert_null(t);
	cr_assert(strncmp(err, path, strlen(path)) == 0, "%s", err);
	cr_assert(strstr(err, ":4: unknown level") != NULL, "%s", err);

	write_file(path, "example.com verify\nEXAMPLE.com. secure\n");
	cr_assert_eq(tls_policy_load(path, &t, err, sizeof(err)), -1);
	cr_assert(strstr(err, ":2: second entry for example.com") != NULL, "%s", err);

	write_file(path, "example.com verify ca=/nonexistent/ca.pem\n");
	cr_assert_eq(tls_policy_load(path, &t, err, sizeof(err)), -1);
	cr_assert(strstr(err, ":1: ca=/nonexistent/ca.pem: No such file") != NULL, "%s", err);

	snprintf(path, sizeof(path), "%s/absent", dir);
	cr_assert_eq(tls_policy_load(path, &t, err, sizeof(err)), -1);
	cr_assert(strstr(err, "No such file") != NULL, "%s", err);
}

Test(policy, exact_entry_beats_subdomain_entry)
{
	char path[512], err[512];
	tls_policy_table_t *t;
	tls_policy_t dflt;
	const tls_policy_t *p;

	memset(&dflt, 0, sizeof(dflt));
	dflt.level = SP_TLS_VERIFY;
	snprintf(path, sizeof(path), "%s/policy", dir);
	write_file(path,
	    ".example.com encrypt\n"
	    "example.com secure\n"
	    "b.example.com secure match=mx.example.com\n"
	    ".deep.example.com verify\n");
	cr_assert_eq(tls_policy_load(path, &t, err, sizeof(err)), 0, "%s", err);
	p = tls_policy_lookup(t, "example.com", &dflt);
	cr_assert_str_eq(p->domain, "example.com");
	p = tls_policy_lookup(t, "A.Example.COM.", &dflt);
	cr_assert_str_eq(p->domain, ".example.com");
	p = tls_policy_lookup(t, "b.example.com", &dflt);
	cr_assert_str_eq(p->domain, "b.example.com");
	p = tls_policy_lookup(t, "x.b.example.com", &dflt);
	cr_assert_str_eq(p->domain, ".example.com");
	p = tls_policy_lookup(t, "x.deep.example.com", &dflt);
	cr_assert_str_eq(p->domain, ".deep.example.com");
	cr_assert_eq(tls_policy_lookup(t, "example.org", &dflt), &dflt);
	cr_assert_eq(tls_policy_lookup(t, "com", &dflt), &dflt);
	cr_assert_eq(tls_policy_lookup(t, "", &dflt), &dflt);
	cr_assert_eq(tls_policy_lookup(NULL, "example.com", &dflt), &dflt);
	tls_policy_free(t);
}

Test(policy, encrypt_level_accepts_self_signed_unverified)
{
	tls_policy_t p;
	tls_info_t info;
	char err[512], why[1024];

	cr_assert_eq(parse("example.test encrypt", &p, err), 1, "%s", err);
	cr_assert_eq(handshake("selfsigned", &p, "mx.test", "example.test", why, sizeof(why),
	    &info), SP_OK, "%s", why);
	cr_assert_str_eq(info.verified, "no");
}

Test(policy, secure_level_matches_the_recipient_domain_not_the_mx)
{
	tls_policy_t p;
	tls_info_t info;
	char err[512], why[1024];

	/* the cert names mx.test: fine for verify, not for secure on example.test */
	cr_assert_eq(parse("example.test secure", &p, err), 1, "%s", err);
	cr_assert_eq(handshake("server", &p, "mx.test", "example.test", why, sizeof(why),
	    &info), SP_ERROR);
	cr_assert(strncmp(why, "certificate name mismatch: example.test not in [", 48) == 0,
	    "%s", why);
	/* recipient domain a.wild.test is covered by *.wild.test */
	cr_assert_eq(parse("a.wild.test secure", &p, err), 1, "%s", err);
	cr_assert_eq(handshake("server", &p, "unrelated.example", "a.wild.test", why,
	    sizeof(why), &info), SP_OK, "%s", why);
	cr_assert_str_eq(info.verified, "yes");
}

Test(policy, secure_level_accepts_a_match_name)
{
	tls_policy_t p;
	char err[512], why[1024];

	cr_assert_eq(parse("example.test secure match=nope.test:mx.test", &p, err), 1, "%s", err);
	cr_assert_eq(handshake("server", &p, "whatever.test", "example.test", why, sizeof(why),
	    NULL), SP_OK, "%s", why);
	cr_assert_eq(parse("example.test secure match=nope.test", &p, err), 1, "%s", err);
	cr_assert_eq(handshake("server", &p, "mx.test", "example.test", why, sizeof(why),
	    NULL), SP_ERROR);
	cr_assert(strstr(why, "example.test or nope.test not in [") != NULL, "%s", why);
}

Test(policy, secure_level_still_checks_the_chain)
{
	tls_policy_t p;
	char err[512], why[1024];

	cr_assert_eq(parse("example.test secure match=mx.test", &p, err), 1, "%s", err);
	cr_assert_eq(handshake("untrusted", &p, "mx.test", "example.test", why, sizeof(why),
	    NULL), SP_ERROR);
	cr_assert(strstr(why, "unknown CA") != NULL, "%s", why);
}

Test(policy, fingerprint_of_certificate_pins_a_self_signed_peer)
{
	tls_policy_t p;
	tls_info_t info;
	char err[512], why[1024], cmd[1024], fp[256], line[512];

	snprintf(cmd, sizeof(cmd), "openssl x509 -in %s/selfsigned.pem -noout "
	    "-fingerprint -sha256 | sed 's/.*=//'", dir);
	shell_line(cmd, fp, sizeof(fp));
	snprintf(line, sizeof(line), "example.test fingerprint fingerprint=sha256:%s", fp);
	cr_assert_eq(parse(line, &p, err), 1, "%s", err);
	cr_assert_eq(handshake("selfsigned", &p, "mx.test", "example.test", why, sizeof(why),
	    &info), SP_OK, "%s", why);
	cr_assert_str_eq(info.verified, "pinned");
}

Test(policy, fingerprint_of_public_key_pins_too)
{
	tls_policy_t p;
	char err[512], why[1024], cmd[1024], fp[256], line[512];

	snprintf(cmd, sizeof(cmd), "openssl x509 -in %s/untrusted.pem -noout -pubkey | "
	    "openssl pkey -pubin -outform der | openssl dgst -sha256 -r | cut -d' ' -f1", dir);
	shell_line(cmd, fp, sizeof(fp));
	snprintf(line, sizeof(line), "example.test fingerprint fingerprint=sha256:%s", fp);
	cr_assert_eq(parse(line, &p, err), 1, "%s", err);
	cr_assert_eq(handshake("untrusted", &p, "mx.test", "example.test", why, sizeof(why),
	    NULL), SP_OK, "%s", why);
}

Test(policy, fingerprint_mismatch_is_refused)
{
	tls_policy_t p;
	char err[512], why[1024];

	cr_assert_eq(parse("example.test fingerprint fingerprint=sha256:"
	    "0000000000000000000000000000000000000000000000000000000000000000", &p, err), 1);
	cr_assert_eq(handshake("server", &p, "mx.test", "example.test", why, sizeof(why),
	    NULL), SP_ERROR);
	cr_assert(strncmp(why, "certificate fingerprint mismatch: sha256:", 41) == 0, "%s", why);
}

Test(policy, pinned_but_expired_is_refused)
{
	tls_policy_t p;
	char err[512], why[1024], cmd[1024], fp[256], line[512];

	snprintf(cmd, sizeof(cmd), "openssl x509 -in %s/expired.pem -noout "
	    "-fingerprint -sha256 | sed 's/.*=//'", dir);
	shell_line(cmd, fp, sizeof(fp));
	snprintf(line, sizeof(line), "example.test fingerprint fingerprint=sha256:%s", fp);
	cr_assert_eq(parse(line, &p, err), 1, "%s", err);
	cr_assert_eq(handshake("expired", &p, "mx.test", "example.test", why, sizeof(why),
	    NULL), SP_ERROR);
	cr_assert(strncmp(why, "certificate has expired", 23) == 0, "%s", why);
}

Test(policy, policy_ca_file_adds_trust_for_that_domain)
{
	tls_policy_t p;
	char err[512], why[1024], line[512];

	snprintf(line, sizeof(line), "example.test verify ca=%s/untrusted-ca.pem", dir);
	cr_assert_eq(parse(line, &p, err), 1, "%s", err);
	cr_assert_eq(handshake("untrusted", &p, "mx.test", "example.test", why, sizeof(why),
	    NULL), SP_OK, "%s", why);
	/* without it the same peer is refused */
	cr_assert_eq(parse("example.test verify", &p, err), 1, "%s", err);
	cr_assert_eq(handshake("untrusted", &p, "mx.test", "example.test", why, sizeof(why),
	    NULL), SP_ERROR);
}

Test(policy, unloadable_policy_ca_fails_the_connection_with_reason)
{
	tls_policy_t p;
	char err[512], why[1024];

	cr_assert_eq(parse("example.test verify ca=/nonexistent/ca.pem", &p, err), 1, "%s", err);
	cr_assert_eq(handshake("server", &p, "mx.test", "example.test", why, sizeof(why),
	    NULL), SP_ERROR);
	cr_assert_str_eq(why, "ca=/nonexistent/ca.pem: cannot load CA certificates");
}
