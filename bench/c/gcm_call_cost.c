/*
 * What one intel-ipsec-mb AES-256-GCM encryption costs by payload length (BENCHMARKS.md,
 * "Thirteenth session"): the one-shot call the ESP core makes; the same call right after a few
 * byte stores into the payload, as the gateway makes them just before it (the inner header's TTL
 * and checksum, the ESP trailer); and init + update + finalize, as DPDK's crypto PMD makes it for
 * ipsec-secgw. In place, 8-byte AAD, 16-byte tag, the calls going round 32 buffers as a burst's
 * packets; 64 B frames carry a 52-byte ESP payload, 1420 B frames 1408 bytes.
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

enum { CALLS = 1000000, RUNS = 5, BURST = 32 };
enum way { ONE_CALL, ONE_CALL_AFTER_STORES, THREE_CALLS, WAYS };

static uint8_t payloads[BURST][2048] __attribute__((aligned(64)));
/* Each on a cache line of its own and never written while timed: the library reads the nonce and
 * the AAD with 16-byte loads, which would wait for any recent store they overlap (the tag's, say;
 * bench/c/gcm_store_forwarding.c measures how the nonce and AAD are written). */
static uint8_t iv[64] __attribute__((aligned(64)));
static uint8_t aad[64] __attribute__((aligned(64)));
static uint8_t tag[64] __attribute__((aligned(64)));

static double now_ns(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return t.tv_sec * 1e9 + t.tv_nsec;
}

static void encrypt(IMB_MGR *mgr, const struct gcm_key_data *key, enum way way, volatile uint8_t *payload, size_t len)
{
        struct gcm_context_data ctx;
        uint8_t *p = (uint8_t *)payload;
        switch (way) {
        case ONE_CALL_AFTER_STORES:
                payload[8] = 63;           /* the inner IPv4 header's TTL */
                payload[10] = 0x12;        /* and its checksum */
                payload[11] = 0x34;
                payload[len - 4] = 1;      /* padding, pad length, next header */
                payload[len - 3] = 2;
                payload[len - 2] = 2;
                payload[len - 1] = 4;
                /* fall through */
        case ONE_CALL:
                IMB_AES256_GCM_ENC(mgr, key, &ctx, p, p, len, iv, aad, 8, tag, 16);
                break;
        case THREE_CALLS:
                IMB_AES256_GCM_INIT(mgr, key, &ctx, iv, aad, 8);
                IMB_AES256_GCM_ENC_UPDATE(mgr, key, &ctx, p, p, len);
                IMB_AES256_GCM_ENC_FINALIZE(mgr, key, &ctx, tag, 16);
                break;
        default:
                break;
        }
}

static double time_calls(IMB_MGR *mgr, const struct gcm_key_data *key, enum way way, size_t len)
{
        double best = 1e9;
        for (int run = 0; run < RUNS; run++) {
                double start = now_ns();
                for (int i = 0; i < CALLS; i++)
                        encrypt(mgr, key, way, payloads[i % BURST], len);
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
                        printf("%4zu B: one call %6.1f ns, after byte stores %6.1f, init + update + finalize %6.1f\n",
                               lengths[l], time_calls(mgr, &key, ONE_CALL, lengths[l]),
                               time_calls(mgr, &key, ONE_CALL_AFTER_STORES, lengths[l]),
                               time_calls(mgr, &key, THREE_CALLS, lengths[l]));
        free_mb_mgr(mgr);
        return 0;
}
