/*
 * tests/test_dsn.c - delivery status notifications: the NOTIFY rules
 * (q_dsn_wanted) and the report itself (q_dsn_build), parsed back as a
 * spool file and as MIME, every field of message/delivery-status checked.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "queue/q_int.h"
#include "queue/queue.h"

#define MTA	"mta.example.com"
#define ARRIVAL	1796415403		/* Fri, 04 Dec 2026 20:16:43 +0000 */
#define QID	"0123456789abcdef0123456"
#define NOW	1796500000		/* Sat, 05 Dec 2026 19:46:40 +0000 */

static const char three[] =
	"MAIL FROM:<fax-noreply@fax.example.com> RET=HDRS ENVID=fax+2D7f3a\n"
	"RCPT TO:<alice@example.org> NOTIFY=FAILURE,DELAY ORCPT=rfc822;Alice@Example.org\n"
	"RCPT TO:<bob@example.net> NOTIFY=NEVER\n"
	"RCPT TO:<j\xc3\xb6rg@example.de>\n"
	"\n"
	"From: Fax Service <fax-noreply@fax.example.com>\n"
	"To: alice@example.org, bob@example.net\n"
	"Subject: Fax from +61 2 5550 1234 (3 pages)\n"
	"Message-ID: <orig-1@fax.example.com>\n"
	"\n"
	"THE-FAX-BODY line one\n"
	"line two\n";

/* a parsed message with its content and our report */
struct fixture {
	q_msg_t	msg;
	char	*dsn;
	size_t	dsnlen;
	q_msg_t	back;		/* the report parsed back as a spool file */
};

/* mime part: header block and body, pointing into a copy */
struct part {
	char	*hdr;
	char	*body;
};

/* load - parse a spool text into m and give it its content */
static void
load(const char *text, q_msg_t *m)
{
	char why[256];
	size_t len = strlen(text);

	cr_assert_eq(q_parse(text, len, m, why, sizeof(why)), Q_OK, "%s", why);
	m->data = malloc(len + 1);
	cr_assert_not_null(m->data);
	memcpy(m->data, text, len + 1);
	m->len = len;
	memcpy(m->id, QID, sizeof(QID));
	m->arrival = ARRIVAL;
}

/* build - the report for idx[] into f, parsed back */
static void
build(struct fixture *f, const size_t *idx, size_t n, enum q_dsn_action a,
      int64_t until, size_t max_full)
{
	char err[256], why[256];

	cr_assert_eq(q_dsn_build_until(&f->msg, idx, n, a, MTA, NOW, until, max_full,
				       &f->dsn, &f->dsnlen, err, sizeof(err)), Q_OK, "%s", err);
	cr_assert_eq(strlen(f->dsn), f->dsnlen);
	cr_assert_eq(q_parse(f->dsn, f->dsnlen, &f->back, why, sizeof(why)), Q_OK,
		     "report does not parse back: %s\n%s", why, f->dsn);
}

/* release - free a fixture */
static void
release(struct fixture *f)
{
	q_msg_clear(&f->msg);
	free(f->dsn);
	q_msg_clear(&f->back);
}

/* header - unfolded value of header `name` in block h (malloc'd) or NULL */
static char *
header(const char *h, const char *name)
{
	size_t nl = strlen(name);
	const char *p = h, *e;
	char *v;
	size_t k = 0;

	while (*p != '\0' && *p != '\n') {
		e = strchr(p, '\n');
		if (e == NULL)
			e = p + strlen(p);
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *s = p + nl + 1;

			v = calloc(1, strlen(s) + 1);
			cr_assert_not_null(v);
			while (*s == ' ')
				s++;
			for (;;) {
				while (*s != '\0' && *s != '\n')
					v[k++] = *s++;
				if (s[0] == '\n' && (s[1] == ' ' || s[1] == '\t'))
					s++;
				else
					break;
			}
			v[k] = '\0';
			return v;
		}
		p = *e ? e + 1 : e;
	}
	return NULL;
}

/* expect_header - assert header name in h equals want (NULL: absent) */
static void
expect_header(const char *h, const char *name, const char *want)
{
	char *v = header(h, name);

	if (want == NULL) {
		cr_expect_null(v, "%s present: %s", name, v);
	} else {
		cr_expect_not_null(v, "%s missing", name);
		if (v != NULL)
			cr_expect_str_eq(v, want, "%s", name);
	}
	free(v);
}

/* split_mime - the message (headers at msg) into its parts; returns the
 * count; parts point into *copy, which the caller frees */
static size_t
split_mime(const char *msg, struct part *parts, size_t max, char **copy)
{
	char *ct, *b, delim[128], *p, *next, *end;
	size_t n = 0;

	ct = header(msg, "Content-Type");
	cr_assert_not_null(ct);
	cr_assert_not_null(strstr(ct, "multipart/report"));
	cr_assert_not_null(strstr(ct, "report-type=delivery-status"));
	b = strstr(ct, "boundary=\"");
	cr_assert_not_null(b);
	b += 10;
	*strchr(b, '"') = '\0';
	snprintf(delim, sizeof(delim), "\n--%s", b);
	free(ct);
	*copy = strdup(msg);
	cr_assert_not_null(*copy);
	p = strstr(*copy, delim);
	cr_assert_not_null(p);
	for (;;) {
		p += strlen(delim);
		if (strncmp(p, "--", 2) == 0)
			break;
		cr_assert_eq(*p, '\n');
		p++;
		next = strstr(p, delim);
		cr_assert_not_null(next, "unterminated part");
		*next = '\0';
		cr_assert_lt(n, max);
		parts[n].hdr = p;
		end = strstr(p, "\n\n");
		cr_assert_not_null(end);
		end[1] = '\0';
		parts[n].body = end + 2;
		n++;
		p = next;	/* the '\0' stands where the delimiter's LF was */
	}
	/* the closing delimiter is the last line */
	cr_assert_str_eq(p + 2, "\n");
	return n;
}

/* groups - split a delivery-status body into field groups (in place) */
static size_t
groups(char *body, char **g, size_t max)
{
	size_t n = 0;
	char *p = body, *e;

	while (*p != '\0') {
		while (*p == '\n')
			p++;
		if (*p == '\0')
			break;
		cr_assert_lt(n, max);
		g[n++] = p;
		e = strstr(p, "\n\n");
		if (e == NULL)
			break;
		e[1] = '\0';
		p = e + 2;
	}
	return n;
}

/* qp_decode - quoted-printable to text (malloc'd) */
static char *
qp_decode(const char *s)
{
	char *o = malloc(strlen(s) + 1), *q = o;
	unsigned v;

	cr_assert_not_null(o);
	while (*s != '\0') {
		if (s[0] == '=' && s[1] == '\n') {
			s += 2;
		} else if (s[0] == '=' && sscanf(s + 1, "%2X", &v) == 1) {
			*q++ = (char)v;
			s += 3;
		} else {
			*q++ = *s++;
		}
	}
	*q = '\0';
	return o;
}

/* b64_decode - decode base64 text of n chars into out, returns length */
static size_t
b64_decode(const char *s, size_t n, char *out)
{
	static const char t[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;
	unsigned v = 0, bits = 0;

	for (i = 0; i < n && s[i] != '='; i++) {
		const char *c = strchr(t, s[i]);

		cr_assert_not_null(c);
		v = (v << 6) | (unsigned)(c - t);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((v >> bits) & 0xff);
		}
	}
	return o;
}

/* max_line - the longest line of s */
static size_t
max_line(const char *s)
{
	size_t m = 0, l;
	const char *e;

	for (;;) {
		e = strchr(s, '\n');
		l = e != NULL ? (size_t)(e - s) : strlen(s);
		if (l > m)
			m = l;
		if (e == NULL)
			return m;
		s = e + 1;
	}
}

/* failed_fixture - the three-recipient message: alice 550, bob NEVER,
 * jörg lost to a TLS failure; report for those who want one */
static void
failed_fixture(struct fixture *f, size_t *idx, size_t *n)
{
	size_t i;

	memset(f, 0, sizeof(*f));
	load(three, &f->msg);
	cr_assert_eq(f->msg.nrcpt, 3);
	q_rcpt_update(&f->msg.rcpt[0], Q_RCPT_BOUNCED, "5.1.1",
		      "550 5.1.1 <alice@example.org>: user unknown",
		      "mx1.example.org[192.0.2.1]:25", 0);
	q_rcpt_update(&f->msg.rcpt[1], Q_RCPT_BOUNCED, "5.1.1", "550 5.1.1 no",
		      "mx.example.net[192.0.2.2]:25", 0);
	q_rcpt_update(&f->msg.rcpt[2], Q_RCPT_BOUNCED, "4.7.0",
		      "TLS handshake with mx.example.de[192.0.2.7]:25 failed: certificate "
		      "verify failed", "mx.example.de[192.0.2.7]:25", 0);
	*n = 0;
	for (i = 0; i < f->msg.nrcpt; i++)
		if (q_dsn_wanted(&f->msg, &f->msg.rcpt[i], Q_DSN_FAILED))
			idx[(*n)++] = i;
}

Test(dsn, failure_report_parses_back_as_spool_file_to_the_sender)
{
	struct fixture f;
	size_t idx[3], n;

	failed_fixture(&f, idx, &n);
	cr_assert_eq(n, 2, "NOTIFY=NEVER recipient must be left out");
	cr_assert_eq(idx[0], 0);
	cr_assert_eq(idx[1], 2);
	build(&f, idx, n, Q_DSN_FAILED, 0, 1 << 20);
	cr_expect_str_eq(f.back.sender, "");
	cr_assert_eq(f.back.nrcpt, 1);
	cr_expect_str_eq(f.back.rcpt[0].addr, "fax-noreply@fax.example.com");
	cr_expect_eq(strncmp(f.dsn, "MAIL FROM:<>\nRCPT TO:<fax-noreply@fax.example.com>\n\n",
			     52), 0);
	cr_expect_null(strchr(f.dsn, '\r'), "LF line ends only");
	release(&f);
}

Test(dsn, report_headers_name_the_fax_and_the_mailer_daemon)
{
	struct fixture f;
	size_t idx[3], n;
	const char *h;
	char *v;

	failed_fixture(&f, idx, &n);
	build(&f, idx, n, Q_DSN_FAILED, 0, 1 << 20);
	h = f.dsn + f.back.body_off;
	expect_header(h, "From", "\"Mail Delivery System\" <MAILER-DAEMON@" MTA ">");
	expect_header(h, "To", "<fax-noreply@fax.example.com>");
	expect_header(h, "Subject", "Undelivered fax: Fax from +61 2 5550 1234 (3 pages)");
	expect_header(h, "Date", "Sat, 05 Dec 2026 19:46:40 +0000");
	expect_header(h, "Auto-Submitted", "auto-replied");
	expect_header(h, "MIME-Version", "1.0");
	v = header(h, "Message-ID");
	cr_assert_not_null(v);
	cr_expect_eq(strncmp(v, "<" QID ".dsn.1796500000", 39), 0, "%s", v);
	cr_expect_str_eq(v + strlen(v) - strlen("@" MTA ">"), "@" MTA ">");
	free(v);
	release(&f);
}

Test(dsn, report_has_three_parts_text_status_and_original_headers)
{
	struct fixture f;
	struct part p[8];
	size_t idx[3], n, np;
	char *copy, *ct, *text;

	failed_fixture(&f, idx, &n);
	build(&f, idx, n, Q_DSN_FAILED, 0, 1 << 20);
	np = split_mime(f.dsn + f.back.body_off, p, 8, &copy);
	cr_assert_eq(np, 3);
	expect_header(p[0].hdr, "Content-Type", "text/plain; charset=utf-8");
	expect_header(p[1].hdr, "Content-Type", "message/delivery-status");
	expect_header(p[2].hdr, "Content-Type", "text/rfc822-headers");

	/* RET=HDRS: the headers, not the body */
	cr_expect_not_null(strstr(p[2].body, "Subject: Fax from +61 2 5550 1234 (3 pages)\n"));
	cr_expect_not_null(strstr(p[2].body, "Message-ID: <orig-1@fax.example.com>\n"));
	cr_expect_null(strstr(p[2].body, "THE-FAX-BODY"));

	/* the words for the fax user: which fax, who, why */
	ct = header(p[0].hdr, "Content-Transfer-Encoding");
	cr_assert_not_null(ct);
	cr_expect_str_eq(ct, "quoted-printable", "non-ASCII recipient in the text");
	text = qp_decode(p[0].body);
	cr_expect_not_null(strstr(text, "Fax from +61 2 5550 1234 (3 pages)"));
	cr_expect_not_null(strstr(text, QID));
	cr_expect_not_null(strstr(text, "Fri, 04 Dec 2026 20:16:43 +0000"));
	cr_expect_not_null(strstr(text, "alice@example.org"));
	cr_expect_not_null(strstr(text, "j\xc3\xb6rg@example.de"));
	cr_expect_null(strstr(text, "bob@example.net"));
	cr_expect_not_null(strstr(text, "550 5.1.1 <alice@example.org>: user unknown"));
	cr_expect_not_null(strstr(text, "could not prove its identity over an encrypted "
				  "connection"), "%s", text);
	cr_expect_not_null(strstr(text, "stopped trying"));
	free(text);
	free(ct);
	free(copy);
	release(&f);
}

Test(dsn, delivery_status_carries_every_field)
{
	struct fixture f;
	struct part p[8];
	size_t idx[3], n;
	char *copy, *g[8];

	failed_fixture(&f, idx, &n);
	build(&f, idx, n, Q_DSN_FAILED, 0, 1 << 20);
	cr_assert_eq(split_mime(f.dsn + f.back.body_off, p, 8, &copy), 3);
	cr_assert_eq(groups(p[1].body, g, 8), 3, "per-message group + 2 recipients");

	expect_header(g[0], "Reporting-MTA", "dns; " MTA);
	expect_header(g[0], "Original-Envelope-Id", "fax-7f3a");
	expect_header(g[0], "Arrival-Date", "Fri, 04 Dec 2026 20:16:43 +0000");

	expect_header(g[1], "Original-Recipient", "rfc822;Alice@Example.org");
	expect_header(g[1], "Final-Recipient", "rfc822;alice@example.org");
	expect_header(g[1], "Action", "failed");
	expect_header(g[1], "Status", "5.1.1");
	expect_header(g[1], "Remote-MTA", "dns; mx1.example.org");
	expect_header(g[1], "Diagnostic-Code", "smtp; 550 5.1.1 <alice@example.org>: user unknown");
	expect_header(g[1], "Last-Attempt-Date", "Sat, 05 Dec 2026 19:46:40 +0000");
	expect_header(g[1], "Will-Retry-Until", NULL);

	expect_header(g[2], "Original-Recipient", NULL);
	expect_header(g[2], "Final-Recipient", "utf-8;j\\x{F6}rg@example.de");
	expect_header(g[2], "Action", "failed");
	expect_header(g[2], "Status", "4.7.0");
	expect_header(g[2], "Remote-MTA", "dns; mx.example.de");
	expect_header(g[2], "Diagnostic-Code", "X-Sealpost; TLS handshake with "
		      "mx.example.de[192.0.2.7]:25 failed: certificate verify failed");
	expect_header(g[2], "Last-Attempt-Date", "Sat, 05 Dec 2026 19:46:40 +0000");

	/* the status part is 7-bit and never names the NOTIFY=NEVER recipient */
	for (const char *s = p[1].body; *s != '\0'; s++)
		cr_assert_lt((unsigned char)*s, 0x80);
	cr_expect_null(strstr(p[1].body, "bob@example.net"));
	free(copy);
	release(&f);
}

Test(dsn, no_envid_no_original_envelope_id)
{
	struct fixture f;
	struct part p[8];
	size_t idx[1] = { 0 };
	char *copy, *g[4];

	memset(&f, 0, sizeof(f));
	load("MAIL FROM:<s@example.com>\nRCPT TO:<r@example.org>\n\nSubject: x\n\nb\n", &f.msg);
	q_rcpt_update(&f.msg.rcpt[0], Q_RCPT_BOUNCED, "5.1.1", "550 no", NULL, 0);
	build(&f, idx, 1, Q_DSN_FAILED, 0, 1 << 20);
	cr_assert_eq(split_mime(f.dsn + f.back.body_off, p, 8, &copy), 3);
	cr_assert_eq(groups(p[1].body, g, 4), 2);
	expect_header(g[0], "Original-Envelope-Id", NULL);
	expect_header(g[1], "Original-Recipient", NULL);
	expect_header(g[1], "Remote-MTA", NULL);
	expect_header(g[1], "Diagnostic-Code", "smtp; 550 no");
	free(copy);
	release(&f);
}

/* big_message - RET=FULL with a body of size bytes */
static char *
big_message(size_t size)
{
	const char *head = "MAIL FROM:<s@example.com> RET=FULL\nRCPT TO:<r@example.org>\n\n"
			   "Subject: big fax\nContent-Type: application/pdf\n\n";
	size_t hl = strlen(head), i;
	char *m = malloc(hl + size + 1);

	cr_assert_not_null(m);
	memcpy(m, head, hl);
	for (i = 0; i < size; i++)
		m[hl + i] = (i % 64 == 63) ? '\n' : 'A' + (char)(i % 26);
	m[hl + size] = '\0';
	return m;
}

Test(dsn, ret_full_returns_the_whole_message_within_the_bound)
{
	struct fixture f;
	struct part p[8];
	size_t idx[1] = { 0 };
	char *copy, *text = big_message(4096);

	memset(&f, 0, sizeof(f));
	load(text, &f.msg);
	q_rcpt_update(&f.msg.rcpt[0], Q_RCPT_BOUNCED, "5.1.1", "550 no", NULL, 0);
	build(&f, idx, 1, Q_DSN_FAILED, 0, 100000);
	cr_assert_eq(split_mime(f.dsn + f.back.body_off, p, 8, &copy), 3);
	expect_header(p[2].hdr, "Content-Type", "message/rfc822");
	cr_expect_not_null(strstr(p[2].body, "Subject: big fax\n"));
	cr_expect_eq(strncmp(p[2].body, f.msg.data + f.msg.body_off,
			     f.msg.len - f.msg.body_off), 0, "the whole original");
	free(copy);
	free(text);
	release(&f);
}

Test(dsn, ret_full_over_the_bound_returns_headers_and_says_so)
{
	struct fixture f;
	struct part p[8];
	size_t idx[1] = { 0 };
	char *copy, *text = big_message(200000);

	memset(&f, 0, sizeof(f));
	load(text, &f.msg);
	q_rcpt_update(&f.msg.rcpt[0], Q_RCPT_BOUNCED, "5.3.4", "552 5.3.4 too big", NULL, 0);
	build(&f, idx, 1, Q_DSN_FAILED, 0, 100000);
	cr_assert_lt(f.dsnlen, 20000);
	cr_assert_eq(split_mime(f.dsn + f.back.body_off, p, 8, &copy), 3);
	expect_header(p[2].hdr, "Content-Type", "text/rfc822-headers");
	cr_expect_str_eq(p[2].body, "Subject: big fax\nContent-Type: application/pdf\n");
	cr_expect_not_null(strstr(p[0].body, "too large to return"));
	free(copy);
	free(text);
	release(&f);
}

Test(dsn, ret_full_applies_to_failures_only)
{
	struct fixture f;
	struct part p[8];
	size_t idx[1] = { 0 };
	char *copy, *text = big_message(100);

	memset(&f, 0, sizeof(f));
	load(text, &f.msg);
	q_rcpt_update(&f.msg.rcpt[0], Q_RCPT_DEFERRED, "4.4.1", "451 later", NULL, 600);
	build(&f, idx, 1, Q_DSN_DELAYED, 0, 100000);
	cr_assert_eq(split_mime(f.dsn + f.back.body_off, p, 8, &copy), 3);
	expect_header(p[2].hdr, "Content-Type", "text/rfc822-headers");
	free(copy);
	free(text);
	release(&f);
}

Test(dsn, crlf_original_is_returned_with_lf)
{
	struct fixture f;
	struct part p[8];
	size_t idx[1] = { 0 };
	char *copy;

	memset(&f, 0, sizeof(f));
	load("MAIL FROM:<s@example.com>\r\nRCPT TO:<r@example.org>\r\n\r\n"
	     "Subject: crlf\r\nX-A: b\r\n\r\nbody\r\n", &f.msg);
	build(&f, idx, 1, Q_DSN_FAILED, 0, 1 << 20);
	cr_expect_null(strchr(f.dsn, '\r'));
	cr_assert_eq(split_mime(f.dsn + f.back.body_off, p, 8, &copy), 3);
	cr_expect_str_eq(p[2].body, "Subject: crlf\nX-A: b\n");
	free(copy);
	release(&f);
}

Test(dsn, delayed_report_says_until_when_we_keep_trying)
{
	struct fixture f;
	struct part p[8];
	size_t idx[1] = { 0 };
	char *copy, *g[4];

	memset(&f, 0, sizeof(f));
	load("MAIL FROM:<s@example.com>\nRCPT TO:<r@example.org>\n\nSubject: slow\n\nb\n",
	     &f.msg);
	q_rcpt_update(&f.msg.rcpt[0], Q_RCPT_DEFERRED, "4.2.0", "451 4.2.0 try later",
		      "mx.example.org[192.0.2.9]:25", NOW + 600);
	build(&f, idx, 1, Q_DSN_DELAYED, ARRIVAL + 5 * 86400, 1 << 20);
	expect_header(f.dsn + f.back.body_off, "Subject", "Delayed fax: slow");
	cr_assert_eq(split_mime(f.dsn + f.back.body_off, p, 8, &copy), 3);
	cr_expect_not_null(strstr(p[0].body, "we keep trying until\n"
				  "Wed, 09 Dec 2026 20:16:43 +0000"), "%s", p[0].body);
	cr_assert_eq(groups(p[1].body, g, 4), 2);
	expect_header(g[1], "Action", "delayed");
	expect_header(g[1], "Status", "4.2.0");
	expect_header(g[1], "Will-Retry-Until", "Wed, 09 Dec 2026 20:16:43 +0000");
	free(copy);
	release(&f);
}

Test(dsn, success_report_says_delivered)
{
	struct fixture f;
	struct part p[8];
	size_t idx[1] = { 0 };
	char *copy, *g[4];

	memset(&f, 0, sizeof(f));
	load("MAIL FROM:<s@example.com>\nRCPT TO:<r@example.org> NOTIFY=SUCCESS\n\n"
	     "Subject: ok\n\nb\n", &f.msg);
	q_rcpt_update(&f.msg.rcpt[0], Q_RCPT_SENT, "2.0.0", "250 2.0.0 queued as X",
		      "mx.example.org[192.0.2.9]:25", 0);
	build(&f, idx, 1, Q_DSN_DELIVERED, 0, 1 << 20);
	expect_header(f.dsn + f.back.body_off, "Subject", "Delivered fax: ok");
	cr_assert_eq(split_mime(f.dsn + f.back.body_off, p, 8, &copy), 3);
	cr_assert_eq(groups(p[1].body, g, 4), 2);
	expect_header(g[1], "Action", "delivered");
	expect_header(g[1], "Status", "2.0.0");
	expect_header(g[1], "Diagnostic-Code", "smtp; 250 2.0.0 queued as X");
	free(copy);
	release(&f);
}

Test(dsn, missing_status_code_gets_a_class_default)
{
	struct fixture f;
	struct part p[8];
	size_t idx[1] = { 0 };
	char *copy, *g[4];

	memset(&f, 0, sizeof(f));
	load("MAIL FROM:<s@example.com>\nRCPT TO:<r@example.org>\n\nSubject: x\n\nb\n", &f.msg);
	q_rcpt_update(&f.msg.rcpt[0], Q_RCPT_BOUNCED, "garbage", "554 go away", NULL, 0);
	build(&f, idx, 1, Q_DSN_FAILED, 0, 1 << 20);
	cr_assert_eq(split_mime(f.dsn + f.back.body_off, p, 8, &copy), 3);
	cr_assert_eq(groups(p[1].body, g, 4), 2);
	expect_header(g[1], "Status", "5.0.0");
	free(copy);
	release(&f);
}

Test(dsn, null_sender_never_gets_a_report)
{
	q_msg_t m;
	size_t idx[1] = { 0 };
	char *out = NULL, err[256];
	size_t outlen = 0;

	memset(&m, 0, sizeof(m));
	load("MAIL FROM:<>\nRCPT TO:<r@example.org> NOTIFY=SUCCESS,FAILURE,DELAY\n\n"
	     "Subject: a bounce\n\nb\n", &m);
	cr_expect_eq(q_dsn_wanted(&m, &m.rcpt[0], Q_DSN_FAILED), 0);
	cr_expect_eq(q_dsn_wanted(&m, &m.rcpt[0], Q_DSN_DELAYED), 0);
	cr_expect_eq(q_dsn_wanted(&m, &m.rcpt[0], Q_DSN_DELIVERED), 0);
	cr_expect_eq(q_dsn_build(&m, idx, 1, Q_DSN_FAILED, MTA, NOW, 1 << 20, &out, &outlen,
				 err, sizeof(err)), Q_ERROR);
	cr_expect_null(out);
	cr_expect_not_null(strstr(err, "never bounce a bounce"), "%s", err);
	q_msg_clear(&m);
}

Test(dsn, notify_truth_table)
{
	static const struct {
		const char *notify;
		int failed, delayed, delivered;
	} t[] = {
		{ "",				1, 1, 0 },
		{ " NOTIFY=NEVER",		0, 0, 0 },
		{ " NOTIFY=SUCCESS",		0, 0, 1 },
		{ " NOTIFY=FAILURE",		1, 0, 0 },
		{ " NOTIFY=DELAY",		0, 1, 0 },
		{ " NOTIFY=SUCCESS,FAILURE,DELAY", 1, 1, 1 },
		{ " NOTIFY=FAILURE,DELAY",	1, 1, 0 },
	};
	char text[256];
	size_t i;
	q_msg_t m;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		snprintf(text, sizeof(text), "MAIL FROM:<s@example.com>\n"
			 "RCPT TO:<r@example.org>%s\n\nSubject: x\n\nb\n", t[i].notify);
		memset(&m, 0, sizeof(m));
		load(text, &m);
		cr_expect_eq(q_dsn_wanted(&m, &m.rcpt[0], Q_DSN_FAILED), t[i].failed,
			     "%s failed", t[i].notify);
		cr_expect_eq(q_dsn_wanted(&m, &m.rcpt[0], Q_DSN_DELAYED), t[i].delayed,
			     "%s delayed", t[i].notify);
		cr_expect_eq(q_dsn_wanted(&m, &m.rcpt[0], Q_DSN_DELIVERED), t[i].delivered,
			     "%s delivered", t[i].notify);
		q_msg_clear(&m);
	}
}

Test(dsn, long_subject_is_folded_and_no_line_exceeds_998)
{
	struct fixture f;
	size_t idx[1] = { 0 }, i, lines = 0;
	char text[4096], subj[256], *v;
	const char *h, *s, *e;
	static char reply[5000];

	subj[0] = '\0';
	for (i = 0; i < 20; i++)
		strcat(subj, i ? " page-word" : "Fax");	/* 193 bytes */
	snprintf(text, sizeof(text), "MAIL FROM:<s@example.com>\nRCPT TO:<r@example.org>\n\n"
		 "Subject: %s\n\nb\n", subj);
	memset(&f, 0, sizeof(f));
	load(text, &f.msg);
	/* a hostile reply: one 4999-byte word */
	memset(reply, 'x', sizeof(reply) - 1);
	memcpy(reply, "550 ", 4);
	q_rcpt_update(&f.msg.rcpt[0], Q_RCPT_BOUNCED, "5.0.0", reply, NULL, 0);
	build(&f, idx, 1, Q_DSN_FAILED, 0, 1 << 20);

	cr_expect_leq(max_line(f.dsn), 998);
	h = f.dsn + f.back.body_off;
	s = strstr(h, "\nSubject: ");
	cr_assert_not_null(s);
	/* each physical line of the Subject is at most 78 */
	for (s++;; s = e + 1) {
		e = strchr(s, '\n');
		cr_expect_leq((size_t)(e - s), 78);
		lines++;
		if (e[1] != ' ' && e[1] != '\t')
			break;
	}
	cr_expect_gt(lines, 1, "a %zu-byte subject must be folded", strlen(subj));
	v = header(h, "Subject");
	snprintf(text, sizeof(text), "Undelivered fax: %s", subj);
	cr_expect_str_eq(v, text, "unfolding gives the subject back");
	free(v);
	release(&f);
}

Test(dsn, utf8_subject_goes_as_encoded_words)
{
	struct fixture f;
	size_t idx[1] = { 0 }, k = 0, n;
	char *v, dec[512], *p, *q;
	const char *subj = "Fax f\xc3\xbcr J\xc3\xb6rg \xe2\x80\x94 Stra\xc3\x9f" "e 12, "
			   "M\xc3\xbcnchen (4 Seiten) \xe2\x9c\x93";
	char text[1024];

	snprintf(text, sizeof(text), "MAIL FROM:<s@example.com>\nRCPT TO:<r@example.org>\n\n"
		 "Subject: %s\n\nb\n", subj);
	memset(&f, 0, sizeof(f));
	load(text, &f.msg);
	build(&f, idx, 1, Q_DSN_FAILED, 0, 1 << 20);
	v = header(f.dsn + f.back.body_off, "Subject");
	cr_assert_not_null(v);
	for (p = v; *p != '\0'; p++)
		cr_assert_lt((unsigned char)*p, 0x80, "Subject must be ASCII: %s", v);
	cr_assert_eq(strncmp(v, "Undelivered fax: =?utf-8?b?", 27), 0, "%s", v);
	/* decode every encoded word; blanks between them do not count */
	for (p = strstr(v, "=?utf-8?b?"); p != NULL; p = strstr(q, "=?utf-8?b?")) {
		p += 10;
		q = strstr(p, "?=");
		cr_assert_not_null(q);
		cr_expect_leq((size_t)(q - p) + 12, 75, "encoded word too long");
		n = b64_decode(p, (size_t)(q - p), dec + k);
		k += n;
	}
	dec[k] = '\0';
	cr_expect_str_eq(dec, subj);
	free(v);
	release(&f);
}

Test(dsn, boundary_never_occurs_in_the_content)
{
	struct fixture f;
	struct part p[8];
	size_t idx[1] = { 0 };
	char *copy, *ct;

	memset(&f, 0, sizeof(f));
	load("MAIL FROM:<s@example.com>\nRCPT TO:<r@example.org>\n\n"
	     "Subject: evil\nX-Evil: =_sealpost_" QID "_0\n\n"
	     "--=_sealpost_" QID "_0\n", &f.msg);
	build(&f, idx, 1, Q_DSN_FAILED, 0, 1 << 20);
	ct = header(f.dsn + f.back.body_off, "Content-Type");
	cr_expect_null(strstr(ct, "=_sealpost_" QID "_0\""), "%s", ct);
	cr_expect_eq(split_mime(f.dsn + f.back.body_off, p, 8, &copy), 3);
	free(ct);
	free(copy);
	release(&f);
}

Test(dsn, bad_arguments_are_refused)
{
	q_msg_t m;
	size_t bad[1] = { 5 }, ok[1] = { 0 };
	char *out = NULL, err[256];
	size_t outlen = 0;

	memset(&m, 0, sizeof(m));
	load("MAIL FROM:<s@example.com>\nRCPT TO:<r@example.org>\n\nSubject: x\n\nb\n", &m);
	cr_expect_eq(q_dsn_build(&m, bad, 1, Q_DSN_FAILED, MTA, NOW, 0, &out, &outlen,
				 err, sizeof(err)), Q_ERROR);
	cr_expect_eq(q_dsn_build(&m, ok, 0, Q_DSN_FAILED, MTA, NOW, 0, &out, &outlen,
				 err, sizeof(err)), Q_ERROR);
	cr_expect_eq(q_dsn_build(&m, ok, 1, Q_DSN_FAILED, "bad host\nX-Injected: 1", NOW, 0,
				 &out, &outlen, err, sizeof(err)), Q_ERROR);
	cr_expect_null(out);
	q_msg_clear(&m);
}

Test(dsn, message_without_content_still_reports)
{
	struct fixture f;
	struct part p[8];
	size_t idx[1] = { 0 };
	char *copy;

	memset(&f, 0, sizeof(f));
	load("MAIL FROM:<s@example.com>\nRCPT TO:<r@example.org>\n\nSubject: x\n\nb\n", &f.msg);
	free(f.msg.data);
	f.msg.data = NULL;
	build(&f, idx, 1, Q_DSN_FAILED, 0, 1 << 20);
	cr_expect_eq(split_mime(f.dsn + f.back.body_off, p, 8, &copy), 2);
	free(copy);
	release(&f);
}

Test(dsn, hostile_texts_cannot_inject_lines)
{
	struct fixture f;
	struct part p[8];
	size_t idx[1] = { 0 };
	char *copy, *g[4];

	memset(&f, 0, sizeof(f));
	load("MAIL FROM:<s@example.com> ENVID=a+0AX-Injected:+20env\n"
	     "RCPT TO:<r@example.org> ORCPT=rfc822;r+0D+0AX-Injected:+20orcpt@example.org\n\n"
	     "Subject: x\n\nb\n", &f.msg);
	q_rcpt_update(&f.msg.rcpt[0], Q_RCPT_BOUNCED, "5.0.0",
		      "550 no\r\nX-Injected: reply\x01\xff", "evil\nX-Injected: relay[1.2.3.4]:25", 0);
	build(&f, idx, 1, Q_DSN_FAILED, 0, 1 << 20);
	cr_expect_null(strstr(f.dsn, "\nX-Injected"), "%s", f.dsn);
	cr_assert_eq(split_mime(f.dsn + f.back.body_off, p, 8, &copy), 3);
	cr_assert_eq(groups(p[1].body, g, 4), 2);
	/* decoding would make a control character: the xtext goes as given */
	expect_header(g[0], "Original-Envelope-Id", "a+0AX-Injected:+20env");
	expect_header(g[1], "Original-Recipient", "rfc822;r+0D+0AX-Injected:+20orcpt@example.org");
	expect_header(g[1], "Remote-MTA", NULL);
	expect_header(g[1], "Diagnostic-Code", "smtp; 550 no X-Injected: reply??");
	free(copy);
	release(&f);
}
