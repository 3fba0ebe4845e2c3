// tapvip_tap: a small N-API addon for TAP devices.
//
//   open(name, flags, netns?)  -> { fd, name, mac }      TUNSETIFF IFF_TAP|IFF_NO_PI|flags, O_NONBLOCK
//   getMac(name, netns?)       -> Buffer(6)              SIOCGIFHWADDR
//   setUp(name, up, netns?)                              SIOCSIFFLAGS IFF_UP on/off
//   close(fd)
//   setOffload(fd, flags)                                 TUNSETOFFLOAD (TUN_F_* flags; needs IFF_VNET_HDR)
//   readBatch(fd, buf, descsOff, count, framesOff, frameCap, vnetHdrLen?) -> frames read (0 on EAGAIN)
//   writeBatch(fd, buf, descsOff, count, verdictMask, vnetHdrLen?) -> { written, errors, short, skipped, lastError }
//   new Poll(fd, callback) with start() / stop() / close(): uv_poll (UV_READABLE) on the main loop
//
// Descriptors are the dataplane's batch descriptors, 16 bytes, little-endian:
//   | off u32 | len u32 | cap u32 | result u32 |       (result = verdict | reason << 8)
// With vnetHdrLen > 0 (a TAP opened with IFF_VNET_HDR), every frame is preceded by that many
// bytes of struct virtio_net_hdr: readBatch puts the header at the start of the frame's slot and
// the descriptor's off/len/cap describe the Ethernet frame after it, with result = 1
// (DESC_IN_VNET, "a header precedes this frame"); writeBatch writes header and frame together.
// `buf` is an ArrayBuffer (e.g. WebAssembly.Memory#buffer) or a TypedArray; every offset is a
// byte offset into it, so frames are read and written in place, without copies.
//
// `netns` (a name under /var/run/netns or an absolute path) makes the call run inside that
// network namespace: the calling thread enters it with setns(), does the ioctls and returns to
// its own namespace before the function returns. A TAP is created in the namespace of the
// thread that calls TUNSETIFF, and its fd keeps working from any namespace afterwards.
//
// No libuv threadpool is used anywhere: all I/O is non-blocking syscalls on the calling thread.

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "descriptors are little-endian and read with memcpy: big-endian hosts need byte swaps"
#endif

#define DESC_SIZE 16u

// ---- errors ---------------------------------------------------------------------------------

static const char *errno_name(int e) {
  const char *n = strerrorname_np(e);
  return n ? n : "EUNKNOWN";
}

// Throws Error(`${what}: ${ENAME} (${strerror})`) with .code = ENAME and .errno = e.
static void throw_errno(napi_env env, int e, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s (%s)", what, errno_name(e), strerror(e));
  napi_value code, message, err, num;
  napi_create_string_utf8(env, errno_name(e), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &err);
  napi_create_int32(env, e, &num);
  napi_set_named_property(env, err, "errno", num);
  napi_value sys;
  napi_create_string_utf8(env, what, NAPI_AUTO_LENGTH, &sys);
  napi_set_named_property(env, err, "syscall", sys);
  napi_throw(env, err);
}

#define NAPI_CALL(env, call)                                        \
  do {                                                              \
    if ((call) != napi_ok) {                                        \
      bool pending_ = false;                                        \
      napi_is_exception_pending((env), &pending_);                  \
      if (!pending_) napi_throw_error((env), "EINTERNAL", #call);   \
      return NULL;                                                  \
    }                                                               \
  } while (0)

// ---- argument helpers -----------------------------------------------------------------------

static bool get_i32(napi_env env, napi_value v, const char *name, int32_t *out) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t != napi_number) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be a number", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  napi_get_value_int32(env, v, out);
  return true;
}

static bool get_u32(napi_env env, napi_value v, const char *name, uint32_t *out) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  double d = -1;
  if (t == napi_number) napi_get_value_double(env, v, &d);
  if (t != napi_number || d < 0 || d > 4294967295.0 || d != (double)(uint32_t)d) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be an integer in [0, 2^32)", name);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return false;
  }
  *out = (uint32_t)d;
  return true;
}

// Name argument: a string shorter than IFNAMSIZ.
static bool get_ifname(napi_env env, napi_value v, char out[IFNAMSIZ]) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t != napi_string) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "interface name must be a string");
    return false;
  }
  size_t len = 0;
  napi_get_value_string_utf8(env, v, NULL, 0, &len);
  if (len >= IFNAMSIZ) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "interface name must be at most 15 bytes");
    return false;
  }
  memset(out, 0, IFNAMSIZ);
  napi_get_value_string_utf8(env, v, out, IFNAMSIZ, &len);
  return true;
}

// Optional netns argument: undefined/null -> "" (stay), name -> /var/run/netns/name, path as is.
static bool get_netns(napi_env env, size_t argc, napi_value *argv, size_t idx, char out[512]) {
  out[0] = 0;
  if (argc <= idx) return true;
  napi_valuetype t;
  napi_typeof(env, argv[idx], &t);
  if (t == napi_undefined || t == napi_null) return true;
  if (t != napi_string) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "netns must be a string");
    return false;
  }
  char tmp[400];
  size_t len = 0;
  napi_get_value_string_utf8(env, argv[idx], tmp, sizeof tmp, &len);
  if (len == 0 || len >= sizeof tmp - 1) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "netns name is empty or too long");
    return false;
  }
  if (tmp[0] == '/') snprintf(out, 512, "%s", tmp);
  else if (strchr(tmp, '/') || strcmp(tmp, ".") == 0 || strcmp(tmp, "..") == 0) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "netns must be a name under /var/run/netns or an absolute path");
    return false;
  } else snprintf(out, 512, "/var/run/netns/%s", tmp);
  return true;
}

// Memory argument: ArrayBuffer or TypedArray -> base pointer and byte length.
static bool get_memory(napi_env env, napi_value v, uint8_t **base, size_t *bytes) {
  bool is = false;
  napi_is_arraybuffer(env, v, &is);
  if (is) {
    void *data = NULL;
    napi_get_arraybuffer_info(env, v, &data, bytes);
    *base = data;
    return true;
  }
  napi_is_typedarray(env, v, &is);
  if (is) {
    napi_typedarray_type type;
    size_t length = 0;
    void *data = NULL;
    napi_get_typedarray_info(env, v, &type, &length, &data, NULL, NULL);
    size_t el = 1;
    switch (type) {
      case napi_int16_array: case napi_uint16_array: el = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: el = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: el = 8; break;
      default: el = 1;
    }
    *base = data;
    *bytes = length * el;
    return true;
  }
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "buffer must be an ArrayBuffer or a TypedArray");
  return false;
}

// ---- network namespaces ---------------------------------------------------------------------

typedef struct {
  int saved;  // fd of the thread's own netns, -1 when not switched
} nsguard_t;

static bool ns_enter(napi_env env, const char *path, nsguard_t *g) {
  g->saved = -1;
  if (!path[0]) return true;
  int target = open(path, O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    char what[600];
    snprintf(what, sizeof what, "open netns %s", path);
    throw_errno(env, errno, what);
    return false;
  }
  int saved = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (saved < 0) {
    int e = errno;
    close(target);
    throw_errno(env, e, "open /proc/thread-self/ns/net");
    return false;
  }
  if (setns(target, CLONE_NEWNET) != 0) {
    int e = errno;
    close(target);
    close(saved);
    char what[600];
    snprintf(what, sizeof what, "setns %s", path);
    throw_errno(env, e, what);
    return false;
  }
  close(target);
  g->saved = saved;
  return true;
}

static void ns_leave(nsguard_t *g) {
  if (g->saved < 0) return;
  if (setns(g->saved, CLONE_NEWNET) != 0) {
    // The main thread would be left in a foreign namespace: every later socket would be
    // created there. Not recoverable.
    napi_fatal_error("tapvip_tap", NAPI_AUTO_LENGTH, "could not return to the original network namespace", NAPI_AUTO_LENGTH);
  }
  close(g->saved);
  g->saved = -1;
}

// ---- ioctls ---------------------------------------------------------------------------------

static int ifreq_ioctl(unsigned long req, struct ifreq *ifr) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -errno;
  int rc = ioctl(s, req, ifr);
  int e = errno;
  close(s);
  return rc < 0 ? -e : 0;
}

static napi_value mac_buffer(napi_env env, const struct ifreq *ifr) {
  napi_value buf;
  void *data;
  if (napi_create_buffer_copy(env, 6, ifr->ifr_hwaddr.sa_data, &data, &buf) != napi_ok) return NULL;
  return buf;
}

// open(name, flags, netns?) -> { fd, name, mac }
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "open(name, flags, netns?)");
    return NULL;
  }
  char name[IFNAMSIZ];
  int32_t extra = 0;
  char ns[512];
  if (!get_ifname(env, argv[0], name) || !get_i32(env, argv[1], "flags", &extra) || !get_netns(env, argc, argv, 2, ns)) return NULL;
  const int allowed = IFF_VNET_HDR | IFF_MULTI_QUEUE;
  if (extra & ~allowed) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "flags may only contain IFF_VNET_HDR and IFF_MULTI_QUEUE");
    return NULL;
  }

  nsguard_t g;
  if (!ns_enter(env, ns, &g)) return NULL;
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int e = errno;
    ns_leave(&g);
    throw_errno(env, e, "open /dev/net/tun");
    return NULL;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, IFNAMSIZ);
  ifr.ifr_flags = (short)(IFF_TAP | IFF_NO_PI | extra);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    close(fd);
    ns_leave(&g);
    char what[64];
    snprintf(what, sizeof what, "TUNSETIFF %s", name);
    throw_errno(env, e, what);
    return NULL;
  }
  char actual[IFNAMSIZ + 1];
  memcpy(actual, ifr.ifr_name, IFNAMSIZ);
  actual[IFNAMSIZ] = 0;
  struct ifreq hw;
  memset(&hw, 0, sizeof hw);
  memcpy(hw.ifr_name, actual, IFNAMSIZ);
  int rc = ifreq_ioctl(SIOCGIFHWADDR, &hw);
  ns_leave(&g);
  if (rc < 0) {
    close(fd);
    char what[64];
    snprintf(what, sizeof what, "SIOCGIFHWADDR %s", actual);
    throw_errno(env, -rc, what);
    return NULL;
  }
  // O_NONBLOCK was given to open(); make sure (TUNSETIFF does not change file flags).
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0 && !(fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl | O_NONBLOCK);

  napi_value obj, vfd, vname, vmac;
  NAPI_CALL(env, napi_create_object(env, &obj));
  NAPI_CALL(env, napi_create_int32(env, fd, &vfd));
  NAPI_CALL(env, napi_create_string_utf8(env, actual, NAPI_AUTO_LENGTH, &vname));
  vmac = mac_buffer(env, &hw);
  if (!vmac) { close(fd); return NULL; }
  NAPI_CALL(env, napi_set_named_property(env, obj, "fd", vfd));
  NAPI_CALL(env, napi_set_named_property(env, obj, "name", vname));
  NAPI_CALL(env, napi_set_named_property(env, obj, "mac", vmac));
  return obj;
}

// getMac(name, netns?) -> Buffer(6)
static napi_value js_get_mac(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char name[IFNAMSIZ];
  char ns[512];
  if (argc < 1 || !get_ifname(env, argv[0], name) || !get_netns(env, argc, argv, 1, ns)) {
    bool p = false;
    napi_is_exception_pending(env, &p);
    if (!p) napi_throw_type_error(env, "ERR_MISSING_ARGS", "getMac(name, netns?)");
    return NULL;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, IFNAMSIZ);
  nsguard_t g;
  if (!ns_enter(env, ns, &g)) return NULL;
  int rc = ifreq_ioctl(SIOCGIFHWADDR, &ifr);
  ns_leave(&g);
  if (rc < 0) {
    char what[64];
    snprintf(what, sizeof what, "SIOCGIFHWADDR %s", name);
    throw_errno(env, -rc, what);
    return NULL;
  }
  return mac_buffer(env, &ifr);
}

// setUp(name, up, netns?)
static napi_value js_set_up(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char name[IFNAMSIZ];
  char ns[512];
  bool up = true;
  if (argc < 2 || !get_ifname(env, argv[0], name) || !get_netns(env, argc, argv, 2, ns)) {
    bool p = false;
    napi_is_exception_pending(env, &p);
    if (!p) napi_throw_type_error(env, "ERR_MISSING_ARGS", "setUp(name, up, netns?)");
    return NULL;
  }
  if (napi_get_value_bool(env, argv[1], &up) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "up must be a boolean");
    return NULL;
  }
  nsguard_t g;
  if (!ns_enter(env, ns, &g)) return NULL;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, name, IFNAMSIZ);
  int rc = ifreq_ioctl(SIOCGIFFLAGS, &ifr);
  if (rc == 0) {
    if (up) ifr.ifr_flags |= IFF_UP;
    else ifr.ifr_flags &= ~IFF_UP;
    rc = ifreq_ioctl(SIOCSIFFLAGS, &ifr);
  }
  ns_leave(&g);
  if (rc < 0) {
    char what[64];
    snprintf(what, sizeof what, "SIOCSIFFLAGS %s", name);
    throw_errno(env, -rc, what);
  }
  return NULL;
}

// close(fd)
static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || !get_i32(env, argv[0], "fd", &fd)) return NULL;
  // Linux closes the fd even when close() reports EINTR: never retry.
  if (close(fd) < 0 && errno != EINTR) throw_errno(env, errno, "close");
  return NULL;
}

// ---- offloads -------------------------------------------------------------------------------

#define DESC_IN_VNET 1u

// The virtio-net header length argument: 0 (none) or 10 (struct virtio_net_hdr, the TAP default).
static bool get_vnet_len(napi_env env, napi_value v, uint32_t *out) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_undefined) { *out = 0; return true; }
  if (!get_u32(env, v, "vnetHdrLen", out)) return false;
  if (*out != 0 && *out != sizeof(struct virtio_net_hdr)) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "vnetHdrLen must be 0 or 10 (sizeof struct virtio_net_hdr)");
    return false;
  }
  return true;
}

// setOffload(fd, flags): TUNSETOFFLOAD. Tells the kernel which offloads this reader takes:
// TUN_F_CSUM (partial checksums), TUN_F_TSO4/6 and TUN_F_TSO_ECN (TCP super-frames),
// TUN_F_USO4/6 (UDP super-frames, Linux 6.2+). EINVAL means the kernel refuses a flag.
static napi_value js_set_offload(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  uint32_t flags;
  if (argc < 2) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "setOffload(fd, flags)");
    return NULL;
  }
  if (!get_i32(env, argv[0], "fd", &fd) || !get_u32(env, argv[1], "flags", &flags)) return NULL;
  if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags) < 0) {
    char what[64];
    snprintf(what, sizeof what, "TUNSETOFFLOAD 0x%x", flags);
    throw_errno(env, errno, what);
    return NULL;
  }
  return NULL;
}

// ---- batched I/O ----------------------------------------------------------------------------

static inline uint32_t ld32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline void st32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

// readBatch(fd, buf, descsOff, count, framesOff, frameCap, vnetHdrLen = 0) -> n
// Reads up to `count` frames; frame i goes to framesOff + i*frameCap and descriptor i becomes
// { off, len, cap: frameCap, result: 0 } (with a header: off, len and cap exclude it and
// result = DESC_IN_VNET). Stops at EAGAIN (returns what it has, 0 when none). A frame longer
// than frameCap is truncated by the kernel to frameCap bytes (len == cap).
static napi_value js_read_batch(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "readBatch(fd, buffer, descsOffset, count, framesOffset, frameCap)");
    return NULL;
  }
  int32_t fd;
  uint8_t *base;
  size_t bytes;
  uint32_t descs, count, frames, cap;
  if (!get_i32(env, argv[0], "fd", &fd) || !get_memory(env, argv[1], &base, &bytes) ||
      !get_u32(env, argv[2], "descsOffset", &descs) || !get_u32(env, argv[3], "count", &count) ||
      !get_u32(env, argv[4], "framesOffset", &frames) || !get_u32(env, argv[5], "frameCap", &cap))
    return NULL;
  uint32_t hl = 0;
  if (argc > 6 && !get_vnet_len(env, argv[6], &hl)) return NULL;
  if (count > 0 && cap <= hl) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "frameCap must be larger than the virtio-net header");
    return NULL;
  }
  if ((uint64_t)descs + (uint64_t)count * DESC_SIZE > bytes) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "descriptors extend past the end of the buffer");
    return NULL;
  }
  if (count > 0 && (cap == 0 || (uint64_t)frames + (uint64_t)count * cap > bytes ||
                    (uint64_t)frames + (uint64_t)count * cap > UINT32_MAX)) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "frame area (framesOffset + count * frameCap) extends past the end of the buffer, or frameCap is 0");
    return NULL;
  }
  uint32_t n = 0;
  while (n < count) {
    uint32_t off = frames + n * cap;
    ssize_t r = read(fd, base + off, cap);
    if (r < 0) {
      int e = errno;
      if (e == EINTR) continue;
      if (e == EAGAIN || e == EWOULDBLOCK) break;
      if (n > 0 && e != EBADF) break;  // deliver what we have; the error comes back next call
      throw_errno(env, e, "read");
      return NULL;
    }
    uint8_t *d = base + descs + n * DESC_SIZE;
    // A read shorter than the header would be a kernel bug; it becomes an empty frame (dropped).
    uint32_t got = (uint32_t)r > hl ? (uint32_t)r - hl : 0;
    st32(d, off + hl);
    st32(d + 4, got);
    st32(d + 8, cap - hl);
    st32(d + 12, hl ? DESC_IN_VNET : 0);
    n++;
  }
  napi_value out;
  NAPI_CALL(env, napi_create_uint32(env, n, &out));
  return out;
}

// writeBatch(fd, buf, descsOff, count, verdictMask, vnetHdrLen = 0)
//   -> { written, errors, short, skipped, lastError }
// Writes frame i (bytes [off, off+len), preceded by its vnetHdrLen header bytes) when bit
// (result & 0xff) of verdictMask is set.
// Per-frame failures are counted, not thrown (lastError = the last errno name, or null);
// EBADF throws. A descriptor outside the buffer counts as an error (lastError "ERANGE").
static napi_value js_write_batch(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 5) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "writeBatch(fd, buffer, descsOffset, count, verdictMask)");
    return NULL;
  }
  int32_t fd;
  uint8_t *base;
  size_t bytes;
  uint32_t descs, count, mask;
  if (!get_i32(env, argv[0], "fd", &fd) || !get_memory(env, argv[1], &base, &bytes) ||
      !get_u32(env, argv[2], "descsOffset", &descs) || !get_u32(env, argv[3], "count", &count) ||
      !get_u32(env, argv[4], "verdictMask", &mask))
    return NULL;
  uint32_t hl = 0;
  if (argc > 5 && !get_vnet_len(env, argv[5], &hl)) return NULL;
  if ((uint64_t)descs + (uint64_t)count * DESC_SIZE > bytes) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "descriptors extend past the end of the buffer");
    return NULL;
  }
  uint32_t written = 0, errors = 0, shorts = 0, skipped = 0;
  int last = 0;
  for (uint32_t i = 0; i < count; i++) {
    const uint8_t *d = base + descs + i * DESC_SIZE;
    uint32_t off = ld32(d), len = ld32(d + 4), verdict = ld32(d + 12) & 0xff;
    if (verdict >= 32 || !(mask & (1u << verdict))) { skipped++; continue; }
    if (off < hl || (uint64_t)off + len > bytes) { errors++; last = ERANGE; continue; }
    off -= hl;
    len += hl;
    ssize_t r;
    do r = write(fd, base + off, len);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
      int e = errno;
      if (e == EBADF) { throw_errno(env, e, "write"); return NULL; }
      errors++;
      last = e;
    } else if ((uint32_t)r < len) {
      shorts++;  // a TAP takes a frame whole or not at all: should never happen
    } else {
      written++;
    }
  }
  napi_value obj, v;
  NAPI_CALL(env, napi_create_object(env, &obj));
  NAPI_CALL(env, napi_create_uint32(env, written, &v));
  NAPI_CALL(env, napi_set_named_property(env, obj, "written", v));
  NAPI_CALL(env, napi_create_uint32(env, errors, &v));
  NAPI_CALL(env, napi_set_named_property(env, obj, "errors", v));
  NAPI_CALL(env, napi_create_uint32(env, shorts, &v));
  NAPI_CALL(env, napi_set_named_property(env, obj, "short", v));
  NAPI_CALL(env, napi_create_uint32(env, skipped, &v));
  NAPI_CALL(env, napi_set_named_property(env, obj, "skipped", v));
  if (last) NAPI_CALL(env, napi_create_string_utf8(env, errno_name(last), NAPI_AUTO_LENGTH, &v));
  else NAPI_CALL(env, napi_get_null(env, &v));
  NAPI_CALL(env, napi_set_named_property(env, obj, "lastError", v));
  return obj;
}

// ---- readiness: uv_poll on the main loop ------------------------------------------------------

typedef struct {
  uv_poll_t handle;
  napi_env env;
  napi_ref callback;   // strong while js is held
  napi_ref self;       // from napi_wrap: 1 while active (keeps the object alive), else 0
  napi_async_context actx;
  bool active, closing, closed, finalized, js_released;
} tap_poll_t;

static void poll_release_js(tap_poll_t *p) {
  if (p->js_released) return;
  p->js_released = true;
  if (p->active) { napi_reference_unref(p->env, p->self, NULL); p->active = false; }
  napi_delete_reference(p->env, p->callback);
  napi_async_destroy(p->env, p->actx);
  // p->self is deleted by the finalizer (it is the wrap's reference).
}

static void poll_on_close(uv_handle_t *h) {
  tap_poll_t *p = h->data;
  p->closed = true;
  if (p->finalized) free(p);
}

static void poll_on_event(uv_poll_t *h, int status, int events) {
  tap_poll_t *p = h->data;
  if (p->closing || p->js_released) return;
  napi_env env = p->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, self, argv[1];
  size_t argc = 0;
  if (napi_get_reference_value(env, p->callback, &cb) == napi_ok && cb &&
      napi_get_reference_value(env, p->self, &self) == napi_ok && self) {
    if (status < 0) {
      napi_value code, msg;
      napi_create_string_utf8(env, uv_err_name(status), NAPI_AUTO_LENGTH, &code);
      napi_create_string_utf8(env, uv_strerror(status), NAPI_AUTO_LENGTH, &msg);
      napi_create_error(env, code, msg, &argv[0]);
      argc = 1;
    }
    // The receiver is the Poll object itself: napi_make_callback needs an object receiver.
    if (napi_make_callback(env, p->actx, self, cb, argc, argv, NULL) != napi_ok) {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value err;
        napi_get_and_clear_last_exception(env, &err);
        napi_fatal_exception(env, err);  // -> process 'uncaughtException', like any callback
      }
    }
  }
  napi_close_handle_scope(env, scope);
}

static void poll_finalize(napi_env env, void *data, void *hint) {
  tap_poll_t *p = data;
  poll_release_js(p);
  napi_delete_reference(env, p->self);
  p->finalized = true;
  if (!p->closing) {
    p->closing = true;
    uv_poll_stop(&p->handle);
    uv_close((uv_handle_t *)&p->handle, poll_on_close);
  } else if (p->closed) {
    free(p);
  }
}

static tap_poll_t *poll_this(napi_env env, napi_callback_info info) {
  napi_value self;
  if (napi_get_cb_info(env, info, NULL, NULL, &self, NULL) != napi_ok) return NULL;
  void *p = NULL;
  if (napi_unwrap(env, self, &p) != napi_ok || !p) {
    napi_throw_type_error(env, "ERR_INVALID_THIS", "not a Poll");
    return NULL;
  }
  return p;
}

// new Poll(fd, callback)
static napi_value poll_ctor(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], self;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  int32_t fd;
  if (argc < 2 || !get_i32(env, argv[0], "fd", &fd)) {
    bool pend = false;
    napi_is_exception_pending(env, &pend);
    if (!pend) napi_throw_type_error(env, "ERR_MISSING_ARGS", "new Poll(fd, callback)");
    return NULL;
  }
  napi_valuetype t;
  napi_typeof(env, argv[1], &t);
  if (t != napi_function) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "callback must be a function");
    return NULL;
  }
  if (fcntl(fd, F_GETFD) < 0) { throw_errno(env, errno, "Poll"); return NULL; }
  uv_loop_t *loop;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));
  tap_poll_t *p = calloc(1, sizeof *p);
  if (!p) { napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
  int rc = uv_poll_init(loop, &p->handle, fd);
  if (rc < 0) {
    free(p);
    char msg[128];
    snprintf(msg, sizeof msg, "uv_poll_init: %s (%s)", uv_err_name(rc), uv_strerror(rc));
    napi_throw_error(env, uv_err_name(rc), msg);
    return NULL;
  }
  p->handle.data = p;
  p->env = env;
  napi_value rname;
  napi_create_string_utf8(env, "TapPoll", NAPI_AUTO_LENGTH, &rname);
  if (napi_async_init(env, self, rname, &p->actx) != napi_ok ||
      napi_create_reference(env, argv[1], 1, &p->callback) != napi_ok ||
      napi_wrap(env, self, p, poll_finalize, NULL, &p->self) != napi_ok) {
    // Nothing is wrapped: close the handle and free on close.
    p->finalized = true;
    p->closing = true;
    uv_close((uv_handle_t *)&p->handle, poll_on_close);
    bool pend = false;
    napi_is_exception_pending(env, &pend);
    if (!pend) napi_throw_error(env, "EINTERNAL", "Poll setup failed");
    return NULL;
  }
  return self;
}

static napi_value poll_start(napi_env env, napi_callback_info info) {
  tap_poll_t *p = poll_this(env, info);
  if (!p) return NULL;
  if (p->closing) { napi_throw_error(env, "ERR_CLOSED", "Poll is closed"); return NULL; }
  int rc = uv_poll_start(&p->handle, UV_READABLE, poll_on_event);
  if (rc < 0) {
    char msg[128];
    snprintf(msg, sizeof msg, "uv_poll_start: %s (%s)", uv_err_name(rc), uv_strerror(rc));
    napi_throw_error(env, uv_err_name(rc), msg);
    return NULL;
  }
  if (!p->active) { napi_reference_ref(env, p->self, NULL); p->active = true; }
  return NULL;
}

static napi_value poll_stop(napi_env env, napi_callback_info info) {
  tap_poll_t *p = poll_this(env, info);
  if (!p) return NULL;
  if (p->closing) return NULL;
  uv_poll_stop(&p->handle);
  if (p->active) { napi_reference_unref(env, p->self, NULL); p->active = false; }
  return NULL;
}

static napi_value poll_close(napi_env env, napi_callback_info info) {
  tap_poll_t *p = poll_this(env, info);
  if (!p) return NULL;
  if (p->closing) return NULL;
  uv_poll_stop(&p->handle);
  p->closing = true;
  poll_release_js(p);
  uv_close((uv_handle_t *)&p->handle, poll_on_close);
  return NULL;
}

// ---- module -----------------------------------------------------------------------------------

static void set_int(napi_env env, napi_value obj, const char *name, int32_t v) {
  napi_value x;
  napi_create_int32(env, v, &x);
  napi_set_named_property(env, obj, name, x);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
    {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
    {"getMac", NULL, js_get_mac, NULL, NULL, NULL, napi_enumerable, NULL},
    {"setUp", NULL, js_set_up, NULL, NULL, NULL, napi_enumerable, NULL},
    {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
    {"readBatch", NULL, js_read_batch, NULL, NULL, NULL, napi_enumerable, NULL},
    {"writeBatch", NULL, js_write_batch, NULL, NULL, NULL, napi_enumerable, NULL},
    {"setOffload", NULL, js_set_offload, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns));
  napi_property_descriptor methods[] = {
    {"start", NULL, poll_start, NULL, NULL, NULL, napi_default, NULL},
    {"stop", NULL, poll_stop, NULL, NULL, NULL, napi_default, NULL},
    {"close", NULL, poll_close, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value cls;
  NAPI_CALL(env, napi_define_class(env, "Poll", NAPI_AUTO_LENGTH, poll_ctor, NULL, 3, methods, &cls));
  NAPI_CALL(env, napi_set_named_property(env, exports, "Poll", cls));
  set_int(env, exports, "IFF_VNET_HDR", IFF_VNET_HDR);
  set_int(env, exports, "IFF_MULTI_QUEUE", IFF_MULTI_QUEUE);
  set_int(env, exports, "DESC_SIZE", DESC_SIZE);
  set_int(env, exports, "DESC_IN_VNET", DESC_IN_VNET);
  set_int(env, exports, "VNET_HDR_LEN", (int32_t)sizeof(struct virtio_net_hdr));
  set_int(env, exports, "TUN_F_CSUM", TUN_F_CSUM);
  set_int(env, exports, "TUN_F_TSO4", TUN_F_TSO4);
  set_int(env, exports, "TUN_F_TSO6", TUN_F_TSO6);
  set_int(env, exports, "TUN_F_TSO_ECN", TUN_F_TSO_ECN);
#ifdef TUN_F_USO4
  set_int(env, exports, "TUN_F_USO4", TUN_F_USO4);
  set_int(env, exports, "TUN_F_USO6", TUN_F_USO6);
#else
  set_int(env, exports, "TUN_F_USO4", 0x20);  // Linux 6.2 uapi; older headers lack the names
  set_int(env, exports, "TUN_F_USO6", 0x40);
#endif
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
