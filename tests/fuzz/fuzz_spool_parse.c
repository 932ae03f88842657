/*
 * tests/fuzz/fuzz_spool_parse.c - libFuzzer target for queue/parse.c.
 *
 * The input is a spool file as a hostile local submitter could drop it in
 * new/: it goes through q_parse() and q_parse_envelope(), whose results are
 * checked against the promises of queue.h (a parsed message has a sender, at
 * least one and at most Q_MAX_RCPTS recipients, each with a domain, and a
 * body offset inside the input), then freed with q_msg_clear() and
 * q_msg_free().  LeakSanitizer catches anything a failed parse leaves.
 *
 * Build: cmake -DSEALPOST_FUZZ=ON with clang (see tests/CMakeLists.txt).
 */
#include <stdlib.h>
#include <string.h>

#include "queue/queue.h"
#include "queue/q_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void	check_msg(const q_msg_t *, size_t, int);

/* check_msg - a parsed message must keep every bound queue.h promises */
static void
check_msg(const q_msg_t *m, size_t size, int full)
{
	size_t	i;

	if (m->sender == NULL || m->nrcpt < 1 || m->nrcpt > Q_MAX_RCPTS ||
	    m->rcpt == NULL || m->data != NULL)
		abort();
	if (full && (m->body_off > size || m->body_off == 0))
		abort();
	if (strlen(m->sender) > Q_MAX_ADDR)
		abort();
	for (i = 0; i < m->nrcpt; i++) {
		const q_rcpt_t *r = &m->rcpt[i];

		if (r->addr == NULL || r->domain == NULL || r->addr[0] == '\0' ||
		    r->domain[0] == '\0' || strlen(r->addr) > Q_MAX_ADDR)
			abort();
		if (r->status != Q_RCPT_PENDING)
			abort();
	}
}

/* LLVMFuzzerTestOneInput - one spool file */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*buf = (const char *)data;
	char		 why[256];
	q_msg_t		 m, *mp;
	int		 rc;

	memset(&m, 0, sizeof(m));
	why[0] = '\0';
	rc = q_parse(buf, size, &m, why, sizeof(why));
	if (rc == Q_OK)
		check_msg(&m, size, 1);
	else if (rc != Q_CORRUPT || why[0] == '\0' ||
	    memchr(why, '\0', sizeof(why)) == NULL)
		abort();
	q_msg_clear(&m);

	/* the envelope-only parser, into a heap message freed as a whole */
	if ((mp = calloc(1, sizeof(*mp))) == NULL)
		return 0;
	why[0] = '\0';
	rc = q_parse_envelope(buf, size, mp, why, sizeof(why));
	if (rc == Q_OK)
		check_msg(mp, size, 0);
	else if (rc != Q_CORRUPT || why[0] == '\0')
		abort();
	q_msg_free(mp);
	return 0;
}
