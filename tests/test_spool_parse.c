/*
 * tests/test_spool_parse.c - the spool file format (q_parse): good files in
 * LF and CRLF, parameters, and one test per way a file can be malformed,
 * each asserting Q_CORRUPT and a reason that names the problem.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/q_int.h"
#include "queue/queue.h"

static const char design_example[] =
	"MAIL FROM:<fax-noreply@fax.example.com> RET=HDRS ENVID=fax-7f3a\n"
	"RCPT TO:<alice@example.org> NOTIFY=FAILURE,DELAY ORCPT=rfc822;alice@example.org\n"
	"RCPT TO:<bob@example.net>\n"
	"\n"
	"From: Fax Service <fax-noreply@fax.example.com>\n"
	"To: alice@example.org, bob@example.net\n"
	"Subject: Fax from +61 2 5550 1234 (3 pages)\n"
	"\n"
	"body\n";

/* expect_corrupt - q_parse must refuse with a reason containing words */
static void
expect_corrupt(const char *data, size_t len, const char *words)
{
	char why[512] = "";
	q_msg_t msg;
	int rc = q_parse(data, len, &msg, why, sizeof(why));

	cr_assert_eq(rc, Q_CORRUPT, "expected Q_CORRUPT for \"%.60s\", got %d", data, rc);
	cr_assert(strstr(why, words) != NULL, "reason \"%s\" lacks \"%s\"", why, words);
	cr_assert_null(msg.rcpt, "nothing left allocated after an error");
	cr_assert_null(msg.sender);
	cr_assert_eq(msg.nrcpt, 0);
}

#define REJECTS(name, text, words) \
	Test(spool_parse_rejects, name) { expect_corrupt(text, sizeof(text) - 1, words); }

/* parse_ok - q_parse must accept; the caller clears msg */
static void
parse_ok(const char *data, size_t len, q_msg_t *msg)
{
	char why[512] = "";
	int rc = q_parse(data, len, msg, why, sizeof(why));

	cr_assert_eq(rc, Q_OK, "expected Q_OK, got %d: %s", rc, why);
}

Test(spool_parse, design_example_parses_with_every_parameter)
{
	q_msg_t m;

	parse_ok(design_example, sizeof(design_example) - 1, &m);
	cr_assert_str_eq(m.sender, "fax-noreply@fax.example.com");
	cr_assert_eq(m.ret, Q_RET_HDRS);
	cr_assert_str_eq(m.envid, "fax-7f3a");
	cr_assert_eq(m.nrcpt, 2);
	cr_assert_str_eq(m.rcpt[0].addr, "alice@example.org");
	cr_assert_str_eq(m.rcpt[0].domain, "example.org");
	cr_assert_eq(m.rcpt[0].notify, Q_NOTIFY_FAILURE | Q_NOTIFY_DELAY);
	cr_assert_str_eq(m.rcpt[0].orcpt, "rfc822;alice@example.org");
	cr_assert_str_eq(m.rcpt[1].addr, "bob@example.net");
	cr_assert_eq(m.rcpt[1].notify, 0);
	cr_assert_null(m.rcpt[1].orcpt);
	cr_assert_eq(m.rcpt[0].status, Q_RCPT_PENDING);
	cr_assert_null(m.data, "q_parse does not take the buffer");
	cr_assert(strncmp(design_example + m.body_off, "From: Fax", 9) == 0);
	q_msg_clear(&m);
}

Test(spool_parse, crlf_lines_parse_like_lf)
{
	const char f[] = "MAIL FROM:<a@b.example> RET=FULL\r\nRCPT TO:<c@d.example> "
			 "NOTIFY=SUCCESS\r\n\r\nSubject: x\r\n\r\nhi\r\n";
	q_msg_t m;

	parse_ok(f, sizeof(f) - 1, &m);
	cr_assert_str_eq(m.sender, "a@b.example");
	cr_assert_eq(m.ret, Q_RET_FULL);
	cr_assert_str_eq(m.rcpt[0].addr, "c@d.example");
	cr_assert_eq(m.rcpt[0].notify, Q_NOTIFY_SUCCESS);
	cr_assert(strncmp(f + m.body_off, "Subject: x", 10) == 0);
	q_msg_clear(&m);
}

Test(spool_parse, mixed_line_ends_are_tolerated_line_by_line)
{
	const char f[] = "MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\nRCPT TO:<e@d.example>\r\n"
			 "\nbody";
	q_msg_t m;

	parse_ok(f, sizeof(f) - 1, &m);
	cr_assert_eq(m.nrcpt, 2);
	cr_assert_str_eq(f + m.body_off, "body");
	q_msg_clear(&m);
}

Test(spool_parse, null_sender_is_allowed)
{
	const char f[] = "MAIL FROM:<>\nRCPT TO:<c@d.example>\n\nx";
	q_msg_t m;

	parse_ok(f, sizeof(f) - 1, &m);
	cr_assert_str_eq(m.sender, "");
	q_msg_clear(&m);
}

Test(spool_parse, keywords_and_parameters_are_case_insensitive)
{
	const char f[] = "mail from:<a@b.example> ret=hdrs envid=X\n"
			 "Rcpt To:<c@d.example> notify=never orcpt=RFC822;c@d.example\n\nx";
	q_msg_t m;

	parse_ok(f, sizeof(f) - 1, &m);
	cr_assert_eq(m.ret, Q_RET_HDRS);
	cr_assert_str_eq(m.envid, "X");
	cr_assert_eq(m.rcpt[0].notify, Q_NOTIFY_NEVER);
	q_msg_clear(&m);
}

Test(spool_parse, one_space_after_the_colon_is_tolerated)
{
	const char f[] = "MAIL FROM: <a@b.example>\nRCPT TO: <c@d.example>\n\nx";
	q_msg_t m;

	parse_ok(f, sizeof(f) - 1, &m);
	cr_assert_str_eq(m.rcpt[0].addr, "c@d.example");
	q_msg_clear(&m);
}

Test(spool_parse, duplicate_recipients_are_dropped_silently)
{
	const char f[] = "MAIL FROM:<a@b.example>\nRCPT TO:<c@d.example>\n"
			 "RCPT TO:<c@D.Example> NOTIFY=NEVER\nRCPT TO:<C@d.example>\n\nx";
	q_msg_t m;

	parse_ok(f, sizeof(f) - 1, &m);
	/* the local part is case-sensitive (RFC 5321), the domain is not */
	cr_assert_eq(m.nrcpt, 2);
	cr_assert_str_eq(m.rcpt[0].addr, "c@d.example");
	cr_assert_eq(m.rcpt[0].notify, 0, "the first one wins");
	cr_assert_str_eq(m.rcpt[1].addr, "C@d.example");
	q_msg_clear(&m);
}

Test(spool_parse, domain_is_lower_cased_address_kept_as_given)
{
	const char f[] = "MAIL FROM:<a@b.example>\nRCPT TO:<Alice@Example.ORG>\n\nx";
	q_msg_t m;

	parse_ok(f, sizeof(f) - 1, &m);
	cr_assert_str_eq(m.rcpt[0].addr, "Alice@Example.ORG");
	cr_assert_str_eq(m.rcpt[0].domain, "example.org");
	q_msg_clear(&m);
}

Test(spool_parse, quoted_local_part_may_hold_angle_and_at)
{
	const char f[] = "MAIL FROM:<a@b.example>\nRCPT TO:<\"odd>@ \\\"x\"@d.example>\n\nx";
	q_msg_t m;

	parse_ok(f, sizeof(f) - 1, &m);
	cr_assert_str_eq(m.rcpt[0].addr, "\"odd>@ \\\"x\"@d.example");
	cr_assert_str_eq(m.rcpt[0].domain, "d.example");
	q_msg_clear(&m);
}

Test(spool_parse, address_literals_are_accepted)
{
	const char f[] = "MAIL FROM:<a@[192.0.2.1]>\nRCPT TO:<c@[IPv6:2001:db8::1]>\n\nx";
	q_msg_t m;

	parse_ok(f, sizeof(f) - 1, &m);
	cr_assert_str_eq(m.rcpt[0].domain, "[ipv6:2001:db8::1]");
	q_msg_clear(&m);
}

Test(spool_parse, valid_utf8_local_part_is_accepted)
{
	const char f[] = "MAIL FROM:<a@b.example>\nRCPT TO:<j\xc3\xb6rg@d.example>\n\nx";
	q_msg_t m;

	parse_ok(f, sizeof(f) - 1, &m);
	cr_assert_str_eq(m.rcpt[0].addr, "j\xc3\xb6rg@d.example");
	q_msg_clear(&m);
}

Test(spool_parse, exactly_the_recipient_limit_is_accepted)
{
	size_t cap = 64 + (size_t)Q_MAX_RCPTS * 40, len = 0;
	char *f = malloc(cap);
	q_msg_t m;
	int i;

	len += (size_t)sprintf(f, "MAIL FROM:<a@b.example>\n");
	for (i = 0; i < Q_MAX_RCPTS; i++)
		len += (size_t)sprintf(f + len, "RCPT TO:<r%d@d.example>\n", i);
	len += (size_t)sprintf(f + len, "\nx");
	parse_ok(f, len, &m);
	cr_assert_eq(m.nrcpt, Q_MAX_RCPTS);
	cr_assert_str_eq(m.rcpt[999].addr, "r999@d.example");
	q_msg_clear(&m);
	free(f);
}

Test(spool_parse, xtext_with_hex_escapes_is_accepted)
{
	const char f[] = "MAIL FROM:<a@b.example> ENVID=id+2Bplus+3D\n"
			 "RCPT TO:<c@d.example> ORCPT=rfc822;c+40x@d.example\n\nx";
	q_msg_t m;

	parse_ok(f, sizeof(f) - 1, &m);
	cr_assert_str_eq(m.envid, "id+2Bplus+3D", "kept xtext-encoded as on the wire");
	cr_assert_str_eq(m.rcpt[0].orcpt, "rfc822;c+40x@d.example");
	q_msg_clear(&m);
}

Test(spool_parse, envelope_only_parse_accepts_a_prefix)
{
	q_msg_t m;
	char why[256];

	cr_assert_eq(q_parse_envelope(design_example, 200, &m, why, sizeof(why)), Q_OK, "%s", why);
	cr_assert_eq(m.nrcpt, 2);
	q_msg_clear(&m);
}

/* ---- malformed files: one test per rule ---- */

Test(spool_parse_rejects, empty_file)
{
	expect_corrupt("", 0, "empty file");
}

REJECTS(missing_empty_line_after_envelope,
	"MAIL FROM:<a@b.example>\nRCPT TO:<c@d.example>\n", "file ends before the empty line")
REJECTS(no_recipients, "MAIL FROM:<a@b.example>\n\nbody", "no recipients")
REJECTS(no_mail_from, "\nbody", "before any MAIL FROM")
REJECTS(truncated_file_mid_line, "MAIL FROM:<a@b.example>\nRCPT TO:<c@d.ex", "truncated")
REJECTS(empty_message, "MAIL FROM:<a@b.example>\nRCPT TO:<c@d.example>\n\n", "empty message")
REJECTS(rcpt_before_mail, "RCPT TO:<c@d.example>\nMAIL FROM:<a@b.example>\n\nx",
	"line 1: RCPT TO before MAIL FROM")
REJECTS(duplicate_mail_from,
	"MAIL FROM:<a@b.example>\nRCPT TO:<c@d.example>\nMAIL FROM:<e@b.example>\n\nx",
	"line 3: duplicate MAIL FROM")
REJECTS(unknown_envelope_line, "MAIL FROM:<a@b.example>\nHELO x\n\nx",
	"line 2: unknown envelope line")
REJECTS(message_without_envelope, "From: a@b.example\nTo: c@d.example\n\nhi",
	"line 1: unknown envelope line")
REJECTS(address_without_domain, "MAIL FROM:<a@b.example>\nRCPT TO:<alice>\n\nx",
	"line 2: RCPT TO: address has no domain part")
REJECTS(address_with_empty_domain, "MAIL FROM:<a@b.example>\nRCPT TO:<alice@>\n\nx",
	"empty domain part")
REJECTS(address_without_local_part, "MAIL FROM:<a@b.example>\nRCPT TO:<@d.example>\n\nx",
	"no local part")
REJECTS(address_with_two_at_signs, "MAIL FROM:<a@b.example>\nRCPT TO:<a@b@d.example>\n\nx",
	"more than one @")
REJECTS(address_with_bad_domain_char, "MAIL FROM:<a@b.example>\nRCPT TO:<a@exa_mple.com>\n\nx",
	"invalid character '_' in domain")
REJECTS(address_with_double_dot_domain, "MAIL FROM:<a@b.example>\nRCPT TO:<a@d..example>\n\nx",
	"empty label in domain")
REJECTS(address_with_trailing_dot_domain, "MAIL FROM:<a@b.example>\nRCPT TO:<a@d.example.>\n\nx",
	"empty label in domain")
REJECTS(domain_label_starting_with_hyphen, "MAIL FROM:<a@b.example>\nRCPT TO:<a@-d.example>\n\nx",
	"starts with '-'")
REJECTS(domain_label_ending_with_hyphen, "MAIL FROM:<a@b.example>\nRCPT TO:<a@d-.example>\n\nx",
	"ends with '-'")
REJECTS(local_part_with_double_dot, "MAIL FROM:<a@b.example>\nRCPT TO:<a..b@d.example>\n\nx",
	"double dot")
REJECTS(local_part_with_space, "MAIL FROM:<a@b.example>\nRCPT TO:<a b@d.example>\n\nx",
	"invalid character 0x20 in local part")
REJECTS(local_part_invalid_utf8, "MAIL FROM:<a@b.example>\nRCPT TO:<j\xc3(rg@d.example>\n\nx",
	"not valid UTF-8")
REJECTS(local_part_overlong_utf8, "MAIL FROM:<a@b.example>\nRCPT TO:<\xc0\xafx@d.example>\n\nx",
	"not valid UTF-8")
REJECTS(utf8_in_domain, "MAIL FROM:<a@b.example>\nRCPT TO:<a@b\xc3\xb6.example>\n\nx",
	"use A-labels")
REJECTS(unterminated_quoted_local_part, "MAIL FROM:<a@b.example>\nRCPT TO:<\"abc@d.example>\n\nx",
	"no closing >")
REJECTS(source_route, "MAIL FROM:<a@b.example>\nRCPT TO:<@relay.example:c@d.example>\n\nx",
	"source route")
REJECTS(bad_ipv4_literal, "MAIL FROM:<a@b.example>\nRCPT TO:<c@[1.2.3]>\n\nx",
	"invalid address literal")
REJECTS(bad_ipv6_literal, "MAIL FROM:<a@b.example>\nRCPT TO:<c@[IPv6:zz::1]>\n\nx",
	"invalid address literal")
REJECTS(bad_sender_address, "MAIL FROM:<fax>\nRCPT TO:<c@d.example>\n\nx",
	"line 1: MAIL FROM: address has no domain part")
REJECTS(address_not_in_angle_brackets, "MAIL FROM:a@b.example\nRCPT TO:<c@d.example>\n\nx",
	"must be in <>")
REJECTS(address_without_closing_angle, "MAIL FROM:<a@b.example\nRCPT TO:<c@d.example>\n\nx",
	"no closing >")
REJECTS(empty_recipient, "MAIL FROM:<a@b.example>\nRCPT TO:<>\n\nx", "empty address")
REJECTS(unknown_mail_parameter, "MAIL FROM:<a@b.example> SIZE=100\nRCPT TO:<c@d.example>\n\nx",
	"unknown parameter SIZE")
REJECTS(unknown_rcpt_parameter, "MAIL FROM:<a@b.example>\nRCPT TO:<c@d.example> FOO=bar\n\nx",
	"line 2: RCPT TO: unknown parameter FOO")
REJECTS(rcpt_parameter_on_mail, "MAIL FROM:<a@b.example> NOTIFY=NEVER\nRCPT TO:<c@d.example>\n\nx",
	"unknown parameter NOTIFY")
REJECTS(duplicate_parameter, "MAIL FROM:<a@b.example> RET=FULL ret=HDRS\nRCPT TO:<c@d.example>\n\nx",
	"duplicate RET")
REJECTS(duplicate_notify, "MAIL FROM:<a@b.example>\nRCPT TO:<c@d.example> NOTIFY=DELAY "
	"NOTIFY=FAILURE\n\nx", "duplicate NOTIFY")
REJECTS(parameter_without_value, "MAIL FROM:<a@b.example> RET\nRCPT TO:<c@d.example>\n\nx",
	"has no value")
REJECTS(garbage_glued_to_address, "MAIL FROM:<a@b.example>RET=FULL\nRCPT TO:<c@d.example>\n\nx",
	"garbage after the address")
REJECTS(bad_ret_value, "MAIL FROM:<a@b.example> RET=ALL\nRCPT TO:<c@d.example>\n\nx",
	"RET must be FULL or HDRS")
REJECTS(notify_never_combined, "MAIL FROM:<a@b.example>\nRCPT TO:<c@d.example> "
	"NOTIFY=NEVER,FAILURE\n\nx", "NOTIFY=NEVER cannot be combined")
REJECTS(notify_unknown_value, "MAIL FROM:<a@b.example>\nRCPT TO:<c@d.example> NOTIFY=SOMETIMES\n\nx",
	"NOTIFY must be")
REJECTS(notify_repeated_value, "MAIL FROM:<a@b.example>\nRCPT TO:<c@d.example> "
	"NOTIFY=DELAY,DELAY\n\nx", "NOTIFY must be")
REJECTS(notify_empty_item, "MAIL FROM:<a@b.example>\nRCPT TO:<c@d.example> NOTIFY=DELAY,\n\nx",
	"NOTIFY must be")
REJECTS(envid_bad_xtext_equals, "MAIL FROM:<a@b.example> ENVID=a=b\nRCPT TO:<c@d.example>\n\nx",
	"ENVID is not valid xtext")
REJECTS(envid_bad_xtext_short_hex, "MAIL FROM:<a@b.example> ENVID=ab+4\nRCPT TO:<c@d.example>\n\nx",
	"ENVID is not valid xtext")
REJECTS(envid_bad_xtext_not_hex, "MAIL FROM:<a@b.example> ENVID=ab+G1\nRCPT TO:<c@d.example>\n\nx",
	"ENVID is not valid xtext")
REJECTS(orcpt_without_type, "MAIL FROM:<a@b.example>\nRCPT TO:<c@d.example> ORCPT=c@d.example\n\nx",
	"ORCPT must be addr-type;xtext")
REJECTS(orcpt_with_bad_xtext, "MAIL FROM:<a@b.example>\nRCPT TO:<c@d.example> ORCPT=rfc822;c+Z\n\nx",
	"ORCPT address is not valid xtext")
REJECTS(nul_byte_in_envelope, "MAIL FROM:<a@b.example>\nRCPT TO:<c@d\0.example>\n\nx",
	"line 2: NUL byte in envelope")
REJECTS(control_character_in_envelope, "MAIL FROM:<a@b.example>\nRCPT TO:<c@d.example>\r x\n\nx",
	"control character 0x0d")

Test(spool_parse_rejects, ten_thousand_recipients)
{
	size_t cap = 64 + 10000 * 40, len = 0;
	char *f = malloc(cap);
	int i;

	len += (size_t)sprintf(f, "MAIL FROM:<a@b.example>\n");
	for (i = 0; i < 10000; i++)
		len += (size_t)sprintf(f + len, "RCPT TO:<r%d@d.example>\n", i);
	len += (size_t)sprintf(f + len, "\nx");
	expect_corrupt(f, len, "line 1002: too many recipients");
	free(f);
}

Test(spool_parse_rejects, one_megabyte_envelope_line)
{
	size_t n = 1024 * 1024;
	char *f = malloc(n + 64);

	memcpy(f, "MAIL FROM:<", 11);
	memset(f + 11, 'a', n);
	memcpy(f + 11 + n, "@b>\n\nx", 6);
	expect_corrupt(f, n + 17, "line 1: envelope line longer than 2048");
	free(f);
}

Test(spool_parse_rejects, envelope_larger_than_the_limit)
{
	/* ~490-byte lines, distinct recipients: 600 of them pass 256 KB */
	size_t cap = 600 * 520, len = 0;
	char *f = malloc(cap), pad[401];
	int i;

	memset(pad, 'x', 400);
	pad[400] = '\0';
	len += (size_t)sprintf(f, "MAIL FROM:<a@b.example>\n");
	for (i = 0; i < 600; i++)
		len += (size_t)sprintf(f + len, "RCPT TO:<r%d.%.50s@d.example> ORCPT=rfc822;%s\n",
				       i, pad, pad);
	len += (size_t)sprintf(f + len, "\nx");
	cr_assert_lt(len, cap);
	expect_corrupt(f, len, "envelope larger than 262144 bytes");
	free(f);
}

Test(spool_parse_rejects, address_longer_than_the_limit)
{
	char f[1200], dom[700];
	int i;

	/* 60-byte labels: valid one by one, too long together */
	for (i = 0; i < 10; i++) {
		memset(dom + i * 61, 'd', 60);
		dom[i * 61 + 60] = '.';
	}
	dom[609] = '\0';
	snprintf(f, sizeof(f), "MAIL FROM:<a@b.example>\nRCPT TO:<c@%s>\n\nx", dom);
	expect_corrupt(f, strlen(f), "address longer than 512 bytes");
}

Test(spool_parse_rejects, domain_longer_than_255)
{
	char f[600], dom[400];
	int i;

	for (i = 0; i < 5; i++) {
		memset(dom + i * 61, 'd', 60);
		dom[i * 61 + 60] = '.';
	}
	memcpy(dom + 305, "example", 8);
	snprintf(f, sizeof(f), "MAIL FROM:<a@b.example>\nRCPT TO:<c@%s>\n\nx", dom);
	expect_corrupt(f, strlen(f), "domain longer than 255 bytes");
}

Test(spool_parse_rejects, domain_label_longer_than_63)
{
	char f[300], lab[70];

	memset(lab, 'l', 64);
	lab[64] = '\0';
	snprintf(f, sizeof(f), "MAIL FROM:<a@b.example>\nRCPT TO:<c@%s.example>\n\nx", lab);
	expect_corrupt(f, strlen(f), "domain label longer than 63 bytes");
}

Test(spool_parse_rejects, local_part_longer_than_64)
{
	char f[300], loc[70];

	memset(loc, 'l', 65);
	loc[65] = '\0';
	snprintf(f, sizeof(f), "MAIL FROM:<a@b.example>\nRCPT TO:<%s@d.example>\n\nx", loc);
	expect_corrupt(f, strlen(f), "local part longer than 64 bytes");
}

Test(spool_parse_rejects, envid_longer_than_100)
{
	char f[400], id[120];

	memset(id, 'e', 101);
	id[101] = '\0';
	snprintf(f, sizeof(f), "MAIL FROM:<a@b.example> ENVID=%s\nRCPT TO:<c@d.example>\n\nx", id);
	expect_corrupt(f, strlen(f), "ENVID longer than 100 bytes");
}

Test(spool_parse_rejects, every_prefix_of_a_good_file_is_refused_or_parsed_without_crash)
{
	size_t n, body = (size_t)(strstr(design_example, "\n\nFrom") - design_example) + 2;
	q_msg_t m;
	char why[256];

	/* every cut inside the envelope block is corrupt; the file is never over-read */
	for (n = 0; n < sizeof(design_example) - 1; n++) {
		char *cut = malloc(n ? n : 1);
		int rc;

		memcpy(cut, design_example, n);
		rc = q_parse(cut, n, &m, why, sizeof(why));
		if (n <= body)
			cr_assert_eq(rc, Q_CORRUPT, "prefix of %zu bytes accepted", n);
		if (rc == Q_OK)
			q_msg_clear(&m);
		free(cut);
	}
}

Test(spool_parse, sample_files_parse_or_are_refused_by_name)
{
	const char *good_files[] = { "good-design", "good-crlf", "good-null-sender" };
	const char *bad_files[][2] = {
		{ "bad-address", "invalid character 0x20 in domain" },
		{ "bad-empty-message", "empty message" },
		{ "bad-empty", "empty file" },
		{ "bad-no-empty-line", "line 3: unknown envelope line" },
		{ "bad-no-recipients", "no recipients" },
		{ "bad-nul-byte", "NUL byte" },
		{ "bad-truncated", "truncated" },
		{ "bad-unknown-parameter", "unknown parameter SMTPUTF8" },
	};
	char path[512], why[256], *buf = malloc(65536);
	size_t i, n;
	q_msg_t m;
	FILE *fp;

	for (i = 0; i < sizeof(good_files) / sizeof(good_files[0]) + 8; i++) {
		int is_good = i < 3;
		const char *name = is_good ? good_files[i] : bad_files[i - 3][0];

		snprintf(path, sizeof(path), "%s/spool/%s.spool", SP_TEST_DATA, name);
		cr_assert_not_null(fp = fopen(path, "rb"), "%s", path);
		n = fread(buf, 1, 65536, fp);
		fclose(fp);
		if (is_good) {
			cr_assert_eq(q_parse(buf, n, &m, why, sizeof(why)), Q_OK, "%s: %s", name, why);
			q_msg_clear(&m);
		} else {
			cr_assert_eq(q_parse(buf, n, &m, why, sizeof(why)), Q_CORRUPT, "%s", name);
			cr_assert(strstr(why, bad_files[i - 3][1]) != NULL, "%s: %s", name, why);
		}
	}
	free(buf);
}
