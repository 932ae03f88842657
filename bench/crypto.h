/*
 * bench/crypto.h - `sealpost-bench crypto`: bulk cipher throughput of the
 * linked wolfSSL (AES-128-GCM and ChaCha20-Poly1305 over 16 KB records),
 * to check that the optimised AES-NI build is the one in use.
 */
#ifndef SP_BENCH_CRYPTO_H
#define SP_BENCH_CRYPTO_H

/* bench_crypto_main - `sealpost-bench crypto [--seconds S]`; argv[0] is
 * the subcommand; returns a sysexits.h code */
int bench_crypto_main(int argc, char **argv);

#endif
