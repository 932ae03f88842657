/*
 * bench/handshake.h - `sealpost-bench handshake`: full and resumed TLS
 * handshakes per second and CPU per handshake, in one thread, client and
 * server contexts of tls/ pumped into each other in memory.
 */
#ifndef SP_BENCH_HANDSHAKE_H
#define SP_BENCH_HANDSHAKE_H

/* bench_handshake_main - `sealpost-bench handshake [--seconds S]
 * [--tls 1.2|1.3] [--certs DIR]`; argv[0] is the subcommand; returns a
 * sysexits.h code */
int bench_handshake_main(int argc, char **argv);

#endif
