/*
 * New-connection client of the side-by-side benchmark (bench/sidebyside/traffic.ts compiles it
 * with the system C compiler into a temporary directory at run time).
 *
 *   tcpconnect DST_IP DST_PORT SECONDS
 *
 * One connection after another for SECONDS: socket(), blocking connect() timed with
 * CLOCK_MONOTONIC from the call to its return (SYN → SYN-ACK, the handshake through the
 * translation), then close() with SO_LINGER 0 (an RST: no TIME_WAIT piles up, so the run is not
 * limited by ports). A connect that fails or takes more than 1 s (SO_SNDTIMEO) is a failure.
 * Prints one JSON line: connections, failures, seconds, and latency quantiles in µs.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES 4000000

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return x < y ? -1 : x > y;
}

static float lat[MAX_SAMPLES];

static double q(long n, double p) {
  if (n == 0) return -1;
  long i = (long)(p * (double)n + 0.999999) - 1;
  if (i < 0) i = 0;
  if (i >= n) i = n - 1;
  return lat[i];
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: tcpconnect DST_IP DST_PORT SECONDS\n");
    return 2;
  }
  struct sockaddr_in dst;
  memset(&dst, 0, sizeof dst);
  dst.sin_family = AF_INET;
  dst.sin_port = htons((unsigned short)atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
    fprintf(stderr, "tcpconnect: bad address %s\n", argv[1]);
    return 2;
  }
  double seconds = atof(argv[3]);
  if (seconds <= 0) return 2;
  struct timeval tmo = {1, 0};
  struct linger lg = {1, 0};
  long n = 0, failures = 0;
  double sum = 0;
  double t0 = now_us(), end = t0 + seconds * 1e6, t = t0;
  while (t < end && n < MAX_SAMPLES) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0) {
      perror("tcpconnect: socket");
      return 1;
    }
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof tmo);
    double c0 = now_us();
    int r = connect(s, (struct sockaddr *)&dst, sizeof dst);
    t = now_us();
    if (r == 0) {
      lat[n++] = (float)(t - c0);
      sum += t - c0;
    } else {
      failures++;
    }
    setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(s);
  }
  double secs = (now_us() - t0) / 1e6;
  double mean = n ? sum / (double)n : -1;
  qsort(lat, (size_t)n, sizeof lat[0], cmp);
  printf("{\"seconds\":%.6f,\"connects\":%ld,\"failures\":%ld,\"p50\":%.2f,\"p90\":%.2f,\"p99\":%.2f,\"mean\":%.2f}\n",
         secs, n, failures, q(n, 0.5), q(n, 0.9), q(n, 0.99), mean);
  return 0;
}
