/*
 * common/log.c - one line per event, key=value text or JSON, one write(2).
 *
 * Public: sp_log_init, sp_log_begin, sp_log_str, sp_log_int, sp_log_fmt,
 * sp_log_end, sp_log_msg, sp_log_render, sp_log_level_name.
 *
 * The line is built in the caller's sp_logline_t (on its stack); the only
 * shared state is the format, threshold and fd set once by sp_log_init()
 * before threads start.  A finished line is at most SP_LOG_LINE_MAX bytes
 * including its newline, which is PIPE_BUF on Linux: a write(2) of it to a
 * pipe is atomic, so lines of concurrent threads never interleave.
 *
 * Values are hostile (peer replies, host names): in text they are quoted
 * when they hold a blank, '"', '=', '\', a control byte, invalid UTF-8, or
 * are empty, with \" \\ \n \r \t and \xNN escapes; in JSON every string is
 * escaped (\uXXXX for control bytes, and for bytes that are not UTF-8).
 * Escapes are never cut in half.  When a field does not fit, its value is
 * cut at a character boundary, the line gets truncated=1 and later fields
 * are dropped.  Logging never fails from the caller's point of view: a
 * line that cannot be written is lost, nothing else.
 */
#include <sys/time.h>

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

#define INACTIVE	(-1)	/* l->json of a filtered-out line */
/* Room kept free for the tail: ,"truncated":1}\n or " truncated=1\n". */
#define TAIL_ROOM	32
#define BODY_MAX	(SP_LOG_LINE_MAX - TAIL_ROOM)
#define WRITE_WAIT_MS	1000	/* how long a full non-blocking fd may stall us */

static enum sp_log_format log_fmt = SP_LOG_TEXT;
static enum sp_log_level log_threshold = SP_LOG_INFO;
static int log_fd = 2;

static size_t utf8_len(const unsigned char *s, size_t n);
static int text_needs_quotes(const char *v, size_t n);
static size_t escape_unit(const unsigned char *s, size_t n, int json,
    char *out, size_t *used);
static void put_raw(sp_logline_t *l, const char *s, size_t n);
static void put_key(sp_logline_t *l, const char *key);
static void put_value(sp_logline_t *l, const char *key, const char *val,
    int bare);
static size_t tail(const sp_logline_t *l, char *out);
static void write_all(int fd, const char *buf, size_t len);

/* sp_log_init - set format, threshold and output fd (2 by default) */
void
sp_log_init(enum sp_log_format fmt, enum sp_log_level level, int fd)
{
	log_fmt = fmt == SP_LOG_JSON ? SP_LOG_JSON : SP_LOG_TEXT;
	log_threshold = level;
	log_fd = fd >= 0 ? fd : 2;
}

/* sp_log_level_name - "debug", "info", "warn", "error" */
const char *
sp_log_level_name(enum sp_log_level level)
{
	switch (level) {
	case SP_LOG_DEBUG: return "debug";
	case SP_LOG_INFO: return "info";
	case SP_LOG_WARN: return "warn";
	case SP_LOG_ERROR: return "error";
	}
	return "unknown";
}

/* sp_log_begin - start a line with ts=, level=, event=; 0 if filtered out */
int
sp_log_begin(sp_logline_t *l, enum sp_log_level level, const char *event)
{
	struct timespec ts;
	struct tm tm;
	char stamp[40];
	size_t n;

	l->len = 0;
	l->truncated = 0;
	if (level < log_threshold) {
		l->json = INACTIVE;
		return 0;
	}
	l->json = log_fmt == SP_LOG_JSON;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + n, sizeof(stamp) - n, ".%03ldZ", ts.tv_nsec / 1000000);

	if (l->json)
		put_raw(l, "{", 1);
	put_value(l, "ts", stamp, 0);
	put_value(l, "level", sp_log_level_name(level), 0);
	put_value(l, "event", event != NULL ? event : "", 0);
	return 1;
}

/* sp_log_str - add key=val (val may be NULL: "") */
void
sp_log_str(sp_logline_t *l, const char *key, const char *val)
{
	if (l->json == INACTIVE)
		return;
	put_value(l, key, val != NULL ? val : "", 0);
}

/* sp_log_int - add key=number (bare in JSON) */
void
sp_log_int(sp_logline_t *l, const char *key, long long val)
{
	char num[32];

	if (l->json == INACTIVE)
		return;
	snprintf(num, sizeof(num), "%lld", val);
	put_value(l, key, num, 1);
}

/* sp_log_fmt - add key=printf(fmt, ...) */
void
sp_log_fmt(sp_logline_t *l, const char *key, const char *fmt, ...)
{
	char val[SP_LOG_LINE_MAX];
	va_list ap;
	int n;

	if (l->json == INACTIVE)
		return;
	va_start(ap, fmt);
	n = vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	if (n < 0)
		val[0] = '\0';
	put_value(l, key, val, 0);
	/* a value longer than the whole line cannot have fit anyway */
	if (n >= (int)sizeof(val))
		l->truncated = 1;
}

/* sp_log_end - close the line and write it in one write(2) */
void
sp_log_end(sp_logline_t *l)
{
	char t[TAIL_ROOM];
	size_t n;

	if (l->json == INACTIVE)
		return;
	n = tail(l, t);
	/* put_* never fill past BODY_MAX, so the tail always fits */
	memcpy(l->buf + l->len, t, n);
	write_all(log_fd, l->buf, l->len + n);
	l->json = INACTIVE;
	l->len = 0;
}

/* sp_log_msg - shorthand: one event with a free-text msg= field */
void
sp_log_msg(enum sp_log_level level, const char *event, const char *fmt, ...)
{
	char msg[SP_LOG_LINE_MAX];
	sp_logline_t l;
	va_list ap;

	if (!sp_log_begin(&l, level, event))
		return;
	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = '\0';
	va_end(ap);
	sp_log_str(&l, "msg", msg);
	sp_log_end(&l);
}

/*
 * sp_log_render - the line sp_log_end would write, newline included, into
 * buf (NUL-terminated, cut to len - 1 bytes); returns the full line length
 * like snprintf, 0 for a filtered-out line.
 */
size_t
sp_log_render(const sp_logline_t *l, char *buf, size_t len)
{
	char t[TAIL_ROOM];
	size_t n, total, c;

	if (l->json == INACTIVE) {
		if (len > 0)
			buf[0] = '\0';
		return 0;
	}
	n = tail(l, t);
	total = l->len + n;
	if (len == 0)
		return total;
	c = l->len < len - 1 ? l->len : len - 1;
	memcpy(buf, l->buf, c);
	if (c < len - 1) {
		size_t tc = n < len - 1 - c ? n : len - 1 - c;

		memcpy(buf + c, t, tc);
		c += tc;
	}
	buf[c] = '\0';
	return total;
}

/* tail - the bytes that close the line: truncated marker, '}', newline */
static size_t
tail(const sp_logline_t *l, char *out)
{
	const char *t;

	if (l->json)
		t = l->truncated ? ",\"truncated\":1}\n" : "}\n";
	else
		t = l->truncated ? " truncated=1\n" : "\n";
	memcpy(out, t, strlen(t));
	return strlen(t);
}

/* write_all - one write(2) for the line, finishing it on EINTR or a short write */
static void
write_all(int fd, const char *buf, size_t len)
{
	struct pollfd pfd;
	ssize_t n;

	while (len > 0) {
		n = write(fd, buf, len);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* a non-blocking stderr that is full: wait a little, then drop */
			pfd.fd = fd;
			pfd.events = POLLOUT;
			if (poll(&pfd, 1, WRITE_WAIT_MS) > 0)
				continue;
		}
		return;	/* nowhere to report a failure to log */
	}
}

/*
 * utf8_len - length of the valid UTF-8 character at s (n bytes left), or 0
 * when the bytes there are not UTF-8 (overlong, surrogate, > U+10FFFF).
 */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len, i;
	unsigned long cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else
		return 0;
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

/* text_needs_quotes - whether a text value must be written "..." */
static int
text_needs_quotes(const char *v, size_t n)
{
	const unsigned char *s = (const unsigned char *)v;
	size_t i, u;

	if (n == 0)
		return 1;
	for (i = 0; i < n; i += u) {
		if (s[i] <= ' ' || s[i] == '"' || s[i] == '=' || s[i] == '\\' ||
		    s[i] == 0x7f)
			return 1;
		u = utf8_len(s + i, n - i);
		/* invalid UTF-8 or a C1 control (U+0080..U+009F) */
		if (u == 0 || (u == 2 && s[i] == 0xc2 && s[i + 1] < 0xa0))
			return 1;
	}
	return 0;
}

/*
 * escape_unit - escape the character at s (n bytes left) into out (room for
 * 12 bytes), its length in *used; returns how many input bytes it consumed.
 */
static size_t
escape_unit(const unsigned char *s, size_t n, int json, char *out, size_t *used)
{
	unsigned c = s[0];
	size_t u, i;

	switch (c) {
	case '"': memcpy(out, "\\\"", 2); *used = 2; return 1;
	case '\\': memcpy(out, "\\\\", 2); *used = 2; return 1;
	case '\n': memcpy(out, "\\n", 2); *used = 2; return 1;
	case '\r': memcpy(out, "\\r", 2); *used = 2; return 1;
	case '\t': memcpy(out, "\\t", 2); *used = 2; return 1;
	default: break;
	}
	if (c < 0x20 || c == 0x7f) {
		*used = (size_t)snprintf(out, 12, json ? "\\u%04x" : "\\x%02x", c);
		return 1;
	}
	u = utf8_len(s, n);
	if (u == 0) {
		/* not UTF-8: keep the byte's value visible, stay valid */
		*used = (size_t)snprintf(out, 12, json ? "\\u%04x" : "\\x%02x", c);
		return 1;
	}
	if (u == 2 && c == 0xc2 && s[1] < 0xa0) {
		/* C1 controls: some terminals act on them */
		if (json)
			*used = (size_t)snprintf(out, 12, "\\u%04x", (unsigned)s[1]);
		else
			*used = (size_t)snprintf(out, 12, "\\x%02x\\x%02x", c,
			    (unsigned)s[1]);
		return 2;
	}
	for (i = 0; i < u; i++)
		out[i] = (char)s[i];
	*used = u;
	return u;
}

/* put_raw - append bytes if they fit below BODY_MAX (else truncate) */
static void
put_raw(sp_logline_t *l, const char *s, size_t n)
{
	if (l->len + n > BODY_MAX) {
		l->truncated = 1;
		return;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

/* put_key - the separator and key: ` key=` or `,"key":`; key chars [a-z0-9_] */
static void
put_key(sp_logline_t *l, const char *key)
{
	size_t i;
	char c;

	if (l->json) {
		if (l->len > 1)
			l->buf[l->len++] = ',';
		l->buf[l->len++] = '"';
	} else if (l->len > 0)
		l->buf[l->len++] = ' ';
	/* keys are ours, but a bad one must not break the line's syntax */
	for (i = 0; i < 64 && key[i] != '\0'; i++) {
		c = key[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
			c = '_';
		l->buf[l->len++] = c;
	}
	if (i == 0)
		l->buf[l->len++] = '_';
	if (l->json) {
		l->buf[l->len++] = '"';
		l->buf[l->len++] = ':';
	} else
		l->buf[l->len++] = '=';
}

/*
 * put_value - append one field; bare: a number (no quotes in JSON).  When
 * the value does not fit, as much as fits is kept, cut between characters,
 * and the line is marked truncated; a truncated line takes no more fields.
 */
static void
put_value(sp_logline_t *l, const char *key, const char *val, int bare)
{
	const unsigned char *s = (const unsigned char *)val;
	size_t n = strlen(val), i, used, room, save = l->len;
	char esc[12];
	int quote;

	if (l->truncated)
		return;
	/* separator + key (64) + `":"` + quotes: 72 bytes is always enough */
	if (l->len + 72 > BODY_MAX) {
		l->truncated = 1;
		return;
	}
	put_key(l, key != NULL ? key : "");
	quote = l->json ? !bare : (!bare && text_needs_quotes(val, n));
	if (quote)
		l->buf[l->len++] = '"';
	/* keep one byte for the closing quote */
	room = BODY_MAX - l->len - (size_t)quote;
	if (!quote) {
		if (n > room) {
			if (bare) {
				/* half a number would be a lie: drop the field */
				l->len = save;
				l->truncated = 1;
				return;
			}
			/* plain text is ASCII-safe here: cut on a UTF-8 boundary */
			n = room;
			while (n > 0 && (s[n] & 0xc0) == 0x80)
				n--;
			l->truncated = 1;
			if (n == 0) {
				/* room >= 3 here (see above): an empty value is "" */
				memcpy(l->buf + l->len, "\"\"", 2);
				l->len += 2;
				return;
			}
		}
		memcpy(l->buf + l->len, val, n);
		l->len += n;
		return;
	}
	for (i = 0; i < n;) {
		size_t took = escape_unit(s + i, n - i, l->json, esc, &used);

		if (used > room) {
			l->truncated = 1;
			break;
		}
		memcpy(l->buf + l->len, esc, used);
		l->len += used;
		room -= used;
		i += took;
	}
	l->buf[l->len++] = '"';
}
