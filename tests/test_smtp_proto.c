/*
 * tests/test_smtp_proto.c - engine/smtp_proto.c: reply lines, replies,
 * EHLO capabilities, the DATA encoder and the DSN code of a reply.
 *
 * The dot encoder is checked against a byte-at-a-time reference encoder
 * written here, with random messages cut into random chunks and pushed
 * through random small output buffers, and decoded back to the original.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "engine/smtp_proto.h"

static int	feed_all(smtp_reply_parser_t *, const char *);
static size_t	ref_encode(const char *, size_t, char *);
static size_t	normalise(const char *, size_t, char *);
static int	unstuff(const char *, size_t, char *, size_t *);
static size_t	encode_chunked(const char *, size_t, char *, size_t, uint64_t *);
static uint64_t	rnd(uint64_t *);
static size_t	encode_str(const char *, char *);

/* feed_all - feed a CRLF text through next_line and reply_feed; last status */
static int
feed_all(smtp_reply_parser_t *p, const char *s)
{
	size_t	len = strlen(s), ll, used;
	int	rc = SP_AGAIN;

	smtp_reply_init(p);
	while (len > 0) {
		if (smtp_next_line(s, len, &ll, &used) != SP_OK)
			return -100;
		rc = smtp_reply_feed(p, s, ll);
		if (rc == SP_ERROR)
			return rc;
		s += used;
		len -= used;
	}
	return rc;
}

/* ---- smtp_next_line ---- */

Test(smtp_next_line, crlf_line_is_cut_without_its_terminator)
{
	size_t ll, used;

	cr_assert_eq(smtp_next_line("250 ok\r\nnext", 12, &ll, &used), SP_OK);
	cr_assert_eq(ll, 6);
	cr_assert_eq(used, 8);
}

Test(smtp_next_line, bare_lf_ends_a_line)
{
	size_t ll, used;

	cr_assert_eq(smtp_next_line("250 ok\n", 7, &ll, &used), SP_OK);
	cr_assert_eq(ll, 6);
	cr_assert_eq(used, 7);
}

Test(smtp_next_line, partial_line_asks_for_more)
{
	size_t ll, used;

	cr_assert_eq(smtp_next_line("250 o", 5, &ll, &used), SP_AGAIN);
	cr_assert_eq(smtp_next_line("", 0, &ll, &used), SP_AGAIN);
}

Test(smtp_next_line, line_of_exactly_512_bytes_with_crlf_is_accepted)
{
	char	buf[600];
	size_t	ll, used;

	memset(buf, 'a', sizeof(buf));
	memcpy(buf + 510, "\r\n", 2);
	cr_assert_eq(smtp_next_line(buf, sizeof(buf), &ll, &used), SP_OK);
	cr_assert_eq(ll, 510);
	cr_assert_eq(used, 512);
}

Test(smtp_next_line, line_of_513_bytes_is_an_error)
{
	char	buf[600];
	size_t	ll, used;

	memset(buf, 'a', sizeof(buf));
	memcpy(buf + 511, "\r\n", 2);
	cr_assert_eq(smtp_next_line(buf, sizeof(buf), &ll, &used), SP_ERROR);
}

Test(smtp_next_line, one_megabyte_line_is_an_error)
{
	size_t	n = 1 << 20, ll, used;
	char	*buf = malloc(n);

	cr_assert_not_null(buf);
	memset(buf, 'x', n);
	buf[n - 1] = '\n';
	cr_assert_eq(smtp_next_line(buf, n, &ll, &used), SP_ERROR);
	/* and without any LF at all */
	buf[n - 1] = 'x';
	cr_assert_eq(smtp_next_line(buf, n, &ll, &used), SP_ERROR);
	cr_assert_eq(smtp_next_line(buf, SMTP_LINE_MAX, &ll, &used), SP_ERROR);
	cr_assert_eq(smtp_next_line(buf, SMTP_LINE_MAX - 1, &ll, &used), SP_AGAIN);
	free(buf);
}

/* ---- smtp_reply_feed ---- */

Test(smtp_reply, single_line_reply)
{
	smtp_reply_parser_t p;

	cr_assert_eq(feed_all(&p, "220 mx.example.org ESMTP ready\r\n"), SP_OK);
	cr_assert_eq(p.reply.code, 220);
	cr_assert_str_eq(p.reply.text, "mx.example.org ESMTP ready");
	cr_assert_str_eq(p.reply.esc, "");
	cr_assert_eq(p.reply.nlines, 1);
}

Test(smtp_reply, multi_line_reply_joins_text_with_newlines)
{
	smtp_reply_parser_t p;
	const char *l1 = "250-mx.example.org", *l2 = "250-PIPELINING",
	    *l3 = "250 STARTTLS";

	smtp_reply_init(&p);
	cr_assert_eq(smtp_reply_feed(&p, l1, strlen(l1)), SP_AGAIN);
	cr_assert_eq(p.in_progress, 1);
	cr_assert_eq(smtp_reply_feed(&p, l2, strlen(l2)), SP_AGAIN);
	cr_assert_eq(smtp_reply_feed(&p, l3, strlen(l3)), SP_OK);
	cr_assert_eq(p.in_progress, 0);
	cr_assert_eq(p.reply.code, 250);
	cr_assert_eq(p.reply.nlines, 3);
	cr_assert_str_eq(p.reply.text, "mx.example.org\nPIPELINING\nSTARTTLS");
}

Test(smtp_reply, next_feed_after_a_complete_reply_starts_a_new_one)
{
	smtp_reply_parser_t p;

	cr_assert_eq(feed_all(&p, "250-a\r\n250 b\r\n"), SP_OK);
	cr_assert_eq(smtp_reply_feed(&p, "354 go ahead", 12), SP_OK);
	cr_assert_eq(p.reply.code, 354);
	cr_assert_eq(p.reply.nlines, 1);
	cr_assert_str_eq(p.reply.text, "go ahead");
}

Test(smtp_reply, code_with_space_and_code_alone_are_both_last_lines)
{
	smtp_reply_parser_t p;

	smtp_reply_init(&p);
	cr_assert_eq(smtp_reply_feed(&p, "250 ", 4), SP_OK);
	cr_assert_eq(p.reply.code, 250);
	cr_assert_str_eq(p.reply.text, "");
	cr_assert_eq(smtp_reply_feed(&p, "250", 3), SP_OK);
	cr_assert_eq(p.reply.code, 250);
	cr_assert_str_eq(p.reply.text, "");
}

Test(smtp_reply, empty_continuation_text_and_trailing_blanks_are_tolerated)
{
	smtp_reply_parser_t p;

	cr_assert_eq(feed_all(&p, "250-\r\n250-SIZE 100 \t \r\n250 OK  \r\n"), SP_OK);
	cr_assert_str_eq(p.reply.text, "\nSIZE 100\nOK");
}

Test(smtp_reply, enhanced_code_is_kept_and_stripped_from_text)
{
	smtp_reply_parser_t p;

	cr_assert_eq(feed_all(&p, "550 5.1.1 <bob@example.org>: no such user\r\n"), SP_OK);
	cr_assert_str_eq(p.reply.esc, "5.1.1");
	cr_assert_str_eq(p.reply.text, "<bob@example.org>: no such user");
	cr_assert_str_eq(smtp_reply_dsn(&p.reply), "5.1.1");
}

Test(smtp_reply, enhanced_code_with_three_digit_parts_is_accepted)
{
	smtp_reply_parser_t p;

	cr_assert_eq(feed_all(&p, "550 5.123.999 policy\r\n"), SP_OK);
	cr_assert_str_eq(p.reply.esc, "5.123.999");
	cr_assert_str_eq(p.reply.text, "policy");
}

Test(smtp_reply, enhanced_code_alone_on_the_line)
{
	smtp_reply_parser_t p;

	cr_assert_eq(feed_all(&p, "250 2.0.0\r\n"), SP_OK);
	cr_assert_str_eq(p.reply.esc, "2.0.0");
	cr_assert_str_eq(p.reply.text, "");
}

Test(smtp_reply, reply_without_enhanced_code_has_empty_esc)
{
	smtp_reply_parser_t p;

	cr_assert_eq(feed_all(&p, "451 try later\r\n"), SP_OK);
	cr_assert_str_eq(p.reply.esc, "");
	cr_assert_str_eq(p.reply.text, "try later");
	cr_assert_str_eq(smtp_reply_dsn(&p.reply), "4.0.0");
}

Test(smtp_reply, enhanced_code_of_the_wrong_class_stays_text)
{
	smtp_reply_parser_t p;

	cr_assert_eq(feed_all(&p, "250 5.1.1 odd but fine\r\n"), SP_OK);
	cr_assert_str_eq(p.reply.esc, "");
	cr_assert_str_eq(p.reply.text, "5.1.1 odd but fine");
	cr_assert_str_eq(smtp_reply_dsn(&p.reply), "2.0.0");
}

Test(smtp_reply, malformed_enhanced_codes_stay_text)
{
	static const char *bad[] = {
		"550 5.1 short\r\n", "550 5.1.1234 long\r\n", "550 5..1 empty\r\n",
		"550 5.1.1x glued\r\n", "550 5.1.\r\n", "550 5,1,1 commas\r\n",
	};
	smtp_reply_parser_t p;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(feed_all(&p, bad[i]), SP_OK, "%s", bad[i]);
		cr_assert_str_eq(p.reply.esc, "", "%s", bad[i]);
		cr_assert_str_eq(smtp_reply_dsn(&p.reply), "5.0.0");
	}
}

Test(smtp_reply, enhanced_code_repeated_on_continuation_lines_is_stripped)
{
	smtp_reply_parser_t p;

	cr_assert_eq(feed_all(&p, "550-5.7.1 blocked\r\n550-5.7.1 see\r\n"
	    "550-5.7.12 longer\r\n550 5.7.2 other\r\n"), SP_OK);
	cr_assert_str_eq(p.reply.esc, "5.7.1");
	cr_assert_str_eq(p.reply.text, "blocked\nsee\n5.7.12 longer\n5.7.2 other");
}

Test(smtp_reply, code_change_in_multi_line_reply_is_an_error)
{
	smtp_reply_parser_t p;

	cr_assert_eq(feed_all(&p, "250-a\r\n251 b\r\n"), SP_ERROR);
	cr_assert(strstr(p.error, "malformed reply line") != NULL, "%s", p.error);
	cr_assert(strstr(p.error, "changed") != NULL, "%s", p.error);
	/* the parser is usable again afterwards */
	cr_assert_eq(smtp_reply_feed(&p, "250 ok", 6), SP_OK);
	cr_assert_eq(p.reply.nlines, 1);
}

Test(smtp_reply, bad_codes_are_errors)
{
	static const char *bad[] = {
		"", "2", "25", "25x ok", "abc ok", "150 info", "650 no", "099 x",
		"2 50 ok", "250ok", "250_ok", "250\tok", "-250 ok", " 250 ok",
	};
	smtp_reply_parser_t p;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		smtp_reply_init(&p);
		cr_assert_eq(smtp_reply_feed(&p, bad[i], strlen(bad[i])), SP_ERROR,
		    "accepted \"%s\"", bad[i]);
		cr_assert(strncmp(p.error, "malformed reply line", 20) == 0, "%s", p.error);
	}
}

Test(smtp_reply, nul_byte_is_an_error)
{
	smtp_reply_parser_t p;

	smtp_reply_init(&p);
	cr_assert_eq(smtp_reply_feed(&p, "250 o\0k", 7), SP_ERROR);
	cr_assert(strstr(p.error, "NUL") != NULL, "%s", p.error);
}

Test(smtp_reply, control_characters_other_than_tab_are_errors)
{
	smtp_reply_parser_t p;

	smtp_reply_init(&p);
	cr_assert_eq(smtp_reply_feed(&p, "250 a\tb", 7), SP_OK);
	cr_assert_str_eq(p.reply.text, "a\tb");
	cr_assert_eq(smtp_reply_feed(&p, "250 a\x1b[2Jb", 9), SP_ERROR);
	cr_assert_eq(smtp_reply_feed(&p, "250 a\rb", 7), SP_ERROR);
	cr_assert_eq(smtp_reply_feed(&p, "250 a\x7f", 6), SP_ERROR);
}

Test(smtp_reply, error_reason_is_printable_and_bounded)
{
	smtp_reply_parser_t p;
	char line[400];
	size_t i;

	memset(line, 0xff, sizeof(line));
	line[0] = '\x01';
	smtp_reply_init(&p);
	cr_assert_eq(smtp_reply_feed(&p, line, sizeof(line)), SP_ERROR);
	cr_assert_lt(strlen(p.error), sizeof(p.error));
	for (i = 0; p.error[i] != '\0'; i++)
		cr_assert(p.error[i] >= 0x20 && p.error[i] < 0x7f, "byte %zu", i);
}

Test(smtp_reply, eight_bit_text_is_accepted)
{
	smtp_reply_parser_t p;

	cr_assert_eq(feed_all(&p, "250 d\xc3\xa9j\xc3\xa0 vu\r\n"), SP_OK);
	cr_assert_str_eq(p.reply.text, "d\xc3\xa9j\xc3\xa0 vu");
}

Test(smtp_reply, sixty_four_lines_are_fine_and_the_65th_is_an_error)
{
	smtp_reply_parser_t p;
	int i;

	smtp_reply_init(&p);
	for (i = 0; i < SMTP_REPLY_MAX_LINES - 1; i++)
		cr_assert_eq(smtp_reply_feed(&p, "250-x", 5), SP_AGAIN);
	cr_assert_eq(smtp_reply_feed(&p, "250 x", 5), SP_OK);
	cr_assert_eq(p.reply.nlines, SMTP_REPLY_MAX_LINES);

	smtp_reply_init(&p);
	for (i = 0; i < SMTP_REPLY_MAX_LINES; i++)
		cr_assert_eq(smtp_reply_feed(&p, "250-x", 5), SP_AGAIN);
	cr_assert_eq(smtp_reply_feed(&p, "250-x", 5), SP_ERROR);
	cr_assert(strstr(p.error, "lines") != NULL, "%s", p.error);
}

Test(smtp_reply, long_text_is_truncated_within_bounds)
{
	smtp_reply_parser_t p;
	char line[SMTP_LINE_MAX];
	int i;

	memset(line, 'y', sizeof(line));
	memcpy(line, "250-", 4);
	smtp_reply_init(&p);
	for (i = 0; i < 20; i++)
		cr_assert_eq(smtp_reply_feed(&p, line, sizeof(line) - 2), SP_AGAIN);
	line[3] = ' ';
	cr_assert_eq(smtp_reply_feed(&p, line, sizeof(line) - 2), SP_OK);
	cr_assert_eq(strlen(p.reply.text), SMTP_REPLY_TEXT_MAX - 1);
	cr_assert_eq(p.reply.nlines, 21);
}

Test(smtp_reply, truncation_never_splits_a_utf8_character)
{
	smtp_reply_parser_t p;
	char line[SMTP_LINE_MAX];
	size_t i, len;

	/* 4 + 2 * 250 bytes of "é" per line; the cut falls inside one */
	memcpy(line, "250-", 4);
	for (i = 0; i < 250; i++)
		memcpy(line + 4 + 2 * i, "\xc3\xa9", 2);
	smtp_reply_init(&p);
	for (i = 0; i < 5; i++)
		cr_assert_eq(smtp_reply_feed(&p, line, 504), SP_AGAIN);
	line[3] = ' ';
	cr_assert_eq(smtp_reply_feed(&p, "250 ", 4), SP_OK);
	len = strlen(p.reply.text);
	cr_assert_lt(len, SMTP_REPLY_TEXT_MAX);
	/* 4 full lines of 500 plus 3 newlines = 2003; 44 bytes left, even */
	cr_assert_neq((unsigned char)p.reply.text[len - 1], 0xc3);
}

/* ---- smtp_caps_parse ---- */

Test(smtp_caps, keywords_after_the_first_line_are_recognised)
{
	smtp_reply_parser_t p;
	smtp_caps_t c;

	cr_assert_eq(feed_all(&p, "250-mx.example.org Hello STARTTLS\r\n"
	    "250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n250-DSN\r\n250-SMTPUTF8\r\n"
	    "250-AUTH PLAIN LOGIN\r\n250-X-UNKNOWN stuff\r\n250 CHUNKING\r\n"), SP_OK);
	smtp_caps_parse(&p.reply, &c);
	cr_assert_eq(c.flags, SMTP_CAP_PIPELINING | SMTP_CAP_SIZE | SMTP_CAP_8BITMIME |
	    SMTP_CAP_ENHANCED | SMTP_CAP_DSN | SMTP_CAP_SMTPUTF8 | SMTP_CAP_CHUNKING);
	cr_assert_eq(c.size_limit, 10240000);
}

Test(smtp_caps, greeting_line_is_not_a_keyword)
{
	smtp_reply_parser_t p;
	smtp_caps_t c;

	cr_assert_eq(feed_all(&p, "250 STARTTLS\r\n"), SP_OK);
	smtp_caps_parse(&p.reply, &c);
	cr_assert_eq(c.flags, 0);
}

Test(smtp_caps, keywords_are_case_insensitive)
{
	smtp_reply_parser_t p;
	smtp_caps_t c;

	cr_assert_eq(feed_all(&p, "250-mx\r\n250-starttls\r\n250-Pipelining\r\n"
	    "250 size 5000\r\n"), SP_OK);
	smtp_caps_parse(&p.reply, &c);
	cr_assert_eq(c.flags, SMTP_CAP_STARTTLS | SMTP_CAP_PIPELINING | SMTP_CAP_SIZE);
	cr_assert_eq(c.size_limit, 5000);
}

Test(smtp_caps, keyword_prefixes_and_suffixes_do_not_match)
{
	smtp_reply_parser_t p;
	smtp_caps_t c;

	cr_assert_eq(feed_all(&p, "250-mx\r\n250-STARTTLSX\r\n250-XSTARTTLS\r\n"
	    "250 START TLS\r\n"), SP_OK);
	smtp_caps_parse(&p.reply, &c);
	cr_assert_eq(c.flags, 0);
}

Test(smtp_caps, size_absent_zero_bad_or_overflowing_means_no_limit)
{
	static const char *cases[] = {
		"250-mx\r\n250 SIZE\r\n",
		"250-mx\r\n250 SIZE 0\r\n",
		"250-mx\r\n250 SIZE 10MB\r\n",
		"250-mx\r\n250 SIZE -5\r\n",
		"250-mx\r\n250 SIZE 18446744073709551616\r\n",
		"250-mx\r\n250 SIZE 99999999999999999999999999\r\n",
	};
	smtp_reply_parser_t p;
	smtp_caps_t c;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_assert_eq(feed_all(&p, cases[i]), SP_OK);
		smtp_caps_parse(&p.reply, &c);
		cr_assert_eq(c.flags, SMTP_CAP_SIZE, "%s", cases[i]);
		cr_assert_eq(c.size_limit, 0, "%s", cases[i]);
	}
}

Test(smtp_caps, largest_size_value_is_kept)
{
	smtp_reply_parser_t p;
	smtp_caps_t c;

	cr_assert_eq(feed_all(&p, "250-mx\r\n250 SIZE 18446744073709551615\r\n"), SP_OK);
	smtp_caps_parse(&p.reply, &c);
	cr_assert_eq(c.size_limit, UINT64_MAX);
}

Test(smtp_caps, non_2xx_reply_has_no_capabilities)
{
	smtp_reply_parser_t p;
	smtp_caps_t c;

	cr_assert_eq(feed_all(&p, "550-no\r\n550 STARTTLS\r\n"), SP_OK);
	smtp_caps_parse(&p.reply, &c);
	cr_assert_eq(c.flags, 0);
}

/* ---- smtp_reply_dsn ---- */

Test(smtp_reply_dsn, defaults_follow_the_reply_class)
{
	smtp_reply_t r;

	memset(&r, 0, sizeof(r));
	r.code = 250;
	cr_assert_str_eq(smtp_reply_dsn(&r), "2.0.0");
	r.code = 421;
	cr_assert_str_eq(smtp_reply_dsn(&r), "4.0.0");
	r.code = 554;
	cr_assert_str_eq(smtp_reply_dsn(&r), "5.0.0");
	r.code = 354;
	cr_assert_str_eq(smtp_reply_dsn(&r), "4.0.0");
	r.code = 0;
	cr_assert_str_eq(smtp_reply_dsn(&r), "4.0.0");
	/* a hand-made esc of the wrong class is not trusted */
	r.code = 550;
	strcpy(r.esc, "2.1.5");
	cr_assert_str_eq(smtp_reply_dsn(&r), "5.0.0");
	strcpy(r.esc, "5.7.26");
	cr_assert_str_eq(smtp_reply_dsn(&r), "5.7.26");
}

/* ---- DATA encoder ---- */

/* ref_encode - the rules, one byte at a time; out must hold 2*len+5 */
static size_t
ref_encode(const char *in, size_t len, char *out)
{
	size_t	i, o = 0;
	int	bol = 1;

	for (i = 0; i < len; i++) {
		if (in[i] == '\r' || in[i] == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
			if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')
				i++;
			bol = 1;
			continue;
		}
		if (bol && in[i] == '.')
			out[o++] = '.';
		out[o++] = in[i];
		bol = 0;
	}
	if (!bol) {
		memcpy(out + o, "\r\n", 2);
		o += 2;
	}
	memcpy(out + o, ".\r\n", 3);
	return o + 3;
}

/* normalise - every line end to CRLF and a final CRLF added if missing */
static size_t
normalise(const char *in, size_t len, char *out)
{
	size_t	i, o = 0;
	int	bol = 1;

	for (i = 0; i < len; i++) {
		if (in[i] == '\n' || in[i] == '\r') {
			if (in[i] == '\r' && i + 1 < len && in[i + 1] == '\n')
				i++;
			out[o++] = '\r';
			out[o++] = '\n';
			bol = 1;
		} else {
			out[o++] = in[i];
			bol = 0;
		}
	}
	if (!bol) {
		out[o++] = '\r';
		out[o++] = '\n';
	}
	return o;
}

/* unstuff - what a receiving server keeps: -1 if the wire form is bad */
static int
unstuff(const char *w, size_t len, char *out, size_t *outlen)
{
	size_t	i = 0, o = 0, eol;

	for (;;) {
		const char *crlf = NULL;

		for (eol = i; eol + 1 < len; eol++)
			if (w[eol] == '\r' && w[eol + 1] == '\n') {
				crlf = w + eol;
				break;
			}
		if (crlf == NULL)
			return -1;
		if (eol - i == 1 && w[i] == '.') {
			*outlen = o;
			return eol + 2 == len ? 0 : -1;	/* nothing after "." */
		}
		if (w[i] == '.')
			i++;
		for (; i < eol; i++) {
			if (w[i] == '\r' || w[i] == '\n')
				return -1;	/* a bare line end on the wire */
			out[o++] = w[i];
		}
		out[o++] = '\r';
		out[o++] = '\n';
		i = eol + 2;
	}
}

/* rnd - xorshift64*, reproducible */
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

/* encode_chunked - encode in random input chunks into random output windows */
static size_t
encode_chunked(const char *in, size_t len, char *out, size_t cap, uint64_t *seed)
{
	smtp_dot_t d;
	size_t i = 0, o = 0, used, n, chunk, win;

	smtp_dot_init(&d);
	while (i < len) {
		chunk = 1 + (size_t)(rnd(seed) % 17);
		if (chunk > len - i)
			chunk = len - i;
		win = 3 + (size_t)(rnd(seed) % 9);
		if (win > cap - o)
			win = cap - o;
		n = smtp_dot_encode(&d, in + i, chunk, &used, out + o, win);
		cr_assert_leq(n, win);
		cr_assert_leq(used, chunk);
		/* progress whenever the window holds 3 bytes */
		cr_assert(n > 0 || used > 0, "no progress at %zu", i);
		i += used;
		o += n;
	}
	cr_assert_leq(5, cap - o);
	o += smtp_dot_finish(&d, out + o, 5);
	return o;
}

/* encode_str - one-shot encode of a C string */
static size_t
encode_str(const char *s, char *out)
{
	smtp_dot_t d;
	size_t len = strlen(s), used, n;

	smtp_dot_init(&d);
	n = smtp_dot_encode(&d, s, len, &used, out, 4 * len + 8);
	cr_assert_eq(used, len);
	n += smtp_dot_finish(&d, out + n, 5);
	cr_assert_eq(smtp_dot_encoded_size(s, len), n, "size of \"%s\"", s);
	return n;
}

Test(smtp_dot, table_of_cases)
{
	static const struct {
		const char *in, *out;
	} t[] = {
		{ "", ".\r\n" },
		{ "a", "a\r\n.\r\n" },
		{ "a\n", "a\r\n.\r\n" },
		{ "a\r\n", "a\r\n.\r\n" },
		{ "a\r", "a\r\n.\r\n" },
		{ "a\rb", "a\r\nb\r\n.\r\n" },
		{ "a\r\rb", "a\r\n\r\nb\r\n.\r\n" },
		{ "a\n\nb", "a\r\n\r\nb\r\n.\r\n" },
		{ "a\r\r\n", "a\r\n\r\n.\r\n" },
		{ "\n", "\r\n.\r\n" },
		{ ".", "..\r\n.\r\n" },
		{ ".\n", "..\r\n.\r\n" },
		{ ".\r\n", "..\r\n.\r\n" },
		{ "..x\n", "...x\r\n.\r\n" },
		{ "a\n.\nb", "a\r\n..\r\nb\r\n.\r\n" },
		{ "a\r\n.\r\n", "a\r\n..\r\n.\r\n" },
		{ "a\r.b", "a\r\n..b\r\n.\r\n" },
		{ "a.b\n.", "a.b\r\n..\r\n.\r\n" },
		{ "x\r\n..\r\n.x", "x\r\n...\r\n..x\r\n.\r\n" },
	};
	char out[128];
	size_t i, n;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		n = encode_str(t[i].in, out);
		cr_assert_eq(n, strlen(t[i].out), "case %zu", i);
		cr_assert(memcmp(out, t[i].out, n) == 0, "case %zu", i);
	}
}

Test(smtp_dot, crlf_split_between_chunks_is_one_line_end)
{
	smtp_dot_t d;
	char out[32];
	size_t n, used;

	smtp_dot_init(&d);
	n = smtp_dot_encode(&d, "ab\r", 3, &used, out, sizeof(out));
	cr_assert_eq(used, 3);
	n += smtp_dot_encode(&d, "\n.c", 3, &used, out + n, sizeof(out) - n);
	cr_assert_eq(used, 3);
	n += smtp_dot_finish(&d, out + n, 5);
	cr_assert_eq(n, 12);
	cr_assert(memcmp(out, "ab\r\n..c\r\n.\r\n", 12) == 0);
}

Test(smtp_dot, never_writes_past_outcap)
{
	smtp_dot_t d;
	char out[8];
	const char *in = ".\r\n.\r\n.\n\r.";
	size_t used, n, cap, len = strlen(in);

	for (cap = 0; cap <= 3; cap++) {
		memset(out, '#', sizeof(out));
		smtp_dot_init(&d);
		n = smtp_dot_encode(&d, in, len, &used, out, cap);
		cr_assert_leq(n, cap);
		cr_assert_eq(out[cap], '#', "cap %zu", cap);
		if (cap == 3)
			cr_assert_gt(used, 0);
	}
	smtp_dot_init(&d);
	d.at_bol = 0;
	cr_assert_eq(smtp_dot_finish(&d, out, 4), 0);
	cr_assert_eq(smtp_dot_finish(&d, out, 5), 5);
}

Test(smtp_dot, random_chunkings_match_the_reference_and_decode_back)
{
	static const char alphabet[] = "..\r\r\n\n\nab";
	uint64_t seed = 0x5ea1905700000001ULL;
	size_t cap = 4 * 300 + 16;
	char *in = malloc(300), *a = malloc(cap), *b = malloc(cap),
	    *c = malloc(cap), *dec = malloc(cap);
	int iter;

	cr_assert(in && a && b && c && dec);
	for (iter = 0; iter < 20000; iter++) {
		size_t len = (size_t)(rnd(&seed) % 300), i, na, nb, nc, nd = 0;

		for (i = 0; i < len; i++)
			in[i] = alphabet[rnd(&seed) % (sizeof(alphabet) - 1)];
		na = ref_encode(in, len, a);
		nb = encode_chunked(in, len, b, cap, &seed);
		cr_assert_eq(nb, na, "iteration %d", iter);
		cr_assert(memcmp(a, b, na) == 0, "iteration %d", iter);
		cr_assert_eq(smtp_dot_encoded_size(in, len), na, "iteration %d", iter);
		cr_assert_eq(unstuff(b, nb, dec, &nd), 0, "iteration %d", iter);
		nc = normalise(in, len, c);
		cr_assert_eq(nd, nc, "iteration %d", iter);
		cr_assert(memcmp(dec, c, nc) == 0, "iteration %d", iter);
	}
	free(in);
	free(a);
	free(b);
	free(c);
	free(dec);
}

Test(smtp_dot, large_crlf_message_encodes_in_one_call)
{
	size_t len = 64 * 1024, i, used, n;
	char *in = malloc(len), *out = malloc(len + 64);
	smtp_dot_t d;

	cr_assert(in && out);
	for (i = 0; i < len; i++)
		in[i] = (i % 78 == 76) ? '\r' : (i % 78 == 77) ? '\n' : 'A';
	smtp_dot_init(&d);
	n = smtp_dot_encode(&d, in, len, &used, out, len + 64);
	cr_assert_eq(used, len);
	cr_assert(memcmp(in, out, n) == 0);
	n += smtp_dot_finish(&d, out + n, 5);
	cr_assert_eq(smtp_dot_encoded_size(in, len), n);
	free(in);
	free(out);
}

/* encode_chunked_wide - as encode_chunked, with chunks and windows up to
 * 600 bytes, so that the 16-byte fast path runs and stops at every kind of
 * boundary (a line end, the end of a chunk, a nearly full window) */
static size_t
encode_chunked_wide(const char *in, size_t len, char *out, size_t cap, uint64_t *seed)
{
	smtp_dot_t d;
	size_t i = 0, o = 0, used, n, chunk, win;

	smtp_dot_init(&d);
	while (i < len) {
		chunk = 1 + (size_t)(rnd(seed) % 600);
		if (chunk > len - i)
			chunk = len - i;
		win = 3 + (size_t)(rnd(seed) % 600);
		if (win > cap - o)
			win = cap - o;
		n = smtp_dot_encode(&d, in + i, chunk, &used, out + o, win);
		cr_assert_leq(n, win);
		cr_assert(n > 0 || used > 0, "no progress at %zu", i);
		i += used;
		o += n;
	}
	o += smtp_dot_finish(&d, out + o, 5);
	return o;
}

Test(smtp_dot, long_runs_through_the_fast_path_match_the_reference)
{
	/* mostly plain bytes, like base64, with line ends and dots mixed in */
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/\n\r.";
	uint64_t seed = 0x5ea1905700000002ULL;
	size_t maxlen = 4000, cap = 4 * maxlen + 16;
	char *in = malloc(maxlen), *a = malloc(cap), *b = malloc(cap);
	int iter;

	cr_assert(in && a && b);
	for (iter = 0; iter < 5000; iter++) {
		size_t len = (size_t)(rnd(&seed) % maxlen), i, na, nb;
		unsigned linelen = 1 + (unsigned)(rnd(&seed) % 120);

		for (i = 0; i < len; i++) {
			in[i] = alphabet[rnd(&seed) % (sizeof(alphabet) - 1)];
			if (i % linelen == linelen - 1)
				in[i] = '\n';	/* regular lines too */
		}
		na = ref_encode(in, len, a);
		nb = encode_chunked_wide(in, len, b, cap, &seed);
		cr_assert_eq(nb, na, "iteration %d", iter);
		cr_assert(memcmp(a, b, na) == 0, "iteration %d", iter);
	}
	free(in);
	free(a);
	free(b);
}
