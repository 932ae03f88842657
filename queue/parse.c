/*
 * queue/parse.c - the spool file format: envelope block, empty line, message.
 *
 *	q_parse()		parse a whole spool file held in memory
 *	q_parse_envelope()	parse only the envelope (data may be a prefix)
 *	q_addr_check()		the address validator (also used by q_submit)
 *	q_msg_clear(), q_msg_free()
 *
 * Ownership: q_parse() zeroes the caller's q_msg_t and fills its envelope
 * fields with its own allocations (sender, envid, rcpt[] and their strings);
 * it never takes over the input buffer (msg->data stays NULL).  On any error
 * it frees what it allocated and leaves msg zeroed, so nothing leaks.
 *
 * Errors: Q_CORRUPT with a reason naming the line ("line 3: RCPT TO:
 * address has no domain part").  The input is hostile: every scan is
 * bounded by len, no byte is trusted to be a terminator.
 *
 * Choices (documented in queue/README.md): duplicate recipients are dropped
 * silently (first one wins, like Postfix); UTF-8 is allowed in the local
 * part when it is valid UTF-8 (RFC 6531), never in the domain (use A-labels);
 * ENVID and ORCPT are kept xtext-encoded, exactly as they go on the wire.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "queue/q_int.h"

#define MAX_ENVID	100	/* RFC 3461 4.4 */
#define MAX_ORCPT	500	/* RFC 3461 4.2 */
#define MAX_LOCAL	64	/* RFC 5321 4.5.3.1.1 */
#define MAX_DOMAIN	255
#define MAX_LABEL	63

static int parse_any(const char *data, size_t len, q_msg_t *msg, int envelope_only,
		     char *why, size_t whylen);
static int parse_line(q_msg_t *msg, const char *line, size_t n, unsigned lineno,
		      size_t *rcap, char *why, size_t whylen);
static int parse_params(q_msg_t *msg, q_rcpt_t *r, const char *p, size_t n,
			const char *cmd, unsigned lineno, char *why, size_t whylen);
static int xtext_ok(const char *s, size_t n);
static int notify_parse(const char *s, size_t n, unsigned *out);
static int domain_check(const char *d, size_t n, char *why, size_t whylen);
static int is_atext(unsigned char c);
static char *dup_n(const char *s, size_t n);
static int rcpt_is_dup(const q_msg_t *msg, const q_rcpt_t *r);
static int fail(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* fail - write a reason and return Q_CORRUPT */
static int
fail(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && whylen > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return Q_CORRUPT;
}

/* dup_n - NUL-terminated copy of n bytes; NULL on allocation failure */
static char *
dup_n(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p == NULL)
		return NULL;
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* q_parse - parse a spool file held in memory into msg (data not taken) */
int
q_parse(const char *data, size_t len, q_msg_t *msg, char *why, size_t whylen)
{
	return parse_any(data, len, msg, 0, why, whylen);
}

/* q_parse_envelope - parse the envelope only; data may end in the message */
int
q_parse_envelope(const char *data, size_t len, q_msg_t *msg, char *why, size_t whylen)
{
	return parse_any(data, len, msg, 1, why, whylen);
}

/* parse_any - walk the envelope line by line, then check the message */
static int
parse_any(const char *data, size_t len, q_msg_t *msg, int envelope_only,
	  char *why, size_t whylen)
{
	size_t pos = 0, i, n, rcap = 0;
	unsigned lineno = 0;
	int rc;

	memset(msg, 0, sizeof(*msg));
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (data == NULL || len == 0)
		return fail(why, whylen, "empty file");

	for (;;) {
		lineno++;
		if (pos >= len) {
			rc = fail(why, whylen, "line %u: file ends before the empty line "
				  "that closes the envelope", lineno);
			goto bad;
		}
		/* the scan stops at Q_MAX_LINE + CR + 1: a 1 MB line costs 2 KB */
		for (i = pos; i < len && data[i] != '\n'; i++) {
			if (data[i] == '\0') {
				rc = fail(why, whylen, "line %u: NUL byte in envelope", lineno);
				goto bad;
			}
			if (i - pos > Q_MAX_LINE + 1) {
				rc = fail(why, whylen, "line %u: envelope line longer than %d bytes",
					  lineno, Q_MAX_LINE);
				goto bad;
			}
		}
		if (i >= len) {
			rc = fail(why, whylen, "line %u: truncated: file ends without a line end "
				  "in the envelope", lineno);
			goto bad;
		}
		n = i - pos;
		if (n > 0 && data[i - 1] == '\r')
			n--;
		if (n > Q_MAX_LINE) {
			rc = fail(why, whylen, "line %u: envelope line longer than %d bytes",
				  lineno, Q_MAX_LINE);
			goto bad;
		}
		if (n == 0) {
			msg->body_off = i + 1;
			break;
		}
		if (i + 1 > Q_MAX_ENVELOPE) {
			rc = fail(why, whylen, "line %u: envelope larger than %d bytes",
				  lineno, Q_MAX_ENVELOPE);
			goto bad;
		}
		rc = parse_line(msg, data + pos, n, lineno, &rcap, why, whylen);
		if (rc != Q_OK)
			goto bad;
		pos = i + 1;
	}

	if (msg->sender == NULL) {
		rc = fail(why, whylen, "line %u: empty line before any MAIL FROM "
			  "(no envelope)", lineno);
		goto bad;
	}
	if (msg->nrcpt == 0) {
		rc = fail(why, whylen, "line %u: no RCPT TO before the empty line "
			  "(no recipients)", lineno);
		goto bad;
	}
	if (!envelope_only && msg->body_off >= len) {
		rc = fail(why, whylen, "line %u: empty message after the envelope", lineno);
		goto bad;
	}
	return Q_OK;
bad:
	q_msg_clear(msg);
	return rc;
}

/* parse_line - one MAIL FROM or RCPT TO line (n bytes, no terminator) */
static int
parse_line(q_msg_t *msg, const char *line, size_t n, unsigned lineno, size_t *rcap,
	   char *why, size_t whylen)
{
	const char *cmd, *p, *end = line + n, *addr;
	size_t alen, k;
	int is_mail, inq = 0;
	char awhy[160];
	q_rcpt_t *r;

	for (k = 0; k < n; k++) {
		unsigned char c = (unsigned char)line[k];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return fail(why, whylen, "line %u: control character 0x%02x in envelope",
				    lineno, c);
	}
	if (n >= 10 && strncasecmp(line, "MAIL FROM:", 10) == 0) {
		is_mail = 1;
		cmd = "MAIL FROM:";
		p = line + 10;
	} else if (n >= 8 && strncasecmp(line, "RCPT TO:", 8) == 0) {
		is_mail = 0;
		cmd = "RCPT TO:";
		p = line + 8;
	} else {
		return fail(why, whylen, "line %u: unknown envelope line (expected MAIL FROM: "
			    "or RCPT TO:)", lineno);
	}
	if (is_mail && msg->sender != NULL)
		return fail(why, whylen, "line %u: duplicate MAIL FROM", lineno);
	if (!is_mail && msg->sender == NULL)
		return fail(why, whylen, "line %u: RCPT TO before MAIL FROM", lineno);
	if (!is_mail && msg->nrcpt + 1 > Q_MAX_RCPTS)
		return fail(why, whylen, "line %u: too many recipients (more than %d)",
			    lineno, Q_MAX_RCPTS);

	if (p < end && *p == ' ')
		p++;
	if (p >= end || *p != '<')
		return fail(why, whylen, "line %u: %s address must be in <>", lineno, cmd);
	addr = ++p;
	/* '>' may appear inside a quoted local part: honour quotes and \ */
	for (; p < end; p++) {
		if (inq && *p == '\\' && p + 1 < end) {
			p++;
			continue;
		}
		if (*p == '"')
			inq = !inq;
		else if (*p == '>' && !inq)
			break;
	}
	if (p >= end)
		return fail(why, whylen, "line %u: %s address has no closing >", lineno, cmd);
	alen = (size_t)(p - addr);
	p++;

	if (is_mail) {
		if (alen > 0 && q_addr_check(addr, alen, awhy, sizeof(awhy)) != 0)
			return fail(why, whylen, "line %u: %s %s", lineno, cmd, awhy);
		if ((msg->sender = dup_n(addr, alen)) == NULL)
			return fail(why, whylen, "line %u: out of memory", lineno);
		return parse_params(msg, NULL, p, (size_t)(end - p), cmd, lineno, why, whylen);
	}

	if (alen == 0)
		return fail(why, whylen, "line %u: %s empty address <>", lineno, cmd);
	if (q_addr_check(addr, alen, awhy, sizeof(awhy)) != 0)
		return fail(why, whylen, "line %u: %s %s", lineno, cmd, awhy);
	if (msg->nrcpt == *rcap) {
		size_t ncap = *rcap ? *rcap * 2 : 8;
		q_rcpt_t *nr;

		if (ncap > Q_MAX_RCPTS)
			ncap = Q_MAX_RCPTS;
		nr = realloc(msg->rcpt, ncap * sizeof(*nr));
		if (nr == NULL)
			return fail(why, whylen, "line %u: out of memory", lineno);
		msg->rcpt = nr;
		*rcap = ncap;
	}
	r = &msg->rcpt[msg->nrcpt];
	memset(r, 0, sizeof(*r));
	/* count it now so that an error below frees what it owns */
	msg->nrcpt++;
	if ((r->addr = dup_n(addr, alen)) == NULL)
		return fail(why, whylen, "line %u: out of memory", lineno);
	{
		const char *at = strrchr(r->addr, '@');	/* validated: present */
		size_t dl = strlen(at + 1);

		if ((r->domain = dup_n(at + 1, dl)) == NULL)
			return fail(why, whylen, "line %u: out of memory", lineno);
		for (k = 0; k < dl; k++)
			r->domain[k] = (char)tolower((unsigned char)r->domain[k]);
	}
	if (parse_params(msg, r, p, (size_t)(end - p), cmd, lineno, why, whylen) != Q_OK)
		return Q_CORRUPT;
	if (rcpt_is_dup(msg, r)) {
		msg->nrcpt--;
		free(r->addr);
		free(r->domain);
		free(r->orcpt);
		memset(r, 0, sizeof(*r));
	}
	return Q_OK;
}

/* rcpt_is_dup - 1 when r (the last one) repeats an earlier recipient: same
 * local part, same domain in any case.  O(n) per call, O(n^2) per file:
 * 500,000 short compares at the 1,000-recipient limit, cheap. */
static int
rcpt_is_dup(const q_msg_t *msg, const q_rcpt_t *r)
{
	size_t i, ll = strlen(r->addr) - strlen(r->domain);

	for (i = 0; i + 1 < msg->nrcpt; i++) {
		const q_rcpt_t *o = &msg->rcpt[i];

		if (strlen(o->addr) - strlen(o->domain) == ll &&
		    memcmp(o->addr, r->addr, ll) == 0 && strcmp(o->domain, r->domain) == 0)
			return 1;
	}
	return 0;
}

/* parse_params - " KEY=VALUE ..." after the address; r NULL for MAIL */
static int
parse_params(q_msg_t *msg, q_rcpt_t *r, const char *p, size_t n, const char *cmd,
	     unsigned lineno, char *why, size_t whylen)
{
	const char *end = p + n, *kw, *val;
	size_t kwlen, vlen;
	int seen_ret = 0, seen_envid = 0, seen_notify = 0, seen_orcpt = 0;

	while (p < end) {
		if (*p != ' ' && *p != '\t')
			return fail(why, whylen, "line %u: %s garbage after the address", lineno, cmd);
		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		if (p >= end)
			break;		/* trailing blanks are tolerated */
		kw = p;
		while (p < end && *p != '=' && *p != ' ' && *p != '\t')
			p++;
		kwlen = (size_t)(p - kw);
		if (p >= end || *p != '=') {
			int known = (kwlen == 3 && strncasecmp(kw, "RET", 3) == 0) ||
				    (kwlen == 5 && strncasecmp(kw, "ENVID", 5) == 0) ||
				    (kwlen == 6 && strncasecmp(kw, "NOTIFY", 6) == 0) ||
				    (kwlen == 5 && strncasecmp(kw, "ORCPT", 5) == 0);

			return fail(why, whylen, known ? "line %u: %s parameter %.*s has no value"
				    : "line %u: %s unknown parameter %.*s", lineno, cmd,
				    (int)(kwlen > 40 ? 40 : kwlen), kw);
		}
		val = ++p;
		while (p < end && *p != ' ' && *p != '\t')
			p++;
		vlen = (size_t)(p - val);
		if (vlen == 0)
			return fail(why, whylen, "line %u: %s parameter %.*s has an empty value",
				    lineno, cmd, (int)(kwlen > 40 ? 40 : kwlen), kw);

		if (r == NULL && kwlen == 3 && strncasecmp(kw, "RET", 3) == 0) {
			if (seen_ret++)
				return fail(why, whylen, "line %u: duplicate RET parameter", lineno);
			if (vlen == 4 && strncasecmp(val, "FULL", 4) == 0)
				msg->ret = Q_RET_FULL;
			else if (vlen == 4 && strncasecmp(val, "HDRS", 4) == 0)
				msg->ret = Q_RET_HDRS;
			else
				return fail(why, whylen, "line %u: RET must be FULL or HDRS", lineno);
		} else if (r == NULL && kwlen == 5 && strncasecmp(kw, "ENVID", 5) == 0) {
			if (seen_envid++)
				return fail(why, whylen, "line %u: duplicate ENVID parameter", lineno);
			if (vlen > MAX_ENVID)
				return fail(why, whylen, "line %u: ENVID longer than %d bytes",
					    lineno, MAX_ENVID);
			if (!xtext_ok(val, vlen))
				return fail(why, whylen, "line %u: ENVID is not valid xtext", lineno);
			if ((msg->envid = dup_n(val, vlen)) == NULL)
				return fail(why, whylen, "line %u: out of memory", lineno);
		} else if (r != NULL && kwlen == 6 && strncasecmp(kw, "NOTIFY", 6) == 0) {
			int e;

			if (seen_notify++)
				return fail(why, whylen, "line %u: duplicate NOTIFY parameter", lineno);
			e = notify_parse(val, vlen, &r->notify);
			if (e == -2)
				return fail(why, whylen, "line %u: NOTIFY=NEVER cannot be combined "
					    "with other values", lineno);
			if (e != 0)
				return fail(why, whylen, "line %u: NOTIFY must be NEVER or a list of "
					    "SUCCESS, FAILURE, DELAY", lineno);
		} else if (r != NULL && kwlen == 5 && strncasecmp(kw, "ORCPT", 5) == 0) {
			const char *semi = memchr(val, ';', vlen);
			size_t tl, j;

			if (seen_orcpt++)
				return fail(why, whylen, "line %u: duplicate ORCPT parameter", lineno);
			if (vlen > MAX_ORCPT)
				return fail(why, whylen, "line %u: ORCPT longer than %d bytes",
					    lineno, MAX_ORCPT);
			if (semi == NULL || semi == val)
				return fail(why, whylen, "line %u: ORCPT must be addr-type;xtext", lineno);
			tl = (size_t)(semi - val);
			for (j = 0; j < tl; j++)
				if (!is_atext((unsigned char)val[j]))
					return fail(why, whylen, "line %u: ORCPT address type is "
						    "not an atom", lineno);
			if (vlen - tl - 1 == 0 || !xtext_ok(semi + 1, vlen - tl - 1))
				return fail(why, whylen, "line %u: ORCPT address is not valid xtext",
					    lineno);
			if ((r->orcpt = dup_n(val, vlen)) == NULL)
				return fail(why, whylen, "line %u: out of memory", lineno);
		} else {
			return fail(why, whylen, "line %u: %s unknown parameter %.*s", lineno, cmd,
				    (int)(kwlen > 40 ? 40 : kwlen), kw);
		}
	}
	return Q_OK;
}

/* xtext_ok - RFC 3461 xtext: printable ASCII but '+' and '=', or +HH */
static int
xtext_ok(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '+') {
			if (i + 2 >= n)
				return 0;
			if (!isxdigit((unsigned char)s[i + 1]) || !isxdigit((unsigned char)s[i + 2]))
				return 0;
			i += 2;
		} else if (c < 0x21 || c > 0x7e || c == '=') {
			return 0;
		}
	}
	return 1;
}

/* notify_parse - NEVER | SUCCESS,FAILURE,DELAY; -2 NEVER mixed, -1 bad */
static int
notify_parse(const char *s, size_t n, unsigned *out)
{
	const char *end = s + n, *item;
	unsigned v = 0, bit;
	size_t il;

	while (s <= end) {
		item = s;
		while (s < end && *s != ',')
			s++;
		il = (size_t)(s - item);
		if (il == 5 && strncasecmp(item, "NEVER", 5) == 0)
			bit = Q_NOTIFY_NEVER;
		else if (il == 7 && strncasecmp(item, "SUCCESS", 7) == 0)
			bit = Q_NOTIFY_SUCCESS;
		else if (il == 7 && strncasecmp(item, "FAILURE", 7) == 0)
			bit = Q_NOTIFY_FAILURE;
		else if (il == 5 && strncasecmp(item, "DELAY", 5) == 0)
			bit = Q_NOTIFY_DELAY;
		else
			return -1;
		if (v & bit)
			return -1;	/* repeated value */
		v |= bit;
		s++;		/* past ',' (or past end: loop ends) */
	}
	if ((v & Q_NOTIFY_NEVER) && v != Q_NOTIFY_NEVER)
		return -2;
	*out = v;
	return 0;
}

/* is_atext - RFC 5322 atext (ASCII) */
static int
is_atext(unsigned char c)
{
	return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* q_utf8_len - length (2..4) of a valid UTF-8 sequence at p, 0 if invalid:
 * no overlong forms, no surrogates, nothing above U+10FFFF */
size_t
q_utf8_len(const unsigned char *p, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		cp = p[0] & 0x1fu;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		cp = p[0] & 0x0fu;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		cp = p[0] & 0x07u;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3fu);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* q_addr_check - validate local@domain; 0, or -1 with the reason in why */
int
q_addr_check(const char *a, size_t len, char *why, size_t whylen)
{
	size_t i, ul;

	if (len == 0) {
		fail(why, whylen, "address is empty");
		return -1;
	}
	if (len > Q_MAX_ADDR) {
		fail(why, whylen, "address longer than %d bytes", Q_MAX_ADDR);
		return -1;
	}
	if (a[0] == '@') {
		fail(why, whylen, memchr(a, ':', len) ? "address has a source route "
		     "(not supported)" : "address has no local part");
		return -1;
	}
	i = 0;
	if (a[0] == '"') {
		for (i = 1; i < len && a[i] != '"'; i++) {
			unsigned char c = (unsigned char)a[i];

			if (c == '\\') {
				if (i + 1 >= len || a[i + 1] < 0x20 || a[i + 1] > 0x7e) {
					fail(why, whylen, "bad escape in quoted local part");
					return -1;
				}
				i++;
			} else if (c >= 0x80) {
				if ((ul = q_utf8_len((const unsigned char *)a + i, len - i)) == 0) {
					fail(why, whylen, "local part is not valid UTF-8");
					return -1;
				}
				i += ul - 1;
			} else if (c < 0x20 || c == 0x7f) {
				fail(why, whylen, "control character in quoted local part");
				return -1;
			}
		}
		if (i >= len) {
			fail(why, whylen, "unterminated quoted local part");
			return -1;
		}
		i++;
		if (i >= len || a[i] != '@') {
			fail(why, whylen, i >= len ? "address has no domain part" :
			     "garbage after the quoted local part");
			return -1;
		}
	} else {
		for (i = 0; i < len && a[i] != '@'; i++) {
			unsigned char c = (unsigned char)a[i];

			if (c == '.') {
				if (i == 0 || a[i - 1] == '.' || i + 1 >= len || a[i + 1] == '@') {
					fail(why, whylen, "local part has a leading, trailing or "
					     "double dot");
					return -1;
				}
			} else if (c >= 0x80) {
				if ((ul = q_utf8_len((const unsigned char *)a + i, len - i)) == 0) {
					fail(why, whylen, "local part is not valid UTF-8");
					return -1;
				}
				i += ul - 1;
			} else if (!is_atext(c)) {
				if (c < 0x21 || c == 0x7f)
					fail(why, whylen, "invalid character 0x%02x in local part", c);
				else
					fail(why, whylen, "invalid character '%c' in local part", c);
				return -1;
			}
		}
		if (i >= len) {
			fail(why, whylen, "address has no domain part");
			return -1;
		}
	}
	if (i > MAX_LOCAL) {
		fail(why, whylen, "local part longer than %d bytes", MAX_LOCAL);
		return -1;
	}
	return domain_check(a + i + 1, len - i - 1, why, whylen);
}

/* domain_check - LDH labels, or an address literal [1.2.3.4] / [IPv6:...] */
static int
domain_check(const char *d, size_t n, char *why, size_t whylen)
{
	size_t i, label = 0;
	char lit[64];

	if (n == 0) {
		fail(why, whylen, "address has an empty domain part");
		return -1;
	}
	if (n > MAX_DOMAIN) {
		fail(why, whylen, "domain longer than %d bytes", MAX_DOMAIN);
		return -1;
	}
	if (d[0] == '[') {
		struct in6_addr a6;
		int ok = 0;

		if (d[n - 1] != ']' || n - 2 >= sizeof(lit) || n < 3) {
			fail(why, whylen, "invalid address literal in domain");
			return -1;
		}
		memcpy(lit, d + 1, n - 2);
		lit[n - 2] = '\0';
		if (strncasecmp(lit, "IPv6:", 5) == 0)
			ok = inet_pton(AF_INET6, lit + 5, &a6) == 1;
		else
			ok = inet_pton(AF_INET, lit, &a6) == 1;
		if (!ok) {
			fail(why, whylen, "invalid address literal in domain");
			return -1;
		}
		return 0;
	}
	for (i = 0; i <= n; i++) {
		unsigned char c = i < n ? (unsigned char)d[i] : '.';

		if (c == '.') {
			if (label == 0) {
				fail(why, whylen, "empty label in domain");
				return -1;
			}
			if (d[i - 1] == '-') {
				fail(why, whylen, "domain label ends with '-'");
				return -1;
			}
			label = 0;
			continue;
		}
		if (c == '@') {
			fail(why, whylen, "more than one @ in address");
			return -1;
		}
		if (!isalnum(c) && c != '-') {
			if (c < 0x21 || c >= 0x7f)
				fail(why, whylen, "invalid character 0x%02x in domain "
				     "(use A-labels for IDN)", c);
			else
				fail(why, whylen, "invalid character '%c' in domain", c);
			return -1;
		}
		if (c == '-' && label == 0) {
			fail(why, whylen, "domain label starts with '-'");
			return -1;
		}
		if (++label > MAX_LABEL) {
			fail(why, whylen, "domain label longer than %d bytes", MAX_LABEL);
			return -1;
		}
	}
	return 0;
}

/* q_msg_clear - free what msg owns and zero it; msg itself is kept */
void
q_msg_clear(q_msg_t *msg)
{
	size_t i;

	if (msg == NULL)
		return;
	for (i = 0; i < msg->nrcpt; i++) {
		free(msg->rcpt[i].addr);
		free(msg->rcpt[i].domain);
		free(msg->rcpt[i].orcpt);
		free(msg->rcpt[i].last_error);
		free(msg->rcpt[i].relay);
	}
	free(msg->rcpt);
	free(msg->sender);
	free(msg->envid);
	free(msg->data);
	memset(msg, 0, sizeof(*msg));
}

/* q_msg_free - free a heap message and everything it owns; NULL is fine */
void
q_msg_free(q_msg_t *msg)
{
	if (msg == NULL)
		return;
	q_msg_clear(msg);
	free(msg);
}
