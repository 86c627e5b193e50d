/*
 * layers.c: forward and backward kernels (see layers.h for the shapes).
 * Matrix products go to OpenBLAS; the loops here are the cheap O(n) parts.
 */
#include "learn/layers.h"

#include "util/util.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

void dense_forward(float *y, const float *x, const float *w, const float *b, int B, int in, int out)
{
	/* Start from the bias and let sgemm add to it (beta = 1 skips a pass). */
	for (int i = 0; i < B; i++)
		memcpy(y + (size_t)i * out, b, (size_t)out * sizeof(float));
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, out, in, 1.0f, x, in, w, in, 1.0f,
	            y, out);
}

void dense_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                    const float *w, int B, int in, int out)
{
	if (dw != NULL)
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, B, 1.0f, dy, out, x,
		            in, 0.0f, dw, in);
	if (db != NULL) {
		memset(db, 0, (size_t)out * sizeof(float));
		for (int i = 0; i < B; i++) {
			const float *row = dy + (size_t)i * out;
			for (int j = 0; j < out; j++)
				db[j] += row[j];
		}
	}
	if (dx != NULL)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, in, out, 1.0f, dy, out, w,
		            in, 0.0f, dx, in);
}

/*
 * The elementwise loops use GCC/clang vector extensions: the default -O2
 * of GCC 12 does not vectorise them, and they are a tenth of an MLP step.
 */
/* 16 bytes: native on baseline x86-64 (SSE2) and on NEON; wider is split badly. */
typedef float f32x4 __attribute__((vector_size(16)));
typedef int32_t i32x4 __attribute__((vector_size(16)));

/* y[i] += x[i] */
static void add_to(float *y, const float *x, size_t n)
{
	size_t i = 0;

	for (; i + 4 <= n; i += 4) {
		f32x4 a, b;
		memcpy(&a, y + i, sizeof(a));
		memcpy(&b, x + i, sizeof(b));
		a += b;
		memcpy(y + i, &a, sizeof(a));
	}
	for (; i < n; i++)
		y[i] += x[i];
}

/* y[0..n) = x[0..n): inline for the short rows of im2col (a libc call each is slower) */
static void copy_row(float *y, const float *x, size_t n)
{
	size_t i = 0;

	for (; i + 4 <= n; i += 4) {
		f32x4 a;
		memcpy(&a, x + i, sizeof(a));
		memcpy(y + i, &a, sizeof(a));
	}
	for (; i < n; i++)
		y[i] = x[i];
}

/* y[0..n) = v */
static void fill(float *y, float v, size_t n)
{
	const f32x4 vv = {v, v, v, v};
	size_t i = 0;

	for (; i + 4 <= n; i += 4)
		memcpy(y + i, &vv, sizeof(vv));
	for (; i < n; i++)
		y[i] = v;
}

/* sum of x[0..n) (four partial sums: the order differs from a plain loop) */
static float sum_of(const float *x, size_t n)
{
	f32x4 acc = {0};
	float s;
	size_t i = 0;

	for (; i + 4 <= n; i += 4) {
		f32x4 a;
		memcpy(&a, x + i, sizeof(a));
		acc += a;
	}
	s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
	for (; i < n; i++)
		s += x[i];
	return s;
}

void relu_forward(float *y, const float *x, size_t n)
{
	const f32x4 zero = {0};
	size_t i = 0;

	for (; i + 4 <= n; i += 4) {
		f32x4 v;
		memcpy(&v, x + i, sizeof(v));
		v = (f32x4)((i32x4)v & (v > zero)); /* a vector cast reinterprets bits */
		memcpy(y + i, &v, sizeof(v));
	}
	for (; i < n; i++)
		y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void relu_backward(float *dx, const float *dy, const float *y, size_t n)
{
	const f32x4 zero = {0};
	size_t i = 0;

	for (; i + 4 <= n; i += 4) {
		f32x4 g, a;
		memcpy(&g, dy + i, sizeof(g));
		memcpy(&a, y + i, sizeof(a));
		g = (f32x4)((i32x4)g & (a > zero));
		memcpy(dx + i, &g, sizeof(g));
	}
	for (; i < n; i++)
		dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

/*
 * Convolutions run over chunks of a few images, so that the im2col matrix
 * of a chunk (C*K*K, bc*OH*OW) stays in the L2 cache between being written
 * and being read by sgemm. The backward pass recomputes it per chunk
 * rather than keeping the whole batch's (which would not fit in cache).
 */
#define CONV_CHUNK_FLOATS (1u << 17) /* 512 KiB of im2col per chunk */

static int conv_chunk(int B, int C, int H, int W, int K)
{
	size_t per = (size_t)C * K * K * (H - K + 1) * (W - K + 1);
	size_t bc = per > 0 ? CONV_CHUNK_FLOATS / per : 1;

	if (bc < 1)
		bc = 1;
	return bc > (size_t)B ? B : (int)bc;
}

size_t conv_scratch_floats(int B, int C, int H, int W, int K)
{
	return (size_t)C * K * K * (H - K + 1) * (W - K + 1) * (size_t)conv_chunk(B, C, H, W, K);
}

/* cols (C*K*K, bc*OH*OW) from images b0 .. b0+bc of x (C, B, H, W) */
static void im2col(float *cols, const float *x, int B, int b0, int bc, int C, int H, int W, int K)
{
	const int OH = H - K + 1, OW = W - K + 1;
	const size_t N = (size_t)bc * OH * OW;

	for (int c = 0; c < C; c++)
		for (int ki = 0; ki < K; ki++)
			for (int kj = 0; kj < K; kj++) {
				float *row = cols + ((size_t)(c * K + ki) * K + kj) * N;
				for (int b = b0; b < b0 + bc; b++) {
					const float *plane = x + ((size_t)c * B + b) * H * W;
					for (int oh = 0; oh < OH; oh++) {
						copy_row(row, plane + (size_t)(oh + ki) * W + kj,
						         (size_t)OW);
						row += OW;
					}
				}
			}
}

/* dx images b0 .. b0+bc += dcols scattered back (the adjoint of im2col) */
static void col2im(float *dx, const float *dcols, int B, int b0, int bc, int C, int H, int W, int K)
{
	const int OH = H - K + 1, OW = W - K + 1;
	const size_t N = (size_t)bc * OH * OW;

	for (int c = 0; c < C; c++)
		for (int ki = 0; ki < K; ki++)
			for (int kj = 0; kj < K; kj++) {
				const float *row = dcols + ((size_t)(c * K + ki) * K + kj) * N;
				for (int b = b0; b < b0 + bc; b++) {
					float *plane = dx + ((size_t)c * B + b) * H * W;
					for (int oh = 0; oh < OH; oh++) {
						add_to(plane + (size_t)(oh + ki) * W + kj, row,
						       (size_t)OW);
						row += OW;
					}
				}
			}
}

void conv_forward(float *y, float *cols, const float *x, const float *w, const float *b, int B,
                  int C, int H, int W, int OC, int K)
{
	const int CKK = C * K * K, P = (H - K + 1) * (W - K + 1), N = B * P;
	const int bc = conv_chunk(B, C, H, W, K);

	/* Start from the bias and let sgemm add to it (beta = 1). */
	for (int o = 0; o < OC; o++)
		fill(y + (size_t)o * N, b[o], (size_t)N);
	for (int b0 = 0; b0 < B; b0 += bc) {
		int n = MIN(bc, B - b0);
		im2col(cols, x, B, b0, n, C, H, W, K);
		/* y[:, b0*P ..] (OC, n*P) += w (OC, CKK) . cols (CKK, n*P) */
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, n * P, CKK, 1.0f, w, CKK,
		            cols, n * P, 1.0f, y + (size_t)b0 * P, N);
	}
}

void conv_backward(float *dx, float *dw, float *db, float *cols, float *dcols, const float *dy,
                   const float *x, const float *w, int B, int C, int H, int W, int OC, int K)
{
	const int CKK = C * K * K, P = (H - K + 1) * (W - K + 1), N = B * P;
	const int bc = conv_chunk(B, C, H, W, K);

	if (db != NULL) {
		for (int o = 0; o < OC; o++)
			db[o] = sum_of(dy + (size_t)o * N, (size_t)N);
	}
	if (dx != NULL)
		memset(dx, 0, (size_t)C * B * H * W * sizeof(float));
	for (int b0 = 0; b0 < B; b0 += bc) {
		int n = MIN(bc, B - b0);
		const float *dyc = dy + (size_t)b0 * P; /* (OC, n*P) with row stride N */
		if (dw != NULL) {
			im2col(cols, x, B, b0, n, C, H, W, K);
			/* dw (OC, CKK) += dy_chunk . cols^T */
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, CKK, n * P, 1.0f,
			            dyc, N, cols, n * P, b0 == 0 ? 0.0f : 1.0f, dw, CKK);
		}
		if (dx != NULL) {
			/* dcols (CKK, n*P) = w^T . dy_chunk */
			cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CKK, n * P, OC, 1.0f,
			            w, CKK, dyc, N, 0.0f, dcols, n * P);
			col2im(dx, dcols, B, b0, n, C, H, W, K);
		}
	}
}

void maxpool_forward(float *y, uint32_t *argmax, const float *x, int planes, int H, int W)
{
	const int PH = H / 2, PW = W / 2;

	for (int p = 0; p < planes; p++)
		for (int i = 0; i < PH; i++) {
			const uint32_t r0 = (uint32_t)(((size_t)p * H + 2 * (size_t)i) * W);
			const uint32_t r1 = r0 + (uint32_t)W;
			for (int j = 0; j < PW; j++) {
				/*
				 * First maximum in the order (0,0) (0,1) (1,0) (1,1), as
				 * numpy's argmax. Written as selects, not branches: on
				 * pre-activation values the branches are unpredictable.
				 */
				uint32_t i0 = r0 + 2 * (uint32_t)j, i1 = r1 + 2 * (uint32_t)j;
				float a = x[i0], b = x[i0 + 1], c = x[i1], d = x[i1 + 1];
				uint32_t sb = b > a, sd = d > c, s2;
				float ma = b > a ? b : a, mc = d > c ? d : c; /* maxss */
				uint32_t ia = i0 + sb, ic = i1 + sd;
				s2 = mc > ma;
				*y++ = mc > ma ? mc : ma;
				*argmax++ = ia + s2 * (ic - ia); /* mod 2^32: ic or ia */
			}
		}
}

void maxpool_backward(float *dx, const float *dy, const uint32_t *argmax, int planes, int H, int W)
{
	const size_t n = (size_t)planes * (H / 2) * (W / 2);

	memset(dx, 0, (size_t)planes * H * W * sizeof(float));
	for (size_t i = 0; i < n; i++)
		dx[argmax[i]] += dy[i];
}

void transpose_abs(float *y, const float *x, int A, int B, int S)
{
	for (int a = 0; a < A; a++)
		for (int b = 0; b < B; b++)
			memcpy(y + ((size_t)b * A + a) * S, x + ((size_t)a * B + b) * S,
			       (size_t)S * sizeof(float));
}

float softmax_xent(float *dlogits, int *correct, const float *logits, const uint8_t *labels, int B,
                   int classes)
{
	double loss = 0.0;
	int ok = 0;

	for (int i = 0; i < B; i++) {
		const float *z = logits + (size_t)i * classes;
		float m = z[0];
		int arg = 0;
		double sum = 0.0, lse;
		for (int j = 1; j < classes; j++) {
			if (z[j] > m) {
				m = z[j];
				arg = j;
			}
		}
		for (int j = 0; j < classes; j++)
			sum += exp((double)(z[j] - m));
		lse = (double)m + log(sum);
		loss += lse - (double)z[labels[i]];
		ok += arg == labels[i];
		if (dlogits != NULL) {
			float *d = dlogits + (size_t)i * classes;
			for (int j = 0; j < classes; j++)
				d[j] = (float)(exp((double)z[j] - lse) / B);
			d[labels[i]] -= 1.0f / (float)B;
		}
	}
	if (correct != NULL)
		*correct = ok;
	return (float)(loss / B);
}
