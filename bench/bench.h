/*
 * bench/bench.h - internal interface of sealpost-bench (not a public
 * header: nothing outside bench/ includes it).
 *
 * Each subcommand is a function taking the arguments after its name
 * (argv[0] is the subcommand) and returning a process exit code from
 * sysexits.h.
 */
#ifndef SP_BENCH_BENCH_H
#define SP_BENCH_BENCH_H

#include <stddef.h>
#include <stdint.h>

/* bench_sink_main - `sealpost-bench sink`: the SMTP receiver */
int bench_sink_main(int argc, char **argv);
/* bench_fill_main - `sealpost-bench fill`: write test messages into a spool */
int bench_fill_main(int argc, char **argv);
/* bench_run_main - `sealpost-bench run`: certificates, sink, fill, engine, report */
int bench_run_main(int argc, char **argv);

/* bench_now_us - CLOCK_REALTIME in microseconds */
int64_t bench_now_us(void);
/* bench_mono_s - CLOCK_MONOTONIC in seconds, as a double */
double bench_mono_s(void);
/* bench_parse_u64 - whole decimal number in [0, max]; -1 when not */
int bench_parse_u64(const char *s, uint64_t max, uint64_t *out);

#endif
