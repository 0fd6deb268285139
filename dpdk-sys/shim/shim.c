/* See shim.h: exported, non-inline forwarders for DPDK's static-inline API. */
#include "shim.h"

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

int shim_rte_errno(void) { return rte_errno; }
unsigned int shim_rte_lcore_id(void) { return rte_lcore_id(); }
uint64_t shim_rte_rdtsc(void) { return rte_rdtsc(); }
uint64_t shim_rte_get_tsc_hz(void) { return rte_get_tsc_hz(); }

uint16_t shim_rte_eth_rx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **rx_pkts,
                               uint16_t nb_pkts)
{
    return rte_eth_rx_burst(port_id, queue_id, rx_pkts, nb_pkts);
}

uint16_t shim_rte_eth_tx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **tx_pkts,
                               uint16_t nb_pkts)
{
    return rte_eth_tx_burst(port_id, queue_id, tx_pkts, nb_pkts);
}

struct rte_mbuf *shim_rte_pktmbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }

int shim_rte_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int count)
{
    return rte_pktmbuf_alloc_bulk(mp, mbufs, count);
}

void shim_rte_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }
char *shim_rte_pktmbuf_append(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_append(m, len); }
int shim_rte_pktmbuf_trim(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_trim(m, len); }
uint16_t shim_rte_pktmbuf_tailroom(const struct rte_mbuf *m) { return rte_pktmbuf_tailroom(m); }
struct rte_mbuf *shim_rte_pktmbuf_lastseg(struct rte_mbuf *m) { return rte_pktmbuf_lastseg(m); }

unsigned int shim_rte_mempool_avail_count(const struct rte_mempool *mp)
{
    return rte_mempool_avail_count(mp);
}

unsigned int shim_rte_mempool_in_use_count(const struct rte_mempool *mp)
{
    return rte_mempool_in_use_count(mp);
}

unsigned int shim_rte_ring_enqueue_burst(struct rte_ring *r, void *const *obj_table, unsigned int n)
{
    return rte_ring_enqueue_burst(r, obj_table, n, NULL);
}

unsigned int shim_rte_ring_dequeue_burst(struct rte_ring *r, void **obj_table, unsigned int n)
{
    return rte_ring_dequeue_burst(r, obj_table, n, NULL);
}

unsigned int shim_rte_ring_count(const struct rte_ring *r) { return rte_ring_count(r); }
