// Thin wrappers over the Hopper PTX instructions the kernels use, one per instruction and named after it.
// Shared-memory operands are 32-bit shared-window addresses (what `cvta.to.shared` gives).
#pragma once

#include <cuda.h>

#include <cstdint>

namespace blockgemm::ptx {

__device__ __forceinline__ uint32_t smem_addr(const void* ptr) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(ptr));
}

// ---- mbarrier -------------------------------------------------------------------------------------

__device__ __forceinline__ void mbarrier_init(uint64_t* bar, uint32_t arrive_count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_addr(bar)), "r"(arrive_count));
}

// Makes initialised barriers visible to the async proxy (TMA's complete_tx) before anyone uses them.
__device__ __forceinline__ void fence_mbarrier_init() {
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}

// Barrier operands are taken as shared-window addresses or as pointers into shared memory.
__device__ __forceinline__ void mbarrier_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbarrier_arrive(uint64_t* bar) {
  mbarrier_arrive(smem_addr(bar));
}

__device__ __forceinline__ void mbarrier_arrive_expect_tx(uint64_t* bar, uint32_t tx_bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_addr(bar)), "r"(tx_bytes)
               : "memory");
}

// Blocks until the barrier's phase with the given parity has completed.
__device__ __forceinline__ void mbarrier_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n"
      ".reg .pred done;\n"
      "wait_loop:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra wait_loop;\n"
      "}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}
__device__ __forceinline__ void mbarrier_wait(uint64_t* bar, uint32_t parity) {
  mbarrier_wait(smem_addr(bar), parity);
}

// ---- clusters -------------------------------------------------------------------------------------

__device__ __forceinline__ uint32_t cluster_ctarank() {
  uint32_t rank;
  asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(rank));
  return rank;
}

// Every thread of every CTA in the cluster arrives, then waits: orders barrier initialisation (and
// anything else before it) cluster-wide.
__device__ __forceinline__ void barrier_cluster_sync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;" ::: "memory");
}

// Arrives on the barrier at the same shared-memory offset as `bar` in cluster CTA `cta_rank`. Default
// (CTA-scope) release on purpose: the arrival only has to follow this thread's finished reads of the stage;
// a cluster-scope release fences all outstanding memory traffic and cost ~1 us per K block when tried.
__device__ __forceinline__ void mbarrier_arrive_cluster(uint32_t bar, uint32_t cta_rank) {
  asm volatile(
      "{\n.reg .b32 remote;\nmapa.shared::cluster.u32 remote, %0, %1;\n"
      "mbarrier.arrive.shared::cluster.b64 _, [remote];\n}" ::"r"(bar),
      "r"(cta_rank)
      : "memory");
}
__device__ __forceinline__ void mbarrier_arrive_cluster(uint64_t* bar, uint32_t cta_rank) {
  mbarrier_arrive_cluster(smem_addr(bar), cta_rank);
}

// Arrives on the barrier at `bar`'s offset in cluster CTA `cta_rank`, releasing at cluster scope: this
// thread's earlier shared-memory writes and reads are ordered before the arrival for the waiting CTA.
__device__ __forceinline__ void mbarrier_arrive_release_cluster(uint64_t* bar, uint32_t cta_rank) {
  asm volatile(
      "{\n.reg .b32 remote;\nmapa.shared::cluster.u32 remote, %0, %1;\n"
      "mbarrier.arrive.release.cluster.shared::cluster.b64 _, [remote];\n}" ::"r"(smem_addr(bar)),
      "r"(cta_rank)
      : "memory");
}

// mbarrier_wait with cluster-scope acquire: what other CTAs of the cluster wrote before their
// release-arrivals is visible afterwards.
__device__ __forceinline__ void mbarrier_wait_acquire_cluster(uint64_t* bar, uint32_t parity) {
  asm volatile(
      "{\n"
      ".reg .pred done;\n"
      "wait_loop:\n"
      "mbarrier.try_wait.parity.acquire.cluster.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra wait_loop;\n"
      "}\n" ::"r"(smem_addr(bar)),
      "r"(parity)
      : "memory");
}

// Reads 16 bytes at `ptr`'s offset in the shared memory of cluster CTA `cta_rank` (distributed shared
// memory).
__device__ __forceinline__ float4 ld_shared_cluster_v4(const void* ptr, uint32_t cta_rank) {
  float4 v;
  asm volatile(
      "{\n.reg .b32 remote;\nmapa.shared::cluster.u32 remote, %4, %5;\n"
      "ld.shared::cluster.v4.f32 {%0, %1, %2, %3}, [remote];\n}"
      : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
      : "r"(smem_addr(ptr)), "r"(cta_rank)
      : "memory");
  return v;
}

// ---- shared memory ----------------------------------------------------------------------------------

// Loads a float at a shared-window address (for addresses kept as integers, see the kernel's K loop).
__device__ __forceinline__ float ld_shared_f32(uint32_t addr) {
  float v;
  asm volatile("ld.shared.f32 %0, [%1];" : "=f"(v) : "r"(addr) : "memory");
  return v;
}

// Two consecutive floats (8-byte aligned address).
__device__ __forceinline__ float2 ld_shared_v2_f32(uint32_t addr) {
  float2 v;
  asm volatile("ld.shared.v2.f32 {%0, %1}, [%2];" : "=f"(v.x), "=f"(v.y) : "r"(addr) : "memory");
  return v;
}

// ---- cp.async (LDGSTS): small gathers that complete on an mbarrier --------------------------------

// Copies 4 bytes; with `valid == false` nothing is read and the destination is zero-filled.
__device__ __forceinline__ void cp_async_ca_4(void* dst_smem, const void* src_global, bool valid) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"(smem_addr(dst_smem)), "l"(src_global),
               "r"(valid ? 4 : 0)
               : "memory");
}

// Arrives on `bar` once all of this thread's earlier cp.async copies have landed. `.noinc`: the arrival
// counts against the barrier's expected count (set at init), it does not add a pending one.
__device__ __forceinline__ void cp_async_mbarrier_arrive_noinc(uint64_t* bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];" ::"r"(smem_addr(bar)) : "memory");
}

// Raises the transaction count `bar` waits for by `tx_bytes` without arriving.
__device__ __forceinline__ void mbarrier_expect_tx(uint64_t* bar, uint32_t tx_bytes) {
  asm volatile("mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [%0], %1;" ::"r"(smem_addr(bar)), "r"(tx_bytes)
               : "memory");
}

// Copies `bytes` (a multiple of 16, both addresses 16-byte aligned) from global to shared memory with the
// bulk-copy engine; completes `bytes` of `bar`'s transaction count.
__device__ __forceinline__ void cp_async_bulk_load(void* dst_smem, const void* src_global, uint32_t bytes,
                                                   uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
          smem_addr(dst_smem)),
      "l"(src_global), "r"(bytes), "r"(smem_addr(bar))
      : "memory");
}

// ---- TMA (cp.async.bulk.tensor) -------------------------------------------------------------------

__device__ __forceinline__ void prefetch_tensormap(const CUtensorMap* map) {
  asm volatile("prefetch.tensormap [%0];" ::"l"(reinterpret_cast<uint64_t>(map)) : "memory");
}

// Loads the box at (inner, outer) into shared memory; completes `bar`'s transaction count. Elements outside
// the tensor arrive as zeros and still count towards the bytes.
__device__ __forceinline__ void cp_async_bulk_tensor_2d_load(void* dst_smem, const CUtensorMap* map,
                                                             uint64_t* bar, int32_t inner, int32_t outer) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4}], "
      "[%2];" ::"r"(smem_addr(dst_smem)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_addr(bar)), "r"(inner), "r"(outer)
      : "memory");
}

// Loads the box at (inner, outer) into the same shared-memory offset of every CTA in `cta_mask` (this
// cluster's ranks), completing the barrier at `bar`'s offset in each of them.
__device__ __forceinline__ void cp_async_bulk_tensor_2d_load_multicast(void* dst_smem, const CUtensorMap* map,
                                                                       uint64_t* bar, int32_t inner,
                                                                       int32_t outer, uint16_t cta_mask) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster [%0], "
      "[%1, {%3, %4}], [%2], %5;" ::"r"(smem_addr(dst_smem)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(smem_addr(bar)), "r"(inner), "r"(outer), "h"(cta_mask)
      : "memory");
}

// Stores the box at (inner, outer) from shared memory; parts outside the tensor are not written.
__device__ __forceinline__ void cp_async_bulk_tensor_2d_store(const CUtensorMap* map, const void* src_smem,
                                                              int32_t inner, int32_t outer) {
  asm volatile("cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%0, {%2, %3}], [%1];" ::"l"(
                   reinterpret_cast<uint64_t>(map)),
               "r"(smem_addr(src_smem)), "r"(inner), "r"(outer)
               : "memory");
}

__device__ __forceinline__ void cp_async_bulk_commit_group() {
  asm volatile("cp.async.bulk.commit_group;" ::: "memory");
}

// Waits until at most N bulk groups are still reading their shared-memory source.
template <int N>
__device__ __forceinline__ void cp_async_bulk_wait_group_read() {
  asm volatile("cp.async.bulk.wait_group.read %0;" ::"n"(N) : "memory");
}

// Waits until at most N bulk groups are incomplete (their global writes done).
template <int N>
__device__ __forceinline__ void cp_async_bulk_wait_group() {
  asm volatile("cp.async.bulk.wait_group %0;" ::"n"(N) : "memory");
}

// Orders this thread's generic-proxy shared-memory writes before later async-proxy (TMA, wgmma) reads.
__device__ __forceinline__ void fence_proxy_async_shared_cta() {
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}

// ---- wgmma ----------------------------------------------------------------------------------------

__device__ __forceinline__ void wgmma_fence() {
  asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
}

__device__ __forceinline__ void wgmma_commit_group() {
  asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
}

template <int N>
__device__ __forceinline__ void wgmma_wait_group() {
  asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory");
}

// Keeps the compiler from moving reads or writes of an accumulator register across a wgmma fence/wait:
// the tensor core owns the register between issue and wait, which the compiler cannot see.
__device__ __forceinline__ void fence_register(float& reg) {
  asm volatile("" : "+f"(reg)::"memory");
}

// Shared-memory matrix descriptor for a K-major operand stored in 128-byte-swizzled rows of 128 bytes,
// eight-row groups 1024 bytes apart (what TMA with CU_TENSOR_MAP_SWIZZLE_128B writes). The tile base must
// be 1024-byte aligned so the hardware's swizzle phase matches TMA's; stepping along K inside the 128-byte
// row is done by adding the byte offset to the start address.
__device__ __forceinline__ uint64_t make_smem_desc_k_major_sw128(uint32_t smem_address) {
  constexpr uint64_t kStrideBytes = 1024;  // between 8-row core-matrix groups
  constexpr uint64_t kLayoutSwizzle128B = 1;
  uint64_t desc = 0;
  desc |= static_cast<uint64_t>((smem_address & 0x3FFFF) >> 4);
  desc |= static_cast<uint64_t>(1) << 16;  // leading byte offset: unused for swizzled K-major
  desc |= (kStrideBytes >> 4) << 32;
  desc |= kLayoutSwizzle128B << 62;
  return desc;
}

// ---- programmatic dependent launch ---------------------------------------------------------------

// Lets the next kernel in the stream (launched with programmatic stream serialization) start its
// prologue now; it still waits for this grid's memory in its own griddepcontrol.wait.
__device__ __forceinline__ void griddepcontrol_launch_dependents() {
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
}

// Waits until the preceding grid has completed and its memory is visible (a no-op without PDL).
__device__ __forceinline__ void griddepcontrol_wait() {
  asm volatile("griddepcontrol.wait;" ::: "memory");
}

// ---- registers and barriers -----------------------------------------------------------------------

template <uint32_t kRegisters>
__device__ __forceinline__ void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" ::"n"(kRegisters));
}

template <uint32_t kRegisters>
__device__ __forceinline__ void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" ::"n"(kRegisters));
}

// Named barrier over `num_threads` threads (a multiple of 32); id 0 is __syncthreads'.
__device__ __forceinline__ void bar_sync(uint32_t id, uint32_t num_threads) {
  asm volatile("bar.sync %0, %1;" ::"r"(id), "r"(num_threads) : "memory");
}

// ---- arithmetic -----------------------------------------------------------------------------------

// Lane-wise unsigned max of two pairs of 16-bit integers (one instruction on sm_90).
__device__ __forceinline__ uint32_t max_u16x2(uint32_t a, uint32_t b) {
  uint32_t d;
  asm("max.u16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
  return d;
}

// The hardware's reciprocal estimate (MUFU.RCP, within an ulp or so; subnormals flush to zero).
__device__ __forceinline__ float rcp_approx_ftz_f32(float x) {
  float y;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

}  // namespace blockgemm::ptx
