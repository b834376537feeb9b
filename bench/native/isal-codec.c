/*
 * The native reference for the erasure codec benchmark (bench/codec.ts): ISA-L
 * (Debian libisal-dev), the library Ceph and MinIO's reference coders build on,
 * coding one stripe at a time on one thread, as ours is measured.
 *
 *   isal-codec K M STRIPE ROUNDS RUNS  ->  "encode GB/s decode GB/s" (medians)
 *
 * Encode computes the M parity shards of a STRIPE-byte stripe; decode rebuilds
 * the first min(M, 2) data shards from the rest, the matrix inverted per call as
 * a reader must.
 */
#include <isa-l/erasure_code.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: isal-codec K M STRIPE ROUNDS RUNS\n");
    return 2;
  }
  int k = atoi(argv[1]), m = atoi(argv[2]), stripe = atoi(argv[3]), rounds = atoi(argv[4]), runs = atoi(argv[5]);
  int n = k + m, len = stripe / k, lost = m < 2 ? m : 2;
  unsigned char *shards[255], *survivors[255], *rebuilt[2];
  unsigned char matrix[255 * 255], tables[255 * 255 * 32], pick[255 * 255], inverse[255 * 255], rows[2 * 255], dtables[2 * 255 * 32];
  for (int i = 0; i < n; i++) {
    shards[i] = aligned_alloc(64, len);
    for (int b = 0; b < len; b++) shards[i][b] = rand();
  }
  for (int i = 0; i < lost; i++) rebuilt[i] = aligned_alloc(64, len);
  gf_gen_cauchy1_matrix(matrix, n, k);
  ec_init_tables(k, m, &matrix[k * k], tables);
  double enc[64], dec[64];
  for (int r = 0; r < runs && r < 64; r++) {
    double t0 = now();
    for (int i = 0; i < rounds; i++) ec_encode_data(len, k, m, tables, shards, &shards[k]);
    enc[r] = (double)rounds * stripe / (now() - t0) / 1e9;
    t0 = now();
    for (int i = 0; i < rounds; i++) {
      for (int s = 0; s < k; s++) {
        memcpy(&pick[s * k], &matrix[(s + lost) * k], k);
        survivors[s] = shards[s + lost];
      }
      if (gf_invert_matrix(pick, inverse, k) < 0) return 1;
      for (int e = 0; e < lost; e++) memcpy(&rows[e * k], &inverse[e * k], k);
      ec_init_tables(k, lost, rows, dtables);
      ec_encode_data(len, k, lost, dtables, survivors, rebuilt);
    }
    dec[r] = (double)rounds * stripe / (now() - t0) / 1e9;
  }
  if (lost > 0 && memcmp(rebuilt[0], shards[0], len) != 0) {
    fprintf(stderr, "isal-codec: the rebuilt shard differs\n");
    return 1;
  }
  qsort(enc, runs, sizeof(double), cmp);
  qsort(dec, runs, sizeof(double), cmp);
  printf("%.3f %.3f\n", enc[runs / 2], dec[runs / 2]);
  return 0;
}
