/*
 * How intel-ipsec-mb's AES-256-GCM call on a 64-byte frame's payload (52 bytes, 8-byte AAD)
 * depends on how its nonce and AAD were written just before it (docs/crypto-choice.md, "The
 * nonce and the AAD in one store each"). The library reads each with one masked 16-byte load;
 * built from smaller stores still in the store buffer, they cannot be forwarded to that load.
 *
 *   gcc -O2 -msse4.1 bench/c/gcm_store_forwarding.c -o /tmp/gcm_store_forwarding -lIPSec_MB
 *   /tmp/gcm_store_forwarding
 *
 * Prints ns per call for each way, twice.
 */
#include <intel-ipsec-mb.h>
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static double now_ns(void)
{
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return t.tv_sec * 1e9 + t.tv_nsec;
}

enum way { PIECES, ONE_STORE_EACH, NONCE_ONE_STORE, WAYS };
static const char *names[WAYS] = {
        "nonce 4+8 and AAD 4+4 bytes, separate stores",
        "nonce and AAD, one 16-byte store each",
        "nonce in one store, AAD 4+4",
};

int main(void)
{
        IMB_MGR *mgr = alloc_mb_mgr(0);
        init_mb_mgr_auto(mgr, NULL);
        static struct gcm_key_data key __attribute__((aligned(64)));
        uint8_t raw_key[32] = {1};
        IMB_AES256_GCM_PRE(mgr, raw_key, &key);
        static uint8_t payload[64];
        uint8_t tag[16];
        struct gcm_context_data ctx;
        const uint32_t salt = 0x12345678, spi = 0xabcdef;
        volatile uint64_t first_seq = 1;
        const int calls = 20000000;

        for (int round = 0; round < 2; round++) {
                for (int way = 0; way < WAYS; way++) {
                        double start = now_ns();
                        for (int i = 0; i < calls; i++) {
                                uint64_t seq = first_seq + i;
                                uint32_t seq_lo = (uint32_t)seq;
                                uint8_t nonce[16] __attribute__((aligned(16)));
                                uint8_t aad[16] __attribute__((aligned(16)));
                                if (way == ONE_STORE_EACH || way == NONCE_ONE_STORE)
                                        _mm_store_si128((__m128i *)nonce,
                                                        _mm_set_epi32(0, (uint32_t)(seq >> 32), seq_lo, salt));
                                else {
                                        memcpy(nonce, &salt, 4);
                                        memcpy(nonce + 4, &seq, 8);
                                }
                                if (way == ONE_STORE_EACH)
                                        _mm_store_si128((__m128i *)aad, _mm_set_epi32(0, 0, seq_lo, spi));
                                else {
                                        memcpy(aad, &spi, 4);
                                        memcpy(aad + 4, &seq_lo, 4);
                                }
                                __asm__ volatile("" ::: "memory");
                                IMB_AES256_GCM_ENC(mgr, &key, &ctx, payload, payload, 52, nonce, aad, 8, tag, 16);
                                __asm__ volatile("" ::: "memory");
                        }
                        printf("%-48s %6.2f ns\n", names[way], (now_ns() - start) / calls);
                }
        }
        free_mb_mgr(mgr);
        return 0;
}
