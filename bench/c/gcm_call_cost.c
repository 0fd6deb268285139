/*
 * What one intel-ipsec-mb AES-256-GCM encryption costs by payload length (BENCHMARKS.md,
 * "Thirteenth session"): the one-shot call the ESP core makes, and init + update + finalize as
 * DPDK's crypto PMD makes it for ipsec-secgw. In place, 8-byte AAD, 16-byte tag; 64 B frames
 * carry a 52-byte ESP payload, 1420 B frames 1408 bytes. "chained": every call encrypts the same
 * buffer, so each waits for the one before (the latency of a call); "a burst": the calls go
 * round 32 buffers, as a burst's packets, so the CPU may overlap one call with the next. The IV
 * stays the same (timing only): written just before a call, it would wait in the store buffer
 * (bench/c/gcm_store_forwarding.c).
 *
 *   gcc -O2 bench/c/gcm_call_cost.c -o /tmp/gcm_call_cost -lIPSec_MB
 *   /tmp/gcm_call_cost
 *
 * Prints the best of 5 runs of 1,000,000 calls, ns per call, twice.
 */
#include <intel-ipsec-mb.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

enum { CALLS = 1000000, RUNS = 5 };

enum { BURST = 32 };

static uint8_t payloads[BURST][2048] __attribute__((aligned(64)));

static double now_ns(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return t.tv_sec * 1e9 + t.tv_nsec;
}

static double one_shot(IMB_MGR *mgr, const struct gcm_key_data *key, size_t len, int buffers)
{
        struct gcm_context_data ctx;
        uint8_t iv[12] = {0}, aad[8] = {0}, tag[16];
        double best = 1e9;
        for (int run = 0; run < RUNS; run++) {
                double start = now_ns();
                for (int i = 0; i < CALLS; i++) {
                        uint8_t *payload = payloads[i % buffers];
                        IMB_AES256_GCM_ENC(mgr, key, &ctx, payload, payload, len, iv, aad, sizeof(aad), tag, sizeof(tag));
                }
                double ns = (now_ns() - start) / CALLS;
                best = ns < best ? ns : best;
        }
        return best;
}

static double in_three_calls(IMB_MGR *mgr, const struct gcm_key_data *key, size_t len, int buffers)
{
        struct gcm_context_data ctx;
        uint8_t iv[12] = {0}, aad[8] = {0}, tag[16];
        double best = 1e9;
        for (int run = 0; run < RUNS; run++) {
                double start = now_ns();
                for (int i = 0; i < CALLS; i++) {
                        uint8_t *payload = payloads[i % buffers];
                        IMB_AES256_GCM_INIT(mgr, key, &ctx, iv, aad, sizeof(aad));
                        IMB_AES256_GCM_ENC_UPDATE(mgr, key, &ctx, payload, payload, len);
                        IMB_AES256_GCM_ENC_FINALIZE(mgr, key, &ctx, tag, sizeof(tag));
                }
                double ns = (now_ns() - start) / CALLS;
                best = ns < best ? ns : best;
        }
        return best;
}

int main(void)
{
        IMB_MGR *mgr = alloc_mb_mgr(0);
        if (mgr == NULL)
                return 1;
        init_mb_mgr_auto(mgr, NULL);
        static const uint8_t raw_key[32] = {1};
        struct gcm_key_data key;
        IMB_AES256_GCM_PRE(mgr, raw_key, &key);
        static const size_t lengths[] = {16, 52, 500, 1408};
        for (int round = 0; round < 2; round++)
                for (size_t l = 0; l < sizeof(lengths) / sizeof(lengths[0]); l++)
                        printf("%4zu B: one call %6.1f ns chained, %6.1f in a burst; init + update + finalize %6.1f "
                               "chained, %6.1f in a burst\n",
                               lengths[l], one_shot(mgr, &key, lengths[l], 1), one_shot(mgr, &key, lengths[l], BURST),
                               in_three_calls(mgr, &key, lengths[l], 1), in_three_calls(mgr, &key, lengths[l], BURST));
        free_mb_mgr(mgr);
        return 0;
}
