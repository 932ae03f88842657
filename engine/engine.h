/*
 * engine/engine.h - the delivery engine: queue manager, io_uring worker
 * pool, SMTP client sessions.
 *
 * eng_run() is `sealpost run [--drain]`: it owns the process until
 * SIGTERM/SIGINT (graceful) or, with drain, until nothing due remains.
 * Returns a sysexits.h code.
 */
#ifndef SP_ENGINE_ENGINE_H
#define SP_ENGINE_ENGINE_H

#include "common/config.h"

int eng_run(const sp_config_t *cfg, int drain);

#endif
