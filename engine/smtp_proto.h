/*
 * engine/smtp_proto.h - the pure parts of the SMTP client protocol: reply
 * lines and replies, EHLO capabilities, and the DATA encoder (CRLF
 * normalisation and dot-stuffing).  No I/O, no allocation: testable and
 * fuzzable on their own.
 *
 * Limits (RFC 5321 §4.5.3.1): a reply line is at most 512 bytes including
 * CRLF; a reply has at most SMTP_REPLY_MAX_LINES lines.  Anything longer or
 * malformed is SP_ERROR with a reason, and the session then fails cleanly
 * with a 4.x status.
 */
#ifndef SP_ENGINE_SMTP_PROTO_H
#define SP_ENGINE_SMTP_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include "common/status.h"

#define SMTP_LINE_MAX		512	/* reply line incl. CRLF */
#define SMTP_REPLY_MAX_LINES	64
#define SMTP_REPLY_TEXT_MAX	2048	/* kept text of one reply */

typedef struct smtp_reply {
	int	code;			/* 200..599 */
	char	esc[16];		/* enhanced status "2.1.5", "" if none */
	char	text[SMTP_REPLY_TEXT_MAX];/* lines' text after "NNN-"/"NNN ", without the
					 * enhanced code of the first line, joined with "\n";
					 * truncated (never overflowing) if longer */
	size_t	nlines;
} smtp_reply_t;

typedef struct smtp_reply_parser {
	smtp_reply_t reply;		/* the reply being assembled / just completed */
	int	in_progress;		/* continuation lines seen */
	char	error[128];		/* why the last SP_ERROR */
} smtp_reply_parser_t;

/* smtp_next_line - find one line (ending in LF; CR before it dropped) at
 * the start of buf.  SP_OK: *linelen = length without CR/LF, *consumed =
 * bytes including terminator.  SP_AGAIN: no LF yet (and len < SMTP_LINE_MAX).
 * SP_ERROR: a line longer than SMTP_LINE_MAX. */
int smtp_next_line(const char *buf, size_t len, size_t *linelen, size_t *consumed);

/* smtp_reply_init - reset the parser */
void smtp_reply_init(smtp_reply_parser_t *p);
/* smtp_reply_feed - one line (no CRLF).  SP_AGAIN: a continuation line
 * ("250-..."), more follow; SP_OK: the reply is complete in p->reply (the
 * next feed starts a new one); SP_ERROR: malformed (bad code, code changed
 * within a multi-line reply, too many lines, NUL bytes), reason in p->error. */
int smtp_reply_feed(smtp_reply_parser_t *p, const char *line, size_t len);

/* EHLO capabilities */
#define SMTP_CAP_STARTTLS	0x01
#define SMTP_CAP_PIPELINING	0x02
#define SMTP_CAP_SIZE		0x04
#define SMTP_CAP_8BITMIME	0x08
#define SMTP_CAP_ENHANCED	0x10	/* ENHANCEDSTATUSCODES */
#define SMTP_CAP_DSN		0x20
#define SMTP_CAP_SMTPUTF8	0x40
#define SMTP_CAP_CHUNKING	0x80

typedef struct smtp_caps {
	unsigned flags;
	uint64_t size_limit;		/* SIZE n; 0 = no limit announced */
} smtp_caps_t;

/* smtp_caps_parse - capabilities from a 250 reply to EHLO (first line is
 * the greeting name; keywords case-insensitive) */
void smtp_caps_parse(const smtp_reply_t *r, smtp_caps_t *caps);

/* DATA encoder: message text (LF or CRLF line ends) to the wire form:
 * every line ends in CRLF (a bare LF or bare CR becomes CRLF), a line
 * starting with '.' gets one more '.', and the end is "\r\n.\r\n" (or
 * ".\r\n" when the text already ended with a line end). */
typedef struct smtp_dot {
	int	at_bol;		/* next byte starts a line */
	int	pending_cr;	/* a CR was seen and not yet written */
} smtp_dot_t;

void smtp_dot_init(smtp_dot_t *d);
/* smtp_dot_encode - encode from in into out; returns bytes written to out,
 * *consumed bytes of in used.  Never writes more than outcap; makes progress
 * whenever outcap >= 3. */
size_t smtp_dot_encode(smtp_dot_t *d, const char *in, size_t inlen, size_t *consumed,
		       char *out, size_t outcap);
/* smtp_dot_finish - write the terminator (at most 5 bytes); returns length */
size_t smtp_dot_finish(smtp_dot_t *d, char *out, size_t outcap);
/* smtp_dot_encoded_size - exact wire size of the encoded text (for SIZE=) */
uint64_t smtp_dot_encoded_size(const char *in, size_t inlen);

/* smtp_status_class - the enhanced status to use for a reply: its own
 * enhanced code when it has a valid one of the right class, else a default
 * from the reply code ("2.0.0", "4.0.0", "5.0.0") */
const char *smtp_reply_dsn(const smtp_reply_t *r);

#endif
