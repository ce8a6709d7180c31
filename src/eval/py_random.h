// Python's `random.Random` as far as lm-eval's few-shot sampler uses it: seeding from an int
// (init_by_array of its 32-bit words), the Mersenne Twister, getrandbits / _randbelow, random() and
// sample(population, k), so the same seed picks the same few-shot documents in the same order.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ohm::eval {

class PyRandom {
 public:
  explicit PyRandom(uint64_t seed);
  uint32_t genrand_uint32();
  uint64_t getrandbits(int k);  // 1 <= k <= 64
  uint64_t randbelow(uint64_t n);
  // random(): a double in [0, 1) from 53 random bits (genrand_res53).
  double random();
  // random.sample(range(n), k): the indices drawn, in order.
  std::vector<size_t> sample(size_t n, size_t k);

 private:
  std::array<uint32_t, 624> mt_{};
  int mti_ = 625;
};

}  // namespace ohm::eval
