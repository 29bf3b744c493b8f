/* Copyright © 2023-2024 Apple Inc. */

#ifndef MLX_HALF_H
#define MLX_HALF_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__ARM_FEATURE_FP16_SCALAR_ARITHMETIC) || defined(__aarch64__)
#define HAS_FLOAT16
#include <arm_fp16.h>
typedef __fp16 float16_t;
#endif

#if defined(__ARM_FEATURE_BF16) || defined(__aarch64__)
#define HAS_BFLOAT16
#include <arm_bf16.h>
typedef __bf16 bfloat16_t;
#endif

/* cyberfilter patch: x86-64 has no arm_fp16/arm_bf16; mlx-rs still needs the names.
 * bindgen (clang) maps __fp16 to __BindgenFloat16(u16); GCC only needs 2-byte storage,
 * since MLX's item<T>/data<T> are pointer casts. */
#if !defined(HAS_FLOAT16) && defined(__x86_64__)
#define HAS_FLOAT16
#if defined(__clang__)
typedef __fp16 float16_t;
#else
typedef unsigned short float16_t;
#endif
#endif

#if !defined(HAS_BFLOAT16) && defined(__x86_64__)
#define HAS_BFLOAT16
typedef unsigned short bfloat16_t;
#endif

#ifdef __cplusplus
}
#endif

#endif
