/*
 * layers.c: forward and backward kernels (see layers.h for the shapes).
 * Matrix products go to OpenBLAS; the loops here are the cheap O(n) parts.
 */
#include "learn/layers.h"

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

/* cols (C*K*K, B*OH*OW) from x (C, B, H, W) */
static void im2col(float *cols, const float *x, int B, int C, int H, int W, int K)
{
	const int OH = H - K + 1, OW = W - K + 1;
	const size_t N = (size_t)B * OH * OW;

	for (int c = 0; c < C; c++)
		for (int ki = 0; ki < K; ki++)
			for (int kj = 0; kj < K; kj++) {
				float *row = cols + ((size_t)(c * K + ki) * K + kj) * N;
				for (int b = 0; b < B; b++) {
					const float *plane = x + ((size_t)c * B + b) * H * W;
					for (int oh = 0; oh < OH; oh++) {
						copy_row(row, plane + (size_t)(oh + ki) * W + kj,
						         (size_t)OW);
						row += OW;
					}
				}
			}
}

/* dx (C, B, H, W) = sum of dcols scattered back (the adjoint of im2col) */
static void col2im(float *dx, const float *dcols, int B, int C, int H, int W, int K)
{
	const int OH = H - K + 1, OW = W - K + 1;
	const size_t N = (size_t)B * OH * OW;

	memset(dx, 0, (size_t)C * B * H * W * sizeof(float));
	for (int c = 0; c < C; c++)
		for (int ki = 0; ki < K; ki++)
			for (int kj = 0; kj < K; kj++) {
				const float *row = dcols + ((size_t)(c * K + ki) * K + kj) * N;
				for (int b = 0; b < B; b++) {
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
	const int CKK = C * K * K;
	const int N = B * (H - K + 1) * (W - K + 1);

	im2col(cols, x, B, C, H, W, K);
	/* Start from the bias and let sgemm add to it (beta = 1). */
	for (int o = 0; o < OC; o++) {
		float *row = y + (size_t)o * N;
		for (int n = 0; n < N; n++)
			row[n] = b[o];
	}
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, N, CKK, 1.0f, w, CKK, cols, N,
	            1.0f, y, N);
}

void conv_backward(float *dx, float *dw, float *db, float *dcols, const float *dy,
                   const float *cols, const float *w, int B, int C, int H, int W, int OC, int K)
{
	const int CKK = C * K * K;
	const int N = B * (H - K + 1) * (W - K + 1);

	if (dw != NULL)
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, CKK, N, 1.0f, dy, N, cols,
		            N, 0.0f, dw, CKK);
	if (db != NULL) {
		for (int o = 0; o < OC; o++)
			db[o] = sum_of(dy + (size_t)o * N, (size_t)N);
	}
	if (dx != NULL) {
		cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CKK, N, OC, 1.0f, w, CKK, dy,
		            N, 0.0f, dcols, N);
		col2im(dx, dcols, B, C, H, W, K);
	}
}

void maxpool_forward(float *y, uint32_t *argmax, const float *x, int planes, int H, int W)
{
	const int PH = H / 2, PW = W / 2;

	for (int p = 0; p < planes; p++)
		for (int i = 0; i < PH; i++) {
			const size_t r0 = ((size_t)p * H + 2 * (size_t)i) * W, r1 = r0 + (size_t)W;
			for (int j = 0; j < PW; j++) {
				/* first maximum in the order (0,0) (0,1) (1,0) (1,1), as numpy */
				size_t best = r0 + 2 * (size_t)j;
				float m = x[best];
				if (x[best + 1] > m) {
					best = best + 1;
					m = x[best];
				}
				if (x[r1 + 2 * (size_t)j] > m) {
					best = r1 + 2 * (size_t)j;
					m = x[best];
				}
				if (x[r1 + 2 * (size_t)j + 1] > m) {
					best = r1 + 2 * (size_t)j + 1;
					m = x[best];
				}
				*y++ = m;
				*argmax++ = (uint32_t)best;
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
