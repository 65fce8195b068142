// Swift's `Op`, `TLBEntry` and `FetchTLBEntry`, field for field (ThreadedCoreTests checks the
// Swift side's layout), and the M extension's defined results: shared by the threaded core and
// the JIT so both read the same memory and compute the same values.
#pragma once
#include "CInterpreterCore.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t kind, rd, rs1, rs2, len, unused;
    uint16_t offset;
    int32_t imm;
    int32_t target;
} op_t;
_Static_assert(sizeof(op_t) == 16, "Op is 16 bytes");
_Static_assert(offsetof(op_t, offset) == 6 && offsetof(op_t, imm) == 8 && offsetof(op_t, target) == 12, "Op layout");

typedef struct {
    uint64_t tag, addend;
} tlb_entry_t;

typedef struct {
    uint64_t tag;
    op_t *ops;
    uint8_t *host;
} fetch_entry_t;

static inline uint64_t sext32(uint64_t v) { return (uint64_t)(int64_t)(int32_t)(uint32_t)v; }
static inline unsigned tlb_index(uint64_t va) { return (unsigned)(va >> 12) & (EMU_TLB_SIZE - 1); }

// M (unprivileged spec ch. 7): division by zero and overflow have defined results (table 7.1);
// C leaves them undefined, so they are tested first.
static inline uint64_t div64(int64_t n, int64_t d) {
    return d == 0 ? UINT64_MAX : (n == INT64_MIN && d == -1) ? (uint64_t)n : (uint64_t)(n / d);
}
static inline uint64_t rem64(int64_t n, int64_t d) {
    return d == 0 ? (uint64_t)n : (n == INT64_MIN && d == -1) ? 0 : (uint64_t)(n % d);
}
static inline uint64_t div32(int32_t n, int32_t d) {
    return d == 0 ? UINT64_MAX : (n == INT32_MIN && d == -1) ? sext32((uint32_t)n) : (uint64_t)(int64_t)(n / d);
}
static inline uint64_t rem32(int32_t n, int32_t d) {
    return d == 0 ? sext32((uint32_t)n) : (n == INT32_MIN && d == -1) ? 0 : (uint64_t)(int64_t)(n % d);
}
static inline uint64_t divu64(uint64_t a, uint64_t b) { return b == 0 ? UINT64_MAX : a / b; }
static inline uint64_t remu64(uint64_t a, uint64_t b) { return b == 0 ? a : a % b; }
static inline uint64_t divu32(uint64_t a, uint64_t b) {
    return (uint32_t)b == 0 ? UINT64_MAX : sext32((uint32_t)a / (uint32_t)b);
}
static inline uint64_t remu32(uint64_t a, uint64_t b) {
    return (uint32_t)b == 0 ? sext32((uint32_t)a) : sext32((uint32_t)a % (uint32_t)b);
}
static inline uint64_t mulhsu64(uint64_t a, uint64_t b) {
    return (uint64_t)(((__int128)(int64_t)a * (__int128)b) >> 64);
}
