/*
 * tests/test_log.c - log lines: text quoting and escaping, JSON validity,
 * level filtering, truncation bounds, and whole lines from concurrent
 * writers.  Each criterion test runs in its own process, so sp_log_init()
 * here does not leak into other tests.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

static char out[SP_LOG_LINE_MAX + 64];

static const char *render(sp_logline_t *l);
static const char *fields(const char *line);
static int json_valid(const char *s);
static int json_string(const char **p);
static int utf8_valid(const unsigned char *s, size_t n);

/* render - the finished line of l (static buffer) */
static const char *
render(sp_logline_t *l)
{
	size_t n = sp_log_render(l, out, sizeof(out));

	cr_assert_lt(n, sizeof(out));
	cr_assert_eq(strlen(out), n);
	return out;
}

/* fields - the part of a text line after "ts=... level=... event=..." */
static const char *
fields(const char *line)
{
	const char *p = strstr(line, " event=");

	cr_assert_not_null(p);
	p = strchr(p + 1, ' ');
	return p != NULL ? p + 1 : "";
}

/* utf8_valid - strict UTF-8 check (RFC 3629) */
static int
utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0, len, k;
	unsigned long cp;

	while (i < n) {
		unsigned c = s[i];

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			len = 2, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			len = 3, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			len = 4, cp = c & 0x07;
		else
			return 0;
		if (i + len > n)
			return 0;
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return 0;
		i += len;
	}
	return 1;
}

/* json_string - skip one JSON string at *p; 0 if malformed */
static int
json_string(const char **p)
{
	const char *s = *p;
	int k;

	if (*s++ != '"')
		return 0;
	while (*s != '"') {
		if (*s == '\0' || (unsigned char)*s < 0x20)
			return 0;
		if (*s == '\\') {
			s++;
			if (*s == 'u') {
				for (k = 1; k <= 4; k++)
					if (!strchr("0123456789abcdefABCDEF", s[k]) || s[k] == '\0')
						return 0;
				s += 5;
				continue;
			}
			if (*s == '\0' || !strchr("\"\\/bfnrt", *s))
				return 0;
		}
		s++;
	}
	*p = s + 1;
	return 1;
}

/*
 * json_valid - s is exactly one flat JSON object of string or integer
 * values, valid UTF-8, followed by one newline.
 */
static int
json_valid(const char *s)
{
	const char *p = s;
	size_t n = strlen(s);

	if (n < 3 || s[n - 1] != '\n' || memchr(s, '\n', n - 1) != NULL)
		return 0;
	if (!utf8_valid((const unsigned char *)s, n))
		return 0;
	if (*p++ != '{')
		return 0;
	if (*p == '}')
		return p[1] == '\n';
	for (;;) {
		if (!json_string(&p) || *p++ != ':')
			return 0;
		if (*p == '"') {
			if (!json_string(&p))
				return 0;
		} else {
			if (*p == '-')
				p++;
			if (*p < '0' || *p > '9')
				return 0;
			while (*p >= '0' && *p <= '9')
				p++;
		}
		if (*p == '}')
			return p[1] == '\n' && p[2] == '\0';
		if (*p++ != ',')
			return 0;
	}
}

Test(log_text, line_starts_with_timestamp_level_and_event)
{
	sp_logline_t l;
	int y, mo, d, h, mi, s, ms;
	char z;

	sp_log_init(SP_LOG_TEXT, SP_LOG_DEBUG, -1);
	cr_assert_eq(sp_log_begin(&l, SP_LOG_INFO, "delivery"), 1);
	sp_log_str(&l, "id", "abc123");
	render(&l);
	cr_assert_eq(sscanf(out, "ts=%4d-%2d-%2dT%2d:%2d:%2d.%3d%c ", &y, &mo, &d, &h,
	    &mi, &s, &ms, &z), 8, "%s", out);
	cr_expect_eq(z, 'Z');
	cr_expect_eq(strlen("ts=2026-12-04T20:01:27.123Z "), (size_t)(strchr(out, ' ') - out) + 1,
	    "%s", out);
	cr_expect_not_null(strstr(out, " level=info event=delivery id=abc123\n"), "%s", out);
}

Test(log_text, plain_values_are_bare)
{
	sp_logline_t l;

	sp_log_init(SP_LOG_TEXT, SP_LOG_DEBUG, -1);
	sp_log_begin(&l, SP_LOG_INFO, "delivery");
	sp_log_str(&l, "relay", "mx1.example.com[192.0.2.1]:25");
	sp_log_int(&l, "attempts", -3);
	sp_log_str(&l, "rcpt", "fax+1@example.com");
	cr_expect_str_eq(fields(render(&l)),
	    "relay=mx1.example.com[192.0.2.1]:25 attempts=-3 rcpt=fax+1@example.com\n");
}

Test(log_text, values_with_space_quote_equals_or_backslash_are_quoted)
{
	sp_logline_t l;

	sp_log_init(SP_LOG_TEXT, SP_LOG_DEBUG, -1);
	sp_log_begin(&l, SP_LOG_INFO, "x");
	sp_log_str(&l, "reply", "250 2.0.0 Ok");
	sp_log_str(&l, "q", "say \"hi\"");
	sp_log_str(&l, "eq", "a=b");
	sp_log_str(&l, "bs", "c:\\dir");
	cr_expect_str_eq(fields(render(&l)),
	    "reply=\"250 2.0.0 Ok\" q=\"say \\\"hi\\\"\" eq=\"a=b\" bs=\"c:\\\\dir\"\n");
}

Test(log_text, empty_and_null_values_are_empty_quotes)
{
	sp_logline_t l;

	sp_log_init(SP_LOG_TEXT, SP_LOG_DEBUG, -1);
	sp_log_begin(&l, SP_LOG_INFO, "x");
	sp_log_str(&l, "a", "");
	sp_log_str(&l, "b", NULL);
	cr_expect_str_eq(fields(render(&l)), "a=\"\" b=\"\"\n");
}

Test(log_text, control_characters_are_escaped_and_never_break_the_line)
{
	sp_logline_t l;

	sp_log_init(SP_LOG_TEXT, SP_LOG_DEBUG, -1);
	sp_log_begin(&l, SP_LOG_INFO, "x");
	sp_log_str(&l, "v", "a\nb\rc\td\x01" "e\x7f" "f\x1b[31m");
	cr_expect_str_eq(fields(render(&l)),
	    "v=\"a\\nb\\rc\\td\\x01e\\x7ff\\x1b[31m\"\n");
}

Test(log_text, invalid_utf8_is_hex_escaped_and_valid_utf8_kept)
{
	sp_logline_t l;

	sp_log_init(SP_LOG_TEXT, SP_LOG_DEBUG, -1);
	sp_log_begin(&l, SP_LOG_INFO, "x");
	sp_log_str(&l, "ok", "caf\xc3\xa9");
	sp_log_str(&l, "bad", "a\xff" "b\xc3");
	sp_log_str(&l, "c1", "\xc2\x9b" "1m");
	cr_expect_str_eq(fields(render(&l)),
	    "ok=caf\xc3\xa9 bad=\"a\\xffb\\xc3\" c1=\"\\xc2\\x9b1m\"\n");
}

Test(log_text, bad_keys_are_sanitised)
{
	sp_logline_t l;

	sp_log_init(SP_LOG_TEXT, SP_LOG_DEBUG, -1);
	sp_log_begin(&l, SP_LOG_INFO, "x");
	sp_log_str(&l, "Bad Key=", "v");
	sp_log_str(&l, "", "w");
	cr_expect_str_eq(fields(render(&l)), "_ad__ey_=v _=w\n");
}

Test(log_text, fmt_formats_the_value)
{
	sp_logline_t l;

	sp_log_init(SP_LOG_TEXT, SP_LOG_DEBUG, -1);
	sp_log_begin(&l, SP_LOG_INFO, "x");
	sp_log_fmt(&l, "relay", "%s[%s]:%d", "mx.example", "192.0.2.1", 25);
	sp_log_fmt(&l, "delay", "%.1f", 2.5);
	cr_expect_str_eq(fields(render(&l)), "relay=mx.example[192.0.2.1]:25 delay=2.5\n");
}

Test(log_text, event_with_space_is_quoted)
{
	sp_logline_t l;

	sp_log_init(SP_LOG_TEXT, SP_LOG_DEBUG, -1);
	sp_log_begin(&l, SP_LOG_WARN, "bad event");
	cr_expect_not_null(strstr(render(&l), " level=warn event=\"bad event\"\n"), "%s", out);
}

Test(log_json, line_is_an_object_with_ts_level_event)
{
	sp_logline_t l;

	sp_log_init(SP_LOG_JSON, SP_LOG_DEBUG, -1);
	sp_log_begin(&l, SP_LOG_ERROR, "delivery");
	sp_log_str(&l, "id", "abc");
	sp_log_int(&l, "attempts", 3);
	render(&l);
	cr_expect(json_valid(out), "%s", out);
	cr_expect_eq(strncmp(out, "{\"ts\":\"", 7), 0, "%s", out);
	cr_expect_not_null(strstr(out,
	    "Z\",\"level\":\"error\",\"event\":\"delivery\",\"id\":\"abc\",\"attempts\":3}\n"),
	    "%s", out);
}

Test(log_json, int_is_a_bare_number)
{
	sp_logline_t l;

	sp_log_init(SP_LOG_JSON, SP_LOG_DEBUG, -1);
	sp_log_begin(&l, SP_LOG_INFO, "x");
	sp_log_int(&l, "n", -9223372036854775807LL - 1);
	cr_expect_not_null(strstr(render(&l), ",\"n\":-9223372036854775808}\n"), "%s", out);
	cr_expect(json_valid(out), "%s", out);
}

Test(log_json, escapes_quotes_backslashes_and_control_characters)
{
	sp_logline_t l;

	sp_log_init(SP_LOG_JSON, SP_LOG_DEBUG, -1);
	sp_log_begin(&l, SP_LOG_INFO, "x");
	sp_log_str(&l, "v", "q\"b\\n\nr\rt\tc\x01\x1f" "d\x7f");
	render(&l);
	cr_expect(json_valid(out), "%s", out);
	cr_expect_not_null(strstr(out,
	    "\"v\":\"q\\\"b\\\\n\\nr\\rt\\tc\\u0001\\u001fd\\u007f\"}"), "%s", out);
}

Test(log_json, invalid_utf8_bytes_are_escaped_and_valid_utf8_kept)
{
	sp_logline_t l;

	sp_log_init(SP_LOG_JSON, SP_LOG_DEBUG, -1);
	sp_log_begin(&l, SP_LOG_INFO, "x");
	sp_log_str(&l, "ok", "\xe2\x82\xac\xf0\x9f\x93\xa0");	/* euro sign, fax emoji */
	sp_log_str(&l, "bad", "\xff\xc0\xaf\xed\xa0\x80\xe2\x82");
	render(&l);
	cr_expect(json_valid(out), "%s", out);
	cr_expect_not_null(strstr(out, "\"ok\":\"\xe2\x82\xac\xf0\x9f\x93\xa0\""), "%s", out);
	cr_expect_not_null(strstr(out,
	    "\"bad\":\"\\u00ff\\u00c0\\u00af\\u00ed\\u00a0\\u0080\\u00e2\\u0082\""), "%s", out);
}

Test(log_json, hostile_bytes_of_every_value_stay_valid)
{
	sp_logline_t l;
	char v[256];
	int i;

	for (i = 0; i < 255; i++)
		v[i] = (char)(i + 1);
	v[255] = '\0';
	sp_log_init(SP_LOG_JSON, SP_LOG_DEBUG, -1);
	sp_log_begin(&l, SP_LOG_INFO, "x\"y");
	sp_log_str(&l, "all", v);
	cr_expect(json_valid(render(&l)), "%s", out);
}

Test(log_levels, below_threshold_is_filtered_out)
{
	sp_logline_t l;

	sp_log_init(SP_LOG_TEXT, SP_LOG_WARN, -1);
	cr_expect_eq(sp_log_begin(&l, SP_LOG_DEBUG, "x"), 0);
	cr_expect_eq(sp_log_begin(&l, SP_LOG_INFO, "x"), 0);
	cr_expect_eq(sp_log_render(&l, out, sizeof(out)), 0);
	cr_expect_eq(sp_log_begin(&l, SP_LOG_WARN, "x"), 1);
	cr_expect_eq(sp_log_begin(&l, SP_LOG_ERROR, "x"), 1);
}

Test(log_levels, filtered_line_writes_nothing)
{
	sp_logline_t l;
	int fds[2];
	char buf[SP_LOG_LINE_MAX];
	ssize_t n;

	cr_assert_eq(pipe2(fds, O_NONBLOCK), 0);
	sp_log_init(SP_LOG_TEXT, SP_LOG_ERROR, fds[1]);
	if (sp_log_begin(&l, SP_LOG_INFO, "x")) {
		sp_log_str(&l, "k", "v");
		sp_log_end(&l);
	}
	/* misuse after a 0 from begin stays harmless */
	sp_log_str(&l, "k", "v");
	sp_log_end(&l);
	sp_log_msg(SP_LOG_WARN, "x", "not shown %d", 1);
	sp_log_msg(SP_LOG_ERROR, "shown", "n=%d", 2);
	n = read(fds[0], buf, sizeof(buf) - 1);
	cr_assert_gt(n, 0);
	buf[n] = '\0';
	cr_expect_eq(strchr(buf, '\n'), buf + n - 1, "%s", buf);
	cr_expect_not_null(strstr(buf, " level=error event=shown msg=\"n=2\"\n"), "%s", buf);
	close(fds[0]);
	close(fds[1]);
}

Test(log_levels, level_names)
{
	cr_expect_str_eq(sp_log_level_name(SP_LOG_DEBUG), "debug");
	cr_expect_str_eq(sp_log_level_name(SP_LOG_INFO), "info");
	cr_expect_str_eq(sp_log_level_name(SP_LOG_WARN), "warn");
	cr_expect_str_eq(sp_log_level_name(SP_LOG_ERROR), "error");
}

Test(log_write, end_writes_exactly_the_rendered_line)
{
	sp_logline_t l;
	int fds[2];
	char expect[SP_LOG_LINE_MAX + 1], buf[SP_LOG_LINE_MAX + 1];
	size_t n;
	ssize_t r;

	cr_assert_eq(pipe(fds), 0);
	sp_log_init(SP_LOG_JSON, SP_LOG_INFO, fds[1]);
	cr_assert(sp_log_begin(&l, SP_LOG_INFO, "delivery"));
	sp_log_str(&l, "status", "sent");
	n = sp_log_render(&l, expect, sizeof(expect));
	sp_log_end(&l);
	r = read(fds[0], buf, sizeof(buf) - 1);
	cr_assert_eq(r, (ssize_t)n);
	buf[r] = '\0';
	cr_expect_str_eq(buf, expect);
	close(fds[0]);
	close(fds[1]);
}

Test(log_truncate, render_into_small_buffer_is_bounded)
{
	sp_logline_t l;
	char small[10];
	size_t n;

	sp_log_init(SP_LOG_TEXT, SP_LOG_DEBUG, -1);
	sp_log_begin(&l, SP_LOG_INFO, "x");
	n = sp_log_render(&l, small, sizeof(small));
	cr_expect_gt(n, sizeof(small));
	cr_expect_eq(strlen(small), sizeof(small) - 1);
	cr_expect_eq(strncmp(small, "ts=", 3), 0);
}

Test(log_truncate, long_text_value_is_cut_and_marked)
{
	static char big[20000];
	sp_logline_t l;
	size_t n;

	memset(big, 'a', sizeof(big) - 1);
	sp_log_init(SP_LOG_TEXT, SP_LOG_DEBUG, -1);
	sp_log_begin(&l, SP_LOG_INFO, "x");
	sp_log_str(&l, "reply", big);
	sp_log_str(&l, "after", "dropped");
	n = sp_log_render(&l, out, sizeof(out));
	cr_expect_leq(n, SP_LOG_LINE_MAX);
	cr_expect_gt(n, SP_LOG_LINE_MAX - 64, "cut far too early: %zu", n);
	cr_expect_eq(strcmp(out + n - 13, " truncated=1\n"), 0, "%s", out + n - 40);
	cr_expect_null(strstr(out, "dropped"));
	cr_expect_eq(strchr(out, '\n'), out + n - 1);
}

Test(log_truncate, quoted_text_value_keeps_quotes_and_whole_escapes)
{
	static char big[20000];
	sp_logline_t l;
	size_t n;

	memset(big, '\x01', sizeof(big) - 1);
	sp_log_init(SP_LOG_TEXT, SP_LOG_DEBUG, -1);
	sp_log_begin(&l, SP_LOG_INFO, "x");
	sp_log_str(&l, "v", big);
	n = sp_log_render(&l, out, sizeof(out));
	cr_expect_leq(n, SP_LOG_LINE_MAX);
	cr_expect_eq(strcmp(out + n - 14, "\" truncated=1\n"), 0, "%s", out + n - 40);
	/* the value holds whole "\x01" escapes only: its length is 4k */
	n = (size_t)(strrchr(out, '"') - strchr(strstr(out, " v="), '"') - 1);
	cr_expect_eq(n % 4, 0, "escape cut in half, value length %zu", n);
}

Test(log_truncate, long_utf8_text_value_is_cut_between_characters)
{
	static char big[3 * 3000 + 1];
	sp_logline_t l;
	size_t n, i;

	for (i = 0; i < 3000; i++)
		memcpy(big + 3 * i, "\xe2\x82\xac", 3);
	sp_log_init(SP_LOG_TEXT, SP_LOG_DEBUG, -1);
	sp_log_begin(&l, SP_LOG_INFO, "x");
	sp_log_str(&l, "v", big);
	n = sp_log_render(&l, out, sizeof(out));
	cr_expect_leq(n, SP_LOG_LINE_MAX);
	cr_expect(utf8_valid((const unsigned char *)out, n), "cut inside a character");
	cr_expect_not_null(strstr(out, " truncated=1\n"));
}

Test(log_truncate, json_stays_valid_when_cut)
{
	static char big[20000];
	static const char *pieces[] = { "\x01", "\"", "\xe2\x82\xac", "\xff", "a" };
	sp_logline_t l;
	size_t n, i, k;

	for (k = 0; k < sizeof(pieces) / sizeof(pieces[0]); k++) {
		size_t plen = strlen(pieces[k]);

		for (i = 0; i + plen < sizeof(big); i += plen)
			memcpy(big + i, pieces[k], plen);
		big[i] = '\0';
		sp_log_init(SP_LOG_JSON, SP_LOG_DEBUG, -1);
		sp_log_begin(&l, SP_LOG_INFO, "x");
		sp_log_str(&l, "v", big);
		sp_log_int(&l, "n", 5);
		n = sp_log_render(&l, out, sizeof(out));
		cr_expect_leq(n, SP_LOG_LINE_MAX);
		cr_expect(json_valid(out), "piece %zu: %s", k, out + n - 60);
		cr_expect_not_null(strstr(out, "\",\"truncated\":1}\n"), "piece %zu", k);
	}
}

Test(log_truncate, many_fields_stop_at_the_bound)
{
	sp_logline_t l;
	size_t n, i;
	int json;

	for (json = 0; json <= 1; json++) {
		sp_log_init(json ? SP_LOG_JSON : SP_LOG_TEXT, SP_LOG_DEBUG, -1);
		sp_log_begin(&l, SP_LOG_INFO, "x");
		for (i = 0; i < 500; i++) {
			sp_log_str(&l, "some_key", "some value of medium length");
			sp_log_int(&l, "number", 1234567890123LL);
		}
		n = sp_log_render(&l, out, sizeof(out));
		cr_expect_leq(n, SP_LOG_LINE_MAX);
		if (json)
			cr_expect(json_valid(out), "%s", out + n - 60);
		cr_expect_not_null(strstr(out, json ? "\"truncated\":1}\n" : " truncated=1\n"));
		/* no number cut in half */
		cr_expect_null(strstr(out, json ? "\"number\":," : "number= "));
	}
}

Test(log_truncate, long_fmt_value_is_marked)
{
	sp_logline_t l;
	size_t n;

	sp_log_init(SP_LOG_TEXT, SP_LOG_DEBUG, -1);
	sp_log_begin(&l, SP_LOG_INFO, "x");
	sp_log_fmt(&l, "v", "%9000d", 1);
	n = sp_log_render(&l, out, sizeof(out));
	cr_expect_leq(n, SP_LOG_LINE_MAX);
	cr_expect_not_null(strstr(out, " truncated=1\n"));
}

#define WRITERS 4
#define LINES_EACH 400

struct writer {
	int id;
};

/* writer - log LINES_EACH lines of varying length, tagged w=id seq=n */
static void *
writer(void *arg)
{
	const struct writer *w = arg;
	char pad[3000];
	sp_logline_t l;
	int i;
	size_t len;

	for (i = 0; i < LINES_EACH; i++) {
		len = (size_t)((i * 37 + w->id * 101) % (int)(sizeof(pad) - 1));
		memset(pad, 'a' + w->id, len);
		pad[len] = '\0';
		if (sp_log_begin(&l, SP_LOG_INFO, "stress")) {
			sp_log_int(&l, "w", w->id);
			sp_log_int(&l, "seq", i);
			sp_log_int(&l, "len", (long long)len);
			sp_log_str(&l, "pad", len > 0 ? pad : "x");
			sp_log_end(&l);
		}
	}
	return NULL;
}

Test(log_write, concurrent_writers_produce_whole_lines_only)
{
	static char all[WRITERS * LINES_EACH * 3200];
	pthread_t t[WRITERS];
	struct writer w[WRITERS];
	int fds[2], i, next[WRITERS] = { 0 };
	size_t got = 0, lines = 0;
	ssize_t r;
	char *line, *nl;

	cr_assert_eq(pipe(fds), 0);
	sp_log_init(SP_LOG_TEXT, SP_LOG_INFO, fds[1]);
	for (i = 0; i < WRITERS; i++) {
		w[i].id = i;
		cr_assert_eq(pthread_create(&t[i], NULL, writer, &w[i]), 0);
	}
	/* the pipe holds 64 KB: read while they write, until all are done */
	for (;;) {
		r = read(fds[0], all + got, sizeof(all) - 1 - got);
		cr_assert_geq(r, 0);
		got += (size_t)r;
		if (strnlen(all, got) == got) {
			size_t c = 0, k;

			for (k = 0; k < got; k++)
				c += all[k] == '\n';
			if (c == WRITERS * LINES_EACH)
				break;
		}
		cr_assert_lt(got, sizeof(all) - 1);
	}
	for (i = 0; i < WRITERS; i++)
		pthread_join(t[i], NULL);
	close(fds[1]);
	close(fds[0]);
	all[got] = '\0';

	for (line = all; *line != '\0'; line = nl + 1) {
		int wid, seq;
		long long len;
		const char *pad;
		size_t k;

		nl = strchr(line, '\n');
		cr_assert_not_null(nl);
		*nl = '\0';
		cr_assert_eq(strncmp(line, "ts=", 3), 0, "line starts mid-way: %.60s", line);
		pad = strstr(line, " pad=");
		cr_assert_not_null(pad, "%.80s", line);
		cr_assert_eq(sscanf(strstr(line, " w="), " w=%d seq=%d len=%lld", &wid,
		    &seq, &len), 3, "%.120s", line);
		cr_assert(wid >= 0 && wid < WRITERS);
		/* one writer's lines arrive in its order */
		cr_expect_eq(seq, next[wid], "writer %d: seq %d, expected %d", wid, seq,
		    next[wid]);
		next[wid] = seq + 1;
		pad += 5;
		if (len > 0) {
			cr_assert_eq(strlen(pad), (size_t)len, "pad of %lld bytes has %zu",
			    len, strlen(pad));
			for (k = 0; k < (size_t)len; k++)
				cr_assert_eq(pad[k], 'a' + wid, "foreign byte in line of writer %d",
				    wid);
		}
		lines++;
	}
	cr_expect_eq(lines, WRITERS * LINES_EACH);
}
