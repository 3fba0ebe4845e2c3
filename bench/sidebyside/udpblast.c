/*
 * Small-UDP sender of the side-by-side benchmark (bench/sidebyside/traffic.ts compiles it with
 * the system C compiler into a temporary directory at run time).
 *
 *   udpblast DST_IP DST_PORT SECONDS PAYLOAD_BYTES FLOWS
 *
 * Opens FLOWS connected UDP sockets (each its own source port: one flow each) and sends
 * PAYLOAD_BYTES datagrams with sendmmsg(), 64 per call, round-robin over the sockets, as fast
 * as the kernel takes them, for SECONDS. Prints one JSON line: datagrams the kernel accepted,
 * calls, send errors (ENOBUFS and the like) and the seconds it ran. What arrives is counted by
 * the caller from the kernels' UDP counters, not here.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_FLOWS 64

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: udpblast DST_IP DST_PORT SECONDS PAYLOAD_BYTES FLOWS\n");
    return 2;
  }
  struct sockaddr_in dst;
  memset(&dst, 0, sizeof dst);
  dst.sin_family = AF_INET;
  dst.sin_port = htons((unsigned short)atoi(argv[2]));
  if (inet_pton(AF_INET, argv[1], &dst.sin_addr) != 1) {
    fprintf(stderr, "udpblast: bad address %s\n", argv[1]);
    return 2;
  }
  double seconds = atof(argv[3]);
  int len = atoi(argv[4]);
  int flows = atoi(argv[5]);
  if (len < 1 || len > 1472 || flows < 1 || flows > MAX_FLOWS || seconds <= 0) {
    fprintf(stderr, "udpblast: bad arguments\n");
    return 2;
  }
  int fds[MAX_FLOWS];
  for (int i = 0; i < flows; i++) {
    fds[i] = socket(AF_INET, SOCK_DGRAM, 0);
    if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&dst, sizeof dst) != 0) {
      perror("udpblast: socket/connect");
      return 1;
    }
  }
  static char payload[1472];
  memset(payload, 'a', sizeof payload);
  struct iovec iov[BATCH];
  struct mmsghdr msgs[BATCH];
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < BATCH; i++) {
    iov[i].iov_base = payload;
    iov[i].iov_len = (size_t)len;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  unsigned long long sent = 0, calls = 0, errors = 0;
  double t0 = now(), end = t0 + seconds, t = t0;
  int f = 0;
  while (t < end) {
    int r = sendmmsg(fds[f], msgs, BATCH, 0);
    calls++;
    if (r > 0) sent += (unsigned long long)r;
    if (r < BATCH) errors++; /* a short batch or -1: the rest was refused (ENOBUFS, ECONNREFUSED…) */
    f = (f + 1) % flows;
    if ((calls & 15) == 0) t = now();
  }
  t = now();
  printf("{\"sent\":%llu,\"calls\":%llu,\"errors\":%llu,\"seconds\":%.6f}\n", sent, calls, errors, t - t0);
  return 0;
}
