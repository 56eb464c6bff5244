#pragma once

// BLAKE2b (RFC 7693), as Python's hashlib.blake2b computes it with a key and a personalization: what
// pyinit.init_module_'s philox keys from names are made of (docs/philox_stream.md, "Keys from names";
// csrc/python/model_facts.cpp). tests/test_model_init.py checks it against hashlib and the NumPy oracle.

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace pyinit::blake2b {

constexpr uint64_t kIv[8] = {0x6A09E667F3BCC908ULL, 0xBB67AE8584CAA73BULL, 0x3C6EF372FE94F82BULL,
                             0xA54FF53A5F1D36F1ULL, 0x510E527FADE682D1ULL, 0x9B05688C2B3E6C1FULL,
                             0x1F83D9ABFB41BD6BULL, 0x5BE0CD19137E2179ULL};

constexpr uint8_t kSigma[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4}, {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13}, {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11}, {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5}, {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3}};

inline uint64_t load64(const uint8_t* p) {
  uint64_t x = 0;
  for (int i = 7; i >= 0; --i) x = (x << 8) | p[i];  // little-endian on every host
  return x;
}

inline uint64_t rotr(uint64_t x, int n) { return (x >> n) | (x << (64 - n)); }

// The state: chained value h, byte counter t, the pending block and its fill.
struct State {
  uint64_t h[8];
  uint64_t t[2] = {0, 0};
  uint8_t block[128] = {};
  size_t fill = 0;
};

inline void compress(State& s, bool last) {
  uint64_t m[16], v[16];
  for (int i = 0; i < 16; ++i) m[i] = load64(s.block + 8 * i);
  for (int i = 0; i < 8; ++i) {
    v[i] = s.h[i];
    v[i + 8] = kIv[i];
  }
  v[12] ^= s.t[0];
  v[13] ^= s.t[1];
  if (last) v[14] = ~v[14];
  auto g = [&](int a, int b, int c, int d, uint64_t x, uint64_t y) {
    v[a] = v[a] + v[b] + x;
    v[d] = rotr(v[d] ^ v[a], 32);
    v[c] = v[c] + v[d];
    v[b] = rotr(v[b] ^ v[c], 24);
    v[a] = v[a] + v[b] + y;
    v[d] = rotr(v[d] ^ v[a], 16);
    v[c] = v[c] + v[d];
    v[b] = rotr(v[b] ^ v[c], 63);
  };
  for (const auto& s_ : kSigma) {
    g(0, 4, 8, 12, m[s_[0]], m[s_[1]]);
    g(1, 5, 9, 13, m[s_[2]], m[s_[3]]);
    g(2, 6, 10, 14, m[s_[4]], m[s_[5]]);
    g(3, 7, 11, 15, m[s_[6]], m[s_[7]]);
    g(0, 5, 10, 15, m[s_[8]], m[s_[9]]);
    g(1, 6, 11, 12, m[s_[10]], m[s_[11]]);
    g(2, 7, 8, 13, m[s_[12]], m[s_[13]]);
    g(3, 4, 9, 14, m[s_[14]], m[s_[15]]);
  }
  for (int i = 0; i < 8; ++i) s.h[i] ^= v[i] ^ v[i + 8];
}

inline void count(State& s, uint64_t n) {
  s.t[0] += n;
  if (s.t[0] < n) ++s.t[1];
}

// Compresses the full pending block: a block is compressed only once more input follows (the last is final).
inline void push_block(State& s) {
  count(s, 128);
  compress(s, false);
  s.fill = 0;
}

inline void update(State& s, const uint8_t* data, size_t size) {
  for (size_t i = 0; i < size; ++i) {
    if (s.fill == 128) push_block(s);
    s.block[s.fill++] = data[i];
  }
}

// A state keyed by `key` (at most 64 bytes) and personalized by `person` (at most 16 bytes, zero-padded), for a
// digest of `digest_size` bytes (at most 64): hashlib.blake2b(digest_size=, key=, person=) before any data.
inline State keyed(size_t digest_size, const uint8_t* key, size_t key_size, const uint8_t* person, size_t person_size) {
  State s;
  for (int i = 0; i < 8; ++i) s.h[i] = kIv[i];
  s.h[0] ^= 0x01010000ULL ^ (static_cast<uint64_t>(key_size) << 8) ^ digest_size;
  uint8_t padded[16] = {};
  std::memcpy(padded, person, person_size);
  s.h[6] ^= load64(padded);
  s.h[7] ^= load64(padded + 8);
  if (key_size > 0) {
    std::memcpy(s.block, key, key_size);  // the zero-padded key is the first block
    s.fill = 128;
  }
  return s;
}

// The first 16 bytes of the digest of what `s` has absorbed, as two little-endian words (`s` is consumed).
inline void finish16(State& s, uint64_t& word0, uint64_t& word1) {
  count(s, s.fill);
  std::memset(s.block + s.fill, 0, 128 - s.fill);
  compress(s, true);
  word0 = s.h[0];
  word1 = s.h[1];
}

}  // namespace pyinit::blake2b
