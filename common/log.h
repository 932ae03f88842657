/*
 * common/log.h - one line per event on stderr, key=value or JSON.
 *
 * A line is built in a caller-owned sp_logline_t on the stack and written
 * with one write(2) by sp_log_end(), so lines from different threads never
 * interleave.  Keys are stable identifiers ([a-z_]+); values are quoted (text)
 * or escaped (JSON) as needed, and truncated, never overflowing, when a line
 * would exceed SP_LOG_LINE_MAX.  Secrets are never passed here.
 *
 *	sp_logline_t l;
 *	if (sp_log_begin(&l, SP_LOG_INFO, "delivery")) {
 *		sp_log_str(&l, "id", id);
 *		sp_log_int(&l, "attempts", n);
 *		sp_log_end(&l);
 *	}
 *
 * sp_log_begin() returns 0 (and the line must not be used further) when the
 * level is below the configured one, so callers skip formatting cheaply.
 */
#ifndef SP_COMMON_LOG_H
#define SP_COMMON_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include "common/config.h"

#define SP_LOG_LINE_MAX 4096

typedef struct sp_logline {
	char buf[SP_LOG_LINE_MAX];
	size_t len;
	int json;
	int truncated;
} sp_logline_t;

/* sp_log_init - set format, threshold and output fd (2 by default) */
void sp_log_init(enum sp_log_format fmt, enum sp_log_level level, int fd);

/* sp_log_begin - start a line with ts=, level=, event=; 0 if filtered out */
int sp_log_begin(sp_logline_t *l, enum sp_log_level level, const char *event);
void sp_log_str(sp_logline_t *l, const char *key, const char *val);	/* val may be NULL: "" */
void sp_log_int(sp_logline_t *l, const char *key, long long val);
void sp_log_fmt(sp_logline_t *l, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* sp_log_end - close the line and write it in one write(2) */
void sp_log_end(sp_logline_t *l);

/* sp_log_msg - shorthand: one event with a free-text msg= field */
void sp_log_msg(enum sp_log_level level, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* sp_log_format_line - render into buf without writing (for tests); length */
size_t sp_log_render(const sp_logline_t *l, char *buf, size_t len);

const char *sp_log_level_name(enum sp_log_level level);

#endif
