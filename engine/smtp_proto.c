/*
 * engine/smtp_proto.c - the pure parts of the SMTP client protocol.
 *
 * smtp_next_line()	cut one LF-terminated line off an input buffer
 * smtp_reply_init()	reset a reply parser
 * smtp_reply_feed()	add one reply line; SP_AGAIN / SP_OK / SP_ERROR
 * smtp_caps_parse()	EHLO keywords from a completed reply
 * smtp_dot_init(), smtp_dot_encode(), smtp_dot_finish()
 *			streaming DATA encoder (CRLF, dot-stuffing, ".")
 * smtp_dot_encoded_size() exact wire size of a message, for SIZE=
 * smtp_reply_dsn()	the enhanced status to report for a reply
 *
 * Nothing here allocates or does I/O.  Buffers are the caller's: lines are
 * borrowed for the duration of a call; a parser owns its reply until the
 * next feed.  Errors come back as SP_ERROR with a printable, bounded reason
 * in p->error.  Every byte comes from a peer we do not trust: all lengths
 * are checked against the fixed limits in smtp_proto.h.
 */
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <strings.h>
#include <stdio.h>

#include "engine/smtp_proto.h"

#define EXCERPT_MAX	48	/* bytes of a bad line quoted in an error */
#define STR(x)		STR2(x)
#define STR2(x)		#x

static void	reply_error(smtp_reply_parser_t *, const char *, const char *, size_t);
static size_t	esc_parse(const char *, size_t, int);
static int	esc_valid(const char *, int);
static void	text_append(smtp_reply_t *, const char *, size_t, int);
static int	word_is(const char *, size_t, const char *);
static uint64_t	size_param(const char *, size_t);

/* smtp_next_line - find one LF-terminated line at the start of buf */
int
smtp_next_line(const char *buf, size_t len, size_t *linelen, size_t *consumed)
{
	size_t		 scan = len < SMTP_LINE_MAX ? len : SMTP_LINE_MAX;
	const char	*lf;
	size_t		 n;

	/*
	 * Only the first SMTP_LINE_MAX bytes can hold a legal line end, so a
	 * 1 MB line costs one bounded memchr, not a scan of everything.
	 */
	lf = memchr(buf, '\n', scan);
	if (lf == NULL)
		return len >= SMTP_LINE_MAX ? SP_ERROR : SP_AGAIN;
	n = (size_t)(lf - buf);
	*consumed = n + 1;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	*linelen = n;
	return SP_OK;
}

/* smtp_reply_init - reset the parser to expect the first line of a reply */
void
smtp_reply_init(smtp_reply_parser_t *p)
{
	memset(p, 0, sizeof(*p));
}

/* reply_error - record why a line was refused, with a safe excerpt of it */
static void
reply_error(smtp_reply_parser_t *p, const char *why, const char *line, size_t len)
{
	char	ex[EXCERPT_MAX + 4];
	size_t	i, n = len < EXCERPT_MAX ? len : EXCERPT_MAX;

	/* Logs quote this text: keep it to printable ASCII without quotes. */
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)line[i];

		ex[i] = (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ?
		    '?' : (char)c;
	}
	if (len > n) {
		memcpy(ex + n, "...", 3);
		n += 3;
	}
	ex[n] = '\0';
	snprintf(p->error, sizeof(p->error), "malformed reply line (%s): \"%s\"",
	    why, ex);
	p->in_progress = 0;
}

/*
 * esc_parse - length of an RFC 3463 code "X.Y.Z" of class cls at the start
 * of s (followed by the end or a blank), 0 if there is none
 */
static size_t
esc_parse(const char *s, size_t len, int cls)
{
	size_t	i = 1, part, digits;

	if (len < 5 || s[0] != '0' + cls || s[1] != '.')
		return 0;
	for (part = 0; part < 2; part++) {
		i++;		/* the '.' */
		for (digits = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			digits++;
		if (digits < 1 || digits > 3)
			return 0;
		if (part == 0 && (i >= len || s[i] != '.'))
			return 0;
	}
	if (i < len && s[i] != ' ' && s[i] != '\t')
		return 0;
	return i;
}

/* esc_valid - whether esc is a well-formed enhanced code of class cls */
static int
esc_valid(const char *esc, int cls)
{
	size_t	len = strnlen(esc, 16);

	return len > 0 && len < 16 && esc_parse(esc, len, cls) == len;
}

/*
 * text_append - add one line's text to the reply, "\n" first unless it is
 * the first line; truncates on a UTF-8 character boundary so a log never
 * sees half a character
 */
static void
text_append(smtp_reply_t *r, const char *s, size_t len, int first)
{
	size_t	used = strnlen(r->text, sizeof(r->text) - 1);
	size_t	room = sizeof(r->text) - 1 - used;
	size_t	n, back;

	if (!first) {
		if (room == 0)
			return;
		r->text[used++] = '\n';
		room--;
	}
	n = len;
	if (n > room) {
		n = room;
		/*
		 * s[n] is the first byte dropped: if it continues a UTF-8
		 * sequence, drop the rest of that character too (at most 3
		 * bytes back, so garbage cannot eat the whole line)
		 */
		for (back = 0; back < 3 && n > 0 &&
		    ((unsigned char)s[n] & 0xc0) == 0x80; back++)
			n--;
	}
	memcpy(r->text + used, s, n);
	r->text[used + n] = '\0';
}

/* smtp_reply_feed - add one reply line (without CRLF) to the reply */
int
smtp_reply_feed(smtp_reply_parser_t *p, const char *line, size_t len)
{
	smtp_reply_t	*r = &p->reply;
	const char	*text;
	size_t		 tlen, i, e;
	int		 code, last, first;

	if (!p->in_progress) {
		memset(r, 0, sizeof(*r));
		p->error[0] = '\0';
	}
	first = !p->in_progress;

	/*
	 * Tolerate trailing blanks and stray CRs ("250 ok \r"); anything
	 * else that is not printable text is refused below.
	 */
	while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t' ||
	    line[len - 1] == '\r'))
		len--;

	if (len < 3 || line[0] < '2' || line[0] > '5' ||
	    line[1] < '0' || line[1] > '9' || line[2] < '0' || line[2] > '9') {
		reply_error(p, "no reply code", line, len);
		return SP_ERROR;
	}
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (len == 3)
		last = 1;
	else if (line[3] == ' ')
		last = 1;
	else if (line[3] == '-')
		last = 0;
	else {
		reply_error(p, "bad separator after the code", line, len);
		return SP_ERROR;
	}
	for (i = 3; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			reply_error(p, c == 0 ? "NUL byte" : "control character",
			    line, len);
			return SP_ERROR;
		}
	}
	if (!first && code != r->code) {
		reply_error(p, "reply code changed within a multi-line reply",
		    line, len);
		return SP_ERROR;
	}
	if (r->nlines >= SMTP_REPLY_MAX_LINES) {
		reply_error(p, "more than " STR(SMTP_REPLY_MAX_LINES) " lines in one reply", line, len);
		return SP_ERROR;
	}

	r->code = code;
	r->nlines++;
	text = len > 4 ? line + 4 : "";
	tlen = len > 4 ? len - 4 : 0;

	/*
	 * The enhanced code is taken from the first line only, and only of
	 * the reply's own class: "250 5.1.1" is text, not a status.  A copy
	 * of it leading a continuation line is dropped too.
	 */
	if (first) {
		e = esc_parse(text, tlen, code / 100);
		if (e > 0 && e < sizeof(r->esc)) {
			memcpy(r->esc, text, e);
			r->esc[e] = '\0';
		} else
			e = 0;
	} else {
		size_t el = strlen(r->esc);

		e = 0;
		if (el > 0 && tlen >= el && memcmp(text, r->esc, el) == 0 &&
		    (tlen == el || text[el] == ' ' || text[el] == '\t'))
			e = el;
	}
	if (e > 0) {
		text += e;
		tlen -= e;
		while (tlen > 0 && (*text == ' ' || *text == '\t')) {
			text++;
			tlen--;
		}
	}
	text_append(r, text, tlen, first);

	if (last) {
		p->in_progress = 0;
		return SP_OK;
	}
	p->in_progress = 1;
	return SP_AGAIN;
}

/* word_is - whether the len bytes at s are keyword kw, in any case */
static int
word_is(const char *s, size_t len, const char *kw)
{
	return strlen(kw) == len && strncasecmp(s, kw, len) == 0;
}

/* size_param - the SIZE argument: digits only, 0 when absent, bad or too big */
static uint64_t
size_param(const char *s, size_t len)
{
	uint64_t	v = 0;
	size_t		i;

	for (i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return 0;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return 0;	/* absurd limit: same as none */
		v = v * 10 + d;
	}
	return v;
}

/* smtp_caps_parse - capabilities from the 250 reply to EHLO */
void
smtp_caps_parse(const smtp_reply_t *r, smtp_caps_t *caps)
{
	const char	*s, *end, *eol, *kw;
	size_t		 kwlen;

	caps->flags = 0;
	caps->size_limit = 0;
	if (r->code / 100 != 2)
		return;
	s = r->text;
	end = s + strnlen(r->text, sizeof(r->text));
	/* the first line is the server's name and greeting: skip it */
	s = memchr(s, '\n', (size_t)(end - s));
	while (s != NULL && s < end) {
		s++;
		eol = memchr(s, '\n', (size_t)(end - s));
		if (eol == NULL)
			eol = end;
		while (s < eol && (*s == ' ' || *s == '\t'))
			s++;
		kw = s;
		while (s < eol && *s != ' ' && *s != '\t')
			s++;
		kwlen = (size_t)(s - kw);
		while (s < eol && (*s == ' ' || *s == '\t'))
			s++;

		if (word_is(kw, kwlen, "STARTTLS"))
			caps->flags |= SMTP_CAP_STARTTLS;
		else if (word_is(kw, kwlen, "PIPELINING"))
			caps->flags |= SMTP_CAP_PIPELINING;
		else if (word_is(kw, kwlen, "SIZE")) {
			const char *a = s;

			while (s < eol && *s != ' ' && *s != '\t')
				s++;
			caps->flags |= SMTP_CAP_SIZE;
			caps->size_limit = size_param(a, (size_t)(s - a));
		} else if (word_is(kw, kwlen, "8BITMIME"))
			caps->flags |= SMTP_CAP_8BITMIME;
		else if (word_is(kw, kwlen, "ENHANCEDSTATUSCODES"))
			caps->flags |= SMTP_CAP_ENHANCED;
		else if (word_is(kw, kwlen, "DSN"))
			caps->flags |= SMTP_CAP_DSN;
		else if (word_is(kw, kwlen, "SMTPUTF8"))
			caps->flags |= SMTP_CAP_SMTPUTF8;
		else if (word_is(kw, kwlen, "CHUNKING"))
			caps->flags |= SMTP_CAP_CHUNKING;
		s = eol < end ? eol : NULL;
	}
}

/* smtp_dot_init - start encoding a new message */
void
smtp_dot_init(smtp_dot_t *d)
{
	d->at_bol = 1;
	d->pending_cr = 0;
}

/*
 * smtp_dot_encode - encode in into out, as far as out has room.
 *
 * The common case is a message already in CRLF form with no leading dots:
 * each line is then found with two memchr calls and copied, CRLF included,
 * in one memcpy.  Other line ends and dots take the slow path, two output
 * bytes at a time.  A CR at the very end of in is consumed and remembered
 * (pending_cr) so that a CRLF split between two calls stays one line end.
 */
size_t
smtp_dot_encode(smtp_dot_t *d, const char *in, size_t inlen, size_t *consumed,
		char *out, size_t outcap)
{
	size_t		 i = 0, o = 0;
#ifdef __SSE2__
	const __m128i	 v_lf = _mm_set1_epi8('\n'), v_cr = _mm_set1_epi8('\r');
#endif

	while (i < inlen) {
		const char	*p, *lf, *cr;
		size_t		 avail, end, run, n;
		int		 whole;

#ifdef __SSE2__
		/*
		 * Fast path: 16 bytes at a time while they hold no CR or LF
		 * (most of a base64 attachment), copied as they are; the byte
		 * that stops it is handled by the general step below.  Same
		 * output as without it (the property test compares).
		 */
		if (!d->pending_cr && !(d->at_bol && in[i] == '.')) {
			while (i + 16 <= inlen && outcap - o >= 16) {
				__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(in + i));
				int mk = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, v_lf),
				    _mm_cmpeq_epi8(v, v_cr)));
				unsigned k;

				_mm_storeu_si128((__m128i *)(void *)(out + o), v);
				if (mk == 0) {
					i += 16;
					o += 16;
					d->at_bol = 0;
					continue;
				}
				k = (unsigned)__builtin_ctz((unsigned)mk);
				i += k;
				o += k;
				if (k > 0)
					d->at_bol = 0;
				break;
			}
			if (i >= inlen)
				break;
		}
#endif
		p = in + i;
		avail = inlen - i;
		if (*p == '\n' && !d->pending_cr) {
			/* a bare LF: the commonest line end in spool files */
			if (outcap - o < 2)
				break;
			out[o++] = '\r';
			out[o++] = '\n';
			i++;
			d->at_bol = 1;
			continue;
		}
		if (d->pending_cr) {
			if (outcap - o < 2)
				break;
			if (*p == '\n')
				i++;
			out[o++] = '\r';
			out[o++] = '\n';
			d->pending_cr = 0;
			d->at_bol = 1;
			continue;
		}
		if (d->at_bol && *p == '.') {
			if (outcap - o < 2)
				break;
			out[o++] = '.';
			out[o++] = '.';
			i++;
			d->at_bol = 0;
			continue;
		}

		lf = memchr(p, '\n', avail);
		end = lf != NULL ? (size_t)(lf - p) : avail;
		cr = memchr(p, '\r', end);
		whole = 0;
		if (cr == NULL)
			run = end;		/* up to a bare LF or the end */
		else if (lf != NULL && cr == lf - 1) {
			run = end + 1;		/* a clean CRLF line */
			whole = 1;
		} else
			run = (size_t)(cr - p);	/* up to a lone CR */

		if (run > 0) {
			n = run <= outcap - o ? run : outcap - o;
			/* never split a CRLF: its LF would look bare later */
			if (whole && n == run - 1)
				n--;
			if (n == 0)
				break;
			memcpy(out + o, p, n);
			o += n;
			i += n;
			d->at_bol = whole && n == run;
			continue;
		}

		/* *p is a bare LF or a CR not followed by LF in this line */
		if (*p == '\r' && avail == 1) {
			i++;
			d->pending_cr = 1;
			continue;
		}
		if (outcap - o < 2)
			break;
		out[o++] = '\r';
		out[o++] = '\n';
		i += (*p == '\r' && p[1] == '\n') ? 2 : 1;
		d->at_bol = 1;
	}
	*consumed = i;
	return o;
}

/* smtp_dot_finish - the end of data: a line end if needed, then ".\r\n";
 * writes nothing and returns 0 when outcap is too small for it */
size_t
smtp_dot_finish(smtp_dot_t *d, char *out, size_t outcap)
{
	const char	*t = (d->at_bol && !d->pending_cr) ? ".\r\n" : "\r\n.\r\n";
	size_t		 n = strlen(t);

	if (outcap < n)
		return 0;
	memcpy(out, t, n);
	smtp_dot_init(d);
	return n;
}

/* smtp_dot_encoded_size - exact bytes smtp_dot_encode + finish produce */
uint64_t
smtp_dot_encoded_size(const char *in, size_t inlen)
{
	uint64_t	 n = 0;
	size_t		 i = 0, end, k;
	const char	*lf, *cr;
	int		 bol = 1;

	while (i < inlen) {
		if (bol && in[i] == '.') {
			n += 2;
			i++;
			bol = 0;
			continue;
		}
		lf = memchr(in + i, '\n', inlen - i);
		end = lf != NULL ? (size_t)(lf - (in + i)) : inlen - i;
		cr = memchr(in + i, '\r', end);
		if (cr == NULL) {
			n += end;
			i += end;
			if (lf != NULL) {
				n += 2;		/* LF or CRLF → CRLF */
				i++;
				bol = 1;
			} else if (end > 0)
				bol = 0;
			continue;
		}
		k = (size_t)(cr - (in + i));
		n += k + 2;			/* lone CR or CRLF → CRLF */
		i += k + 1;
		if (i < inlen && in[i] == '\n')
			i++;
		bol = 1;
	}
	return n + (bol ? 3 : 5);
}

/* smtp_reply_dsn - the reply's own enhanced code if usable, else a default */
const char *
smtp_reply_dsn(const smtp_reply_t *r)
{
	int	cls = r->code / 100;

	if ((cls == 2 || cls == 4 || cls == 5) && esc_valid(r->esc, cls))
		return r->esc;
	if (cls == 2)
		return "2.0.0";
	if (cls == 5)
		return "5.0.0";
	/* 3xx where a final reply was due, or no reply at all: try again */
	return "4.0.0";
}
