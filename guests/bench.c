/* benchmark: table-driven CRC32 over a pseudo-random buffer and a sieve of
 * Eratosthenes, both repeated; prints the checksums (identical on every
 * correct RV64IMAC implementation). */
#include "guest.h"

#ifndef CRC_ROUNDS
#define CRC_ROUNDS 400
#endif
#ifndef SIEVE_ROUNDS
#define SIEVE_ROUNDS 20
#endif
#define BUF_SIZE (64 * 1024)
#define SIEVE_N 1000000

static u8 buffer[BUF_SIZE];
static u8 composite[SIEVE_N + 1];
static u32 crc_table[256];

static void crc_init(void)
{
    for (u32 i = 0; i < 256; i++) {
        u32 c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static u32 crc32(const u8 *p, u64 n, u32 crc)
{
    crc = ~crc;
    while (n--)
        crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static u64 sieve(void)
{
    memset(composite, 0, sizeof composite);
    u64 count = 0;
    for (u64 i = 2; i <= SIEVE_N; i++) {
        if (composite[i])
            continue;
        count++;
        for (u64 j = i * i; j <= SIEVE_N; j += i)
            composite[j] = 1;
    }
    return count;
}

int main(void)
{
    u64 x = 0x9E3779B97F4A7C15UL;
    for (u64 i = 0; i < BUF_SIZE; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buffer[i] = (u8)(x >> 24);
    }
    crc_init();
    u32 crc = 0;
    for (int r = 0; r < CRC_ROUNDS; r++)
        crc = crc32(buffer, BUF_SIZE, crc);
    puts("crc32: ");
    put_hex(crc);
    puts("\n");
    u64 primes = 0;
    for (int r = 0; r < SIEVE_ROUNDS; r++)
        primes += sieve();
    puts("primes: ");
    put_dec(primes / SIEVE_ROUNDS);
    puts("\n");
    u64 mixed = (u64)crc * 0x100000001B3UL ^ primes;
    puts("checksum: ");
    put_hex(mixed);
    puts("\n");
    return 0;
}
