// The JIT's code buffer: one memfd mapped twice, writable and executable (never one mapping
// both: W^X), filled front to back; when full, every block is forgotten at once (the tables
// listed here are zeroed) and filling starts over, as QEMU's TCG does with its buffer.
#define _GNU_SOURCE
#include "jit.h"
#include "x86_64_encoder.h"

#include <stdlib.h>
#include <string.h>

#if EMU_HAS_JIT
#include <sys/mman.h>
#include <unistd.h>
#endif

/// 64 MiB: U-Boot and a Linux boot compile well under half of it.
#define JIT_BUFFER_SIZE ((size_t)64 << 20)

void emu_jit_drop_blocks(void *page_ops) {
    memset(jit_block_table(page_ops), 0, EMU_OPS_PER_PAGE * sizeof(uint32_t));
}

void emu_jit_set_hot_threshold(emu_jit *jit, uint32_t entries) { jit->hot = entries ? entries : 1; }

uint64_t emu_jit_blocks_compiled(const emu_jit *jit) { return jit->compiled; }

uint64_t emu_jit_flushes(const emu_jit *jit) { return jit->generation; }

void emu_jit_limit_code(emu_jit *jit, size_t bytes) {
    size_t least = jit->code_start + 4096;
    jit->size = bytes < least ? least : bytes > jit->mapped ? jit->mapped : bytes;
    if (jit->used > jit->size) jit_flush(jit);
}

bool jit_list_table(emu_jit *jit, uint32_t *table) {
    if (table[JIT_TABLE_LISTED]) return true;
    if (jit->table_count == jit->table_capacity) {
        size_t capacity = jit->table_capacity ? 2 * jit->table_capacity : 256;
        uint32_t **tables = realloc(jit->tables, capacity * sizeof *tables);
        if (!tables) return false;
        jit->tables = tables;
        jit->table_capacity = capacity;
    }
    jit->tables[jit->table_count++] = table;
    table[JIT_TABLE_LISTED] = 1;
    return true;
}

void jit_flush(emu_jit *jit) {
    for (size_t i = 0; i < jit->table_count; i++) memset(jit->tables[i], 0, (EMU_OPS_PER_PAGE + 1) * sizeof(uint32_t));
    jit->table_count = 0;
    jit->used = jit->code_start;
    jit->generation++;
}

#if EMU_HAS_JIT

emu_jit *emu_jit_create(void) {
    emu_jit *jit = calloc(1, sizeof *jit);
    if (!jit) return NULL;
    int fd = memfd_create("emupanel-jit", MFD_CLOEXEC);
    if (fd < 0) goto fail;
    if (ftruncate(fd, (off_t)JIT_BUFFER_SIZE) != 0) goto fail_fd;
    void *rw = mmap(NULL, JIT_BUFFER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (rw == MAP_FAILED) goto fail_fd;
    void *rx = mmap(NULL, JIT_BUFFER_SIZE, PROT_READ | PROT_EXEC, MAP_SHARED, fd, 0);
    if (rx == MAP_FAILED) {
        munmap(rw, JIT_BUFFER_SIZE);
        goto fail_fd;
    }
    close(fd);
    jit->rw = rw;
    jit->rx = rx;
    jit->size = jit->mapped = JIT_BUFFER_SIZE;
    jit->hot = 4;
    if (!jit_emit_trampoline(jit)) {
        emu_jit_destroy(jit);
        return NULL;
    }
    return jit;
fail_fd:
    close(fd);
fail:
    free(jit);
    return NULL;
}

void emu_jit_destroy(emu_jit *jit) {
    if (!jit) return;
    munmap(jit->rw, jit->mapped);
    munmap((void *)jit->rx, jit->mapped);
    free(jit->tables);
    free(jit);
}

#else

emu_jit *emu_jit_create(void) { return NULL; }
void emu_jit_destroy(emu_jit *jit) { (void)jit; }

#endif
