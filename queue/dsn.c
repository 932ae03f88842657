/*
 * queue/dsn.c - delivery status notifications (RFC 3461, RFC 3464): whom
 * to tell, and the spool file that tells them.
 *
 *	q_dsn_wanted()		NOTIFY rules, and never a bounce of a bounce
 *	q_dsn_build()		a complete spool file: envelope MAIL FROM:<>,
 *	q_dsn_build_until()	RCPT TO:<sender>, then a multipart/report
 *
 * The report has three parts: text/plain for the fax user (which fax,
 * which recipient, why in plain words, what happens next), the
 * message/delivery-status part for programs, and the original headers
 * (text/rfc822-headers) or, for RET=FULL failures within max_full bytes,
 * the whole original (message/rfc822).
 *
 * Choices:
 *  - The file uses LF line ends throughout (the engine sends CRLF).  CRLF in
 *    the returned original is turned into LF too.
 *  - The notification and status parts are always 7-bit: the text part goes
 *    quoted-printable when it holds UTF-8; a non-ASCII (SMTPUTF8) recipient
 *    is written "utf-8;" + utf-8-addr-xtext (RFC 6533 3), e.g.
 *    "utf-8;j\x{F6}rg@example.org".  Only a returned original with 8-bit
 *    bytes makes the message 8bit (Content-Transfer-Encoding says so; the
 *    engine then uses BODY=8BITMIME).
 *  - ENVID and ORCPT are stored xtext-encoded; they are decoded for the
 *    report (RFC 3461 6.3) unless decoding yields a control or non-ASCII
 *    byte, which cannot go into a header field: then they go as given.
 *  - Every text from outside (subject, server replies) is bounded and
 *    cleaned of controls, so no header line exceeds 998 bytes; header
 *    lines are folded at whitespace before column 78.
 *  - Only a failure report returns the full message (RET applies to
 *    failures, RFC 3461 4.3); delay and success reports return headers.
 *
 * Ownership: *out is malloc'd, the caller frees it.  Errors: Q_OK, or
 * Q_ERROR with a reason in err (bad arguments, a null sender, memory).
 * Nothing here does I/O: queue the result with q_spool_put().
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "queue/q_int.h"

#define FOLD_AT		78		/* RFC 5322 2.1.1 SHOULD */
#define MAX_SUBJECT	256		/* bytes of the original Subject we quote */
#define MAX_DIAG	900		/* bytes of a reply in Diagnostic-Code */
#define MAX_HDRS	(256 * 1024)	/* original headers returned at most */
#define MAX_REASON	1024		/* plain-words reason */

/* a growing buffer; after a failed allocation every add is a no-op */
struct sbuf {
	char	*p;
	size_t	len, cap;
	int	oom;
};

static atomic_uint dsn_counter;

static int err_set(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void sb_add(struct sbuf *b, const char *s, size_t n);
static void sb_str(struct sbuf *b, const char *s);
static void sb_fmt(struct sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void sb_clean(struct sbuf *b, const char *s, size_t n, int utf8_ok);
static void sb_fold(struct sbuf *out, const char *line, size_t n);
static void sb_header(struct sbuf *out, struct sbuf *tmp);
static void sb_qp(struct sbuf *out, const char *s, size_t n);
static void sb_b64(struct sbuf *b, const unsigned char *s, size_t n);
static void fmt_date(int64_t t, char *out, size_t n);
static int has_8bit(const char *s, size_t n);
static int host_ok(const char *s);
static int status_ok(const char *s);
static int from_server(const char *text);
static void xtext_field(struct sbuf *b, const char *s);
static void addr_field(struct sbuf *b, const char *addr);
static void relay_host(const char *relay, char *out, size_t n);
static size_t header_len(const char *body, size_t blen);
static void find_subject(const char *hdr, size_t hlen, struct sbuf *subj);
static void subject_header(struct sbuf *out, const char *prefix, const char *subj, size_t n);
static void copy_lf(struct sbuf *b, const char *s, size_t n);
static void plain_reason(const q_rcpt_t *r, enum q_dsn_action action, char *out, size_t n);

/* err_set - format a reason into err and return Q_ERROR */
static int
err_set(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return Q_ERROR;
}

/* sb_add - append n bytes */
static void
sb_add(struct sbuf *b, const char *s, size_t n)
{
	char *np;
	size_t ncap;

	if (b->oom || n == 0)
		return;
	if (n > SIZE_MAX / 2 - b->len) {
		b->oom = 1;
		return;
	}
	if (b->len + n + 1 > b->cap) {
		ncap = b->cap ? b->cap : 4096;
		while (ncap < b->len + n + 1)
			ncap *= 2;
		if ((np = realloc(b->p, ncap)) == NULL) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* sb_str - append a C string */
static void
sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* sb_fmt - append formatted text (short pieces only: 2 KB at most) */
static void
sb_fmt(struct sbuf *b, const char *fmt, ...)
{
	char tmp[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	sb_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* sb_clean - append outside text on one line: runs of CR, LF, TAB and
 * spaces become one space, other controls '?', bytes >= 0x80 '?' unless
 * utf8_ok and part of valid UTF-8; leading and trailing blanks dropped */
static void
sb_clean(struct sbuf *b, const char *s, size_t n, int utf8_ok)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i, ul;
	int space = 0, any = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = u[i];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			space = 1;
			continue;
		}
		if (space && any)
			sb_add(b, " ", 1);
		space = 0;
		any = 1;
		if (c >= 0x80) {
			ul = utf8_ok ? q_utf8_len(u + i, n - i) : 0;
			if (ul == 0) {
				sb_add(b, "?", 1);
			} else {
				sb_add(b, s + i, ul);
				i += ul - 1;
			}
		} else if (c < 0x20 || c == 0x7f) {
			sb_add(b, "?", 1);
		} else {
			sb_add(b, s + i, 1);
		}
	}
}

/* sb_fold - append one logical header line folded at whitespace so that
 * lines stay within FOLD_AT where a break is possible; a single word
 * longer than that stays whole (callers bound their input below 998) */
static void
sb_fold(struct sbuf *out, const char *line, size_t n)
{
	size_t i = 0, start, col = 0;

	while (i < n) {
		start = i;
		while (i < n && (line[i] == ' ' || line[i] == '\t'))
			i++;
		while (i < n && line[i] != ' ' && line[i] != '\t')
			i++;
		/* fold before the whitespace that starts this token */
		if (col > 0 && col + (i - start) > FOLD_AT && (line[start] == ' ' ||
		    line[start] == '\t')) {
			sb_add(out, "\n", 1);
			col = 0;
		}
		sb_add(out, line + start, i - start);
		col += i - start;
	}
	sb_add(out, "\n", 1);
}

/* sb_header - fold the logical line in tmp into out and empty tmp */
static void
sb_header(struct sbuf *out, struct sbuf *tmp)
{
	if (tmp->oom)
		out->oom = 1;
	else
		sb_fold(out, tmp->p != NULL ? tmp->p : "", tmp->len);
	tmp->len = 0;
	if (tmp->p != NULL)
		tmp->p[0] = '\0';
}

/* sb_qp - quoted-printable (RFC 2045 6.7), lines of at most 76 */
static void
sb_qp(struct sbuf *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, col = 0, eol, plen;
	char piece[3];

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\n') {
			sb_add(out, "\n", 1);
			col = 0;
			continue;
		}
		eol = (i + 1 == n || s[i + 1] == '\n');
		if (c == '=' || c > 126 || (c < 32 && c != '\t') ||
		    ((c == ' ' || c == '\t') && eol)) {
			piece[0] = '=';
			piece[1] = hex[c >> 4];
			piece[2] = hex[c & 15];
			plen = 3;
		} else {
			piece[0] = (char)c;
			plen = 1;
		}
		if (col + plen > 75) {
			sb_add(out, "=\n", 2);
			col = 0;
		}
		sb_add(out, piece, plen);
		col += plen;
	}
}

/* sb_b64 - base64 of n bytes */
static void
sb_b64(struct sbuf *b, const unsigned char *s, size_t n)
{
	static const char t[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char q[4];
	size_t i;
	uint32_t v;

	for (i = 0; i + 2 < n; i += 3) {
		v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		q[0] = t[v >> 18];
		q[1] = t[(v >> 12) & 63];
		q[2] = t[(v >> 6) & 63];
		q[3] = t[v & 63];
		sb_add(b, q, 4);
	}
	if (n - i == 1) {
		v = (uint32_t)s[i] << 16;
		q[0] = t[v >> 18];
		q[1] = t[(v >> 12) & 63];
		q[2] = q[3] = '=';
		sb_add(b, q, 4);
	} else if (n - i == 2) {
		v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
		q[0] = t[v >> 18];
		q[1] = t[(v >> 12) & 63];
		q[2] = t[(v >> 6) & 63];
		q[3] = '=';
		sb_add(b, q, 4);
	}
}

/* fmt_date - RFC 5322 date in UTC, locale-independent */
static void
fmt_date(int64_t t, char *out, size_t n)
{
	static const char *const wd[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char *const mo[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
					   "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	time_t tt = (time_t)t;

	if (t < 0 || t > (int64_t)253402300799 || gmtime_r(&tt, &tm) == NULL) {
		tt = 0;
		gmtime_r(&tt, &tm);
	}
	snprintf(out, n, "%s, %02d %s %04d %02d:%02d:%02d +0000", wd[tm.tm_wday % 7],
		 tm.tm_mday, mo[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		 tm.tm_sec);
}

/* has_8bit - any byte >= 0x80 */
static int
has_8bit(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return 1;
	return 0;
}

/* host_ok - a host name or address literal we may put in headers */
static int
host_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 255)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || c == '[' || c == ']' || c == ':'))
			return 0;
	}
	return 1;
}

/* status_ok - an RFC 3463 code: class 2, 4 or 5, then 1-3 digits twice */
static int
status_ok(const char *s)
{
	size_t i = 2, d;
	int part;

	if ((s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
		return 0;
	for (part = 0; part < 2; part++) {
		for (d = 0; s[i] >= '0' && s[i] <= '9'; i++, d++)
			;
		if (d < 1 || d > 3)
			return 0;
		if (part == 0 && s[i++] != '.')
			return 0;
	}
	return s[i] == '\0';
}

/* from_server - 1 when text is an SMTP reply ("550 ...", "451-...") */
static int
from_server(const char *text)
{
	if (text == NULL)
		return 0;
	if (text[0] < '2' || text[0] > '5' || text[1] < '0' || text[1] > '9' ||
	    text[2] < '0' || text[2] > '9')
		return 0;
	return text[3] == '\0' || text[3] == ' ' || text[3] == '-' || text[3] == '\r' ||
	       text[3] == '\n';
}

/* xtext_field - xtext-decoded s (RFC 3461 4), or s as given when decoding
 * would yield a byte that cannot stand in a header field */
static void
xtext_field(struct sbuf *b, const char *s)
{
	char dec[512];
	size_t i, n = 0;
	unsigned v;

	for (i = 0; s[i] != '\0' && n < sizeof(dec); i++) {
		if (s[i] == '+' && s[i + 1] != '\0' && s[i + 2] != '\0' &&
		    sscanf(s + i + 1, "%2x", &v) == 1) {
			if (v < 0x20 || v > 0x7e)
				goto raw;
			dec[n++] = (char)v;
			i += 2;
		} else if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) {
			goto raw;
		} else {
			dec[n++] = s[i];
		}
	}
	if (s[i] != '\0')
		goto raw;
	sb_add(b, dec, n);
	return;
raw:
	sb_clean(b, s, strlen(s), 0);
}

/* addr_field - "rfc822;addr" for ASCII addresses, else RFC 6533
 * "utf-8;" + utf-8-addr-xtext (\x{HEX} for non-ASCII, '+', '=', '\') */
static void
addr_field(struct sbuf *b, const char *addr)
{
	const unsigned char *u = (const unsigned char *)addr;
	size_t i, n = strlen(addr), ul, k;
	uint32_t cp;

	if (!has_8bit(addr, n)) {
		sb_str(b, "rfc822;");
		sb_clean(b, addr, n, 0);
		return;
	}
	sb_str(b, "utf-8;");
	for (i = 0; i < n; i++) {
		if (u[i] >= 0x80) {
			if ((ul = q_utf8_len(u + i, n - i)) == 0) {
				sb_add(b, "\\x{FFFD}", 8);
				continue;
			}
			cp = u[i] & (ul == 2 ? 0x1fu : ul == 3 ? 0x0fu : 0x07u);
			for (k = 1; k < ul; k++)
				cp = (cp << 6) | (u[i + k] & 0x3fu);
			sb_fmt(b, "\\x{%X}", (unsigned)cp);
			i += ul - 1;
		} else if (u[i] == '+' || u[i] == '=' || u[i] == '\\' || u[i] < 0x21 ||
			   u[i] == 0x7f) {
			sb_fmt(b, "\\x{%X}", (unsigned)u[i]);
		} else {
			sb_add(b, addr + i, 1);
		}
	}
}

/* relay_host - "host[ip]:port" -> host; "[ip]:port" -> "[ip]"; "" if none */
static void
relay_host(const char *relay, char *out, size_t n)
{
	size_t l;
	const char *br, *end;

	out[0] = '\0';
	if (relay == NULL || *relay == '\0')
		return;
	if ((br = strchr(relay, '[')) == NULL) {
		l = strcspn(relay, ":");
	} else if (br > relay) {
		l = (size_t)(br - relay);
	} else {
		if ((end = strchr(br, ']')) == NULL)
			return;
		l = (size_t)(end - br) + 1;
	}
	if (l == 0 || l >= n)
		return;
	memcpy(out, relay, l);
	out[l] = '\0';
	if (!host_ok(out))
		out[0] = '\0';
}

/* header_len - length of the header block of an RFC 5322 message, up to
 * (not including) the empty line; the whole text when there is none */
static size_t
header_len(const char *body, size_t blen)
{
	size_t i = 0;
	const char *nl;

	while (i < blen) {
		if (body[i] == '\n' || (body[i] == '\r' && i + 1 < blen && body[i + 1] == '\n'))
			return i;
		nl = memchr(body + i, '\n', blen - i);
		if (nl == NULL)
			return blen;
		i = (size_t)(nl - body) + 1;
	}
	return blen;
}

/* find_subject - the unfolded, cleaned original Subject, bounded */
static void
find_subject(const char *hdr, size_t hlen, struct sbuf *subj)
{
	size_t i = 0, end;
	const char *nl;

	while (i < hlen) {
		nl = memchr(hdr + i, '\n', hlen - i);
		end = nl != NULL ? (size_t)(nl - hdr) : hlen;
		if (end - i >= 8 && strncasecmp(hdr + i, "Subject:", 8) == 0) {
			i += 8;
			/* continuation lines start with blank */
			while (end < hlen && end + 1 < hlen && (hdr[end + 1] == ' ' ||
			       hdr[end + 1] == '\t')) {
				nl = memchr(hdr + end + 1, '\n', hlen - end - 1);
				end = nl != NULL ? (size_t)(nl - hdr) : hlen;
			}
			if (end - i > MAX_SUBJECT) {
				end = i + MAX_SUBJECT;
				/* do not cut a UTF-8 sequence in two */
				while (end > i && ((unsigned char)hdr[end] & 0xc0) == 0x80)
					end--;
			}
			sb_clean(subj, hdr + i, end - i, 1);
			return;
		}
		i = end + 1;
	}
}

/* subject_header - "Subject: PREFIX SUBJECT", the subject as RFC 2047
 * base64 encoded-words of at most 45 bytes (75 characters) when it is
 * not ASCII; subj is clean UTF-8 */
static void
subject_header(struct sbuf *out, const char *prefix, const char *subj, size_t n)
{
	struct sbuf t = { 0 };
	size_t i = 0, chunk, ul;

	sb_str(&t, "Subject: ");
	sb_str(&t, prefix);
	if (n == 0) {
		sb_str(&t, "(no subject)");
	} else if (!has_8bit(subj, n)) {
		sb_add(&t, subj, n);
	} else {
		while (i < n) {
			chunk = 0;
			while (i + chunk < n) {
				ul = (unsigned char)subj[i + chunk] >= 0x80 ?
				     q_utf8_len((const unsigned char *)subj + i + chunk,
						n - i - chunk) : 1;
				if (ul == 0)
					ul = 1;	/* cannot happen: subj is clean */
				if (chunk + ul > 45)
					break;
				chunk += ul;
			}
			if (i > 0)
				sb_add(&t, " ", 1);
			sb_str(&t, "=?utf-8?b?");
			sb_b64(&t, (const unsigned char *)subj + i, chunk);
			sb_str(&t, "?=");
			i += chunk;
		}
	}
	sb_header(out, &t);
	free(t.p);
}

/* copy_lf - append text with CRLF line ends turned into LF, ending in LF */
static void
copy_lf(struct sbuf *b, const char *s, size_t n)
{
	size_t i = 0, end;
	const char *nl;

	while (i < n) {
		nl = memchr(s + i, '\n', n - i);
		end = nl != NULL ? (size_t)(nl - s) : n;
		sb_add(b, s + i, end > i && s[end - 1] == '\r' ? end - i - 1 : end - i);
		sb_add(b, "\n", 1);
		i = end + 1;
	}
}

/* plain_reason - why, in words a fax user understands, from the status
 * code and whether the text is a server's reply or our own reason */
static void
plain_reason(const q_rcpt_t *r, enum q_dsn_action action, char *out, size_t n)
{
	const char *d = status_ok(r->dsn) ? r->dsn : "";
	int server = from_server(r->last_error);
	const char *why;
	char cls = d[0], sub = d[0] ? d[2] : '\0';

	if (action == Q_DSN_DELIVERED) {
		snprintf(out, n, "The receiving system accepted the fax.");
		return;
	}
	if (strcmp(d + (cls ? 1 : 0), ".1.10") == 0 && !server)
		why = "the recipient's domain does not accept email";
	else if (server && sub == '1')
		why = "the receiving system does not know this recipient address";
	else if (server && strcmp(d + (cls ? 1 : 0), ".2.2") == 0)
		why = "the recipient's mailbox is full";
	else if (server && sub == '2')
		why = "the recipient's mailbox is not available";
	else if (server && strcmp(d + (cls ? 1 : 0), ".3.4") == 0)
		why = "the fax is too large for the receiving system";
	else if (server && sub == '7')
		why = "the receiving system refused the fax for security or policy reasons";
	else if (server && cls == '5')
		why = "the receiving system refused the fax";
	else if (server)
		why = "the receiving system could not take the fax for the time being";
	else if (sub == '7')
		why = "the receiving system could not prove its identity over an encrypted "
		      "connection (faxes are only ever sent encrypted)";
	else if (strcmp(d + (cls ? 1 : 0), ".4.7") == 0)
		why = "the fax could not be delivered within the time allowed";
	else if (sub == '1')
		why = "the recipient address is not valid";
	else if (sub == '4')
		why = "the receiving system could not be reached";
	else if (sub == '5' || sub == '6')
		why = "the fax could not be transferred to the receiving system";
	else
		why = "the fax could not be delivered";
	if (action == Q_DSN_FAILED && cls == '4')
		snprintf(out, n, "We kept trying for as long as allowed; the last problem was "
			 "that %s.", why);
	else
		snprintf(out, n, "%c%s.", why[0] - 'a' + 'A', why + 1);
}

/* q_dsn_wanted - RFC 3461 NOTIFY: NEVER none; not given FAILURE,DELAY;
 * SUCCESS only when asked; never for a null-sender message */
int
q_dsn_wanted(const q_msg_t *msg, const q_rcpt_t *r, enum q_dsn_action action)
{
	unsigned bit;

	if (msg == NULL || r == NULL || msg->sender == NULL || msg->sender[0] == '\0')
		return 0;
	if (r->notify & Q_NOTIFY_NEVER)
		return 0;
	switch (action) {
	case Q_DSN_FAILED:	bit = Q_NOTIFY_FAILURE; break;
	case Q_DSN_DELAYED:	bit = Q_NOTIFY_DELAY; break;
	case Q_DSN_DELIVERED:	bit = Q_NOTIFY_SUCCESS; break;
	default:		return 0;
	}
	if ((r->notify & (Q_NOTIFY_SUCCESS | Q_NOTIFY_FAILURE | Q_NOTIFY_DELAY)) == 0)
		return action != Q_DSN_DELIVERED;
	return (r->notify & bit) != 0;
}

/* q_dsn_build - q_dsn_build_until without a retry deadline */
int
q_dsn_build(const q_msg_t *msg, const size_t *idx, size_t n, enum q_dsn_action action,
	    const char *reporting_mta, int64_t now, size_t max_full,
	    char **out, size_t *outlen, char *err, size_t errlen)
{
	return q_dsn_build_until(msg, idx, n, action, reporting_mta, now, 0, max_full,
				 out, outlen, err, errlen);
}

/* q_dsn_build_until - the DSN spool file; see queue/queue.h */
int
q_dsn_build_until(const q_msg_t *msg, const size_t *idx, size_t n,
		  enum q_dsn_action action, const char *reporting_mta, int64_t now,
		  int64_t retry_until, size_t max_full, char **out, size_t *outlen,
		  char *err, size_t errlen)
{
	struct sbuf f = { 0 }, p1 = { 0 }, p2 = { 0 }, p3 = { 0 }, t = { 0 }, subj = { 0 };
	const char *body = NULL, *prefix, *what, *cte1;
	size_t blen = 0, hlen = 0, i, k;
	char date[64], reason[MAX_REASON], host[256], boundary[96], why[160];
	int full = 0, cut = 0, too_big = 0, eightbit, rc = Q_ERROR;

	if (out == NULL || outlen == NULL)
		return err_set(err, errlen, "dsn: no output buffer");
	*out = NULL;
	*outlen = 0;
	if (msg == NULL || idx == NULL || n == 0 || n > msg->nrcpt)
		return err_set(err, errlen, "dsn: no recipients to report");
	if (msg->sender == NULL || msg->sender[0] == '\0')
		return err_set(err, errlen, "dsn: null sender <>: never bounce a bounce");
	if (q_addr_check(msg->sender, strlen(msg->sender), why, sizeof(why)) != 0)
		return err_set(err, errlen, "dsn: sender: %s", why);
	if (reporting_mta == NULL || !host_ok(reporting_mta))
		return err_set(err, errlen, "dsn: reporting MTA name is not a host name");
	if (action != Q_DSN_FAILED && action != Q_DSN_DELAYED && action != Q_DSN_DELIVERED)
		return err_set(err, errlen, "dsn: unknown action %d", (int)action);
	for (i = 0; i < n; i++)
		if (idx[i] >= msg->nrcpt)
			return err_set(err, errlen, "dsn: recipient index %zu out of range",
				       idx[i]);
	if (max_full > Q_MAX_FILE / 2)
		max_full = Q_MAX_FILE / 2;

	if (msg->data != NULL && msg->body_off <= msg->len) {
		body = msg->data + msg->body_off;
		blen = msg->len - msg->body_off;
		hlen = header_len(body, blen);
		find_subject(body, hlen, &subj);
		if (action == Q_DSN_FAILED && msg->ret == Q_RET_FULL) {
			if (blen <= max_full)
				full = 1;
			else
				too_big = 1;
		}
		if (!full && hlen > MAX_HDRS) {
			/* cut at a line boundary; a hostile header block is not returned */
			for (hlen = MAX_HDRS; hlen > 0 && body[hlen - 1] != '\n'; hlen--)
				;
			cut = 1;
		}
	}

	switch (action) {
	case Q_DSN_FAILED:	prefix = "Undelivered fax: "; what = "failed"; break;
	case Q_DSN_DELAYED:	prefix = "Delayed fax: "; what = "delayed"; break;
	default:		prefix = "Delivered fax: "; what = "delivered"; break;
	}

	/* part 1: for the fax user */
	sb_fmt(&p1, "This is the mail system at %s.\n\n", reporting_mta);
	if (action == Q_DSN_FAILED) {
		sb_str(&p1, "Your fax could not be delivered to the recipient(s) below.\n"
		       "We have stopped trying. Please check the address and send the\n"
		       "fax again, or reach the recipient another way.\n");
	} else if (action == Q_DSN_DELAYED) {
		sb_str(&p1, "Your fax has not been delivered yet to the recipient(s) below.\n"
		       "You do not need to do anything now: ");
		if (retry_until > 0) {
			fmt_date(retry_until, date, sizeof(date));
			sb_fmt(&p1, "we keep trying until\n%s.\n", date);
		} else {
			sb_str(&p1, "we keep trying.\n");
		}
		sb_str(&p1, "You will hear from us again only if it cannot be delivered.\n");
	} else {
		sb_str(&p1, "Your fax has been delivered to the recipient(s) below.\n");
	}
	sb_str(&p1, "\nThe fax\n  Subject:  ");
	if (subj.len > 0)
		sb_add(&p1, subj.p, subj.len);
	else
		sb_str(&p1, "(no subject)");
	fmt_date(msg->arrival, date, sizeof(date));
	sb_fmt(&p1, "\n  Queue id: %s\n  Sent:     %s\n", msg->id, date);
	for (i = 0; i < n; i++) {
		const q_rcpt_t *r = &msg->rcpt[idx[i]];

		sb_str(&p1, "\nRecipient: ");
		sb_clean(&p1, r->addr != NULL ? r->addr : "", r->addr != NULL ? strlen(r->addr) : 0, 1);
		plain_reason(r, action, reason, sizeof(reason));
		sb_fmt(&p1, "\n  %s\n", reason);
		relay_host(r->relay, host, sizeof(host));
		if (host[0] != '\0')
			sb_fmt(&p1, "  Receiving system: %s\n", host);
		if (r->last_error != NULL && r->last_error[0] != '\0') {
			sb_str(&p1, from_server(r->last_error) ? "  Its reply: " : "  Details: ");
			sb_clean(&p1, r->last_error, strnlen(r->last_error, MAX_DIAG), 1);
			sb_str(&p1, "\n");
		}
	}
	if (body == NULL)
		sb_str(&p1, "\nThe fax itself is no longer available to return.\n");
	else if (too_big)
		sb_fmt(&p1, "\nThe fax itself (%zu bytes) is too large to return; only its "
		       "headers\nare attached.\n", blen);
	else if (cut)
		sb_str(&p1, "\nThe fax's headers were too long to return whole; they are cut.\n");

	/* part 2: message/delivery-status, always 7-bit */
	sb_fmt(&t, "Reporting-MTA: dns; %s", reporting_mta);
	sb_header(&p2, &t);
	sb_fmt(&t, "X-Sealpost-Queue-Id: %s", msg->id);
	sb_header(&p2, &t);
	if (msg->envid != NULL && msg->envid[0] != '\0') {
		sb_str(&t, "Original-Envelope-Id: ");
		xtext_field(&t, msg->envid);
		sb_header(&p2, &t);
	}
	if (msg->arrival > 0) {
		fmt_date(msg->arrival, date, sizeof(date));
		sb_fmt(&t, "Arrival-Date: %s", date);
		sb_header(&p2, &t);
	}
	for (i = 0; i < n; i++) {
		const q_rcpt_t *r = &msg->rcpt[idx[i]];
		const char *st;

		sb_add(&p2, "\n", 1);
		if (r->orcpt != NULL && r->orcpt[0] != '\0') {
			sb_str(&t, "Original-Recipient: ");
			xtext_field(&t, r->orcpt);
			sb_header(&p2, &t);
		}
		sb_str(&t, "Final-Recipient: ");
		addr_field(&t, r->addr != NULL ? r->addr : "");
		sb_header(&p2, &t);
		sb_fmt(&t, "Action: %s", what);
		sb_header(&p2, &t);
		if (status_ok(r->dsn))
			st = r->dsn;
		else
			st = action == Q_DSN_FAILED ? "5.0.0" :
			     action == Q_DSN_DELAYED ? "4.0.0" : "2.0.0";
		sb_fmt(&t, "Status: %s", st);
		sb_header(&p2, &t);
		relay_host(r->relay, host, sizeof(host));
		if (host[0] != '\0') {
			sb_fmt(&t, "Remote-MTA: dns; %s", host);
			sb_header(&p2, &t);
		}
		if (r->last_error != NULL && r->last_error[0] != '\0') {
			sb_str(&t, from_server(r->last_error) ? "Diagnostic-Code: smtp; " :
			       "Diagnostic-Code: X-Sealpost; ");
			sb_clean(&t, r->last_error, strnlen(r->last_error, MAX_DIAG), 0);
			sb_header(&p2, &t);
		}
		if (r->attempts > 0) {
			fmt_date(now, date, sizeof(date));
			sb_fmt(&t, "Last-Attempt-Date: %s", date);
			sb_header(&p2, &t);
		}
		if (action == Q_DSN_DELAYED && retry_until > 0) {
			fmt_date(retry_until, date, sizeof(date));
			sb_fmt(&t, "Will-Retry-Until: %s", date);
			sb_header(&p2, &t);
		}
	}

	/* part 3: the original, headers or whole */
	if (body != NULL)
		copy_lf(&p3, body, full ? blen : hlen);

	if (p1.oom || p2.oom || p3.oom || t.oom || subj.oom)
		goto nomem;

	/* a boundary that occurs in no part */
	for (k = 0;; k++) {
		if (k == 1000) {
			err_set(err, errlen, "dsn: no usable MIME boundary");
			goto done;
		}
		snprintf(boundary, sizeof(boundary), "=_sealpost_%s_%zu", msg->id, k);
		if ((p1.p == NULL || strstr(p1.p, boundary) == NULL) &&
		    (p2.p == NULL || strstr(p2.p, boundary) == NULL) &&
		    (p3.p == NULL || memmem(p3.p, p3.len, boundary, strlen(boundary)) == NULL))
			break;
	}
	eightbit = has_8bit(p3.p != NULL ? p3.p : "", p3.len);
	cte1 = has_8bit(p1.p, p1.len) ? "quoted-printable" : "7bit";
	for (i = 0; i < p1.len && strcmp(cte1, "7bit") == 0; ) {
		/* long lines (a long reply) need quoted-printable too */
		const char *nl = memchr(p1.p + i, '\n', p1.len - i);
		size_t e = nl != NULL ? (size_t)(nl - p1.p) : p1.len;

		if (e - i > 76)
			cte1 = "quoted-printable";
		i = e + 1;
	}

	/* the envelope, then the message headers */
	sb_fmt(&f, "MAIL FROM:<>\nRCPT TO:<%s>\n\n", msg->sender);
	sb_fmt(&t, "From: \"Mail Delivery System\" <MAILER-DAEMON@%s>", reporting_mta);
	sb_header(&f, &t);
	sb_fmt(&t, "To: <%s>", msg->sender);
	sb_header(&f, &t);
	subject_header(&f, prefix, subj.p != NULL ? subj.p : "", subj.len);
	fmt_date(now, date, sizeof(date));
	sb_fmt(&t, "Date: %s", date);
	sb_header(&f, &t);
	sb_fmt(&t, "Message-ID: <%s.dsn.%lld.%u@%s>", msg->id, (long long)now,
	       atomic_fetch_add(&dsn_counter, 1u), reporting_mta);
	sb_header(&f, &t);
	sb_str(&f, "Auto-Submitted: auto-replied\nMIME-Version: 1.0\n");
	sb_fmt(&t, "Content-Type: multipart/report; report-type=delivery-status; "
	       "boundary=\"%s\"", boundary);
	sb_header(&f, &t);
	sb_fmt(&f, "Content-Transfer-Encoding: %s\n\n", eightbit ? "8bit" : "7bit");
	sb_str(&f, "This is a MIME-encapsulated message.\n\n");

	sb_fmt(&f, "--%s\nContent-Description: Notification\n"
	       "Content-Type: text/plain; charset=utf-8\n"
	       "Content-Transfer-Encoding: %s\n\n", boundary, cte1);
	if (strcmp(cte1, "7bit") == 0)
		sb_add(&f, p1.p, p1.len);
	else
		sb_qp(&f, p1.p, p1.len);
	sb_fmt(&f, "\n--%s\nContent-Description: Delivery report\n"
	       "Content-Type: message/delivery-status\n\n", boundary);
	sb_add(&f, p2.p, p2.len);
	if (body != NULL) {
		sb_fmt(&f, "\n--%s\nContent-Description: %s\nContent-Type: %s\n"
		       "Content-Transfer-Encoding: %s\n\n", boundary,
		       full ? "Your fax" : "Headers of your fax",
		       full ? "message/rfc822" : "text/rfc822-headers",
		       eightbit ? "8bit" : "7bit");
		sb_add(&f, p3.p, p3.len);
	}
	sb_fmt(&f, "\n--%s--\n", boundary);
	if (f.oom || t.oom)
		goto nomem;
	if (f.len > Q_MAX_FILE) {
		err_set(err, errlen, "dsn: report too large (%zu bytes)", f.len);
		goto done;
	}
	*out = f.p;
	*outlen = f.len;
	f.p = NULL;
	rc = Q_OK;
	goto done;
nomem:
	err_set(err, errlen, "dsn: out of memory");
done:
	free(f.p);
	free(p1.p);
	free(p2.p);
	free(p3.p);
	free(t.p);
	free(subj.p);
	return rc;
}
