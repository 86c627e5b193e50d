/*
 * layers.h: the kernels of sotto's models, forward and backward, over
 * plain float arrays with explicit dimensions (outputs first, as in
 * llm.c). The heavy ones are one CBLAS sgemm each; convolution goes
 * through im2col. Backward functions OVERWRITE their gradient outputs
 * (they do not accumulate), and any gradient output may be NULL to skip
 * it (the first layer needs no input gradient).
 *
 * Layouts: dense activations are (B, D) row-major. Convolution activations
 * are channel-major (C, B, H, W), so that a whole batch is one sgemm and
 * max-pooling works on independent planes. Convolutions are 'valid' with
 * stride 1; pooling is 2x2 with stride 2 (an odd last row/column is
 * dropped). Not here: parameter storage, allocation (model.c).
 */
#ifndef SOTTO_LEARN_LAYERS_H
#define SOTTO_LEARN_LAYERS_H

#include <stddef.h>
#include <stdint.h>

/* y (B, out) = x (B, in) . w^T + b;  w (out, in), b (out) */
void dense_forward(float *y, const float *x, const float *w, const float *b, int B, int in,
                   int out);
/* dx (B, in) = dy . w;  dw (out, in) = dy^T . x;  db (out) = sum over B of dy */
void dense_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                    const float *w, int B, int in, int out);

/* y = max(x, 0), n values (y may be x) */
void relu_forward(float *y, const float *x, size_t n);
/* dx = dy where y > 0, else 0 (dx may be dy) */
void relu_backward(float *dx, const float *dy, const float *y, size_t n);

/*
 * x (C, B, H, W) -> y (OC, B, OH, OW), OH = H - K + 1, OW = W - K + 1;
 * w (OC, C, K, K), b (OC). cols is scratch of conv_scratch_floats()
 * floats (im2col of a few images at a time, sized to stay in cache).
 */
size_t conv_scratch_floats(int B, int C, int H, int W, int K);
void conv_forward(float *y, float *cols, const float *x, const float *w, const float *b, int B,
                  int C, int H, int W, int OC, int K);
/*
 * From dy (OC, B, OH, OW) and the forward input x: dw, db, and dx (C, B,
 * H, W; may be NULL). cols and dcols are scratch of conv_scratch_floats().
 */
void conv_backward(float *dx, float *dw, float *db, float *cols, float *dcols, const float *dy,
                   const float *x, const float *w, int B, int C, int H, int W, int OC, int K);

/* x (planes, H, W) -> y (planes, H/2, W/2); argmax (planes*H/2*W/2) indexes x. */
void maxpool_forward(float *y, uint32_t *argmax, const float *x, int planes, int H, int W);
/* dx (planes, H, W) = dy routed back through argmax */
void maxpool_backward(float *dx, const float *dy, const uint32_t *argmax, int planes, int H, int W);

/* y[b][a][s] = x[a][b][s]: (A, B, S) -> (B, A, S). Converts between layouts. */
void transpose_abs(float *y, const float *x, int A, int B, int S);

/*
 * Mean softmax cross-entropy of logits (B, classes) against labels (B).
 * If dlogits is not NULL it gets d(mean loss)/d(logits) = (softmax - onehot)
 * / B. If correct is not NULL it gets the count of rows whose argmax is the
 * label. Returns the mean loss.
 */
float softmax_xent(float *dlogits, int *correct, const float *logits, const uint8_t *labels, int B,
                   int classes);

#endif
