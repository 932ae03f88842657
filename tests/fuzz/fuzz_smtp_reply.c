/*
 * tests/fuzz/fuzz_smtp_reply.c - libFuzzer target for engine/smtp_proto.c.
 *
 * The input is what a hostile server could send: it is cut into lines with
 * smtp_next_line(), assembled into replies with smtp_reply_feed(), and each
 * completed reply goes through smtp_caps_parse() and smtp_reply_dsn().  The
 * same bytes are then pushed through the DATA encoder in small pieces and
 * checked against smtp_dot_encoded_size().  Any broken invariant aborts.
 *
 * Build: clang -fsanitize=fuzzer,address -I. tests/fuzz/fuzz_smtp_reply.c \
 *	engine/smtp_proto.c -o fuzz_smtp_reply
 */
#include <stdlib.h>
#include <string.h>

#include "engine/smtp_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void	check_reply(const smtp_reply_parser_t *);
static void	check_dot(const char *, size_t, size_t);

/* check_reply - a completed reply must be within every bound */
static void
check_reply(const smtp_reply_parser_t *p)
{
	const smtp_reply_t	*r = &p->reply;
	smtp_caps_t		 caps;
	const char		*dsn;

	if (r->code < 200 || r->code > 599 || r->nlines < 1 ||
	    r->nlines > SMTP_REPLY_MAX_LINES)
		abort();
	if (memchr(r->text, '\0', sizeof(r->text)) == NULL ||
	    memchr(r->esc, '\0', sizeof(r->esc)) == NULL)
		abort();
	if (r->esc[0] != '\0' && r->esc[0] != '0' + r->code / 100)
		abort();
	smtp_caps_parse(r, &caps);
	if ((caps.flags & ~0xffu) != 0)
		abort();
	dsn = smtp_reply_dsn(r);
	if (dsn == NULL || (dsn[0] != '2' && dsn[0] != '4' && dsn[0] != '5'))
		abort();
}

/* check_dot - encode in pieces of step bytes into windows of 3..10 bytes */
static void
check_dot(const char *in, size_t len, size_t step)
{
	static char	out[4096];
	smtp_dot_t	d;
	uint64_t	total = 0;
	size_t		i = 0, used, n, win = 3 + step % 8;

	smtp_dot_init(&d);
	while (i < len) {
		size_t chunk = len - i < step ? len - i : step;

		n = smtp_dot_encode(&d, in + i, chunk, &used, out, win);
		if (n > win || used > chunk || (n == 0 && used == 0))
			abort();
		i += used;
		total += n;
	}
	total += smtp_dot_finish(&d, out, 5);
	if (total != smtp_dot_encoded_size(in, len))
		abort();
}

/* LLVMFuzzerTestOneInput - one hostile server conversation */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char		*buf = (const char *)data;
	size_t			 len = size, ll, used;
	smtp_reply_parser_t	 p;
	int			 rc;

	smtp_reply_init(&p);
	while (len > 0) {
		rc = smtp_next_line(buf, len, &ll, &used);
		if (rc == SP_AGAIN) {
			/* the end of the stream: feed the rest as a line */
			ll = len;
			used = len;
		} else if (rc == SP_ERROR) {
			if (len < SMTP_LINE_MAX)
				abort();
			used = SMTP_LINE_MAX;	/* skip and go on */
			buf += used;
			len -= used;
			continue;
		} else if (ll >= SMTP_LINE_MAX || used > len || ll >= used)
			abort();
		rc = smtp_reply_feed(&p, buf, ll);
		if (rc == SP_OK)
			check_reply(&p);
		else if (rc == SP_ERROR) {
			if (strncmp(p.error, "malformed reply line", 20) != 0 ||
			    memchr(p.error, '\0', sizeof(p.error)) == NULL)
				abort();
		} else if (rc != SP_AGAIN || !p.in_progress)
			abort();
		buf += used;
		len -= used;
	}
	if (size > 0)
		check_dot((const char *)data, size, 1 + data[0] % 23);
	return 0;
}
