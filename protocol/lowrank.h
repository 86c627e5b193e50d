/*
 * lowrank.h: the linear algebra of low-rank group averaging (issue 14,
 * docs/codec.md "Low-rank averaging"), in the manner of PowerSGD and
 * PowerGossip (Vogels et al. 2019, 2020).
 *
 * A matrix layer W (m x n, row-major) is averaged in an r-dimensional
 * subspace: with Q (n x r, orthonormal columns) public to the group, member
 * i sends y_i = W_i Q (m x r) instead of W_i, the masked sum gives the
 * group's weighted mean y = sum(rho_i y_i) / sum(rho_i), and each member
 * applies
 *
 *     W_i += (y - y_i) Q^T                                   (lowrank_lift)
 *
 * so that every member leaves with W_i Q = y while the weighted mean of the
 * W_i is unchanged: sum rho_i (y - y_i) = 0. Everything a member sends is a
 * linear function of its model, so masks cancel and the sum stays exact.
 *
 * Which subspace: a fresh random Q removes only r/n of the disagreement, no
 * better than averaging r/n of the coordinates. One masked power step finds
 * the group's disagreement instead: with y0 = mean(W Q0) from a first sum,
 * a second sum of
 *
 *     s_i = W_i^T (W_i Q0 - y0)      (n x r)                 (lowrank_sketch)
 *
 * gives C Q0, C = sum_i rho_i (W_i - mean W)^T (W_i - mean W) the group's
 * disagreement covariance, and Q = orth(C Q0) (lowrank_orth) spans its
 * leading directions. The group learns C Q0, a function of second moments:
 * docs/security.md says what that reveals.
 *
 * Every member must compute the same Q from the same public input:
 * lowrank_orth and lowrank_random_q use fixed loop orders and double
 * accumulators, and this file is compiled without floating-point
 * contraction (CMakeLists.txt), so their result is the same bits on every
 * IEEE 754 machine. Projection, lift and sketch use BLAS: a member applies
 * them to its own model only.
 *
 * Not here: masks (crypto/mask.h), the ring codec of y and s
 * (protocol/codec.h), which rounds use which subspace (the node).
 */
#ifndef SOTTO_PROTOCOL_LOWRANK_H
#define SOTTO_PROTOCOL_LOWRANK_H

#include <stdint.h>

#define LOWRANK_MAX_RANK 64

/*
 * Q (n x r, row-major) from a public seed: random signs, then
 * orthonormalised. The same (seed, n, r) gives the same Q everywhere.
 * 0, -ENOMEM, or -EINVAL (r = 0, r > n or r > LOWRANK_MAX_RANK).
 */
int lowrank_random_q(float *q, uint32_t n, uint32_t r, uint64_t seed)
        __attribute__((warn_unused_result));

/*
 * Orthonormalises the r columns of q (n x r, row-major) in place: modified
 * Gram-Schmidt, twice, in double precision. A column that is (numerically)
 * in the span of the earlier ones is replaced by the first unit vector
 * e_j, in index order, that is not, orthonormalised the same way, so the
 * result always has r orthonormal columns. Returns the number of columns so
 * replaced (0 for a full-rank input), -ENOMEM, or -EINVAL (r = 0, r > n,
 * r > LOWRANK_MAX_RANK, or a non-finite entry); q is unchanged on error.
 */
int lowrank_orth(float *q, uint32_t n, uint32_t r) __attribute__((warn_unused_result));

/* y = W Q: w is m x n, q is n x r, y is m x r (all row-major). */
void lowrank_project(float *y, const float *w, const float *q, uint32_t m, uint32_t n, uint32_t r);

/* W += dy Q^T: dy is m x r (the group's y minus this member's own). */
void lowrank_lift(float *w, const float *dy, const float *q, uint32_t m, uint32_t n, uint32_t r);

/* s = W^T dy: w is m x n, dy is m x r (W Q0 - y0), s is n x r. */
void lowrank_sketch(float *s, const float *w, const float *dy, uint32_t m, uint32_t n, uint32_t r);

#endif
