/*
 * common/status.h - the one status convention for I/O-shaped calls.
 *
 * SP_OK: done, SP_AGAIN: call again when more input arrived or output
 * drained, SP_DONE: end of stream / nothing left, SP_ERROR: failed (the
 * reason is data, returned by the module's error accessor).  Library error
 * codes (wolfSSL, c-ares, errno) are translated at each module's edge.
 */
#ifndef SP_COMMON_STATUS_H
#define SP_COMMON_STATUS_H

enum sp_status {
	SP_ERROR = -1,
	SP_OK = 0,
	SP_AGAIN = 1,
	SP_DONE = 2,
};

#endif
