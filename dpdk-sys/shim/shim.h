/*
 * Non-inline wrappers for the DPDK functions that are `static inline` in the headers and so have
 * no symbol to link against. Each wrapper only forwards its arguments; see shim.c.
 */
#ifndef DPDK_SYS_SHIM_H
#define DPDK_SYS_SHIM_H

#include <stdint.h>

struct rte_mbuf;
struct rte_mempool;
struct rte_ring;

int shim_rte_errno(void);
unsigned int shim_rte_lcore_id(void);
uint64_t shim_rte_rdtsc(void);
uint64_t shim_rte_get_tsc_hz(void);

uint16_t shim_rte_eth_rx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **rx_pkts,
                               uint16_t nb_pkts);
uint16_t shim_rte_eth_tx_burst(uint16_t port_id, uint16_t queue_id, struct rte_mbuf **tx_pkts,
                               uint16_t nb_pkts);

struct rte_mbuf *shim_rte_pktmbuf_alloc(struct rte_mempool *mp);
int shim_rte_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned int count);
void shim_rte_pktmbuf_free(struct rte_mbuf *m);
char *shim_rte_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
int shim_rte_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
uint16_t shim_rte_pktmbuf_tailroom(const struct rte_mbuf *m);
struct rte_mbuf *shim_rte_pktmbuf_lastseg(struct rte_mbuf *m);

unsigned int shim_rte_mempool_avail_count(const struct rte_mempool *mp);
unsigned int shim_rte_mempool_in_use_count(const struct rte_mempool *mp);

unsigned int shim_rte_ring_enqueue_burst(struct rte_ring *r, void *const *obj_table, unsigned int n);
unsigned int shim_rte_ring_dequeue_burst(struct rte_ring *r, void **obj_table, unsigned int n);
unsigned int shim_rte_ring_count(const struct rte_ring *r);

#endif
